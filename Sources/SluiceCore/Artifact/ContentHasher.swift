import Crypto
import Foundation

/// SHA-256 of a file, or of a directory tree (over its sorted relative paths and their files' hashes).
public enum ContentHasher {
    /// Returns `sha256:<hex>` and the total size of the file or tree at `url`, optionally fsyncing each file.
    public static func hash(_ url: URL, sync: Bool = false) throws -> (hash: String, size: Int64) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: url.path])
        }
        if !isDirectory.boolValue {
            let (digest, size) = try hashFile(url.path, sync: sync)
            return ("sha256:" + digest, size)
        }
        var tree = SHA256()
        var total: Int64 = 0
        let base = url.path.hasSuffix("/") ? url.path : url.path + "/"
        let enumerator = FileManager.default.enumerator(atPath: url.path)
        var files: [String] = []
        while let relative = enumerator?.nextObject() as? String {
            var childIsDirectory: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: base + relative, isDirectory: &childIsDirectory)
            if !childIsDirectory.boolValue { files.append(relative) }
        }
        for relative in files.sorted() {
            let (digest, size) = try hashFile(base + relative, sync: sync)
            total += size
            tree.update(data: Data("\(relative)\0\(size)\0\(digest)\n".utf8))
        }
        if sync { try LocalArtifactStore.syncDirectory(url) }
        return ("sha256:" + tree.finalize().hexString, total)
    }

    /// `sha256:<hex>` of bytes in memory.
    public static func hash(_ data: Data) -> String {
        "sha256:" + SHA256.hash(data: data).hexString
    }

    /// SHA-256 hex digest and size of one file, read in 1 MiB blocks.
    public static func hashFile(_ path: String, sync: Bool = false) throws -> (String, Int64) {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw CocoaError(.fileReadNoSuchFile, userInfo: [NSFilePathErrorKey: path]) }
        defer { close(fd) }
        var hasher = SHA256()
        var total: Int64 = 0
        let blockSize = 1 << 20
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: blockSize, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let count = read(fd, buffer.baseAddress, blockSize)
            if count < 0 {
                if errno == EINTR { continue }
                throw CocoaError(.fileReadUnknown, userInfo: [NSFilePathErrorKey: path])
            }
            if count == 0 { break }
            hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[..<count]))
            total += Int64(count)
        }
        if sync { fsync(fd) }
        return (hasher.finalize().hexString, total)
    }
}
