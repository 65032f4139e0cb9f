import Foundation

/// Records pipelines, runs, step runs, artifacts and the events between them, and answers cache and
/// lineage questions.
///
/// Every implementation must pass the contract suite in `SluiceTesting` (`MetadataStoreContract`).
/// Reads of runs report a run whose owning process has died as ``RunStatus/crashed``.
public protocol MetadataStore: Sendable {
    /// Records that a pipeline exists (idempotent).
    func registerPipeline(_ name: String) async throws
    /// Saves a new run.
    func insert(_ run: Run) async throws
    /// Records how a run ended, when it is still running: a run ends once. Returns whether this call ended it
    /// (false when another finisher, a cancellation or the crash check recorded its end first; that end stands).
    @discardableResult
    func finishRun(_ id: RunID, status: RunStatus, endedAt: Date, error: String?) async throws -> Bool
    /// Replaces a run's environment (filled in while the run executes).
    func updateEnvironment(_ id: RunID, _ environment: RunEnvironment) async throws

    /// Saves a step run that has started (or was skipped, failed or cancelled) with its input events.
    func insert(_ stepRun: StepRun, inputs: [Event]) async throws
    /// Updates a step run's status, end time, error, log and properties.
    func finishStepRun(_ stepRun: StepRun, metrics: [MetricRecord]) async throws
    /// In one transaction: saves new artifacts, output events, metrics and the step run's final record.
    func completeStepRun(
        _ stepRun: StepRun, outputs: [ArtifactRecord], metrics: [MetricRecord]) async throws
    /// In one transaction: saves cached step runs, each with input events and output events pointing at the
    /// original's artifacts. The engine batches consecutive cache hits into one call.
    func insertCachedStepRuns(_ records: [CachedStepRun]) async throws

    /// The newest completed (not cached) step run with this cache key and its outputs, or `nil` on a miss.
    /// One round trip: this is on every step's path.
    func cacheHit(for cacheKey: CacheKey) async throws -> CacheHit?
    /// The cache lookup of a step about to run, and on a miss its start: `nil` means no completed step run has
    /// `stepRun`'s cache key and `stepRun` is now recorded (as ``insert(_:inputs:)`` records it). A hit records
    /// nothing. Stores on a network answer both in one round trip; the default makes the two calls.
    func cacheHitOrStart(_ stepRun: StepRun, inputs: [Event]) async throws -> CacheHit?
    /// The artifacts a step run wrote or reused, by output name.
    func outputs(ofStepRun id: String) async throws -> [String: ArtifactRecord]

    /// Known pipelines with run counts.
    func pipelines() async throws -> [PipelineRecord]
    /// Runs, newest first, filtered.
    func runs(_ filter: RunFilter) async throws -> [Run]
    /// One run by full ID or unique prefix.
    func run(_ idOrPrefix: String) async throws -> Run?
    /// The step runs of a run, in start order.
    func stepRuns(ofRun id: RunID) async throws -> [StepRun]
    /// The step runs of a run whose step is one of `steps`, in start order (a step run reading its inputs asks for
    /// its producers' only, however long the pipeline).
    func stepRuns(ofRun id: RunID, steps: [String]) async throws -> [StepRun]
    /// One step run by ID.
    func stepRun(_ id: String) async throws -> StepRun?
    /// Replaces an artifact record's properties (retention marks an artifact whose content it deleted).
    func setProperties(_ properties: [String: PropertyValue], ofArtifact id: String) async throws
    /// Metrics a step run logged.
    func metrics(ofStepRun id: String) async throws -> [MetricRecord]

    /// Artifacts, newest first, filtered.
    func artifacts(_ filter: ArtifactFilter) async throws -> [ArtifactRecord]
    /// One artifact by full ID or unique prefix.
    func artifact(_ idOrPrefix: String) async throws -> ArtifactRecord?
    /// Events that touch an artifact (who wrote it, who read it).
    func events(ofArtifact id: String) async throws -> [Event]
    /// Events of a step run (what it read and wrote).
    func events(ofStepRun id: String) async throws -> [Event]
}

/// A step run that reused an earlier one's outputs, with the events it is recorded with.
public struct CachedStepRun: Sendable, Equatable {
    /// The cached step run (``StepRun/cachedFrom`` names the original).
    public var stepRun: StepRun
    /// Input events, and output events pointing at the original's artifacts.
    public var events: [Event]

    /// Creates the record.
    public init(stepRun: StepRun, events: [Event]) {
        self.stepRun = stepRun
        self.events = events
    }
}

/// An earlier step run whose outputs a new step run can reuse.
public struct CacheHit: Sendable, Equatable {
    /// The completed step run that wrote the outputs.
    public var stepRun: StepRun
    /// Its outputs by name.
    public var outputs: [String: ArtifactRecord]

    /// Creates a cache hit.
    public init(stepRun: StepRun, outputs: [String: ArtifactRecord]) {
        self.stepRun = stepRun
        self.outputs = outputs
    }
}

/// Which runs to list.
public struct RunFilter: Sendable, Equatable {
    public var pipeline: String?
    public var status: RunStatus?
    public var limit: Int

    /// Creates a filter; the default lists the newest 50 runs of any pipeline.
    public init(pipeline: String? = nil, status: RunStatus? = nil, limit: Int = 50) {
        self.pipeline = pipeline
        self.status = status
        self.limit = limit
    }
}

/// Which artifacts to list.
public struct ArtifactFilter: Sendable, Equatable {
    public var runID: RunID?
    public var name: String?
    public var limit: Int

    /// Creates a filter; the default lists the newest 50 artifacts.
    public init(runID: RunID? = nil, name: String? = nil, limit: Int = 50) {
        self.runID = runID
        self.name = name
        self.limit = limit
    }
}

/// A lookup by ID prefix that matched more than one record.
public struct AmbiguousIDError: Error, CustomStringConvertible {
    public var prefix: String
    public var matches: [String]

    /// Creates the error.
    public init(prefix: String, matches: [String]) {
        self.prefix = prefix
        self.matches = matches
    }
}

extension MetadataStore {
    /// Looks the key up, and records `stepRun` started when nothing matches.
    public func cacheHitOrStart(_ stepRun: StepRun, inputs: [Event]) async throws -> CacheHit? {
        if let key = stepRun.cacheKey, let hit = try await cacheHit(for: key) { return hit }
        try await insert(stepRun, inputs: inputs)
        return nil
    }

    /// Filters ``stepRuns(ofRun:)``; stores with an index on step names answer it themselves.
    public func stepRuns(ofRun id: RunID, steps: [String]) async throws -> [StepRun] {
        let wanted = Set(steps)
        return try await stepRuns(ofRun: id).filter { wanted.contains($0.stepName) }
    }
}
