import Foundation
import SluiceTesting
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// MLflow's Python packages the tracking tests use, in their own folder (MLflow's numpy and pandas must not meet
/// the other test sets').
func mlflowEnvironment() async throws -> [String: String] {
    try await PythonPackages.environment(
        modules: ["mlflow", "sklearn", "requests"], packages: ["mlflow==3.18.0", "scikit-learn"], set: "mlflow")
}

/// MLflow's own tracking server (SQLite backend, proxied artifacts), stopped with every process it started.
struct MLflowServer {
    let process: CommandProcess
    let url: String
    let directory: String

    static func start(in directory: TemporaryDirectory, environment: [String: String]) async throws -> MLflowServer {
        let port = try TestPostgres.freePort()
        let process = try CommandProcess(
            "/usr/bin/env",
            [
                "python3", "-m", "mlflow", "server", "--backend-store-uri",
                "sqlite:///\(directory.path("mlflow.db").path)", "--artifacts-destination",
                directory.path("mlflow-artifacts").path, "--serve-artifacts", "--host", "127.0.0.1", "--port",
                String(port), "--workers", "1",
            ], in: directory.url, environment: environment)
        let server = MLflowServer(process: process, url: "http://127.0.0.1:\(port)", directory: directory.url.path)
        let deadline = ContinuousClock.now + .seconds(120)
        while ContinuousClock.now < deadline, process.process.isRunning {
            if (try? await CommandProcess.run("/usr/bin/curl", ["-sf", "\(server.url)/health"], in: directory.url)
                .status)
                == 0
            {
                return server
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        await server.stop()
        Issue.record("MLflow's server did not start: \(process.errors)")
        throw CancellationError()
    }

    /// Stops the server and what it started (uvicorn, job runners): every process whose command line or
    /// environment names the server's folder.
    func stop() async {
        for signal in [SIGTERM, SIGKILL] {
            for pid in Self.processes(mentioning: directory) { kill(pid, signal) }
            try? await Task.sleep(for: .milliseconds(500))
        }
        await process.wait(timeout: .seconds(10))
    }

    static func processes(mentioning text: String) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).filter { pid in
            pid != getpid()
                && ["cmdline", "environ"].contains { file in
                    guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/\(file)") else { return false }
                    return String(decoding: data, as: UTF8.self).contains(text)
                }
        }
    }
}

/// `sluice tracking serve` on a free port of a project, stopped with it.
struct SluiceTrackingServer {
    let process: CommandProcess
    let url: String

    static func start(in directory: URL, stack: String? = nil, environment: [String: String] = [:]) async throws
        -> SluiceTrackingServer
    {
        let process = try CommandProcess(
            "sluice", ["tracking", "serve", "--port", "0"] + (stack.map { ["--stack", $0] } ?? []), in: directory,
            environment: environment)
        let port = try await process.servingPort()
        return SluiceTrackingServer(process: process, url: "http://127.0.0.1:\(port)")
    }

    func stop() async {
        process.process.interrupt()
        await process.wait(timeout: .seconds(30))
    }

}

/// `body`'s value, with `stop` run after it whether it returned or threw.
func stopping<T>(_ stop: () async -> Void, _ body: () async throws -> T) async throws -> T {
    do {
        let value = try await body()
        await stop()
        return value
    } catch {
        await stop()
        throw error
    }
}

/// Differences between two JSON documents, as `path: left ≠ right` lines.
func jsonDifferences(_ left: Any?, _ right: Any?, path: String = "") -> [String: String] {
    switch (left, right) {
    case (let l as [String: Any], let r as [String: Any]):
        var differences: [String: String] = [:]
        for key in Set(l.keys).union(r.keys) {
            differences.merge(jsonDifferences(l[key], r[key], path: path.isEmpty ? key : "\(path).\(key)")) { a, _ in a
            }
        }
        return differences
    case (let l as [Any], let r as [Any]) where l.count == r.count:
        var differences: [String: String] = [:]
        for (index, pair) in zip(l, r).enumerated() {
            differences.merge(jsonDifferences(pair.0, pair.1, path: "\(path)[\(index)]")) { a, _ in a }
        }
        return differences
    default:
        let l = left.map { "\($0)" } ?? "missing"
        let r = right.map { "\($0)" } ?? "missing"
        return l == r ? [:] : [path: "\(l) ≠ \(r)"]
    }
}

@Suite("MLflow's tracking protocol: MLflow's own client against MLflow's server and against Sluice", .serialized)
struct MLflowProtocolTests {
    /// The script, beside this file.
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appending(path: "Python/mlflow_differential.py")

    /// Where Sluice answers differently on purpose, and why.
    static let sluiceOnly: [String: String] = [
        "errors.raw_long_param[0]":
            "a param value over 6,000 characters is refused (400 INVALID_PARAMETER_VALUE) rather than cut to 6,000 "
            + "characters without a word, as MLflow's server does: bad input loses nothing",
        "errors.raw_long_param[1]": "the same refusal's error code",
    ]

    func answers(_ url: String, in directory: TemporaryDirectory, name: String, environment: [String: String])
        async throws -> [String: Any]
    {
        var environment = environment
        environment["MLFLOW_TRACKING_URI"] = url
        let output = directory.path("\(name).json")
        let run = try await CommandProcess.run(
            "/usr/bin/env", ["python3", Self.script.path, output.path], in: directory.url, environment: environment)
        try #require(run.status == 0, "the script failed against \(name): \(run.errors)")
        return try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: output)) as? [String: Any])
    }

    func compare(_ reference: [String: Any], _ sluice: [String: Any], store: String) {
        let differences = jsonDifferences(reference, sluice)
        for (path, difference) in differences.sorted(by: { $0.key < $1.key }) where Self.sluiceOnly[path] == nil {
            Issue.record("\(store): \(path): MLflow \(difference) Sluice")
        }
        for path in Self.sluiceOnly.keys {
            #expect(differences[path] != nil, "\(path) is listed as a difference but \(store) answers as MLflow does")
        }
        #expect(reference.count > 15 && reference.count == sluice.count)
    }

    @Test(
        "the mlflow client gets the same run data, search results and order, metric histories, artifact listings and error codes from Sluice on SQLite and PostgreSQL as from MLflow's server"
    )
    func sameAnswers() async throws {
        let environment = try await mlflowEnvironment()
        let directory = try TemporaryDirectory(prefix: "sluice-mlflow")
        let mlflow = try await MLflowServer.start(in: directory, environment: environment)
        let reference = try await stopping(mlflow.stop) {
            try await answers(mlflow.url, in: directory, name: "mlflow", environment: environment)
        }

        let project = try TemporaryDirectory(prefix: "sluice-tracking")
        #expect(try await CommandProcess.run("sluice", ["init"], in: project.url).status == 0)
        let sqlite = try await SluiceTrackingServer.start(in: project.url)
        let onSQLite = try await stopping(sqlite.stop) {
            try await answers(sqlite.url, in: directory, name: "sqlite", environment: environment)
        }
        compare(reference, onSQLite, store: "SQLite")

        // Tracked runs are runs: `sluice runs list` has them beside pipeline runs.
        let listed = try await CommandProcess.run("sluice", ["runs", "list", "--limit", "50"], in: project.url)
        #expect(listed.output.contains("diff") && listed.output.contains("completed"))

        let (team, _) = try await teamProject()
        let postgres = try await SluiceTrackingServer.start(in: team.url, stack: "team", environment: teamEnvironment)
        let onPostgres = try await stopping(postgres.stop) {
            try await answers(postgres.url, in: directory, name: "postgres", environment: environment)
        }
        compare(reference, onPostgres, store: "PostgreSQL")
    }
}
