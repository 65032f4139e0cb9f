import Foundation
import SluiceCore
import Testing

/// The behaviour every ``TrackingStore`` must have (it must be a ``MetadataStore`` too: pipeline runs take part).
/// Run it from a parameterized test, as ``MetadataStoreContract``.
public enum TrackingStoreContract {
    /// A store both contracts apply to.
    public typealias Store = any TrackingStore & MetadataStore

    /// The names of the checks.
    public static var names: [String] { checks.map(\.0) }

    /// Runs the check called `name` against `store` (which must be empty).
    public static func check(_ name: String, on store: Store) async throws {
        let check = try #require(checks.first { $0.0 == name }?.1, "no contract check named \(name)")
        try await check(store)
    }

    static let checks: [(String, @Sendable (Store) async throws -> Void)] = [
        ("a tracked run keeps its params, tags, metric series and latest values", roundTrip),
        ("a param keeps its first value: another value is refused and nothing of the batch is written", paramsOnce),
        ("searches filter and order by metrics, params, tags and attributes, and page", search),
        ("a deleted run leaves searches and lists, refuses logging, and comes back on restore", deleteRestore),
        ("experiments: names are unique, renamed, tagged, deleted with their runs and restored", experiments),
        ("a pipeline run is a run of its pipeline's experiment with its steps' parameters and metrics", pipelineRuns),
        ("concurrent writers to one run lose nothing", concurrentWriters),
        ("NaN is kept as NaN, infinities as the largest doubles", nonFinite),
        ("documents are saved, replaced, listed by prefix and removed", documents),
    ]

    static func start(_ store: Store, experiment: String = Experiment.defaultID, name: String? = nil) async throws
        -> TrackedRun
    {
        try await store.createTrackedRun(
            TrackedRunStart(experimentID: experiment, name: name, user: "ada", startedAt: Date()))
    }

    static func roundTrip(_ store: Store) async throws {
        let run = try await start(store, name: "first")
        #expect(run.kind == .tracked && run.status == .running && run.name == "first")
        #expect(run.tags[TrackedRun.nameTag] == "first" && run.artifactURI.hasSuffix("/\(run.id)/artifacts"))
        try await store.log(
            RunLogBatch(
                metrics: [
                    MetricPoint(key: "loss", value: 0.5, timestamp: 10, step: 0),
                    MetricPoint(key: "loss", value: 0.25, timestamp: 11, step: 1),
                    MetricPoint(key: "loss", value: 0.9, timestamp: 12, step: 0),
                ], params: [KeyValue("lr", "0.1")], tags: [KeyValue("team", "fraud")]), to: run.id)
        let read = try #require(try await store.trackedRun(run.id))
        #expect(read.params == ["lr": "0.1"] && read.tags["team"] == "fraud")
        // The latest point is the one of the largest step, then the newest.
        #expect(read.metrics == [MetricPoint(key: "loss", value: 0.25, timestamp: 11, step: 1)])
        let history = try await store.metricHistory(ofRun: run.id, key: "loss")
        #expect(history.map(\.value) == [0.5, 0.9, 0.25])
        let ended = try await store.updateTrackedRun(run.id, status: .completed, endedAt: Date(), name: "renamed")
        #expect(ended.status == .completed && ended.endedAt != nil && ended.name == "renamed")
        #expect(try await store.run(run.id)?.kind == .tracked)
        #expect(try await store.trackedRun(String(run.id.prefix(20)))?.id == run.id)
    }

    static func paramsOnce(_ store: Store) async throws {
        let run = try await start(store)
        try await store.log(RunLogBatch(params: [KeyValue("lr", "0.1")]), to: run.id)
        try await store.log(RunLogBatch(params: [KeyValue("lr", "0.1")]), to: run.id)
        await #expect(throws: TrackingError.self) {
            try await store.log(
                RunLogBatch(
                    metrics: [MetricPoint(key: "m", value: 1, timestamp: 1)],
                    params: [KeyValue("depth", "3"), KeyValue("lr", "0.2")]), to: run.id)
        }
        let read = try #require(try await store.trackedRun(run.id))
        #expect(read.params == ["lr": "0.1"] && read.metrics.isEmpty)
        await #expect(throws: TrackingError.self) {
            try await store.log(RunLogBatch(tags: [KeyValue("bad..//key", "x")]), to: run.id)
        }
        let unknown = await #expect(throws: TrackingError.self) {
            try await store.log(RunLogBatch(tags: [KeyValue("k", "v")]), to: "run-000000000000-00000000")
        }
        #expect(unknown?.code == .resourceDoesNotExist)
    }

    static func search(_ store: Store) async throws {
        var ids: [String] = []
        for (index, (auc, learner, team)) in [
            (0.91, "gbdt", "fraud"), (0.85, "gbdt", "ads"), (0.78, "linear", "fraud"), (0.95, "gbdt", "fraud"),
        ].enumerated() {
            let run = try await start(store, name: "r\(index)")
            try await store.log(
                RunLogBatch(
                    metrics: [MetricPoint(key: "auc", value: auc, timestamp: 1)],
                    params: [KeyValue("learner", learner)], tags: [KeyValue("team", team)]), to: run.id)
            ids.append(run.id)
        }
        func names(_ filter: String, _ order: [String] = [], max: Int = 100) async throws -> [String] {
            try await store.searchRuns(
                RunSearch(
                    filter: RunSearchFilter(parsing: filter), orderBy: order.map { try RunOrder(parsing: $0) },
                    maxResults: max)
            ).items.map(\.name)
        }
        #expect(try await names("metrics.auc > 0.8", ["metrics.auc DESC"]) == ["r3", "r0", "r1"])
        #expect(
            try await names("metrics.auc > 0.8 and params.learner = 'gbdt' and tags.team = 'fraud'") == ["r3", "r0"])
        #expect(try await names("params.learner LIKE 'GB%'").isEmpty)
        #expect(try await names("params.learner ILIKE 'GB%'", ["attributes.run_name ASC"]) == ["r0", "r1", "r3"])
        #expect(try await names("tags.team != 'fraud'") == ["r1"])
        #expect(try await names("params.learner IN ('linear', 'none')") == ["r2"])
        #expect(try await names("attributes.status = 'RUNNING' and attributes.kind = 'tracked'").count == 4)
        #expect(try await names("", ["params.learner DESC", "metrics.auc ASC"]) == ["r2", "r1", "r0", "r3"])
        // Pages: full pages carry a token, the one after the last is empty.
        let first = try await store.searchRuns(
            RunSearch(orderBy: [try RunOrder(parsing: "metrics.auc DESC")], maxResults: 3))
        let second = try await store.searchRuns(
            RunSearch(
                orderBy: [try RunOrder(parsing: "metrics.auc DESC")], maxResults: 3, pageToken: first.nextPageToken))
        #expect(first.items.map(\.name) == ["r3", "r0", "r1"] && second.items.map(\.name) == ["r2"])
        #expect(second.nextPageToken == nil)
        await #expect(throws: TrackingError.self) {
            _ = try await store.searchRuns(RunSearch(pageToken: "not-a-token"))
        }
    }

    static func deleteRestore(_ store: Store) async throws {
        let run = try await start(store, name: "gone")
        _ = try await store.updateTrackedRun(run.id, status: .completed, endedAt: nil, name: nil)
        try await store.setRunDeleted(run.id, true)
        #expect(try await store.searchRuns(RunSearch()).items.isEmpty)
        #expect(try await store.searchRuns(RunSearch(lifecycle: .deleted)).items.map(\.id) == [run.id])
        #expect(try await store.runs(RunFilter()).isEmpty)
        #expect(try await store.trackedRun(run.id)?.deleted == true)
        await #expect(throws: TrackingError.self) {
            try await store.log(RunLogBatch(tags: [KeyValue("k", "v")]), to: run.id)
        }
        #expect(try await store.runsDeleted(before: Date().addingTimeInterval(60)) == [run.id])
        try await store.setRunDeleted(run.id, false)
        #expect(try await store.runs(RunFilter()).map(\.id) == [run.id])
        #expect(try await store.runsDeleted(before: Date().addingTimeInterval(60)).isEmpty)
    }

    static func experiments(_ store: Store) async throws {
        let fraud = try await store.createExperiment(name: "fraud", artifactLocation: nil, tags: ["owner": "ada"])
        #expect(fraud.artifactLocation == "mlflow-artifacts:/\(fraud.id)" && fraud.tags == ["owner": "ada"])
        let duplicate = await #expect(throws: TrackingError.self) {
            _ = try await store.createExperiment(name: "fraud", artifactLocation: nil, tags: [:])
        }
        #expect(duplicate?.code == .resourceAlreadyExists)
        let run = try await start(store, experiment: fraud.id)
        try await store.renameExperiment(id: fraud.id, to: "fraud-2026")
        try await store.setExperimentTag(id: fraud.id, key: "stage", value: "dev")
        #expect(try await store.experiment(named: "fraud-2026")?.tags == ["owner": "ada", "stage": "dev"])
        try await store.setExperimentDeleted(id: fraud.id, true)
        #expect(try await store.trackedRun(run.id)?.deleted == true)
        #expect(try await store.experiments(ExperimentSearch()).items.map(\.name) == [Experiment.defaultName])
        let deleted = try await store.experiments(
            ExperimentSearch(filter: RunSearchFilter(parsing: "name LIKE 'fraud%'"), lifecycle: .deleted))
        #expect(deleted.items.map(\.id) == [fraud.id])
        await #expect(throws: TrackingError.self) {
            _ = try await start(store, experiment: fraud.id)
        }
        try await store.setExperimentDeleted(id: fraud.id, false)
        #expect(try await store.trackedRun(run.id)?.deleted == false)
        await #expect(throws: TrackingError.self) {
            try await store.setExperimentDeleted(id: Experiment.defaultID, true)
        }
    }

    static func pipelineRuns(_ store: Store) async throws {
        try await store.registerPipeline("churn")
        try await store.insert(MetadataStoreContract.makeRun("run-pipe", pipeline: "churn"))
        var step = MetadataStoreContract.makeStepRun("sr-1", run: "run-pipe", name: "train")
        step.parameters = #"{"learningRate":0.1,"rounds":50,"learner":"gbdt"}"#
        try await store.insert(step, inputs: [])
        step.status = .completed
        step.endedAt = Date(timeIntervalSince1970: 1_010)
        try await store.completeStepRun(
            step, outputs: [],
            metrics: [
                MetricRecord(name: "loss", value: 0.7, step: 0, loggedAt: Date(timeIntervalSince1970: 1_003)),
                MetricRecord(name: "loss", value: 0.4, step: 1, loggedAt: Date(timeIntervalSince1970: 1_004)),
                MetricRecord(name: "auc", value: 0.88, step: nil, loggedAt: Date(timeIntervalSince1970: 1_005)),
            ])
        let run = try #require(try await store.trackedRun("run-pipe"))
        let experiment = try #require(try await store.experiment(named: "churn"))
        #expect(run.kind == .pipeline && run.experimentID == experiment.id)
        #expect(run.params == ["train.learning_rate": "0.1", "train.rounds": "50", "train.learner": "gbdt"])
        #expect(run.metrics.map(\.key) == ["train.auc", "train.loss"])
        #expect(try await store.metricHistory(ofRun: "run-pipe", key: "train.loss").map(\.value) == [0.7, 0.4])
        let found = try await store.searchRuns(
            RunSearch(
                experimentIDs: [experiment.id],
                filter: RunSearchFilter(parsing: "metrics.train.auc > 0.8 and params.train.rounds = '50'")))
        #expect(found.items.map(\.id) == ["run-pipe"])
        // Tags and notes apply to pipeline runs too; their status stays the engine's.
        try await store.log(RunLogBatch(tags: [KeyValue(TrackedRun.noteTag, "good *run*")]), to: "run-pipe")
        #expect(try await store.trackedRun("run-pipe")?.note == "good *run*")
        await #expect(throws: TrackingError.self) {
            _ = try await store.updateTrackedRun("run-pipe", status: .failed, endedAt: nil, name: nil)
        }
        // A tracked run's experiment is not listed as a pipeline.
        _ = try await start(store)
        #expect(try await store.pipelines().map(\.name) == ["churn"])
    }

    static func concurrentWriters(_ store: Store) async throws {
        let run = try await start(store)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<8 {
                group.addTask {
                    for point in 0..<50 {
                        try await store.log(
                            RunLogBatch(
                                metrics: [
                                    MetricPoint(
                                        key: "w\(writer % 2)", value: Double(writer * 100 + point),
                                        timestamp: Int64(point), step: Int64(point))
                                ],
                                params: point == 0 ? [KeyValue("writer\(writer)", "\(writer)")] : [],
                                tags: [KeyValue("last\(writer)", "\(point)")]), to: run.id)
                    }
                }
            }
            try await group.waitForAll()
        }
        let read = try #require(try await store.trackedRun(run.id))
        #expect(read.params.count == 8)
        #expect((0..<8).allSatisfy { read.tags["last\($0)"] == "49" })
        let history0 = try await store.metricHistory(ofRun: run.id, key: "w0")
        let history1 = try await store.metricHistory(ofRun: run.id, key: "w1")
        #expect(history0.count == 200 && history1.count == 200)
        // The latest of w1 is at step 49 with the largest value logged there (writer 7).
        #expect(read.metrics.first { $0.key == "w1" }?.value == 749)
    }

    static func nonFinite(_ store: Store) async throws {
        let run = try await start(store)
        try await store.log(
            RunLogBatch(metrics: [
                MetricPoint(key: "odd", value: .nan, timestamp: 1, step: 0),
                MetricPoint(key: "odd", value: .infinity, timestamp: 2, step: 1),
                MetricPoint(key: "odd", value: -.infinity, timestamp: 3, step: 2),
            ]), to: run.id)
        let history = try await store.metricHistory(ofRun: run.id, key: "odd")
        #expect(history[0].value.isNaN)
        #expect(history[1].value == .greatestFiniteMagnitude && history[2].value == -.greatestFiniteMagnitude)
        #expect(
            try await store.searchRuns(RunSearch(filter: RunSearchFilter(parsing: "metrics.odd < 0"))).items.count == 1)
    }

    static func documents(_ store: Store) async throws {
        try await store.putDocument(
            TrackingDocument(kind: "artifact", id: "1/r/artifacts/a.txt", runID: nil, body: "{}"))
        try await store.putDocument(
            TrackingDocument(kind: "artifact", id: "1/r/artifacts/dir/b", runID: nil, body: "{}"))
        try await store.putDocument(TrackingDocument(kind: "artifact", id: "1/r/artifactsX", runID: nil, body: "{}"))
        try await store.putDocument(
            TrackingDocument(kind: "artifact", id: "1/r/artifacts/a.txt", runID: nil, body: #"{"v": 2}"#))
        let listed = try await store.documents(kind: "artifact", idPrefix: "1/r/artifacts/")
        #expect(listed.map(\.id) == ["1/r/artifacts/a.txt", "1/r/artifacts/dir/b"])
        #expect(try await store.document(kind: "artifact", id: "1/r/artifacts/a.txt")?.body == #"{"v": 2}"#)
        #expect(try await store.deleteDocument(kind: "artifact", id: "1/r/artifacts/a.txt"))
        #expect(try await !store.deleteDocument(kind: "artifact", id: "1/r/artifacts/a.txt"))
    }
}
