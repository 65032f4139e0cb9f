import Foundation

/// The data files below a folder, each with its size, modification time and inode: two snapshots taken a poll
/// apart say which files arrived or changed. Polling, not inotify, so a folder on a shared filesystem (NFS, a
/// cluster's storage), where change notifications do not cross machines, is watched the same way.
package struct FolderSnapshot: Sendable, Equatable {
    /// What identifies one version of a file without reading it.
    public struct Stamp: Sendable, Equatable {
        public var size: Int64
        /// Modification time in nanoseconds since the epoch.
        public var modified: Int64
        public var inode: UInt64
    }

    /// What changed between two snapshots.
    public struct Changes: Sendable, Equatable {
        /// Files that appeared or whose size, modification time or inode changed, sorted.
        public var changed: [String]
        /// Files that are gone, sorted.
        public var removed: [String]
        public var isEmpty: Bool { changed.isEmpty && removed.isEmpty }
    }

    /// The folder.
    public let root: String
    /// Every matching file below the folder (paths start with `root`), with its stamp.
    public private(set) var files: [String: Stamp]

    /// An empty snapshot of `root`: every file found later counts as arrived.
    public init(empty root: String) {
        self.root = root
        files = [:]
    }

    /// Takes a snapshot of the files below `root` (at any depth) whose names end in `suffix` (case-insensitive),
    /// the files a CSV ingest of that folder reads.
    /// - Throws: ``FolderWatchError`` when `root` is missing or not a folder.
    public init(of root: String, suffix: String = ".csv") throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw FolderWatchError(folder: root)
        }
        self.root = root
        files = [:]
        let base = root.hasSuffix("/") ? root : root + "/"
        let lowered = suffix.lowercased()
        guard let walker = FileManager.default.enumerator(atPath: root) else { return }
        while let relative = walker.nextObject() as? String {
            guard relative.lowercased().hasSuffix(lowered) else { continue }
            let path = base + relative
            var info = stat()
            guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { continue }
            files[path] = Stamp(
                size: Int64(info.st_size),
                modified: Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec),
                inode: UInt64(info.st_ino))
        }
    }

    /// What changed from `earlier` to this snapshot.
    public func changes(since earlier: FolderSnapshot) -> Changes {
        Changes(
            changed: files.filter { earlier.files[$0.key] != $0.value }.keys.sorted(),
            removed: earlier.files.keys.filter { files[$0] == nil }.sorted())
    }
}

/// A folder to watch that is not there.
package struct FolderWatchError: SluiceError {
    /// The path given.
    public var folder: String
    public var problem: String { "cannot watch '\(folder)': no such folder." }
    public var fix: String { "create the folder (mkdir -p \(folder)) or point --path at the folder data arrives in." }
    public var exitStatus: ExitStatus { .unusableInput }
}
