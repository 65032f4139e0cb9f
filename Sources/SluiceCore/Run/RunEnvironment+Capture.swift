import Crypto
import Foundation

extension RunEnvironment {
    /// The version of Sluice recorded with each run.
    public static let sluiceVersion = "0.1.0"

    /// What can be known without touching the disk: user, host, OS, Swift version, arguments.
    public static func basic() -> RunEnvironment {
        let info = ProcessInfo.processInfo
        return RunEnvironment(
            user: info.environment["USER"] ?? info.environment["LOGNAME"] ?? currentUserName(),
            host: info.hostName, os: operatingSystem, swiftVersion: swiftVersion, sluiceVersion: sluiceVersion,
            arguments: CommandLine.arguments)
    }

    /// The full environment: adds the git commit and dirty flag of `directory`'s repository, and the
    /// running binary's SHA-256 (cached by path, size and modification time in the user's cache folder,
    /// `$XDG_CACHE_HOME/sluice` or `~/.cache/sluice`, falling back to `cacheDirectory`).
    public static func capture(gitDirectory directory: URL, cacheDirectory: URL?) async -> RunEnvironment {
        var environment = basic()
        if let git = GitState.read(from: directory) {
            environment.gitCommit = git.commit
            environment.gitDirty = await GitState.isDirty(at: git.workTree)
        }
        if let binary = executablePath() {
            environment.binaryPath = binary
            environment.binaryHash = BinaryHashCache(directory: userCacheDirectory ?? cacheDirectory).hash(of: binary)
        }
        return environment
    }

    static var userCacheDirectory: URL? {
        let environment = ProcessInfo.processInfo.environment
        if let xdg = environment["XDG_CACHE_HOME"], !xdg.isEmpty {
            return URL(fileURLWithPath: xdg).appending(path: "sluice")
        }
        if let home = environment["HOME"], !home.isEmpty {
            return URL(fileURLWithPath: home).appending(path: ".cache/sluice")
        }
        return nil
    }

    /// The version of the Swift compiler that built this binary, to the patch level (`6.3.1`): the most precise
    /// the toolchain exposes to the code it compiles.
    static let swiftVersion: String = {
        #if compiler(>=6.6)
            return "6.6 or newer"
        #elseif compiler(>=6.5.4)
            return "6.5.4"
        #elseif compiler(>=6.5.3)
            return "6.5.3"
        #elseif compiler(>=6.5.2)
            return "6.5.2"
        #elseif compiler(>=6.5.1)
            return "6.5.1"
        #elseif compiler(>=6.5)
            return "6.5.0"
        #elseif compiler(>=6.4.4)
            return "6.4.4"
        #elseif compiler(>=6.4.3)
            return "6.4.3"
        #elseif compiler(>=6.4.2)
            return "6.4.2"
        #elseif compiler(>=6.4.1)
            return "6.4.1"
        #elseif compiler(>=6.4)
            return "6.4.0"
        #elseif compiler(>=6.3.4)
            return "6.3.4"
        #elseif compiler(>=6.3.3)
            return "6.3.3"
        #elseif compiler(>=6.3.2)
            return "6.3.2"
        #elseif compiler(>=6.3.1)
            return "6.3.1"
        #elseif compiler(>=6.3)
            return "6.3.0"
        #elseif compiler(>=6.2.4)
            return "6.2.4"
        #elseif compiler(>=6.2.3)
            return "6.2.3"
        #elseif compiler(>=6.2.2)
            return "6.2.2"
        #elseif compiler(>=6.2.1)
            return "6.2.1"
        #elseif compiler(>=6.2)
            return "6.2.0"
        #elseif compiler(>=6.1.4)
            return "6.1.4"
        #elseif compiler(>=6.1.3)
            return "6.1.3"
        #elseif compiler(>=6.1.2)
            return "6.1.2"
        #elseif compiler(>=6.1.1)
            return "6.1.1"
        #elseif compiler(>=6.1)
            return "6.1.0"
        #else
            return "6.0 or older"
        #endif
    }()

    static let operatingSystem: String = {
        if let release = try? String(contentsOfFile: "/etc/os-release", encoding: .utf8),
            let line = release.split(separator: "\n").first(where: { $0.hasPrefix("PRETTY_NAME=") })
        {
            let name = line.dropFirst("PRETTY_NAME=".count).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            var system = utsname()
            uname(&system)
            let release = withUnsafeBytes(of: &system.release) {
                String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
            }
            return "\(name), kernel \(release)"
        }
        return ProcessInfo.processInfo.operatingSystemVersionString
    }()

    static func currentUserName() -> String {
        guard let entry = getpwuid(getuid()), let name = entry.pointee.pw_name else { return "unknown" }
        return String(cString: name)
    }

    static func executablePath() -> String? {
        #if os(Linux)
            return try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        #else
            return Bundle.main.executablePath
        #endif
    }
}

/// The commit of a git work tree, read from `.git` files without running git.
struct GitState {
    var commit: String
    var workTree: URL

    static func read(from directory: URL) -> GitState? {
        var current = directory.standardizedFileURL
        while true {
            let dotGit = current.appending(path: ".git")
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: dotGit.path, isDirectory: &isDirectory) {
                var gitDir = dotGit
                if !isDirectory.boolValue,  // a worktree or submodule: `gitdir: PATH`
                    let text = try? String(contentsOf: dotGit, encoding: .utf8), text.hasPrefix("gitdir:")
                {
                    let path = text.dropFirst("gitdir:".count).trimmingCharacters(in: .whitespacesAndNewlines)
                    gitDir = URL(fileURLWithPath: path, relativeTo: current).standardizedFileURL
                }
                guard let commit = resolveHead(gitDir) else { return nil }
                return GitState(commit: commit, workTree: current)
            }
            let parent = current.deletingLastPathComponent()
            if parent.path == current.path { return nil }
            current = parent
        }
    }

    private static func resolveHead(_ gitDir: URL) -> String? {
        guard let head = try? String(contentsOf: gitDir.appending(path: "HEAD"), encoding: .utf8) else { return nil }
        let trimmed = head.trimmingCharacters(in: .whitespacesAndNewlines)
        guard trimmed.hasPrefix("ref:") else { return trimmed }
        let ref = trimmed.dropFirst("ref:".count).trimmingCharacters(in: .whitespaces)
        // With worktrees, refs live in the common dir.
        var dirs = [gitDir]
        if let common = try? String(contentsOf: gitDir.appending(path: "commondir"), encoding: .utf8) {
            dirs.append(
                URL(fileURLWithPath: common.trimmingCharacters(in: .whitespacesAndNewlines), relativeTo: gitDir))
        }
        for dir in dirs {
            if let value = try? String(contentsOf: dir.appending(path: ref), encoding: .utf8) {
                return value.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            if let packed = try? String(contentsOf: dir.appending(path: "packed-refs"), encoding: .utf8) {
                for line in packed.split(separator: "\n") where line.hasSuffix(" " + ref) {
                    return String(line.prefix(while: { $0 != " " }))
                }
            }
        }
        return nil  // a new repository with no commit yet
    }

    /// Whether tracked files differ from the commit (`git status --porcelain --untracked-files=no`).
    static func isDirty(at workTree: URL) async -> Bool? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["git", "-C", workTree.path, "status", "--porcelain", "--untracked-files=no"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            return nil
        }
        let output = await Task.detached { pipe.fileHandleForReading.readDataToEndOfFile() }.value
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { return nil }
        return !output.isEmpty
    }
}

/// SHA-256 of executables, remembered by path, size and modification time so a run does not re-hash
/// a large binary that has not changed.
struct BinaryHashCache {
    var directory: URL?

    func hash(of path: String) -> String? {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
            let size = attributes[.size] as? Int, let modified = attributes[.modificationDate] as? Date
        else { return nil }
        let stamp = "\(path)|\(size)|\(modified.timeIntervalSince1970)"
        let cacheFile = directory?.appending(
            path: "binary-hash-" + String(SHA256.hash(data: Data(stamp.utf8)).hexString.prefix(16)))
        if let cacheFile, let cached = try? String(contentsOf: cacheFile, encoding: .utf8), cached.hasPrefix("sha256:")
        {
            return cached
        }
        guard let (digest, _) = try? ContentHasher.hashFile(path) else { return nil }
        let hash = "sha256:" + digest
        if let cacheFile, let directory {
            try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try? Data(hash.utf8).write(to: cacheFile, options: .atomic)
        }
        return hash
    }
}
