import Foundation
import SluiceCore
import Testing

/// The behaviour every ``MetadataStore`` must have. Run it from a parameterized test:
///
/// ```swift
/// @Test(arguments: MetadataStoreContract.names)
/// func contract(_ name: String) async throws {
///     try await MetadataStoreContract.check(name, on: try makeStore())
/// }
/// ```
public enum MetadataStoreContract {
    /// The names of the checks.
    public static var names: [String] { checks.map(\.0) }

    /// Runs the check called `name` against `store` (which must be empty).
    public static func check(_ name: String, on store: any MetadataStore) async throws {
        let check = try #require(checks.first { $0.0 == name }?.1, "no contract check named \(name)")
        try await check(store)
    }

    static let checks: [(String, @Sendable (any MetadataStore) async throws -> Void)] = [
        ("a run is read back as saved, by full ID and by unique prefix", runRoundTrip),
        ("an ambiguous ID prefix is an error naming the matches", ambiguousPrefix),
        ("finishing a run records its status, end and error", finishRun),
        ("a completed step run is found by its cache key with its outputs by name", cacheLookup),
        ("failed and cached step runs are never cache sources", cacheSourcesAreCompletedOnly),
        ("a lookup that misses records the step run started; one that hits records nothing", cacheHitOrStart),
        ("a cached step run points at the original's artifacts", cachedStepRunSharesArtifacts),
        ("events link step runs and artifacts both ways", eventsBothWays),
        ("runs are listed newest first and filtered by pipeline, status and limit", runFilters),
        ("artifacts are filtered by run and by output name", artifactFilters),
        ("metrics and properties round-trip with their types", metricsAndProperties),
        ("a run whose process died reads as crashed, with its running steps", crashedOwner),
        ("pipelines are registered once and counted", pipelineCounts),
        ("step runs of a run come back in insertion order", stepRunOrder),
        ("what triggered a run is read back as recorded; manual when none was", triggerRoundTrip),
        ("access tokens are found by hash, one live token per name, and revoked by ID or name", accessTokens),
        ("a run ends once: the first of concurrent finishes stands and the others change nothing", finishOnce),
    ]

    static func finishOnce(_ store: any MetadataStore) async throws {
        try await store.registerPipeline("p")
        try await store.insert(makeRun("run-1"))
        let statuses: [RunStatus] = [
            .completed, .failed, .cancelled, .completed, .failed, .cancelled, .completed, .failed,
        ]
        let winners = try await withThrowingTaskGroup(of: RunStatus?.self) { group in
            for (index, status) in statuses.enumerated() {
                group.addTask {
                    let ended = try await store.finishRun(
                        "run-1", status: status, endedAt: Date(timeIntervalSince1970: 2_000 + Double(index)),
                        error: status == .completed ? nil : "finisher \(index)")
                    return ended ? status : nil
                }
            }
            return try await group.reduce(into: [RunStatus]()) { if let status = $1 { $0.append(status) } }
        }
        #expect(winners.count == 1, "\(winners.count) finishes each recorded an end")
        let run = try #require(try await store.run("run-1"))
        #expect(run.status == winners.first)
        let again = try await store.finishRun("run-1", status: .crashed, endedAt: Date(), error: "late")
        #expect(!again)
        #expect(try await store.run("run-1")?.status == winners.first)
        #expect(StoreInvariants.runViolations(run, stepRuns: []).isEmpty)
    }

    static func accessTokens(_ store: any MetadataStore) async throws {
        // A stack's store also keeps the dashboard's tokens (`Stack.tokens`).
        let store = try #require(store as? any AccessTokenStore, "the store keeps access tokens (AccessTokenStore)")
        let (reader, readerSecret) = AccessToken.make(
            name: "ci", canWrite: false, createdBy: "alice", at: Date(timeIntervalSince1970: 1_700_000_000))
        let (writer, _) = AccessToken.make(
            name: "ops", canWrite: true, createdBy: "bob", at: Date(timeIntervalSince1970: 1_700_000_001))
        try await store.insertToken(reader)
        try await store.insertToken(writer)
        #expect(try await store.token(hash: AccessToken.hash(of: readerSecret)) == reader)
        #expect(try await store.token(hash: AccessToken.hash(of: "sluice_not-a-token")) == nil)
        let duplicate = AccessToken.make(
            name: "ci", canWrite: true, createdBy: "carol", at: Date(timeIntervalSince1970: 1_700_000_002)
        ).record
        await #expect(throws: AccessTokenError.nameTaken("ci")) { try await store.insertToken(duplicate) }
        let revokedAt = Date(timeIntervalSince1970: 1_700_000_000.25)
        let revoked = try #require(try await store.revokeToken("ci", at: revokedAt))
        #expect(revoked.id == reader.id && revoked.revokedAt == revokedAt)
        #expect(try await store.token(hash: reader.hash)?.revokedAt == revokedAt)
        #expect(try await store.revokeToken("ci", at: revokedAt) == nil, "already revoked")
        #expect(try await store.revokeToken(writer.id, at: revokedAt)?.name == "ops")
        try await store.insertToken(duplicate)  // the name is free again once its token is revoked
        #expect(try await store.tokens().map(\.name) == ["ci", "ops", "ci"])
    }

    // MARK: Fixtures

    /// A running run record of pipeline `pipeline` (registered by the caller), owned by `owner`.
    public static func makeRun(
        _ id: String, pipeline: String = "p", at time: TimeInterval = 1_000, owner: ProcessOwner = .current
    )
        -> Run
    {
        Run(
            id: id, pipeline: pipeline, status: .running, config: "steps: {}\n",
            environment: RunEnvironment(
                user: "ada", host: "h", os: "Debian", swiftVersion: "6.3", sluiceVersion: "0.1.0", gitCommit: "abc",
                gitDirty: true, binaryPath: "/bin/x", binaryHash: "sha256:00", arguments: ["run", "p"]),
            owner: owner, startedAt: Date(timeIntervalSince1970: time))
    }

    static func makeStepRun(
        _ id: String, run: String, name: String = "s", status: StepRunStatus = .running, key: String? = "k"
    )
        -> StepRun
    {
        StepRun(
            id: id, runID: run, stepName: name, kind: "Kind", status: status,
            cacheKey: key.map(CacheKey.init(rawValue:)),
            codeVersion: 3, parameters: #"{"a":1}"#, seed: .max, startedAt: Date(timeIntervalSince1970: 1_001))
    }

    static func makeArtifact(_ id: String, name: String = "output", producer: String, at time: TimeInterval = 1_002)
        -> ArtifactRecord
    {
        ArtifactRecord(
            id: id, name: name, typeName: "Swift.Int", uri: "file:///tmp/\(id)", contentHash: "sha256:\(id)", size: 42,
            materializer: "json", materializerVersion: 1, properties: ["rows": .int(3)], producerStepRunID: producer,
            createdAt: Date(timeIntervalSince1970: time))
    }

    /// Saves a run with one completed step run writing one artifact; returns the step run.
    @discardableResult
    static func completed(
        _ store: any MetadataStore, run: String, step: String, artifact: String, key: String = "k",
        name: String = "output"
    ) async throws -> StepRun {
        try await store.registerPipeline("p")
        if try await store.run(run) == nil { try await store.insert(makeRun(run)) }
        var stepRun = makeStepRun(step, run: run, key: key)
        try await store.insert(stepRun, inputs: [])
        stepRun.status = .completed
        stepRun.endedAt = Date(timeIntervalSince1970: 1_003)
        try await store.completeStepRun(
            stepRun, outputs: [makeArtifact(artifact, name: name, producer: step)], metrics: [])
        return stepRun
    }

    // MARK: Checks

    static func runRoundTrip(_ store: any MetadataStore) async throws {
        try await store.registerPipeline("p")
        let run = makeRun("run-0001-aaaa")
        try await store.insert(run)
        #expect(try await store.run("run-0001-aaaa") == run)
        #expect(try await store.run("run-0001") == run)
        #expect(try await store.run("run-9") == nil)
    }

    static func triggerRoundTrip(_ store: any MetadataStore) async throws {
        try await store.registerPipeline("p")
        var watched = makeRun("run-0001-watch")
        watched.trigger = RunTrigger(
            kind: .watch, detail: "data/incoming", files: ["data/incoming/a.csv", "data/incoming/b.csv"])
        var scheduled = makeRun("run-0002-cron", at: 1_001)
        scheduled.trigger = RunTrigger(kind: .schedule, detail: "0 3 * * * (due 2026-12-03T03:00:00Z)")
        let manual = makeRun("run-0003-hand", at: 1_002)
        for run in [watched, scheduled, manual] { try await store.insert(run) }
        #expect(try await store.run("run-0001-watch")?.trigger == watched.trigger)
        #expect(try await store.run("run-0002-cron")?.trigger == scheduled.trigger)
        #expect(try await store.run("run-0003-hand")?.trigger == .manual)
        #expect(try await store.runs(RunFilter()).map(\.trigger.kind) == [.manual, .schedule, .watch])
    }

    static func ambiguousPrefix(_ store: any MetadataStore) async throws {
        try await store.registerPipeline("p")
        try await store.insert(makeRun("run-0001-aaaa"))
        try await store.insert(makeRun("run-0001-bbbb"))
        await #expect(throws: AmbiguousIDError.self) { try await store.run("run-0001") }
        #expect(try await store.run("run-0001-b")?.id == "run-0001-bbbb")
    }

    static func finishRun(_ store: any MetadataStore) async throws {
        try await store.registerPipeline("p")
        try await store.insert(makeRun("run-1"))
        try await store.finishRun("run-1", status: .failed, endedAt: Date(timeIntervalSince1970: 2_000), error: "boom")
        var environment = makeRun("x").environment
        environment.gitCommit = "def"
        environment.gitDirty = false
        try await store.updateEnvironment("run-1", environment)
        let run = try #require(try await store.run("run-1"))
        #expect(run.status == .failed)
        #expect(run.endedAt == Date(timeIntervalSince1970: 2_000))
        #expect(run.error == "boom")
        #expect(run.environment == environment)
    }

    static func cacheLookup(_ store: any MetadataStore) async throws {
        let stepRun = try await completed(store, run: "run-1", step: "step-1", artifact: "art-1", key: "key-a")
        let hit = try #require(try await store.cacheHit(for: CacheKey(rawValue: "key-a")))
        #expect(hit.stepRun.id == stepRun.id)
        #expect(hit.stepRun.status == .completed)
        #expect(hit.outputs == ["output": makeArtifact("art-1", producer: "step-1")])
        #expect(try await store.cacheHit(for: CacheKey(rawValue: "key-b")) == nil)
        let outputs = try await store.outputs(ofStepRun: "step-1")
        #expect(outputs["output"] == makeArtifact("art-1", producer: "step-1"))
    }

    static func cacheHitOrStart(_ store: any MetadataStore) async throws {
        let original = try await completed(store, run: "run-1", step: "step-1", artifact: "art-1", key: "key-a")
        try await store.insert(makeRun("run-2", at: 1_100))
        let input = Event(stepRunID: "step-2", artifactID: "art-1", kind: .input, name: "x")

        let again = makeStepRun("step-2", run: "run-2", key: "key-a")
        let hit = try #require(try await store.cacheHitOrStart(again, inputs: [input]))
        #expect(hit.stepRun.id == original.id)
        #expect(hit.outputs == ["output": makeArtifact("art-1", producer: "step-1")])
        #expect(try await store.stepRun("step-2") == nil, "a hit records nothing")
        #expect(try await store.events(ofArtifact: "art-1").filter { $0.kind == .input }.isEmpty)

        let fresh = makeStepRun("step-2", run: "run-2", key: "key-new")
        #expect(try await store.cacheHitOrStart(fresh, inputs: [input]) == nil)
        #expect(try await store.stepRun("step-2") == fresh)
        #expect(try await store.events(ofStepRun: "step-2") == [input])
        #expect(try await store.cacheHit(for: CacheKey(rawValue: "key-new")) == nil, "a running step is no source")
    }

    static func cacheSourcesAreCompletedOnly(_ store: any MetadataStore) async throws {
        try await store.registerPipeline("p")
        try await store.insert(makeRun("run-1"))
        var failed = makeStepRun("step-f", run: "run-1", key: "key-x")
        try await store.insert(failed, inputs: [])
        failed.status = .failed
        failed.error = "no"
        try await store.finishStepRun(failed, metrics: [])
        #expect(try await store.cacheHit(for: CacheKey(rawValue: "key-x")) == nil)
        #expect(try await store.stepRun("step-f")?.error == "no")
        try await completed(store, run: "run-1", step: "step-1", artifact: "art-1", key: "key-y")
        let cached = makeStepRun("step-c", run: "run-1", status: .cached, key: "key-y")
        try await store.insertCachedStepRuns([
            CachedStepRun(
                stepRun: cached,
                events: [Event(stepRunID: "step-c", artifactID: "art-1", kind: .output, name: "output")])
        ])
        #expect(try await store.cacheHit(for: CacheKey(rawValue: "key-y"))?.stepRun.id == "step-1")
    }

    static func cachedStepRunSharesArtifacts(_ store: any MetadataStore) async throws {
        try await completed(store, run: "run-1", step: "step-1", artifact: "art-1")
        try await store.insert(makeRun("run-2", at: 1_100))
        var cached = makeStepRun("step-2", run: "run-2", status: .cached)
        cached.cachedFrom = "step-1"
        let reader = makeStepRun("step-3", run: "run-2", status: .cached, key: "k3")
        try await store.insertCachedStepRuns([
            CachedStepRun(
                stepRun: cached,
                events: [Event(stepRunID: "step-2", artifactID: "art-1", kind: .output, name: "output")]),
            CachedStepRun(
                stepRun: reader, events: [Event(stepRunID: "step-3", artifactID: "art-1", kind: .input, name: "s")]),
        ])
        #expect(try await store.stepRuns(ofRun: "run-2").map(\.id) == ["step-2", "step-3"])
        #expect(try await store.stepRun("step-2")?.cachedFrom == "step-1")
        #expect(try await store.outputs(ofStepRun: "step-2")["output"]?.id == "art-1")
        #expect(try await store.artifact("art-1")?.producerStepRunID == "step-1")
    }

    static func eventsBothWays(_ store: any MetadataStore) async throws {
        try await completed(store, run: "run-1", step: "step-1", artifact: "art-1")
        let reader = makeStepRun("step-2", run: "run-1", name: "reader", key: "k2")
        let input = Event(stepRunID: "step-2", artifactID: "art-1", kind: .input, name: "s")
        try await store.insert(reader, inputs: [input])
        let ofArtifact = try await store.events(ofArtifact: "art-1")
        #expect(
            Set(ofArtifact) == [Event(stepRunID: "step-1", artifactID: "art-1", kind: .output, name: "output"), input])
        #expect(try await store.events(ofStepRun: "step-2") == [input])
    }

    static func runFilters(_ store: any MetadataStore) async throws {
        try await store.registerPipeline("a")
        try await store.registerPipeline("b")
        for (index, pipeline) in ["a", "b", "a", "a"].enumerated() {
            try await store.insert(makeRun("run-\(index)", pipeline: pipeline, at: 1_000 + Double(index)))
        }
        try await store.finishRun("run-2", status: .completed, endedAt: Date(), error: nil)
        #expect(try await store.runs(RunFilter()).map(\.id) == ["run-3", "run-2", "run-1", "run-0"])
        #expect(try await store.runs(RunFilter(pipeline: "a")).map(\.id) == ["run-3", "run-2", "run-0"])
        #expect(try await store.runs(RunFilter(status: .completed)).map(\.id) == ["run-2"])
        #expect(try await store.runs(RunFilter(limit: 2)).map(\.id) == ["run-3", "run-2"])
    }

    static func artifactFilters(_ store: any MetadataStore) async throws {
        try await completed(store, run: "run-1", step: "step-1", artifact: "art-1", name: "train")
        try await store.insert(makeRun("run-2", at: 1_100))
        try await completed(store, run: "run-2", step: "step-2", artifact: "art-2", key: "k2", name: "eval")
        #expect(try await store.artifacts(ArtifactFilter(runID: "run-1")).map(\.id) == ["art-1"])
        #expect(try await store.artifacts(ArtifactFilter(name: "eval")).map(\.id) == ["art-2"])
        #expect(Set(try await store.artifacts(ArtifactFilter()).map(\.id)) == ["art-1", "art-2"])
        #expect(try await store.artifact("art-2")?.name == "eval")
        // Properties can be replaced (retention marks deleted content); the other record is untouched.
        try await store.setProperties(["content_deleted": .string("now"), "rows": .int(3)], ofArtifact: "art-2")
        #expect(try await store.artifact("art-2")?.properties == ["content_deleted": .string("now"), "rows": .int(3)])
        #expect(try await store.artifact("art-1")?.properties[Retention.deletedProperty] == nil)
    }

    static func metricsAndProperties(_ store: any MetadataStore) async throws {
        try await store.registerPipeline("p")
        try await store.insert(makeRun("run-1"))
        var stepRun = makeStepRun("step-1", run: "run-1")
        try await store.insert(stepRun, inputs: [])
        stepRun.status = .completed
        stepRun.properties = ["rows": .int(5), "ratio": .double(0.25), "name": .string("x"), "ok": .bool(true)]
        let metrics = [
            MetricRecord(name: "loss", value: 0.5, step: 1, loggedAt: Date(timeIntervalSince1970: 5)),
            MetricRecord(name: "loss", value: 0.25, step: 2, loggedAt: Date(timeIntervalSince1970: 6)),
        ]
        try await store.completeStepRun(stepRun, outputs: [], metrics: metrics)
        let read = try #require(try await store.stepRun("step-1"))
        #expect(read.properties == stepRun.properties)
        #expect(read.seed == .max)
        #expect(try await store.metrics(ofStepRun: "step-1") == metrics)
    }

    static func crashedOwner(_ store: any MetadataStore) async throws {
        try await store.registerPipeline("p")
        var dead = ProcessOwner.current
        dead.startTicks &+= 1  // the same PID, started at another time: not this process
        try await store.insert(makeRun("run-dead", owner: dead))
        try await store.insert(makeStepRun("step-1", run: "run-dead"), inputs: [])
        try await store.insert(makeRun("run-live", at: 1_001))
        #expect(try await store.run("run-dead")?.status == .crashed)
        #expect(try await store.stepRuns(ofRun: "run-dead").map(\.status) == [.crashed])
        #expect(try await store.run("run-live")?.status == .running)
    }

    static func pipelineCounts(_ store: any MetadataStore) async throws {
        try await store.registerPipeline("p")
        try await store.registerPipeline("p")
        try await store.registerPipeline("q")
        try await store.insert(makeRun("run-1", at: 1_000))
        try await store.insert(makeRun("run-2", at: 2_000))
        let pipelines = try await store.pipelines()
        #expect(pipelines.map(\.name) == ["p", "q"])
        #expect(pipelines.map(\.runCount) == [2, 0])
        #expect(pipelines[0].lastRunAt == Date(timeIntervalSince1970: 2_000))
    }

    static func stepRunOrder(_ store: any MetadataStore) async throws {
        try await store.registerPipeline("p")
        try await store.insert(makeRun("run-1"))
        for name in ["z", "a", "m"] {
            try await store.insert(makeStepRun("step-\(name)", run: "run-1", name: name), inputs: [])
        }
        #expect(try await store.stepRuns(ofRun: "run-1").map(\.stepName) == ["z", "a", "m"])
        // Asked for some steps by name: only theirs, still in start order.
        #expect(try await store.stepRuns(ofRun: "run-1", steps: ["m", "z", "nope"]).map(\.stepName) == ["z", "m"])
        #expect(try await store.stepRuns(ofRun: "run-1", steps: []).isEmpty)
        #expect(try await store.stepRuns(ofRun: "run-2", steps: ["z"]).isEmpty)
    }
}
