import Foundation
import SluiceCore
import SluiceStorePostgres
import SluiceStoreSQLite
import SluiceTesting
import Testing

/// Many `sluice run` processes registering one model at the same moment, as a team sharing one store does: the
/// register step's `first` policy must put exactly one version in production per round, on PostgreSQL and on one
/// SQLite file, and the store's invariants must hold after every round.
@Suite("Concurrent registrations from separate processes (a real PostgreSQL server and one SQLite file)")
struct RegistryStressTests {
    /// Rounds of 8 and of 32 processes, alternating: 20 rounds in all for each store.
    static let rounds = [8, 32, 8, 8, 32, 8, 8, 32, 8, 8, 32, 8, 8, 32, 8, 8, 32, 8, 8, 32]

    @Test(
        "8 and 32 processes registering one model at once: one first promotion per round, invariants after each",
        .serialized, arguments: ["sqlite", "postgres"])
    func concurrentRegistrations(_ kind: String) async throws {
        let project: TemporaryDirectory
        let stack: String
        var environment = ["USER": "tester"]
        if kind == "postgres" {
            (project, _) = try await teamProject(prefix: "sluice-race")
            stack = "team"
            environment = teamEnvironment
        } else {
            project = try TemporaryDirectory(prefix: "sluice-race")
            stack = "local"
        }
        try TwoClassPipeline.write(in: project, name: "race", file: "race.yaml", rows: 400)
        let initialized = try await CommandProcess.run(
            "sluice", ["run", "race.yaml", "--stack", stack, "--set", "register.model=warmup"], in: project.url,
            environment: environment)
        try #require(initialized.status == 0, "\(initialized.errors)")

        let store = try await Self.open(kind, project: project)
        let (directory, env) = (project.url, environment)
        // The processes run at a lower priority: 32 of them on 2 cores must not starve the timing-sensitive tests
        // that run beside this one (they still run at the same time as each other, which is what is tested).
        let sluice = try CommandProcess.executable("sluice").path
        var runsSoFar = 1
        for (round, processes) in Self.rounds.enumerated() {
            let model = "race_\(round)"
            // Every fourth round all processes train the same new model at once: each computes and stores the same
            // bundle under its own artifact record, and the registry must add it once.
            let sameBundle = round % 4 == 3
            let results = try await withThrowingTaskGroup(of: (Int, Int32, String).self) { group in
                for index in 0..<processes {
                    group.addTask {
                        // Each process trains with its own number of rounds: a bundle of its own, a version of its own
                        // (or, in a same-bundle round, all with one new number).
                        let run = try await CommandProcess.run(
                            "/usr/bin/nice",
                            [
                                "-n", "10", sluice,
                                "run", "race.yaml", "--stack", stack, "--set", "register.model=\(model)", "--set",
                                "train.rounds=\(sameBundle ? 100 + round : index + 1)",
                            ], in: directory, environment: env)
                        return (index, run.status, run.errors)
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            for (index, status, errors) in results where status != 0 {
                Issue.record("round \(round), process \(index) exited \(status):\n\(errors)")
            }
            runsSoFar += processes

            let versions = try await store.modelVersions(model)
            let firsts = try await store.stageChanges(model).filter { $0.reason.hasPrefix("first blessed version") }
            #expect(firsts.count == 1, "round \(round) (\(processes) processes): \(firsts.count) first promotions")
            #expect(versions.filter { $0.stage == .production }.count == 1)
            #expect(
                versions.count == (sameBundle ? 1 : processes),
                "round \(round): \(sameBundle ? "one version of the one bundle" : "each process's own bundle")")
            let registry = try await StoreInvariants.registryViolations(store)
            #expect(registry.isEmpty, "round \(round): \(registry.joined(separator: "\n"))")
            // No record lost: every process's run is recorded, completed, with its steps ended.
            let runs = try await store.runs(RunFilter(limit: 10_000))
            #expect(runs.count == runsSoFar, "round \(round)")
            #expect(runs.allSatisfy { $0.status == .completed }, "round \(round)")
            let recorded = try await StoreInvariants.runViolations(store)
            #expect(recorded.isEmpty, "round \(round): \(recorded.joined(separator: "\n"))")
            // Every version points at a run of this round that is recorded.
            let runIDs = Set(runs.map(\.id))
            #expect(versions.allSatisfy { $0.runID.map(runIDs.contains) == true })
            if !results.allSatisfy({ $0.1 == 0 }) { break }
        }
        if let postgres = store as? PostgresMetadataStore { await postgres.close() }
    }

    static func open(_ kind: String, project: TemporaryDirectory) async throws -> any MetadataStore & ModelRegistry {
        if kind == "postgres" {
            let text = try String(contentsOf: project.path(".sluice/stack.yaml"), encoding: .utf8)
            let url = try #require(
                text.split(separator: "\n").first { $0.contains("metadata_store: postgres://") }?
                    .split(separator: " ").last.map(String.init))
            return try await PostgresMetadataStore(url: url, password: TestPostgres.password)
        }
        return try SQLiteMetadataStore(path: project.path(".sluice/metadata.sqlite").path)
    }
}
