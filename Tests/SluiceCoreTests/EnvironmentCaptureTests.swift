import Foundation
import SluiceTesting
import Testing

@testable import SluiceCore

@Suite("Environment capture: what a run records about the code and machine it ran on")
struct EnvironmentCaptureTests {
    /// Runs `git ARGUMENTS` in `directory` and returns its trimmed standard output.
    @discardableResult
    func git(_ arguments: [String], in directory: URL) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["git", "-C", directory.path] + arguments
        var environment = ProcessInfo.processInfo.environment
        for (key, value) in [
            ("GIT_AUTHOR_NAME", "t"), ("GIT_AUTHOR_EMAIL", "t@example.com"), ("GIT_COMMITTER_NAME", "t"),
            ("GIT_COMMITTER_EMAIL", "t@example.com"),
        ] {
            environment[key] = value
        }
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "git \(arguments) failed")
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test("the git commit and the dirty flag follow the work tree: clean after a commit, dirty after an edit")
    func gitCommitAndDirtyFlag() async throws {
        let directory = try TemporaryDirectory(prefix: "sluice-env-git")
        try git(["init", "-q"], in: directory.url)
        try Data("a\n".utf8).write(to: directory.path("file.txt"))
        try git(["add", "file.txt"], in: directory.url)
        try git(["commit", "-qm", "first"], in: directory.url)
        let head = try git(["rev-parse", "HEAD"], in: directory.url)

        let clean = await RunEnvironment.capture(gitDirectory: directory.path("."), cacheDirectory: nil)
        #expect(clean.gitCommit == head)
        #expect(clean.gitDirty == false)

        try Data("b\n".utf8).write(to: directory.path("file.txt"))
        let dirty = await RunEnvironment.capture(gitDirectory: directory.url, cacheDirectory: nil)
        #expect(dirty.gitCommit == head)
        #expect(dirty.gitDirty == true)

        try git(["commit", "-qam", "second"], in: directory.url)
        let next = await RunEnvironment.capture(gitDirectory: directory.url, cacheDirectory: nil)
        #expect(next.gitCommit == (try git(["rev-parse", "HEAD"], in: directory.url)))
        #expect(next.gitCommit != head)
        #expect(next.gitDirty == false)

        let outside = try TemporaryDirectory(prefix: "sluice-env-nogit")
        let none = await RunEnvironment.capture(gitDirectory: outside.url, cacheDirectory: nil)
        #expect(none.gitCommit == nil && none.gitDirty == nil)
    }

    @Test("the binary hash is the SHA-256 of the running executable's bytes, also when read from its cache")
    func binaryHash() async throws {
        let cache = try TemporaryDirectory(prefix: "sluice-env-cache")
        let executable = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        // Hashed independently of Sluice's own hashing code, by coreutils.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["sha256sum", executable]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let line = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let expected = "sha256:" + (line.split(separator: " ").first.map(String.init) ?? "")
        let hashes = BinaryHashCache(directory: cache.url)
        #expect(hashes.hash(of: executable) == expected)
        #expect(try FileManager.default.contentsOfDirectory(atPath: cache.url.path).count == 1)
        #expect(hashes.hash(of: executable) == expected)  // from the cache file this time
        let environment = await RunEnvironment.capture(gitDirectory: cache.url, cacheDirectory: cache.url)
        #expect(environment.binaryPath == executable)
        #expect(environment.binaryHash == expected)
    }

    @Test("the OS names the distribution and kernel; the compiler version is the toolchain's, to the patch level")
    func systemAndCompiler() throws {
        let environment = RunEnvironment.basic()
        let release = try String(contentsOfFile: "/etc/os-release", encoding: .utf8)
        let pretty = try #require(release.split(separator: "\n").first { $0.hasPrefix("PRETTY_NAME=") })
        let name = pretty.dropFirst("PRETTY_NAME=".count).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        #expect(environment.os.hasPrefix(name))
        var system = utsname()
        uname(&system)
        let kernel = withUnsafeBytes(of: &system.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        #expect(environment.os.hasSuffix("kernel \(kernel)"))

        // The toolchain on PATH built these tests: `swift --version` names the same version.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["swift", "--version"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let version = environment.swiftVersion
        #expect(version.split(separator: ".").count == 3, "\(version)")
        let stated = version.hasSuffix(".0") ? String(version.dropLast(2)) : version
        #expect(text.contains("Swift version \(stated) ") || text.contains("Swift version \(version) "), "\(text)")
        #expect(environment.sluiceVersion == RunEnvironment.sluiceVersion)
    }

    @Test("a run's owner is this host, boot, process and its start time: the boot ID as the kernel writes it")
    func processOwner() throws {
        let owner = ProcessOwner.current
        #expect(owner.pid == getpid())
        #expect(owner.host == ProcessInfo.processInfo.hostName)
        let bootID = try String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8)
        #expect(owner.bootID == bootID.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(owner.bootID.count == 36, "a UUID, without its newline")
        #expect(owner.startTicks > 0 && !owner.isKnownDead)
    }
}
