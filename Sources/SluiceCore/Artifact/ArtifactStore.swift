import Foundation
import Synchronization

/// Where artifact content lives: content-addressed, written atomically.
public protocol ArtifactStore: Sendable {
    /// Where the store lives; recorded URIs are relative to it.
    var root: URL { get }
    /// Lets `write` create a file or directory at a temporary URL, then hashes it and moves it into place
    /// under its content hash in one rename, so no reader ever sees half of it.
    func store(_ write: (URL) throws -> Void) throws -> StoredContent
    /// Stores bytes already in memory (small ones are appended to a pack file rather than given a file each).
    func store(data: Data) throws -> StoredContent
    /// The local file or directory of stored content, or `nil` for content packed with others.
    func url(for uri: String) -> URL?
    /// The bytes of stored content that is one file or one packed object.
    func data(for uri: String) throws -> Data
    /// Whether stored content is still there.
    func contains(uri: String) -> Bool
    /// Removes half-written content left by processes that are gone (called when a run starts).
    func sweepAbandonedTemporaries()
    /// Deletes stored content (retention); returns the bytes freed. Content packed with others stays (0 bytes).
    func remove(uri: String) throws -> Int64
}

/// Where a piece of content ended up.
public struct StoredContent: Sendable, Equatable {
    /// The content's location relative to the store's root (`sha256/<hex>`; packed objects
    /// `packs/<name>.pack#offset=…&length=…`), so a store mounted at another path still resolves it.
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
/// URIs are relative to the root, so the same store mounted elsewhere (another host, a container, a cluster node)
/// resolves every artifact. URIs recorded before that (`file:///old/root/sha256/<hex>`) still resolve: under this
/// root when the store has moved, at their old absolute path otherwise.
///
/// Layout under the root:
/// - `sha256/<hex>`: one file or directory per artifact, named by its content hash. A write goes to
///   `.tmp/<pid>-<uuid>-<host>`, is hashed, then renamed into place; identical content is stored once. The directory
///   is flat: ext4 and XFS index large directories, and a directory per hash prefix costs a `mkdir` per prefix.
/// - `packs/<pid>-<uuid>.pack`: small in-memory artifacts (up to ``packThreshold`` bytes), appended to one
///   file per store instance. Creating a file costs about 0.7 ms on this project's reference VM disk against
///   about 1 µs for an append, and pipelines of many small steps write many small artifacts. An append is one
///   `write(2)`; its range is recorded only after it returns, so a killed process leaves at most an
///   unreferenced tail, never a visible half-artifact.
public struct LocalArtifactStore: ArtifactStore {
    /// The store's root directory.
    public let root: URL
    /// The durability setting.
    public let durability: Durability
    /// Artifacts of at most this many bytes that arrive in memory are packed; `0` gives every artifact a file.
    public let packThreshold: Int
    private let temporaryRoot: URL
    private let contentRoot: URL
    private let packs: PackWriter

    /// Opens (and creates) a store rooted at `root`.
    public init(root: URL, durability: Durability = .process, packThreshold: Int = 64 * 1024) throws {
        self.root = root.standardizedFileURL
        self.durability = durability
        self.packThreshold = packThreshold
        self.temporaryRoot = self.root.appending(path: ".tmp", directoryHint: .isDirectory)
        self.contentRoot = self.root.appending(path: "sha256", directoryHint: .isDirectory)
        self.packs = PackWriter(directory: self.root.appending(path: Self.packFolder, directoryHint: .isDirectory))
        try FileManager.default.createDirectory(at: temporaryRoot, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: contentRoot, withIntermediateDirectories: true)
    }

    public func store(_ write: (URL) throws -> Void) throws -> StoredContent {
        let temporary = temporaryRoot.appending(path: Self.temporaryName())
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
        if data.count <= packThreshold {
            let (pack, offset) = try packs.append(data, sync: durability == .power)
            return StoredContent(
                uri: "\(Self.packFolder)/\(pack.lastPathComponent)#offset=\(offset)&length=\(data.count)",
                contentHash: hash, size: Int64(data.count))
        }
        let temporary = temporaryRoot.appending(path: Self.temporaryName())
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
        let name = String(hash.dropFirst("sha256:".count))
        let final = contentRoot.appending(path: name)
        if rename(temporary.path, final.path) != 0 {
            let code = errno
            // Identical content is already stored (a directory cannot be renamed over a non-empty one).
            guard code == ENOTEMPTY || code == EEXIST || code == EISDIR else {
                throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: final.path])
            }
            try? FileManager.default.removeItem(at: temporary)
        }
        if durability == .power { try Self.syncDirectory(contentRoot) }
        return StoredContent(uri: "\(Self.contentFolder)/\(name)", contentHash: hash, size: size)
    }

    static let contentFolder = "sha256"
    static let packFolder = "packs"

    /// The file a URI's path part (without a pack fragment) names: relative to the root, or a legacy absolute
    /// `file://` URI, taken under this root when its store has moved here.
    func file(_ path: Substring) -> URL {
        guard path.hasPrefix("file://"), let url = URL(string: String(path)) else {
            return root.appending(path: String(path))
        }
        let absolute = url.standardizedFileURL
        if FileManager.default.fileExists(atPath: absolute.path) { return absolute }
        let components = absolute.pathComponents
        if let folder = components.lastIndex(where: { $0 == Self.contentFolder || $0 == Self.packFolder }) {
            return root.appending(path: components[folder...].joined(separator: "/"))
        }
        return absolute
    }

    /// The root-relative form of a URI recorded as an absolute `file://` URI (`file:///r/sha256/ab` →
    /// `sha256/ab`), or `nil` when it points outside any store layout.
    package static func relativeURI(legacy uri: String) -> String? {
        let fragment = uri.firstIndex(of: "#").map { String(uri[$0...]) } ?? ""
        let path = uri.firstIndex(of: "#").map { String(uri[..<$0]) } ?? uri
        guard path.hasPrefix("file://"), let url = URL(string: path) else { return nil }
        let components = url.standardizedFileURL.pathComponents
        guard let folder = components.lastIndex(where: { $0 == contentFolder || $0 == packFolder }),
            folder < components.count - 1
        else { return nil }
        return components[folder...].joined(separator: "/") + fragment
    }

    func packed(_ uri: String) -> PackedLocation? {
        guard let fragment = uri.firstIndex(of: "#") else { return nil }
        return PackedLocation(path: file(uri[..<fragment]).path, fragment: uri[uri.index(after: fragment)...])
    }

    public func url(for uri: String) -> URL? {
        if uri.contains("#") { return nil }
        return file(Substring(uri))
    }

    public func data(for uri: String) throws -> Data {
        if let packed = packed(uri) { return try packed.read() }
        guard let url = url(for: uri) else { throw CocoaError(.fileReadInvalidFileName) }
        return try Data(contentsOf: url)
    }

    public func remove(uri: String) throws -> Int64 {
        guard packed(uri) == nil, let url = url(for: uri) else { return 0 }
        // Claimed by one rename first: of two removals at once (two `sluice gc` runs), one gets it and the other
        // finds nothing, instead of failing on a file that went away between looking and deleting.
        let claimed = temporaryRoot.appending(path: Self.temporaryName() + "-removing")
        guard rename(url.path, claimed.path) == 0 else {
            if errno == ENOENT { return 0 }
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: url.path])
        }
        let size = Self.size(of: claimed)
        try FileManager.default.removeItem(at: claimed)
        return size
    }

    /// Bytes in a file, or in every file under a directory.
    static func size(of url: URL) -> Int64 {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else { return 0 }
        guard isDirectory.boolValue else {
            return (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int64) ?? 0
        }
        var total: Int64 = 0
        for case let child as String in FileManager.default.enumerator(atPath: url.path) ?? NSEnumerator() {
            let path = url.appending(path: child).path
            total += (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int64) ?? 0
        }
        return total
    }

    public func contains(uri: String) -> Bool {
        if let packed = packed(uri) { return packed.exists }
        guard let url = url(for: uri) else { return false }
        return FileManager.default.fileExists(atPath: url.path)
    }

    /// This host's name as it appears in temporary names: letters and digits only.
    static let hostTag = String(
        ProcessOwner.current.host.unicodeScalars.filter { CharacterSet.alphanumerics.contains($0) && $0.isASCII }
            .map(Character.init))

    /// `<pid>-<uuid>-<host>`: who writes it, so a sweep on a shared store leaves other hosts' writes alone.
    static func temporaryName() -> String { "\(getpid())-\(UUID().uuidString)-\(hostTag)" }

    /// Removes temporaries left by processes that are gone (a killed run's half-written artifacts).
    public func sweepAbandonedTemporaries() {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: temporaryRoot.path) else { return }
        for name in names {
            let parts = name.split(separator: "-")
            guard let pid = parts.first.flatMap({ Int32($0) }) else { continue }
            // Another host's write (or removal) in progress on a shared store: its PID means nothing here. (Names
            // without a host come from older versions of Sluice and are judged by their PID, as before.)
            if parts.count >= 7 && parts[6] != Self.hostTag { continue }
            if pid != getpid() && kill(pid, 0) != 0 && errno == ESRCH {
                try? FileManager.default.removeItem(at: temporaryRoot.appending(path: name))
            }
        }
    }

    /// Writes bytes to a new file with plain POSIX calls (no attribute or atomic-write work).
    static func writeFile(_ path: String, _ data: Data, sync: Bool) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path]) }
        defer { close(fd) }
        try writeAll(fd, data, path: path)
        if sync { fsync(fd) }
    }

    static func writeAll(_ fd: Int32, _ data: Data, path: String) throws {
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
    }

    static func syncDirectory(_ url: URL) throws {
        let fd = open(url.path, O_RDONLY)
        guard fd >= 0 else { return }
        defer { close(fd) }
        fsync(fd)
    }
}

/// Appends small objects to this store instance's pack file, opened on first use and rotated at 256 MiB.
final class PackWriter: Sendable {
    private let directory: URL
    private let state = Mutex<(fd: Int32, url: URL?, size: Int)>((-1, nil, 0))
    private static let rotateAt = 256 << 20

    init(directory: URL) { self.directory = directory }

    /// Appends `data`; returns the pack and the offset it starts at.
    func append(_ data: Data, sync: Bool) throws -> (URL, Int) {
        try state.withLock { state in
            if state.fd >= 0 {
                // Someone removed the pack (or its folder): appending to the unlinked file would lose data.
                var info = stat()
                if fstat(state.fd, &info) != 0 || info.st_nlink == 0 {
                    close(state.fd)
                    state.fd = -1
                }
            }
            if state.fd < 0 || state.size >= Self.rotateAt {
                if state.fd >= 0 { close(state.fd) }
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
                let url = directory.appending(path: "\(getpid())-\(UUID().uuidString).pack")
                let fd = open(url.path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0o644)
                guard fd >= 0 else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: url.path]) }
                state = (fd, url, 0)
                if sync { try LocalArtifactStore.syncDirectory(directory) }
            }
            let offset = state.size
            do {
                try LocalArtifactStore.writeAll(state.fd, data, path: state.url!.path)
            } catch {
                // A failed append may have written part of the object: start a new pack rather than
                // place the next object after an unknown number of bytes.
                close(state.fd)
                state.fd = -1
                throw error
            }
            state.size += data.count
            if sync { fsync(state.fd) }
            return (state.url!, offset)
        }
    }

    deinit {
        state.withLock { if $0.fd >= 0 { close($0.fd) } }
    }
}

/// An object inside a pack file, parsed from its URI's `offset=…&length=…` fragment.
struct PackedLocation {
    var path: String
    var offset: Int
    var length: Int

    init?(path: String, fragment: Substring) {
        var offset: Int?
        var length: Int?
        for pair in fragment.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { continue }
            if parts[0] == "offset" { offset = Int(parts[1]) }
            if parts[0] == "length" { length = Int(parts[1]) }
        }
        guard let offset, let length else { return nil }
        self.path = path
        self.offset = offset
        self.length = length
    }

    var exists: Bool {
        var info = stat()
        return stat(path, &info) == 0 && Int(info.st_size) >= offset + length
    }

    func read() throws -> Data {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw CocoaError(.fileReadNoSuchFile, userInfo: [NSFilePathErrorKey: path]) }
        defer { close(fd) }
        var data = Data(count: length)
        let count = data.withUnsafeMutableBytes { buffer in pread(fd, buffer.baseAddress, length, off_t(offset)) }
        guard count == length else {
            throw CocoaError(.fileReadCorruptFile, userInfo: [NSFilePathErrorKey: path])
        }
        return data
    }
}
