import Crypto
import Foundation

/// The version of a dataset: the SHA-256 over its files' relative paths and content hashes, so any change of
/// content (or of which files are in it) gives a new version, and nothing else does.
public struct DatasetVersion: Codable, Sendable, Equatable {
    /// One file of the dataset.
    public struct File: Codable, Sendable, Equatable {
        /// The file's path.
        public var path: String
        /// Its size in bytes.
        public var size: Int64
        /// `sha256:<hex>` of its content.
        public var contentHash: String
    }

    /// `sha256:<hex>` over the files.
    public var id: String
    /// The files, in dataset order.
    public var files: [File]
    /// Bytes in all.
    public var bytes: Int64 { files.reduce(0) { $0 + $1.size } }

    /// The version of `files`. Files whose size, modification and change times and inode match the cache are not
    /// read again; a file whose content changed always has a new change time, so the shortcut stays correct.
    /// - Parameter cache: where file hashes are remembered (`nil`: hash everything).
    public static func compute(_ files: [URL], cache: FileHashCache? = nil) throws -> DatasetVersion {
        let root = commonDirectory(files)
        var entries: [File] = []
        var tree = SHA256()
        for file in files {
            let (hash, size) = try cache?.hash(of: file) ?? FileHashCache.hashNow(file)
            let relative = file.path.hasPrefix(root) ? String(file.path.dropFirst(root.count)) : file.path
            tree.update(data: Data("\(relative)\0\(size)\0\(hash)\n".utf8))
            entries.append(File(path: file.path, size: size, contentHash: hash))
        }
        try cache?.save()
        let digest = tree.finalize().map { String(format: "%02x", $0) }.joined()
        return DatasetVersion(id: "sha256:" + digest, files: entries)
    }

    static func commonDirectory(_ files: [URL]) -> String {
        guard var prefix = files.first?.deletingLastPathComponent().path else { return "" }
        for file in files.dropFirst() {
            while !file.path.hasPrefix(prefix + "/") && prefix.count > 1 {
                prefix = (prefix as NSString).deletingLastPathComponent
            }
        }
        return prefix.hasSuffix("/") ? prefix : prefix + "/"
    }
}

/// Remembers file hashes by path, keyed on size, modification time, change time and inode, in a JSON file.
public final class FileHashCache: @unchecked Sendable {
    // Used from one thread at a time (a data command's pass).
    struct Entry: Codable {
        var size: Int64
        var modified: Int64
        var changed: Int64
        var inode: UInt64
        var hash: String
    }

    /// The cache file.
    public let url: URL
    private var entries: [String: Entry]
    private var dirty = false
    /// Files hashed (not taken from the cache) since this cache was opened.
    public private(set) var hashedFiles = 0

    /// Opens (or starts) the cache at `url`.
    public init(url: URL) {
        self.url = url
        entries = (try? JSONDecoder().decode([String: Entry].self, from: Data(contentsOf: url))) ?? [:]
    }

    func hash(of file: URL) throws -> (String, Int64) {
        var info = stat()
        guard stat(file.path, &info) == 0 else {
            throw CSVError(
                file: file.path, line: nil, column: nil, problem: "cannot read the file", fix: "check the path.")
        }
        let modified = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
        let changed = Int64(info.st_ctim.tv_sec) * 1_000_000_000 + Int64(info.st_ctim.tv_nsec)
        let size = Int64(info.st_size)
        let inode = UInt64(info.st_ino)
        if let entry = entries[file.path], entry.size == size, entry.modified == modified, entry.changed == changed,
            entry.inode == inode
        {
            return (entry.hash, size)
        }
        let (hash, hashedSize) = try Self.hashNow(file)
        hashedFiles += 1
        entries[file.path] = Entry(size: hashedSize, modified: modified, changed: changed, inode: inode, hash: hash)
        dirty = true
        return (hash, hashedSize)
    }

    static func hashNow(_ file: URL) throws -> (String, Int64) {
        let fd = open(file.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw CSVError(
                file: file.path, line: nil, column: nil, problem: "cannot open the file", fix: "check the path.")
        }
        defer { close(fd) }
        var hasher = SHA256()
        var total: Int64 = 0
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let count = read(fd, buffer.baseAddress, buffer.count)
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[..<count]))
            total += Int64(count)
        }
        return ("sha256:" + hasher.finalize().map { String(format: "%02x", $0) }.joined(), total)
    }

    func save() throws {
        guard dirty else { return }
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try JSONEncoder().encode(entries).write(to: url, options: .atomic)
        dirty = false
    }
}

/// The dataset versions seen, per set of input paths, in an append-only JSON-lines file.
public struct DatasetVersionLog: Sendable {
    /// One sighting of a version.
    public struct Entry: Codable, Sendable, Equatable {
        /// The paths as given (files, folders, globs).
        public var paths: [String]
        /// The version.
        public var version: String
        /// How many files.
        public var files: Int
        /// Bytes in all.
        public var bytes: Int64
        /// When it was first seen.
        public var firstSeen: Date
    }

    /// The log file.
    public let url: URL

    /// A log at `url`.
    public init(url: URL) { self.url = url }

    /// Every entry, oldest first.
    public func entries() -> [Entry] {
        guard let text = try? String(contentsOf: url, encoding: .utf8) else { return [] }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return text.split(separator: "\n").compactMap { try? decoder.decode(Entry.self, from: Data($0.utf8)) }
    }

    /// Records `version` for `paths` unless it was seen for them before; returns whether it is new.
    @discardableResult
    public func record(_ version: DatasetVersion, paths: [String]) throws -> Bool {
        if entries().contains(where: { $0.paths == paths && $0.version == version.id }) { return false }
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        let entry = Entry(
            paths: paths, version: version.id, files: version.files.count, bytes: version.bytes, firstSeen: Date())
        var line = try encoder.encode(entry)
        line.append(0x0A)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        if !FileManager.default.fileExists(atPath: url.path) {
            FileManager.default.createFile(atPath: url.path, contents: nil)
        }
        let handle = try FileHandle(forWritingTo: url)
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: line)
        return true
    }
}
