import Foundation
import PostgresNIO
import SluiceCore

extension PostgresMetadataStore: AccessTokenStore {
    public func insertToken(_ token: AccessToken) async throws {
        // The partial unique index keeps one live token per name even when two hosts create one at once.
        let inserted = try await rows(
            """
            INSERT INTO access_tokens (id, name, hash, can_write, created_at, created_by, revoked_at)
            VALUES (\(token.id), \(token.name), \(token.hash), \(token.canWrite),
                \(token.createdAt.timeIntervalSince1970), \(token.createdBy), \(token.revokedAt?.timeIntervalSince1970))
            ON CONFLICT (name) WHERE revoked_at IS NULL DO NOTHING RETURNING id
            """
        ) { try $0.string("id") }
        if inserted.isEmpty { throw AccessTokenError.nameTaken(token.name) }
    }

    public func tokens() async throws -> [AccessToken] {
        try await rows("SELECT * FROM access_tokens ORDER BY created_at, id", Self.token)
    }

    public func token(hash: String) async throws -> AccessToken? {
        try await rows("SELECT * FROM access_tokens WHERE hash = \(hash)", Self.token).first
    }

    public func revokeToken(_ idOrName: String, at date: Date) async throws -> AccessToken? {
        try await rows(
            """
            UPDATE access_tokens SET revoked_at = \(date.timeIntervalSince1970)
            WHERE (id = \(idOrName) OR name = \(idOrName)) AND revoked_at IS NULL RETURNING *
            """, Self.token
        ).first
    }

    private static func token(_ row: Row) throws -> AccessToken {
        AccessToken(
            id: try row.string("id"), name: try row.string("name"), hash: try row.string("hash"),
            canWrite: try row.optionalBool("can_write") ?? false,
            createdAt: Date(timeIntervalSince1970: try row.double("created_at")),
            createdBy: try row.string("created_by"),
            revokedAt: try row.optionalDouble("revoked_at").map(Date.init(timeIntervalSince1970:)))
    }
}
