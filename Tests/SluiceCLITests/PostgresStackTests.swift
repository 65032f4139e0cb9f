import Foundation
import SluiceCore
import SluiceStorePostgres
import SluiceTesting
import Testing

/// A project whose stack file has the embedded `local` stack and a `team` stack on a fresh database of `server`,
/// its password read from `SLUICE_TEST_PG_PASSWORD`.
func teamProject(on server: TestPostgres? = nil, prefix: String = "sluice-team") async throws -> (
    TemporaryDirectory, url: String
) {
    let chosen: TestPostgres
    if let server { chosen = server } else { chosen = try await TestPostgres.started() }
    let url = try await PostgresDatabases.create(
        "p_\(UUID().uuidString.prefix(12).lowercased())", on: chosen.adminURL)
    let directory = try TemporaryDirectory(prefix: prefix)
    try FileManager.default.createDirectory(at: directory.path(".sluice"), withIntermediateDirectories: true)
    try Data(
        """
        default: local
        stacks:
          local: {metadata_store: metadata.sqlite}
          team:
            metadata_store: \(url)
            password_env: SLUICE_TEST_PG_PASSWORD
            artifact_store: artifacts

        """.utf8
    ).write(to: directory.path(".sluice/stack.yaml"))
    return (directory, url)
}

let teamEnvironment = ["SLUICE_TEST_PG_PASSWORD": TestPostgres.password, "USER": "tester"]

@Suite("Stacks on the command line, and PostgreSQL as the team store (a real server)")
struct PostgresStackTests {
    struct Listed: Decodable {
        var id: String
        var status: String
    }

    struct Shown: Decodable {
        struct Step: Decodable {
            var stepName: String
            var status: String
            var cacheKey: CacheKey?
        }
        struct Details: Decodable { var stepRun: Step }
        var steps: [Details]
    }

    @Test("the standard pipeline on PostgreSQL records the same step runs, cache keys and artifacts as on SQLite")
    func sameRecordsAsSQLite() async throws {
        let (directory, url) = try await teamProject()
        let local = try await CommandProcess.run("sluice", ["demo"], in: directory.url, environment: teamEnvironment)
        #expect(local.status == 0, "\(local.errors)")
        let team = try await CommandProcess.run(
            "sluice", ["demo", "--stack", "team"], in: directory.url, environment: teamEnvironment)
        #expect(team.status == 0, "\(team.errors)")
        // The pool runs before the first query: no postgres-nio warning on any command.
        #expect(!team.errors.contains("hasn't been called yet"), "\(team.errors)")
        #expect(!team.output.contains("hasn't been called yet"))
        // The team store has its own records: nothing came from the local store's cache.
        #expect(team.output.contains("9 done"))
        #expect(team.output.contains("registered: penguins@1, stage production"))
        #expect(team.output.contains(url))
        #expect(!team.output.contains(TestPostgres.password) && !team.errors.contains(TestPostgres.password))

        func steps(_ stack: String) async throws -> [Shown.Step] {
            let list = try await CommandProcess.run(
                "sluice", ["runs", "list", "--json", "--stack", stack], in: directory.url, environment: teamEnvironment)
            let runs = try JSONDecoder().decode([Listed].self, from: Data(list.output.utf8))
            try #require(runs.count == 1)
            let show = try await CommandProcess.run(
                "sluice", ["runs", "show", runs[0].id, "--json", "--stack", stack], in: directory.url,
                environment: teamEnvironment)
            return try JSONDecoder().decode(Shown.self, from: Data(show.output.utf8)).steps.map(\.stepRun)
        }
        let onSQLite = try await steps("local")
        let onPostgres = try await steps("team")
        #expect(onSQLite.count == 9)
        #expect(onSQLite.map(\.stepName) == onPostgres.map(\.stepName))
        #expect(onSQLite.map(\.status) == onPostgres.map(\.status))
        // Same inputs, same keys: every artifact's content is the same on both stores (no run IDs in content).
        #expect(onSQLite.map(\.cacheKey) == onPostgres.map(\.cacheKey))

        let again = try await CommandProcess.run(
            "sluice", ["demo", "--stack", "team"], in: directory.url, environment: teamEnvironment)
        #expect(again.output.contains("3 done, 6 cached"), "\(again.output)")
    }

    @Test("stack list and show name every stack, never print the password, and --stack picks one")
    func stackCommands() async throws {
        let (directory, url) = try await teamProject()
        let list = try await CommandProcess.run("sluice", ["stack", "list"], in: directory.url)
        #expect(list.status == 0, "\(list.errors)")
        #expect(list.output.contains("* local"))
        #expect(list.output.contains("team"))
        #expect(list.output.contains(url))
        let show = try await CommandProcess.run(
            "sluice", ["stack", "show", "team"], in: directory.url, environment: teamEnvironment)
        #expect(show.status == 0, "\(show.errors)")
        #expect(show.output.contains(url))
        #expect(!show.output.contains(TestPostgres.password))
        let missing = try await CommandProcess.run("sluice", ["runs", "list", "--stack", "tema"], in: directory.url)
        #expect(missing.status == 2)
        #expect(missing.errors.contains("Did you mean 'team'?"))
        let noPassword = try await CommandProcess.run("sluice", ["runs", "list", "--stack", "team"], in: directory.url)
        #expect(noPassword.status == 2)
        #expect(noPassword.errors.contains("SLUICE_TEST_PG_PASSWORD"))
    }

    @Test("an orchestrator this build does not have is refused with exit status 2, not run in-process")
    func unknownOrchestrator() async throws {
        let directory = try TemporaryDirectory(prefix: "sluice-slurm")
        try FileManager.default.createDirectory(at: directory.path(".sluice"), withIntermediateDirectories: true)
        try Data("stacks:\n  hpc: {orchestrator: container}\n".utf8).write(to: directory.path(".sluice/stack.yaml"))
        let run = try await CommandProcess.run("sluice-example", ["run", "prices"], in: directory.url)
        #expect(run.status == 2)
        #expect(run.errors.contains("'container'"))
        #expect(!FileManager.default.fileExists(atPath: directory.path(".sluice/metadata.sqlite").path))
    }

    @Test("8 runs from 8 processes at once on PostgreSQL record every run and step run")
    func concurrentRuns() async throws {
        let (directory, url) = try await teamProject()
        let processes = try (0..<8).map { index in
            try CommandProcess(
                "sluice-example",
                ["run", "prices", "--stack", "team", "--no-cache", "--set", "generate.rows=\(400 + index)"],
                in: directory.url, environment: teamEnvironment)
        }
        for process in processes {
            let status = await process.wait()
            #expect(status == 0, "\(process.errors)")
        }
        let store = try await PostgresMetadataStore(url: url, password: TestPostgres.password)
        let runs = try await store.runs(RunFilter(limit: 100))
        #expect(runs.count == 8)
        #expect(runs.allSatisfy { $0.status == .completed })
        for run in runs {
            let stepRuns = try await store.stepRuns(ofRun: run.id)
            #expect(stepRuns.count == 7)
            #expect(stepRuns.allSatisfy { $0.status == .completed })
            #expect(try await store.artifacts(ArtifactFilter(runID: run.id, limit: 100)).count >= 7)
        }
        await store.close()
    }

    @Test(
        "8 processes promoting different versions at once: each promotes or is told who came first; one production version"
    )
    func concurrentPromotions() async throws {
        let (directory, url) = try await teamProject()
        let store = try await PostgresMetadataStore(url: url, password: TestPostgres.password)
        for _ in 0..<8 {
            _ = try await store.registerModelVersion(
                model: "churn", artifactID: "art", runID: nil, createdBy: "t", metrics: [:], datasetVersion: nil)
        }
        let processes = try (1...8).map { version in
            try CommandProcess(
                "sluice", ["models", "promote", "churn", "\(version)", "--stack", "team", "--reason", "r\(version)"],
                in: directory.url, environment: teamEnvironment)
        }
        var promoted: Set<String> = []
        for (index, process) in processes.enumerated() {
            let status = await process.wait()
            // Each expects the production version it read: one that another promotion overtook is refused (exit
            // status 4, naming what is there now) and changes nothing; none is silently overwritten.
            #expect(status == 0 || status == 4, "\(process.errors)")
            if status == 0 { promoted.insert("r\(index + 1)") }
            if status == 4 { #expect(process.errors.contains("Nothing was changed."), "\(process.errors)") }
        }
        #expect(!promoted.isEmpty)
        let versions = try await store.modelVersions("churn")
        #expect(versions.filter { $0.stage == .production }.count == 1)
        let changes = try await store.stageChanges("churn")
        #expect(Set(changes.filter { $0.to == .production }.map(\.reason)) == promoted)
        #expect(changes.filter { $0.to == .archived }.count == promoted.count - 1)
        #expect(try await StoreInvariants.registryViolations(store).isEmpty)
        await store.close()
    }

    @Test("a project copied from SQLite to PostgreSQL answers runs list, artifacts lineage and models show the same")
    func storeCopy() async throws {
        let (directory, _) = try await teamProject()
        let env = teamEnvironment
        #expect(try await CommandProcess.run("sluice", ["demo"], in: directory.url, environment: env).status == 0)
        let retrain = try await CommandProcess.run(
            "sluice", ["demo", "--set", "train.rounds=10"], in: directory.url, environment: env)
        #expect(retrain.status == 0, "\(retrain.errors)")
        #expect(
            try await CommandProcess.run(
                "sluice", ["models", "promote", "penguins", "2", "--reason", "try it"], in: directory.url,
                environment: env
            ).status == 0)
        let copy = try await CommandProcess.run(
            "sluice", ["store", "copy", "--to", "team"], in: directory.url, environment: env)
        #expect(copy.status == 0, "\(copy.errors)")
        #expect(copy.output.contains("Copied 2 runs"))
        #expect(copy.output.contains("1 models"))

        func answers(_ stack: String) async throws -> [String] {
            let runs = try await CommandProcess.run(
                "sluice", ["runs", "list", "--json", "--stack", stack], in: directory.url, environment: env)
            let listed = try JSONDecoder().decode([Listed].self, from: Data(runs.output.utf8))
            let artifacts = try await CommandProcess.run(
                "sluice", ["artifacts", "list", "--run", listed[0].id, "--name", "bundle", "--json", "--stack", stack],
                in: directory.url, environment: env)
            struct Artifact: Decodable { var id: String }
            let bundle = try #require(
                try JSONDecoder().decode([Artifact].self, from: Data(artifacts.output.utf8)).first)
            let lineage = try await CommandProcess.run(
                "sluice", ["artifacts", "lineage", bundle.id, "--stack", stack], in: directory.url, environment: env)
            let models = try await CommandProcess.run(
                "sluice", ["models", "show", "penguins", "--stack", stack], in: directory.url, environment: env)
            return [runs.output, lineage.output, models.output]
        }
        let local = try await answers("local")
        let team = try await answers("team")
        #expect(local[0] == team[0])
        #expect(local[1] == team[1])
        #expect(local[2] == team[2])
        #expect(local[2].contains("try it"))
        // Copying again adds nothing.
        let again = try await CommandProcess.run(
            "sluice", ["store", "copy", "--to", "team"], in: directory.url, environment: env)
        #expect(again.output.contains("Copied 0 runs"))
        #expect(again.output.contains("Skipped 2 runs and 1 models"))
    }

    @Test("the PostgreSQL server stopped mid-run gives an error naming the store; the run reads as crashed after")
    func serverStoppedMidRun() async throws {
        let server = try await onOwnThread { try TestPostgres() }
        let (directory, url) = try await teamProject(on: server)
        let gate = directory.path("gate")
        let run = try CommandProcess(
            "FixturePipelines", ["run", "crashy", "--stack", "team", "--set", "wait.gate=\(gate.path)"],
            in: directory.url, environment: teamEnvironment)
        try await run.waitForError(containing: "wait running")
        var status: Int32 = 0
        try await server.restart {
            try Data().write(to: gate)
            status = await run.wait(timeout: .seconds(120))
        }
        #expect(status == 1, "\(run.errors)")
        #expect(run.errors.contains(url))
        #expect(run.errors.contains("To fix:"))
        let store = try await PostgresMetadataStore(url: url, password: TestPostgres.password)
        let runs = try await store.runs(RunFilter())
        #expect(runs.count == 1)
        #expect(runs.first?.status == .crashed || runs.first?.status == .failed)
        await store.close()
        // Once the server is back, the next run resumes from the cache.
        let resumed = try await CommandProcess.run(
            "FixturePipelines", ["run", "crashy", "--stack", "team", "--set", "wait.gate=\(gate.path)"],
            in: directory.url, environment: teamEnvironment)
        #expect(resumed.status == 0, "\(resumed.errors)")
        #expect(resumed.errors.contains("numbers cached"))
    }
}
