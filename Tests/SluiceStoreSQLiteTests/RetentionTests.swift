import Foundation
import SluiceCore
import SluiceStoreSQLite
import SluiceTesting
import Testing

@Suite("Retention (sluice gc) against writers that keep going")
struct RetentionTests {
    /// Two steps whose outputs are over the artifact store's 64 KiB packing threshold: each has a file gc can delete.
    static func makePipeline(_ name: String = "p", size: Int = 20_000) -> Pipeline {
        Pipeline(name) { p in
            let numbers = p.step("numbers", version: 1) { _ in Array(1...size) }
            p.step("doubled", version: 1, numbers) { numbers, _ in numbers.map { $0 * 2 } }
        }
    }

    static let pipeline = makePipeline()

    /// A SQLite project with one finished run of ``pipeline`` and a gc plan made after it, to which that run is old.
    struct OldRun {
        let directory: TemporaryDirectory
        let store: SQLiteMetadataStore
        let engine: TestEngine
        let first: RunResult
        let retention = Retention(olderThan: 0, keepLast: 0)
        let plan: Retention.Plan

        init() async throws {
            directory = try TemporaryDirectory()
            store = try SQLiteMetadataStore(path: directory.path("metadata.sqlite").path)
            engine = try TestEngine(metadata: store)
            first = try await engine.run(RetentionTests.pipeline)
            plan = try await retention.plan(metadata: store, now: Date().addingTimeInterval(1))
        }
    }

    static func outputs(_ result: RunResult, in store: SQLiteMetadataStore) async throws -> [String: ArtifactRecord] {
        var outputs: [String: ArtifactRecord] = [:]
        for stepRun in result.stepRuns {
            outputs[stepRun.stepName] = try await store.outputs(ofStepRun: stepRun.id)["output"]
        }
        return outputs
    }

    @Test("gc keeps what a run started after its plan reused from the cache; the next run still hits the cache")
    func runSincePlan() async throws {
        let old = try await OldRun()
        let (store, engine, first, retention, plan) = (old.store, old.engine, old.first, old.retention, old.plan)
        #expect(plan.deletable.count == 2, "both outputs of the only, old run")
        // A run starts after the plan and reuses both outputs.
        let second = try await engine.run(Self.pipeline)
        #expect(second.stepRuns.allSatisfy { $0.status == .cached })
        let outcome = try await retention.apply(plan, metadata: store, artifacts: engine.engine.artifacts)
        #expect(outcome.deleted == 0 && outcome.keptSince == 2 && outcome.freed == 0)
        for artifact in try await Self.outputs(first, in: store).values {
            #expect(engine.engine.artifacts.contains(uri: artifact.uri))
            #expect(try await store.artifact(artifact.id)?.properties[Retention.deletedProperty] == nil)
        }
        let third = try await engine.run(Self.pipeline)
        #expect(third.stepRuns.allSatisfy { $0.status == .cached })
    }

    @Test("two gc runs at once delete each artifact once, and neither fails on what the other deleted")
    func concurrentGC() async throws {
        let directory = try TemporaryDirectory()
        let store = try SQLiteMetadataStore(path: directory.path("metadata.sqlite").path)
        let engine = try TestEngine(metadata: store)
        for size in [20_000, 30_000, 40_000] {
            var config = RunConfig()
            config.seed = UInt64(size)
            _ = try await engine.run(Self.makePipeline("p\(size)", size: size), config: config)
        }
        let retention = Retention(olderThan: 0, keepLast: 0)
        let plan = try await retention.plan(metadata: store, now: Date().addingTimeInterval(1))
        #expect(plan.deletable.count == 6)
        let artifacts = engine.engine.artifacts
        let outcomes = try await withThrowingTaskGroup(of: Retention.Outcome.self) { group in
            for _ in 0..<4 {
                group.addTask { try await retention.apply(plan, metadata: store, artifacts: artifacts) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(outcomes.map(\.freed).reduce(0, +) == plan.bytes, "each byte freed once")
        #expect(plan.deletable.allSatisfy { !artifacts.contains(uri: $0.uri) })
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: artifacts.root.appending(path: ".tmp").path).isEmpty)
    }

    @Test("gc keeps an old run's output that a version registered after its plan points at, with its lineage")
    func versionSincePlan() async throws {
        let old = try await OldRun()
        let (store, engine, first, retention, plan) = (old.store, old.engine, old.first, old.retention, old.plan)
        #expect(plan.deletable.count == 2)
        let outputs = try await Self.outputs(first, in: store)
        let total = try #require(outputs["doubled"])
        _ = try await store.registerModelVersion(
            model: "m", artifactID: total.id, runID: first.run.id, createdBy: "t", metrics: [:], datasetVersion: nil)
        let outcome = try await retention.apply(plan, metadata: store, artifacts: engine.engine.artifacts)
        #expect(outcome.deleted == 0 && outcome.keptSince == 2, "the version's artifact and its upstream input")
        #expect(outputs.values.allSatisfy { engine.engine.artifacts.contains(uri: $0.uri) })
        // A plan made now keeps them itself: the registered version's lineage is part of it.
        let fresh = try await retention.plan(metadata: store, now: Date().addingTimeInterval(1))
        #expect(fresh.deletable.isEmpty, "the registered version's lineage is kept by the plan itself now")
    }
}

@Suite("Store copy into a store in use")
struct StoreCopyTests {
    @Test("a copy completes a run an interrupted copy left part-way and leaves runs still running for later")
    func resumesPartialRuns() async throws {
        let directory = try TemporaryDirectory()
        let source = try SQLiteMetadataStore(path: directory.path("source.sqlite").path)
        let target = try SQLiteMetadataStore(path: directory.path("target.sqlite").path)
        let engine = try TestEngine(metadata: source)
        let finished = try await engine.run(RetentionTests.pipeline)
        var running = finished.run
        running.id = "run-still-going"
        running.status = .running
        running.endedAt = nil
        try await source.insert(running)
        // An earlier copy stopped after the run's record and its first step run.
        try await target.registerPipeline("p")
        try await target.insert(finished.run)
        let first = try #require(finished.stepRuns.first)
        try await target.insert(first, inputs: [])
        try await target.completeStepRun(
            first, outputs: Array(try await source.outputs(ofStepRun: first.id).values), metrics: [])

        let summary = try await StoreCopy(from: source, to: target).run()
        #expect(summary.runs == 1 && summary.stepRuns == finished.stepRuns.count - 1)
        #expect(summary.runningRuns == 1)
        #expect(try await target.stepRuns(ofRun: finished.run.id).map(\.id) == finished.stepRuns.map(\.id))
        #expect(try await target.run("run-still-going") == nil)
        let again = try await StoreCopy(from: source, to: target).run()
        #expect(again.runs == 0 && again.skippedRuns == 1)
        #expect(try await StoreInvariants.runViolations(target).isEmpty)
    }
}
