import Crypto
import Foundation

/// A dashboard access token as the metadata store keeps it: a name, what it may do, and a hash of its secret (the
/// secret itself is shown once, when it is created, and stored nowhere).
public struct AccessToken: Codable, Sendable, Equatable {
    /// The token's record ID (`tok-…`), for listings and revocation.
    public var id: String
    /// What the token is for, as its creator named it (`ci`, `alice-laptop`); unique among live tokens.
    public var name: String
    /// `sha256:<hex>` of the secret.
    public var hash: String
    /// Whether it may change state (promote, roll back, cancel), not only read.
    public var canWrite: Bool
    /// When it was created.
    public var createdAt: Date
    /// Who created it.
    public var createdBy: String
    /// When it was revoked; a revoked token opens nothing.
    public var revokedAt: Date?

    /// Creates a record.
    public init(
        id: String, name: String, hash: String, canWrite: Bool, createdAt: Date, createdBy: String,
        revokedAt: Date? = nil
    ) {
        self.id = id
        self.name = name
        self.hash = hash
        self.canWrite = canWrite
        self.createdAt = createdAt
        self.createdBy = createdBy
        self.revokedAt = revokedAt
    }

    /// A new token: its record, and the secret to hand to its user (`sluice_` and 43 URL-safe characters).
    public static func make(name: String, canWrite: Bool, createdBy: String, at date: Date = Date()) -> (
        record: AccessToken, secret: String
    ) {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        let secret =
            "sluice_"
            + Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        let record = AccessToken(
            id: RecordID.make("tok", at: date), name: name, hash: hash(of: secret), canWrite: canWrite,
            createdAt: date, createdBy: createdBy)
        return (record, secret)
    }

    /// The stored form of a secret. A plain SHA-256 is right here: the secrets are 256 random bits, so there is
    /// nothing for a slow password hash to protect against.
    public static func hash(of secret: String) -> String {
        "sha256:" + SHA256.hash(data: Data(secret.utf8)).hexString
    }
}

/// Dashboard access tokens, kept beside the runs they open.
public protocol AccessTokenStore: Sendable {
    /// Stores a new token.
    /// - Throws: when a live token already has its name.
    func insertToken(_ token: AccessToken) async throws
    /// Every token, revoked ones too, oldest first.
    func tokens() async throws -> [AccessToken]
    /// The token whose secret hashes to `hash`, revoked or not.
    func token(hash: String) async throws -> AccessToken?
    /// Marks the live token with this ID or name revoked; returns it, or nil when no live token matches.
    func revokeToken(_ idOrName: String, at date: Date) async throws -> AccessToken?
}

/// A token request the store refuses.
public enum AccessTokenError: SluiceError, Sendable, Equatable {
    /// A live token already has this name.
    case nameTaken(String)

    public var problem: String {
        switch self {
        case .nameTaken(let name): "a live token is already named '\(name)'."
        }
    }

    public var fix: String {
        switch self {
        case .nameTaken(let name): "choose another name, or revoke it first with `sluice tokens revoke \(name)`."
        }
    }

    public var exitStatus: ExitStatus { .unusableInput }
}
