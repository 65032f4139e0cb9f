import Foundation
import SluiceCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Python packages that tests run against (pyarrow, pandas), installed on first use into the package's own
/// `.build/test-python` with pip, so the test suite needs nothing installed beforehand.
///
/// Installation happens once per machine: a file lock makes concurrent test processes wait for the first one, and
/// packages the system Python already has are not installed again.
public enum PythonPackages {
    /// The folder the packages go into: `<package root>/.build/test-python`.
    public static let directory: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appending(path: ".build/test-python", directoryHint: .isDirectory)

    private static let ready = Mutex<Set<String>>([])

    /// ``environment(modules:packages:set:)`` from async code: the probing and the pip install (a minute on a fresh
    /// machine) wait on a thread of their own, not on one of the few threads Swift concurrency shares between all
    /// the tests running at once, where a blocked one stalls unrelated tests.
    public static func environment(modules: [String], packages: [String], set: String? = nil) async throws
        -> [String: String]
    {
        try await withCheckedThrowingContinuation { continuation in
            Thread {
                continuation.resume(
                    with: Result { try environmentNow(modules: modules, packages: packages, set: set) })
            }.start()
        }
    }

    /// Makes sure `modules` import in `python3`, installing `packages` with pip when they do not; returns the
    /// environment to run `python3` with. `set` names a separate folder beside ``directory`` for packages whose
    /// dependencies must not meet another set's (an inference client's numpy and pyarrow's).
    /// - Throws: ``SetupError`` with pip's output when the install fails.
    public static func environment(modules: [String], packages: [String], set: String? = nil) throws -> [String: String]
    {
        try environmentNow(modules: modules, packages: packages, set: set)
    }

    private static func environmentNow(modules: [String], packages: [String], set: String?) throws -> [String: String] {
        let directory =
            set.map { Self.directory.deletingLastPathComponent().appending(path: "test-python-\($0)") }
            ?? Self.directory
        var environment = ProcessInfo.processInfo.environment
        let existing = environment["PYTHONPATH"].map { ":" + $0 } ?? ""
        environment["PYTHONPATH"] = directory.path + existing
        let key = directory.path + ":" + modules.joined(separator: ",")
        if ready.withLock({ $0.contains(key) }) { return environment }
        let probe = "import " + modules.joined(separator: ", ")
        if try runCommand(["python3", "-c", probe], environment: environment).status != 0 {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try withFileLock(directory.appending(path: ".lock").path) {
                // Another process may have installed them while this one waited for the lock.
                guard try runCommand(["python3", "-c", probe], environment: environment).status != 0 else { return }
                let install = try runCommand(
                    [
                        "python3", "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        "--no-warn-script-location", "--target", directory.path,
                    ] + packages, environment: environment)
                guard install.status == 0 else {
                    throw SetupError(
                        problem: "pip could not install \(packages.joined(separator: ", ")) into \(directory.path): "
                            + install.output,
                        fix: "check that PyPI is reachable, or install them for python3 by hand.")
                }
            }
        }
        ready.withLock { _ = $0.insert(key) }
        return environment
    }
}

/// Runs a command (found on `PATH`), returning its exit status and combined output. Spawned and reaped with
/// `posix_spawnp` and `waitpid`, its output going to a file rather than a pipe: a daemon the command starts
/// (PostgreSQL's postmaster) keeps its inherited descriptors open, and this must not wait for them.
func runCommand(_ arguments: [String], environment: [String: String]) throws -> (status: Int32, output: String) {
    let log = FileManager.default.temporaryDirectory.appending(path: "sluice-setup-\(UUID().uuidString).log")
    defer { unlink(log.path) }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, log.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    posix_spawn_file_actions_adddup2(&actions, 1, 2)
    let argv = arguments.map { strdup($0) } + [nil]
    let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer {
        argv.forEach { free($0) }
        envp.forEach { free($0) }
    }
    var pid = pid_t()
    let spawned = posix_spawnp(&pid, arguments[0], &actions, nil, argv, envp)
    guard spawned == 0 else {
        throw SetupError(
            problem: "cannot start \(arguments[0]): \(String(cString: strerror(spawned)))",
            fix: "install it, or put it on PATH.")
    }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    let exitStatus = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    return (exitStatus, (try? String(contentsOf: log, encoding: .utf8)) ?? "")
}

/// Runs `body` holding an exclusive `flock` on the file at `path` (created when missing), so that test processes
/// set up a shared resource one at a time.
func withFileLock<T>(_ path: String, _ body: () throws -> T) throws -> T {
    let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
    guard fd >= 0 else {
        throw SetupError(problem: "cannot open the lock file \(path)", fix: "check that the folder is writable.")
    }
    defer { close(fd) }
    while flock(fd, LOCK_EX) != 0 && errno == EINTR {}
    defer { flock(fd, LOCK_UN) }
    return try body()
}

/// A test prerequisite (a Python package, a database server) that could not be set up.
extension PythonPackages {
    /// Runs `python3 -c script` with `modules` importable (``environment(modules:packages:set:)`` installs
    /// `packages` when they are not) and returns its standard output. Installing and waiting happen on a thread of
    /// their own, not on one of the few threads Swift concurrency shares between all tests running at once.
    /// - Throws: ``SetupError`` with Python's standard error when the script fails.
    public static func run(_ script: String, modules: [String], packages: [String], set: String? = nil) async throws
        -> String
    {
        try await onOwnThread {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", "-c", script]
            process.environment = try environment(modules: modules, packages: packages, set: set)
            let output = Pipe()
            let errors = Pipe()
            process.standardOutput = output
            process.standardError = errors
            try process.run()
            let data = output.fileHandleForReading.readDataToEndOfFile()
            let problem = errors.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else {
                throw SetupError(
                    problem: "python3 failed:\n\(String(decoding: problem, as: UTF8.self))",
                    fix: "see Python's error above.")
            }
            return String(decoding: data, as: UTF8.self)
        }
    }
}

public struct SetupError: SluiceError {
    /// What failed.
    public var problem: String
    /// What to do.
    public var fix: String
    /// A test's setup failed: the check could not be made.
    public var exitStatus: ExitStatus { .failed }
}

/// Runs blocking work (installing packages, starting servers) on a thread of its own, so the few threads that run
/// Swift's async tasks keep serving the other tests meanwhile.
public func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread { continuation.resume(with: Result { try body() }) }
    }
}

/// Installs Debian `packages` with apt unless every file of `present` exists, one test process at a time.
/// - Throws: ``SetupError`` with apt's output.
func aptInstall(_ packages: [String], unlessPresent present: [String], what: String) throws {
    func installed() -> Bool { present.allSatisfy { FileManager.default.isExecutableFile(atPath: $0) } }
    guard !installed() else { return }
    try withFileLock("/tmp/sluice-apt.lock") {
        if installed() { return }
        try TestPostgres.check(["apt-get", "update", "-qq"], "update apt's package lists")
        try TestPostgres.check(
            ["apt-get", "-o", "DPkg::Lock::Timeout=600", "install", "-y", "--no-install-recommends"] + packages,
            "install \(what) with apt", environment: ["DEBIAN_FRONTEND": "noninteractive"])
    }
}
