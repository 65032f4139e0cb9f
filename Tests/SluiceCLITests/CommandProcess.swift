import Foundation
import SluiceML
import SluiceTesting
import Synchronization
import Testing

/// A built executable of this package run as a real child process, its output captured in files.
struct CommandProcess {
    let process = Process()
    let stdout: URL
    let stderr: URL

    /// The folder holding this package's built products (next to the test binary).
    static var productsDirectory: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    }

    static func executable(_ name: String) throws -> URL {
        let url = productsDirectory.appending(path: name)
        try #require(
            FileManager.default.isExecutableFile(atPath: url.path),
            "\(url.path) is missing: build the package first (`swift build --build-tests`)")
        return url
    }

    /// Starts `executable arguments…` (a product of this package, or an absolute path) in `directory` with `NO_COLOR` and any extra environment.
    init(_ executable: String, _ arguments: [String], in directory: URL, environment: [String: String] = [:]) throws {
        let logs = directory.appending(path: ".logs-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)
        stdout = logs.appending(path: "stdout")
        stderr = logs.appending(path: "stderr")
        _ = FileManager.default.createFile(atPath: stdout.path, contents: nil)
        _ = FileManager.default.createFile(atPath: stderr.path, contents: nil)
        process.executableURL =
            executable.hasPrefix("/") ? URL(fileURLWithPath: executable) : try Self.executable(executable)
        process.arguments = arguments
        process.currentDirectoryURL = directory
        var env = ProcessInfo.processInfo.environment
        env["NO_COLOR"] = "1"
        env.removeValue(forKey: "SLUICE_PROJECT")
        for (key, value) in environment { env[key] = value }
        process.environment = env
        let output = try FileHandle(forWritingTo: stdout)
        let errors = try FileHandle(forWritingTo: stderr)
        process.standardOutput = output
        process.standardError = errors
        // One launch at a time: Foundation's `Process.run()` crashed (in memcpy) with dozens started at once from
        // several threads (the registry stress test). The processes still run side by side.
        try Self.launching.withLock { _ in try process.run() }
        // The child has its own copies. The parent's would stay open as long as Foundation keeps the Process (for
        // ever, when `wait` reaps the child itself), and every later child would inherit them: after the stress
        // test's hundreds of processes a PostgreSQL server started by a test refused to start ("insufficient file
        // descriptors").
        try output.close()
        try errors.close()
    }

    private static let launching = Mutex(())

    var output: String { (try? String(contentsOf: stdout, encoding: .utf8)) ?? "" }
    var errors: String { (try? String(contentsOf: stderr, encoding: .utf8)) ?? "" }

    /// Waits until standard error contains `marker`, failing after `timeout`.
    func waitForError(containing marker: String, timeout: Duration = .seconds(60)) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while !errors.contains(marker) {
            guard process.isRunning else {
                Issue.record(
                    "process exited (\(process.terminationStatus)) before printing '\(marker)'; stderr:\n\(errors)")
                throw CancellationError()
            }
            guard clock.now < deadline else {
                Issue.record("timed out waiting for '\(marker)'; stderr:\n\(errors)")
                throw CancellationError()
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Waits for `sluice serve` to say where it listens and returns the port.
    func servingPort() async throws -> Int {
        try await port(after: "on http://127.0.0.1:")
    }

    /// The port `sluice serve --grpc-port 0` answers gRPC on, once it says so.
    func grpcPort() async throws -> Int {
        try await port(after: "inference.GRPCInferenceService) on 127.0.0.1:")
    }

    private func port(after marker: String) async throws -> Int {
        try await waitForError(containing: marker)
        let line = errors.split(separator: "\n").first { $0.contains(marker) }!
        return try #require(Int(line.split(separator: ":").last!.prefix { $0.isNumber }))
    }

    /// Waits for exit and returns the status; after `timeout` records an issue with the process's standard error,
    /// kills it and returns -1, so a process that does not stop fails its test instead of hanging the suite.
    @discardableResult
    func wait(timeout: Duration = .seconds(600)) async -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if let status = Self.reapIfExited(process.processIdentifier) { return status }
            guard ContinuousClock.now < deadline else {
                Issue.record(
                    "\(process.executableURL?.lastPathComponent ?? "process") \(process.arguments ?? []) still running after \(timeout); stderr:\n\(errors)"
                )
                kill(process.processIdentifier, SIGKILL)
                // Not waitUntilExit: if the exit was missed (see reapIfExited) it would wait for ever.
                for _ in 0..<500 where process.isRunning && Self.reapIfExited(process.processIdentifier) == nil {
                    try? await Task.sleep(for: .milliseconds(10))
                }
                return -1
            }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return process.terminationStatus
    }

    /// The status of child `pid` when it has exited but was not reaped: Foundation's `Process` learns of exits from
    /// SIGCHLD, and with many children ending at once (the Slurm and serving suites run beside each other) it
    /// can miss one, leaving a zombie and `isRunning` true for good. Like `terminationStatus`, a signal that
    /// ended the process is returned as the signal's number.
    static func reapIfExited(_ pid: Int32) -> Int32? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let closing = stat.lastIndex(of: ")"),
            stat[stat.index(after: closing)...].split(separator: " ").first == "Z"
        else { return nil }
        var status: Int32 = 0
        guard waitpid(pid, &status, WNOHANG) == pid else { return nil }
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : signal
    }

    /// Runs to completion and returns status, stdout and stderr.
    /// Decodes the CLI's `--json` output (times in ISO 8601 with milliseconds).
    static let jsonDecoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            return try Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true))
        }
        return decoder
    }()

    static func run(
        _ executable: String, _ arguments: [String], in directory: URL, environment: [String: String] = [:]
    ) async throws -> (status: Int32, output: String, errors: String) {
        let command = try CommandProcess(executable, arguments, in: directory, environment: environment)
        let status = await command.wait()
        return (status, command.output, command.errors)
    }
}

/// Runs `sluice demo` in `directory` and returns the production penguins bundle as `sluice models export` writes it.
func exportedDemoBundle(in directory: TemporaryDirectory) async throws -> ModelBundle {
    #expect(try await CommandProcess.run("sluice", ["demo"], in: directory.url).status == 0)
    let exported = try await CommandProcess.run(
        "sluice", ["models", "export", "penguins@production", "-o", "bundle.json"], in: directory.url)
    #expect(exported.status == 0, "\(exported.errors)")
    return try ModelBundle.load(try Data(contentsOf: directory.path("bundle.json")))
}
