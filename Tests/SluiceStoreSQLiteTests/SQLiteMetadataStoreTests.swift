import Foundation
import GRDB
import SluiceCore
import SluiceTesting
import Testing

@testable import SluiceStoreSQLite

@Suite("SQLite metadata store")
struct SQLiteMetadataStoreTests {
    @Test("passes the metadata store contract", arguments: MetadataStoreContract.names)
    func contract(_ check: String) async throws {
        let directory = try TemporaryDirectory()
        let store = try SQLiteMetadataStore(path: directory.path("metadata.sqlite").path)
        try await MetadataStoreContract.check(check, on: store)
    }

    @Test("passes the model registry contract", arguments: ModelRegistryContract.names)
    func registryContract(_ check: String) async throws {
        let directory = try TemporaryDirectory()
        let store = try SQLiteMetadataStore(path: directory.path("metadata.sqlite").path)
        try await ModelRegistryContract.check(check, on: store)
    }

    @Test("a store opened for one step never marks a run crashed; the run's own reads still do")
    func stepProcessesDoNotJudgeOwners() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("metadata.sqlite").path
        let store = try SQLiteMetadataStore(path: path)
        // The owner as a step process in a container's PID namespace would see it: its PID is not there.
        var elsewhere = ProcessOwner.current
        elsewhere.startTicks &+= 1
        try await store.registerPipeline("p")
        try await store.insert(MetadataStoreContract.makeRun("run-1", owner: elsewhere))
        let forOneStep = try SQLiteMetadataStore(path: path, singleConnection: true, marksCrashedRuns: false)
        #expect(try await forOneStep.run("run-1")?.status == .running)
        #expect(try await forOneStep.runs(RunFilter()).first?.status == .running)
        #expect(try await store.run("run-1")?.status == .crashed)
    }

    @Test("the database refuses a second production version of a model even outside the registry's rules")
    func oneProductionIndex() async throws {
        let directory = try TemporaryDirectory()
        let store = try SQLiteMetadataStore(path: directory.path("metadata.sqlite").path)
        for _ in 0..<2 {
            _ = try await store.registerModelVersion(
                model: "m", artifactID: "a", runID: nil, createdBy: "t", metrics: [:], datasetVersion: nil)
        }
        try store.write { db in try db.execute(sql: "UPDATE model_versions SET stage = 'production' WHERE version = 1")
        }
        #expect(throws: (any Error).self) {
            try store.write { db in
                try db.execute(sql: "UPDATE model_versions SET stage = 'production' WHERE version = 2")
            }
        }
    }

    @Test("opens in WAL mode with the versioned migrations applied")
    func walAndMigrations() throws {
        let directory = try TemporaryDirectory()
        let store = try SQLiteMetadataStore(path: directory.path("m.sqlite").path)
        let mode = try store.pool.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") }
        #expect(mode == "wal")
        #expect(
            try store.appliedMigrations() == [
                "v1: pipelines, runs, step runs, artifacts, events, metrics", "v2: model registry",
                "v3: model profiles", "v4: artifact URIs relative to the artifact store's root",
                "v5: what triggered each run", "v6: dashboard access tokens",
                "v7: tracking (experiments, run params, tags, metric series, inputs)",
            ])
        // Reopening an existing store migrates nothing and keeps the data.
        let again = try SQLiteMetadataStore(path: directory.path("m.sqlite").path)
        #expect(try again.appliedMigrations().count == 7)
    }

    @Test(
        "a store written before tracking gets its pipelines as experiments and its step parameters and metrics as runs' params and metrics"
    )
    func trackingMigration() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("old.sqlite").path
        let old = try DatabaseQueue(path: path)
        try Migrations.migrator.migrate(old, upTo: "v6: dashboard access tokens")
        try await old.write { db in
            try db.execute(
                sql: """
                    INSERT INTO pipelines VALUES ('churn', 1);
                    INSERT INTO runs (id, pipeline, status, config, user, host, os, swift_version, sluice_version,
                        arguments, owner_host, owner_boot, owner_pid, owner_start, started_at)
                    VALUES ('run-old', 'churn', 'completed', '', 'ada', 'h', 'os', '6', '0.1', '[]', 'h', 'b', 1, 1, 5);
                    INSERT INTO step_runs (id, run_id, step_name, kind, status, code_version, parameters, seed, properties)
                    VALUES ('sr-old', 'run-old', 'train', 'Train', 'completed', 1, '{"rounds":50,"learningRate":0.1}', 0, '{}');
                    INSERT INTO metrics VALUES ('sr-old', 'loss', 0.9, 0, 6), ('sr-old', 'loss', 0.4, 1, 7),
                        ('sr-old', 'auc', 0.8, NULL, 8);
                    """)
        }
        try old.close()
        let store = try SQLiteMetadataStore(path: path)
        let run = try #require(try await store.trackedRun("run-old"))
        #expect(run.kind == .pipeline && run.name == "run-old")
        #expect(try await store.experiment(named: "churn")?.id == run.experimentID)
        #expect(run.params == ["train.rounds": "50", "train.learning_rate": "0.1"])
        #expect(run.metrics.map { "\($0.key)=\($0.value)@\($0.step)" } == ["train.auc=0.8@0", "train.loss=0.4@1"])
        #expect(try await store.metricHistory(ofRun: "run-old", key: "train.loss").map(\.value) == [0.9, 0.4])
    }

    @Test("a single-connection store (a step process's) creates, migrates and shares a file with a pooled one")
    func singleConnection() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("m.sqlite").path
        let single = try SQLiteMetadataStore(path: path, singleConnection: true)
        #expect(single.pool is DatabaseQueue)
        #expect(try await single.pool.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") } == "wal")
        #expect(try single.appliedMigrations().count == 7)
        let pooled = try SQLiteMetadataStore(path: path)
        #expect(pooled.pool is DatabasePool)
        try await pooled.registerPipeline("p")
        let run = Run(
            id: "run-1", pipeline: "p", status: .running, config: "", environment: .basic(), owner: .current,
            startedAt: Date())
        try await single.insert(run)
        #expect(try await pooled.run("run-1")?.status == .running)
        try await pooled.finishRun("run-1", status: .completed, endedAt: Date(), error: nil)
        #expect(try await single.run("run-1")?.status == .completed)
    }

    @Test("records written with absolute file:// artifact URIs are rewritten relative to the store's root")
    func relativeURIMigration() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("old.sqlite").path
        // A store as the previous version left it, holding an absolute URI, a packed one and a profile.
        let old = try DatabasePool(path: path)
        try Migrations.migrator.migrate(old, upTo: "v3: model profiles")
        try await old.write { db in
            try db.execute(sql: "INSERT INTO pipelines VALUES ('p', 0)")
            try db.execute(
                sql: """
                    INSERT INTO runs VALUES ('r', 'p', 'completed', '', 'u', 'h', 'o', 's', 'v', NULL, NULL, NULL,
                        NULL, '[]', 'h', 'b', 1, 1, 0, 1, NULL);
                    INSERT INTO step_runs VALUES ('s', 'r', 'x', 'k', 'completed', 'key', 1, '{}', 0, 0, 1, NULL,
                        NULL, NULL, '{}');
                    INSERT INTO artifacts VALUES
                        ('a1', 'output', 'T', 'file:///old/place/.sluice/artifacts/sha256/abcd', 'sha256:abcd', 1,
                            'json', 1, '{}', 's', 0),
                        ('a2', 'output', 'T', 'file:///old/place/.sluice/artifacts/packs/1-x.pack#offset=5&length=3',
                            'sha256:ef', 3, 'json', 1, '{}', 's', 0);
                    INSERT INTO model_versions VALUES ('m', 1, 'a1', 'r', 'none', 0, 'u', '{}', NULL);
                    INSERT INTO model_profiles VALUES ('m', 1, 'file:///old/place/.sluice/artifacts/sha256/ff', '{}', 0);
                    """)
        }
        try old.close()
        let store = try SQLiteMetadataStore(path: path)
        #expect(try await store.artifact("a1")?.uri == "sha256/abcd")
        #expect(try await store.artifact("a2")?.uri == "packs/1-x.pack#offset=5&length=3")
        #expect(try await store.profile("m", version: 1)?.uri == "sha256/ff")
    }

    @Test("power durability sets synchronous=FULL, the default NORMAL")
    func durabilitySetting() throws {
        let directory = try TemporaryDirectory()
        let fast = try SQLiteMetadataStore(path: directory.path("a.sqlite").path)
        let safe = try SQLiteMetadataStore(path: directory.path("b.sqlite").path, durability: .power)
        #expect(try fast.pool.read { try Int.fetchOne($0, sql: "PRAGMA synchronous") } == 1)
        #expect(try safe.pool.read { try Int.fetchOne($0, sql: "PRAGMA synchronous") } == 2)
    }

    @Test("an unusable path gives an error that says what to do")
    func unusablePath() throws {
        let directory = try TemporaryDirectory()
        let file = directory.path("not-a-dir")
        try Data("x".utf8).write(to: file)
        let error = #expect(throws: StoreOpenError.self) {
            try SQLiteMetadataStore(path: file.appending(path: "m.sqlite").path)
        }
        #expect(error?.description.contains("To fix:") == true)
    }

    @Test("8 concurrent runs on one SQLite file record every run, step run, artifact and event")
    func concurrentRuns() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("shared.sqlite").path
        let artifacts = try LocalArtifactStore(root: directory.path("artifacts"))
        let pipeline = Pipeline("fan") { p in
            let seed = p.step("seed", version: 1) { context in Array(0..<50) }
            for branch in 0..<6 {
                let mapped = p.step("map\(branch)", version: 1, seed) { values, context in
                    values.map { $0 * branch + 1 }
                }
                p.step("sum\(branch)", version: 1, mapped) { values, context in values.reduce(0, +) }
            }
        }
        // Each run opens its own store, as separate processes would: writers contend for the file lock.
        let results = try await withThrowingTaskGroup(of: RunResult.self) { group in
            for index in 0..<8 {
                group.addTask {
                    let engine = RunEngine(
                        metadata: try SQLiteMetadataStore(path: path), artifacts: artifacts,
                        logDirectory: directory.path("logs"), scratchDirectory: directory.path("scratch\(index)"))
                    var config = RunConfig()
                    config.cache = false
                    config.parallelism = 4
                    return try await engine.run(pipeline, config: config)
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.allSatisfy { $0.run.status == .completed })
        let store = try SQLiteMetadataStore(path: path)
        let runs = try await store.runs(RunFilter(limit: 100))
        #expect(Set(runs.map(\.id)) == Set(results.map(\.run.id)))
        for result in results {
            let stepRuns = try await store.stepRuns(ofRun: result.run.id)
            #expect(stepRuns.count == 13)
            #expect(stepRuns.allSatisfy { $0.status == .completed })
            let written = try await store.artifacts(ArtifactFilter(runID: result.run.id, limit: 100))
            #expect(written.count == 13)
            for stepRun in stepRuns where stepRun.stepName.hasPrefix("sum") {
                #expect(try await store.events(ofStepRun: stepRun.id).map(\.kind) == [.input, .output])
            }
        }
        #expect(try await store.pipelines().first?.runCount == 8)
    }
}

@Suite("SQLite tracking store")
struct SQLiteTrackingStoreTests {
    @Test("passes the tracking store contract", arguments: TrackingStoreContract.names)
    func contract(_ check: String) async throws {
        let directory = try TemporaryDirectory()
        let store = try SQLiteMetadataStore(path: directory.path("metadata.sqlite").path)
        try await TrackingStoreContract.check(check, on: store)
    }
}
