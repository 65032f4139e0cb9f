import Foundation

/// Where artifact content lives: content-addressed, written atomically.
public protocol ArtifactStore: Sendable {
    /// Lets `write` create a file or directory at a temporary URL, then hashes it and moves it into place
    /// under its content hash in one rename, so no reader ever sees half of it.
    func store(_ write: (URL) throws -> Void) throws -> StoredContent
    /// Stores bytes already in memory: hashed as they are, written once, renamed into place.
    func store(data: Data) throws -> StoredContent
    /// The local URL of stored content.
    func url(for uri: String) -> URL
    /// Whether stored content is still there.
    func contains(uri: String) -> Bool
}

/// Where a piece of content ended up.
public struct StoredContent: Sendable, Equatable {
    /// A `file://` URI of the content.
    public var uri: String
    /// `sha256:<hex>`.
    public var contentHash: String
    /// Bytes in all (summed over a directory).
    public var size: Int64
}

/// How hard the stores work to survive power loss.
public enum Durability: String, Codable, Sendable, CaseIterable {
    /// Survives a killed process (the default): atomic renames, SQLite WAL with `synchronous=NORMAL`.
    case process
    /// Also survives power loss: fsync of every artifact and its directory before the rename is recorded,
    /// SQLite `synchronous=FULL`. Slower on many small artifacts.
    case power
}

/// An artifact store on a local (or shared) filesystem.
///
/// Layout under the root: `sha256/<hex>` for content, `.tmp/` for writes in progress. A write goes to
/// `.tmp/<pid>-<uuid>`, is hashed, then renamed to its content address; identical content is stored once.
/// The content directory is flat: ext4 and XFS index large directories, and a directory per hash prefix
/// costs a `mkdir` on every new prefix, which measurably slowed runs of many small artifacts.
public struct LocalArtifactStore: ArtifactStore {
    /// The store's root directory.
    public let root: URL
    /// The durability setting.
    public let durability: Durability
    private let temporaryRoot: URL
    private let contentRoot: URL

    /// Opens (and creates) a store rooted at `root`.
    public init(root: URL, durability: Durability = .process) throws {
        self.root = root.standardizedFileURL
        self.durability = durability
        self.temporaryRoot = self.root.appending(path: ".tmp", directoryHint: .isDirectory)
        self.contentRoot = self.root.appending(path: "sha256", directoryHint: .isDirectory)
        try FileManager.default.createDirectory(at: temporaryRoot, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: contentRoot, withIntermediateDirectories: true)
    }

    public func store(_ write: (URL) throws -> Void) throws -> StoredContent {
        let temporary = temporaryRoot.appending(path: "\(getpid())-\(UUID().uuidString)")
        do {
            try write(temporary)
            let (hash, size) = try ContentHasher.hash(temporary, sync: durability == .power)
            return try moveIntoPlace(temporary, hash: hash, size: size)
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw error
        }
    }

    public func store(data: Data) throws -> StoredContent {
        let hash = ContentHasher.hash(data)
        let temporary = temporaryRoot.appending(path: "\(getpid())-\(UUID().uuidString)")
        do {
            try Self.writeFile(temporary.path, data, sync: durability == .power)
            return try moveIntoPlace(temporary, hash: hash, size: Int64(data.count))
        } catch {
            unlink(temporary.path)
            throw error
        }
    }

    /// Renames a finished temporary to its content address (or drops it when that content is already stored).
    private func moveIntoPlace(_ temporary: URL, hash: String, size: Int64) throws -> StoredContent {
        let final = contentRoot.appending(path: String(hash.dropFirst("sha256:".count)))
        if rename(temporary.path, final.path) != 0 {
            let code = errno
            // Identical content is already stored (a directory cannot be renamed over a non-empty one).
            guard code == ENOTEMPTY || code == EEXIST || code == EISDIR else {
                throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: final.path])
            }
            try? FileManager.default.removeItem(at: temporary)
        }
        if durability == .power { try Self.syncDirectory(contentRoot) }
        return StoredContent(uri: final.absoluteString, contentHash: hash, size: size)
    }

    /// Writes bytes to a new file with plain POSIX calls (no attribute or atomic-write work).
    static func writeFile(_ path: String, _ data: Data, sync: Bool) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path]) }
        defer { close(fd) }
        try data.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    throw CocoaError(.fileWriteOutOfSpace, userInfo: [NSFilePathErrorKey: path])
                }
                offset += written
            }
        }
        if sync { fsync(fd) }
    }

    public func url(for uri: String) -> URL {
        URL(string: uri) ?? URL(fileURLWithPath: uri)
    }

    public func contains(uri: String) -> Bool {
        FileManager.default.fileExists(atPath: url(for: uri).path)
    }

    /// Removes temporaries left by processes that are gone (a killed run's half-written artifacts).
    public func sweepAbandonedTemporaries() {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: temporaryRoot.path) else { return }
        for name in names {
            guard let pid = name.split(separator: "-").first.flatMap({ Int32($0) }) else { continue }
            if pid != getpid() && kill(pid, 0) != 0 && errno == ESRCH {
                try? FileManager.default.removeItem(at: temporaryRoot.appending(path: name))
            }
        }
    }

    static func syncDirectory(_ url: URL) throws {
        let fd = open(url.path, O_RDONLY)
        guard fd >= 0 else { return }
        defer { close(fd) }
        fsync(fd)
    }
}
