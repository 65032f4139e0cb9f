import Foundation

/// Records runs from code outside pipelines (a notebook, a script, a quick experiment) into a stack's store:
/// params, metric series, tags, a note and files, as runs of kind ``RunKind/tracked`` beside pipeline runs.
///
/// ```swift
/// let tracker = Tracker(stack: stack)
/// try await tracker.run(experiment: "fraud", name: "baseline") { run in
///     try await run.log(params: ["learner": "gbdt", "rounds": "200"])
///     for (round, loss) in losses.enumerated() { try await run.log(metric: "loss", loss, step: round) }
///     try await run.log(file: URL(fileURLWithPath: "confusion.png"))
/// }
/// ```
public struct Tracker: Sendable {
    let store: any TrackingStore
    let artifacts: any ArtifactStore

    /// A tracker over a tracking store and the artifact store files go to.
    public init(store: any TrackingStore, artifacts: any ArtifactStore) {
        self.store = store
        self.artifacts = artifacts
    }

    /// A tracker over a stack's stores.
    public init(stack: Stack) {
        self.init(store: stack.tracking, artifacts: stack.artifacts)
    }

    /// Starts a run in `experiment` (created when new); the run belongs to this process, so a crash marks it
    /// crashed.
    public func startRun(experiment: String = Experiment.defaultName, name: String? = nil, tags: [String: String] = [:])
        async throws -> TrackedRunHandle
    {
        let found: Experiment
        if let existing = try await store.experiment(named: experiment) {
            found = existing
        } else {
            do {
                found = try await store.createExperiment(name: experiment, artifactLocation: nil, tags: [:])
            } catch let error as TrackingError where error.code == .resourceAlreadyExists {
                // Another process created it meanwhile.
                guard let existing = try await store.experiment(named: experiment) else { throw error }
                found = existing
            }
        }
        let environment = RunEnvironment.basic()
        let run = try await store.createTrackedRun(
            TrackedRunStart(
                experimentID: found.id, name: name, user: environment.user,
                tags: tags.sorted { $0.key < $1.key }.map { KeyValue($0.key, $0.value) } + [
                    KeyValue("mlflow.user", environment.user), KeyValue("mlflow.source.type", "LOCAL"),
                    KeyValue("mlflow.source.name", environment.arguments.first ?? "swift"),
                ], owner: .current, environment: environment))
        return TrackedRunHandle(id: run.id, location: run.artifactURI, store: store, artifacts: artifacts)
    }

    /// Runs `body` in a new run, which ends completed when it returns and failed when it throws.
    @discardableResult
    public func run<T: Sendable>(
        experiment: String = Experiment.defaultName, name: String? = nil, tags: [String: String] = [:],
        _ body: (TrackedRunHandle) async throws -> T
    ) async throws -> T {
        let run = try await startRun(experiment: experiment, name: name, tags: tags)
        do {
            let value = try await body(run)
            try await run.end(.completed)
            return value
        } catch {
            try? await run.end(.failed)
            throw error
        }
    }
}

/// A run being tracked: log to it, then ``end(_:)`` it.
public struct TrackedRunHandle: Sendable {
    /// The run's ID (its records are a run like any other: `sluice runs show ID`).
    public let id: RunID
    /// Its artifact URI (`mlflow-artifacts:/<experiment>/<run>/artifacts`).
    let location: String
    let store: any TrackingStore
    let artifacts: any ArtifactStore

    static func now() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded()) }

    /// Logs one param (a param keeps its first value: logging another is refused).
    public func log(param key: String, _ value: String) async throws {
        try await store.log(RunLogBatch(params: [KeyValue(key, value)]), to: id)
    }

    /// Logs params in one call.
    public func log(params: [String: String]) async throws {
        try await store.log(
            RunLogBatch(params: params.sorted { $0.key < $1.key }.map { KeyValue($0.key, $0.value) }), to: id)
    }

    /// Logs one point of a metric series.
    public func log(metric key: String, _ value: Double, step: Int = 0) async throws {
        try await store.log(
            RunLogBatch(metrics: [MetricPoint(key: key, value: value, timestamp: Self.now(), step: Int64(step))]),
            to: id)
    }

    /// Logs several metrics at one step in one call.
    public func log(metrics: [String: Double], step: Int = 0) async throws {
        let now = Self.now()
        try await store.log(
            RunLogBatch(
                metrics: metrics.sorted { $0.key < $1.key }.map {
                    MetricPoint(key: $0.key, value: $0.value, timestamp: now, step: Int64(step))
                }), to: id)
    }

    /// Sets a tag.
    public func set(tag key: String, _ value: String) async throws {
        try await store.log(RunLogBatch(tags: [KeyValue(key, value)]), to: id)
    }

    /// Writes the run's Markdown note.
    public func note(_ markdown: String) async throws {
        try await set(tag: TrackedRun.noteTag, markdown)
    }

    /// Stores a file in the artifact store as one of the run's artifacts, under `path` (the file's name by
    /// default), where MLflow's client lists and downloads it too.
    public func log(file: URL, as path: String? = nil) async throws {
        let name = path ?? file.lastPathComponent
        let parts = name.split(separator: "/", omittingEmptySubsequences: false)
        guard !name.isEmpty, !name.hasPrefix("/"), !parts.contains(".."), !parts.contains("") else {
            throw TrackingError(.invalidParameterValue, "Invalid artifact path: '\(name)'")
        }
        let data: Data
        do {
            data = try Data(contentsOf: file)
        } catch {
            throw TrackingError(
                .invalidParameterValue, "cannot read \(file.path): \(error.localizedDescription)",
                hint: "check the path and that the file is readable.")
        }
        let stored = try artifacts.store(data: data)
        var root = String(location.drop { $0 != ":" }.dropFirst())
        while root.hasPrefix("/") { root.removeFirst() }
        try await store.putDocument(try TrackedFile(stored).document(path: "\(root)/\(name)", runID: id))
    }

    /// Ends the run.
    public func end(_ status: RunStatus = .completed) async throws {
        _ = try await store.updateTrackedRun(id, status: status, endedAt: Date(), name: nil)
    }
}
