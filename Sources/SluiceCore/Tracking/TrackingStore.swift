import Foundation

/// Records runs that code outside pipelines tracks (a notebook, a script through MLflow's client, the Swift
/// ``Tracker``) beside pipeline runs, with experiments, params, tags, metric series and notes, and searches all runs
/// with one filter language (``RunSearchFilter``).
///
/// Pipeline runs take part: each pipeline is an experiment of the same name, its step runs' metrics and parameters
/// are the run's metrics and params, and tags, notes, renames and deletion apply to both kinds.
public protocol TrackingStore: Sendable {
    /// Creates an experiment; `artifactLocation` nil means `mlflow-artifacts:/<id>`.
    /// - Throws: ``TrackingError`` `resourceAlreadyExists` when the name is taken (deleted experiments too).
    func createExperiment(name: String, artifactLocation: String?, tags: [String: String]) async throws -> Experiment
    /// One experiment by ID, deleted or not.
    func experiment(id: String) async throws -> Experiment?
    /// One experiment by name, deleted or not.
    func experiment(named name: String) async throws -> Experiment?
    /// Experiments matching a search, ordered and paged.
    func experiments(_ search: ExperimentSearch) async throws -> TrackingPage<Experiment>
    /// Renames an experiment.
    func renameExperiment(id: String, to name: String) async throws
    /// Marks an experiment (and its runs) deleted, or restores it.
    func setExperimentDeleted(id: String, _ deleted: Bool) async throws
    /// Sets one experiment tag.
    func setExperimentTag(id: String, key: String, value: String) async throws

    /// Starts a tracked run.
    func createTrackedRun(_ start: TrackedRunStart) async throws -> TrackedRun
    /// A run of either kind with its params, tags and latest metrics, by full ID or unique prefix.
    func trackedRun(_ idOrPrefix: String) async throws -> TrackedRun?
    /// Ends a run with a status, renames it, or both. A pipeline run's status is the engine's and cannot be set.
    func updateTrackedRun(_ id: RunID, status: RunStatus?, endedAt: Date?, name: String?) async throws -> TrackedRun
    /// Marks a run deleted (it leaves lists and searches unless asked for) or restores it.
    func setRunDeleted(_ id: RunID, _ deleted: Bool) async throws
    /// In one transaction: metrics (appended to their series), params (a param keeps its first value: logging a
    /// different one is refused) and tags (replaced).
    func log(_ batch: RunLogBatch, to run: RunID) async throws
    /// Removes one tag of a run.
    func deleteTag(_ key: String, ofRun run: RunID) async throws
    /// Records datasets a run read.
    func logInputs(_ inputs: [DatasetInput], to run: RunID) async throws
    /// Every point of one metric of a run, in step then time order.
    func metricHistory(ofRun run: RunID, key: String) async throws -> [MetricPoint]
    /// Runs matching a search, ordered and paged.
    func searchRuns(_ search: RunSearch) async throws -> TrackingPage<TrackedRun>
    /// Runs deleted before `date`, oldest first (what `sluice gc` may purge).
    func runsDeleted(before date: Date) async throws -> [RunID]

    /// Saves (or replaces) a document: a protocol record Sluice keeps as it came (MLflow's logged models, a run's
    /// model outputs, the index of a run's uploaded files).
    func putDocument(_ document: TrackingDocument) async throws
    /// One document.
    func document(kind: String, id: String) async throws -> TrackingDocument?
    /// Documents of a kind whose ID starts with `prefix`, in ID order.
    func documents(kind: String, idPrefix: String) async throws -> [TrackingDocument]
    /// Removes one document; returns whether it existed.
    @discardableResult
    func deleteDocument(kind: String, id: String) async throws -> Bool
}

/// A record the tracking protocol keeps whole: its kind, its ID, the run it belongs to and its JSON body.
public struct TrackingDocument: Sendable, Equatable {
    public var kind: String
    public var id: String
    public var runID: RunID?
    public var body: String
    public var updatedAt: Date

    /// Creates a document.
    public init(kind: String, id: String, runID: RunID?, body: String, updatedAt: Date = Date()) {
        self.kind = kind
        self.id = id
        self.runID = runID
        self.body = body
        self.updatedAt = updatedAt
    }
}

/// A page of search results and the token that fetches the next (nil on the last page).
public struct TrackingPage<Item: Sendable>: Sendable {
    /// The items on this page.
    public var items: [Item]
    /// Pass back as the search's `pageToken` for the next page.
    public var nextPageToken: String?

    /// Creates a page.
    public init(items: [Item], nextPageToken: String?) {
        self.items = items
        self.nextPageToken = nextPageToken
    }
}

/// A named group of runs (MLflow's experiment); every pipeline is one too.
public struct Experiment: Codable, Sendable, Equatable {
    /// A decimal number as text (`"0"` is the default experiment).
    public var id: String
    public var name: String
    /// Where the runs' artifacts are addressed from (`mlflow-artifacts:/<id>`).
    public var artifactLocation: String
    /// Whether it was deleted (restorable).
    public var deleted: Bool
    public var createdAt: Date
    public var updatedAt: Date
    public var tags: [String: String]

    /// Creates an experiment record.
    public init(
        id: String, name: String, artifactLocation: String, deleted: Bool, createdAt: Date, updatedAt: Date,
        tags: [String: String]
    ) {
        self.id = id
        self.name = name
        self.artifactLocation = artifactLocation
        self.deleted = deleted
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.tags = tags
    }

    /// The ID of the experiment runs go to when none is named.
    public static let defaultID = "0"
    /// Its name.
    public static let defaultName = "Default"
}

/// Whether a run was recorded by the run engine or by code outside pipelines.
public enum RunKind: String, Codable, Sendable, CaseIterable {
    /// A run of a pipeline.
    case pipeline
    /// A run some code recorded through the tracking API or the MLflow protocol.
    case tracked
}

/// One value of a metric series.
public struct MetricPoint: Codable, Sendable, Equatable {
    public var key: String
    /// The value; NaN and the infinities are kept as they are.
    public var value: Double
    /// Milliseconds since 1970.
    public var timestamp: Int64
    /// The training step or round it belongs to (0 when none was given).
    public var step: Int64

    /// Creates a point.
    public init(key: String, value: Double, timestamp: Int64, step: Int64 = 0) {
        self.key = key
        self.value = value
        self.timestamp = timestamp
        self.step = step
    }
}

/// A key and a value: a param or a tag.
public struct KeyValue: Codable, Sendable, Hashable {
    public var key: String
    public var value: String

    /// Creates the pair.
    public init(_ key: String, _ value: String) {
        self.key = key
        self.value = value
    }
}

/// What one logging call adds to a run.
public struct RunLogBatch: Sendable, Equatable {
    public var metrics: [MetricPoint]
    public var params: [KeyValue]
    public var tags: [KeyValue]

    /// Creates a batch.
    public init(metrics: [MetricPoint] = [], params: [KeyValue] = [], tags: [KeyValue] = []) {
        self.metrics = metrics
        self.params = params
        self.tags = tags
    }
}

/// A dataset a run read (MLflow's dataset input), with its tags (`mlflow.data.context`: training, evaluation).
public struct DatasetInput: Codable, Sendable, Equatable {
    public var name: String
    public var digest: String
    public var sourceType: String
    public var source: String
    public var schema: String?
    public var profile: String?
    public var tags: [KeyValue]

    /// Creates the record.
    public init(
        name: String, digest: String, sourceType: String, source: String, schema: String? = nil,
        profile: String? = nil, tags: [KeyValue] = []
    ) {
        self.name = name
        self.digest = digest
        self.sourceType = sourceType
        self.source = source
        self.schema = schema
        self.profile = profile
        self.tags = tags
    }
}

/// What a tracked run starts with.
public struct TrackedRunStart: Sendable {
    public var experimentID: String
    /// Nil: a generated name (`brave-otter-417`).
    public var name: String?
    public var user: String
    public var startedAt: Date
    public var tags: [KeyValue]
    /// The process recording the run, when it is one (a crashed one marks the run crashed); nil for runs recorded
    /// over HTTP, whose client Sluice cannot watch.
    public var owner: ProcessOwner?
    /// Who ran it where, when known.
    public var environment: RunEnvironment?

    /// Creates the request.
    public init(
        experimentID: String, name: String? = nil, user: String, startedAt: Date = Date(), tags: [KeyValue] = [],
        owner: ProcessOwner? = nil, environment: RunEnvironment? = nil
    ) {
        self.experimentID = experimentID
        self.name = name
        self.user = user
        self.startedAt = startedAt
        self.tags = tags
        self.owner = owner
        self.environment = environment
    }
}

/// A run as the tracking API sees it (either kind): identity, status, params, tags and each metric's latest value.
public struct TrackedRun: Codable, Sendable, Equatable {
    public var id: RunID
    public var experimentID: String
    public var name: String
    public var kind: RunKind
    /// The pipeline's name for a pipeline run; the experiment's name when the tracked run started.
    public var pipeline: String
    public var status: RunStatus
    public var user: String
    public var startedAt: Date
    public var endedAt: Date?
    /// Where its artifacts are addressed (`<experiment location>/<run>/artifacts`).
    public var artifactURI: String
    public var deleted: Bool
    public var params: [String: String]
    public var tags: [String: String]
    /// Each metric's latest point (largest step, then newest, then largest value).
    public var metrics: [MetricPoint]
    public var inputs: [DatasetInput]

    /// Creates the record.
    public init(
        id: RunID, experimentID: String, name: String, kind: RunKind, pipeline: String, status: RunStatus,
        user: String, startedAt: Date, endedAt: Date?, artifactURI: String, deleted: Bool,
        params: [String: String] = [:], tags: [String: String] = [:], metrics: [MetricPoint] = [],
        inputs: [DatasetInput] = []
    ) {
        self.id = id
        self.experimentID = experimentID
        self.name = name
        self.kind = kind
        self.pipeline = pipeline
        self.status = status
        self.user = user
        self.startedAt = startedAt
        self.endedAt = endedAt
        self.artifactURI = artifactURI
        self.deleted = deleted
        self.params = params
        self.tags = tags
        self.metrics = metrics
        self.inputs = inputs
    }

    /// The run's Markdown note (the `mlflow.note.content` tag, so MLflow's UI and client see it too).
    public var note: String? { tags[TrackedRun.noteTag] }

    /// The tag a run's note is kept in.
    public static let noteTag = "mlflow.note.content"
    /// The tag MLflow keeps a run's name in too.
    public static let nameTag = "mlflow.runName"
}

/// Which runs a search covers, beyond its filter.
public enum LifecycleView: String, Sendable, CaseIterable {
    /// Runs (or experiments) not deleted.
    case active
    /// Deleted ones only.
    case deleted
    /// Both.
    case all
}

/// A search of runs: experiments, a filter, an order and a page.
public struct RunSearch: Sendable {
    /// Experiments to search; empty searches all.
    public var experimentIDs: [String]
    public var filter: RunSearchFilter
    public var orderBy: [RunOrder]
    public var lifecycle: LifecycleView
    public var maxResults: Int
    /// A token a previous page returned.
    public var pageToken: String?

    /// Creates a search.
    public init(
        experimentIDs: [String] = [], filter: RunSearchFilter = RunSearchFilter(), orderBy: [RunOrder] = [],
        lifecycle: LifecycleView = .active, maxResults: Int = 1000, pageToken: String? = nil
    ) {
        self.experimentIDs = experimentIDs
        self.filter = filter
        self.orderBy = orderBy
        self.lifecycle = lifecycle
        self.maxResults = maxResults
        self.pageToken = pageToken
    }
}

/// A search of experiments by name.
public struct ExperimentSearch: Sendable {
    /// `name LIKE '%fraud%'` style conditions, over `name` and `tags.<key>` (and-ed).
    public var filter: RunSearchFilter
    /// `name`, `start_time` (creation), `end_time` (last update) or `run_id` (the experiment's ID); newest first
    /// when empty.
    public var orderBy: [RunOrder]
    public var lifecycle: LifecycleView
    public var maxResults: Int
    public var pageToken: String?

    /// Creates a search.
    public init(
        filter: RunSearchFilter = RunSearchFilter(), orderBy: [RunOrder] = [], lifecycle: LifecycleView = .active,
        maxResults: Int = 1000, pageToken: String? = nil
    ) {
        self.filter = filter
        self.orderBy = orderBy
        self.lifecycle = lifecycle
        self.maxResults = maxResults
        self.pageToken = pageToken
    }
}

/// Page tokens: the offset of the next page, base64 of `{"offset": N}` as MLflow's server writes them.
public enum PageToken {
    /// The token for the page starting at `offset`.
    public static func make(offset: Int) -> String {
        Data("{\"offset\": \(offset)}".utf8).base64EncodedString()
    }

    /// The offset a token names (0 for nil).
    /// - Throws: ``TrackingError`` `invalidParameterValue` for a token this server did not write.
    public static func offset(_ token: String?) throws -> Int {
        guard let token, !token.isEmpty else { return 0 }
        guard let data = Data(base64Encoded: token),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let offset = (object["offset"] as? NSNumber)?.intValue, offset >= 0
        else {
            throw TrackingError(.invalidParameterValue, "invalid page token '\(token)': pass back a next_page_token")
        }
        return offset
    }
}

/// A file a run logged (the Swift ``Tracker``, MLflow's artifact proxy): where its content is in the artifact
/// store, kept as a ``TrackingDocument`` of kind ``kind`` whose ID is its path (`<experiment>/<run>/artifacts/…`).
public struct TrackedFile: Codable, Sendable, Equatable {
    /// The document kind files are kept under.
    public static let kind = "artifact"
    /// The content's URI in the artifact store.
    public var uri: String
    /// `sha256:<hex>`.
    public var contentHash: String
    public var size: Int64

    /// The record of stored content.
    public init(_ stored: StoredContent) {
        uri = stored.uri
        contentHash = stored.contentHash
        size = stored.size
    }

    private enum CodingKeys: String, CodingKey {
        case uri
        case contentHash = "content_hash"
        case size
    }

    /// The document that keeps it at `path`.
    public func document(path: String, runID: RunID?) throws -> TrackingDocument {
        let body = try JSONEncoder().encode(self)
        return TrackingDocument(kind: Self.kind, id: path, runID: runID, body: String(decoding: body, as: UTF8.self))
    }

    /// The file a document keeps.
    /// - Throws: ``TrackingError`` when the document is not a file's.
    public init(_ document: TrackingDocument) throws {
        do {
            self = try JSONDecoder().decode(TrackedFile.self, from: Data(document.body.utf8))
        } catch {
            throw TrackingError(.badRequest, "the record of '\(document.id)' is not a file's: \(error)")
        }
    }
}
