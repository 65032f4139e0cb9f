import Foundation
import Hummingbird
import HummingbirdTesting
import SluiceCore
import SluiceStack
import SluiceStorePostgres
import SluiceTesting
import Testing

@testable import SluiceDashboard

/// A project with real runs in a SQLite store: a completed run, a cached re-run, a run with other parameters, a
/// failed run (dependents skipped), an HTML report holding a script, and two registered versions of a model.
struct DashboardFixture: Sendable {
    let directory: TemporaryDirectory
    let stack: Stack
    let completed: RunResult
    let cached: RunResult
    let other: RunResult
    let failed: RunResult

    struct TrainParameters: Codable, Sendable {
        var rounds = 5
        var fail = false
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String { "the training data ran out" }
    }

    static let pipeline = Pipeline("fixture") { p in
        let data = p.step("data", version: 1) { _ in [1.0, 2.0, 3.0] }
        p.step("report", version: 1, data) { values, context -> FileArtifact in
            let url = context.scratchDirectory.appending(path: "report.html")
            try Data(
                """
                <!doctype html><html><body><h1 id="title">Report on \(values.count) values</h1>
                <script>document.cookie = "stolen=1"; parent.document.title = "pwned";</script></body></html>
                """.utf8
            ).write(to: url)
            return FileArtifact(url: url)
        }
        let train = p.step("train", version: 1, parameters: TrainParameters(), data) {
            values, parameters, context -> [Double] in
            if parameters.fail { throw Failure() }
            for round in 1...parameters.rounds { context.log(metric: "loss", 1 / Double(round), step: round) }
            context.logger.info("trained \(parameters.rounds) rounds")
            return values.map { $0 * Double(parameters.rounds) }
        }
        p.step("publish", version: 1, train) { weights, _ in weights.count }
    }

    static func config(_ yaml: String) throws -> RunConfig {
        try RunConfig(tree: ConfigValue.parseYAML(yaml, source: "test.yaml"))
    }

    /// The fixture's runs in a SQLite store, or with `postgres` in a fresh database of the shared test server.
    static func make(postgres: Bool = false) async throws -> DashboardFixture {
        let directory = try TemporaryDirectory(prefix: "sluice-dashboard")
        var settings = StackSettings()
        if postgres {
            let server = try await TestPostgres.started()
            settings.metadataStore = try await PostgresDatabases.create(
                "d_\(UUID().uuidString.prefix(12).lowercased())", on: server.adminURL)
            try Data(TestPostgres.password.utf8).write(to: directory.path("pg-password"))
            settings.passwordFile = directory.path("pg-password").path
        }
        let project = try Project.create(at: directory.url, settings: settings)
        let stack = try await Stack.open(project: project)
        let engine = stack.engine()
        let completed = try await engine.run(pipeline, config: RunConfig())
        let cached = try await engine.run(pipeline, config: RunConfig())
        let other = try await engine.run(
            pipeline, config: try config("steps:\n  train:\n    parameters:\n      rounds: 8\n"))
        let failed = try await engine.run(
            pipeline, config: try config("steps:\n  train:\n    parameters:\n      fail: true\n"))
        let weights = try #require(completed.outputs["train"]?["output"])
        let otherWeights = try #require(other.outputs["train"]?["output"])
        _ = try await stack.metadata.registerModelVersion(
            model: "churn", artifactID: weights.id, runID: completed.run.id, createdBy: "alice",
            metrics: ["auc": 0.91], datasetVersion: nil)
        _ = try await stack.metadata.registerModelVersion(
            model: "churn", artifactID: otherWeights.id, runID: other.run.id, createdBy: "bob",
            metrics: ["auc": 0.93], datasetVersion: nil)
        _ = try await stack.metadata.moveModelVersion(
            "churn", version: 1, to: .production, by: "alice", reason: "first model")
        return DashboardFixture(
            directory: directory, stack: stack, completed: completed, cached: cached, other: other, failed: failed)
    }

    func dashboard(requireTokens: Bool = false) throws -> Dashboard {
        try Dashboard(
            stack: stack,
            configuration: DashboardConfiguration(host: "127.0.0.1", port: 0, requireTokens: requireTokens))
    }

    /// Runs `body` against the dashboard's router, no socket involved.
    func test(
        requireTokens: Bool = false, _ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void
    ) async throws {
        let app = try dashboard(requireTokens: requireTokens).application()
        try await app.test(.router, body)
    }

    func artifact(_ step: String, _ output: String = "output", of result: RunResult? = nil) throws -> ArtifactRecord {
        try #require((result ?? completed).outputs[step]?[output])
    }
}

extension TestResponse {
    var text: String { String(buffer: body) }

    func json() throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any])
    }
}
