import Foundation

/// The ID of a run: time-ordered, so IDs sort by start time, and short enough to type a prefix of.
public typealias RunID = String

/// How a run ended, or that it has not.
public enum RunStatus: String, Codable, Sendable, CaseIterable {
    case running, completed, failed, cancelled, crashed

    /// Whether the run has ended for good.
    public var isFinal: Bool { self != .running }
}

/// What happened to one step in one run.
public enum StepRunStatus: String, Codable, Sendable, CaseIterable {
    case running, completed, cached, failed, skipped, cancelled, crashed

    /// Whether the step's outputs exist after this step run.
    public var producedOutputs: Bool { self == .completed || self == .cached }
}

/// One execution of a pipeline: its resolved config, the environment it ran in, status and timings.
public struct Run: Codable, Sendable, Equatable, Identifiable {
    public var id: RunID
    public var pipeline: String
    public var status: RunStatus
    /// The fully resolved run config, as YAML.
    public var config: String
    public var environment: RunEnvironment
    /// The process that executes the run; lets a reader tell a live run from a crashed one.
    public var owner: ProcessOwner
    public var startedAt: Date
    public var endedAt: Date?
    public var error: String?
    /// What started the run: a person, a schedule, files arriving, or a reproduction of another run.
    public var trigger: RunTrigger
    /// A pipeline run, or a run code outside pipelines tracked (``TrackingStore``).
    public var kind: RunKind
    /// The name someone gave the run (`sluice runs rename`, MLflow's run name); nil when none was given.
    public var name: String?

    /// Creates a run record.
    public init(
        id: RunID, pipeline: String, status: RunStatus, config: String, environment: RunEnvironment,
        owner: ProcessOwner, startedAt: Date, endedAt: Date? = nil, error: String? = nil,
        trigger: RunTrigger = .manual, kind: RunKind = .pipeline, name: String? = nil
    ) {
        self.kind = kind
        self.name = name
        self.id = id
        self.pipeline = pipeline
        self.status = status
        self.config = config
        self.environment = environment
        self.owner = owner
        self.startedAt = startedAt
        self.endedAt = endedAt
        self.error = error
        self.trigger = trigger
    }

    /// Wall time from start to end, or to now while running.
    public var duration: TimeInterval { (endedAt ?? Date()).timeIntervalSince(startedAt) }

    private enum CodingKeys: String, CodingKey {
        case id, pipeline, status, config, environment, owner, startedAt, endedAt, error, trigger, kind, name
    }

    /// Decodes a run; records written before tracking existed have no kind (a pipeline run) and no name.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(RunID.self, forKey: .id)
        pipeline = try c.decode(String.self, forKey: .pipeline)
        status = try c.decode(RunStatus.self, forKey: .status)
        config = try c.decode(String.self, forKey: .config)
        environment = try c.decode(RunEnvironment.self, forKey: .environment)
        owner = try c.decode(ProcessOwner.self, forKey: .owner)
        startedAt = try c.decode(Date.self, forKey: .startedAt)
        endedAt = try c.decodeIfPresent(Date.self, forKey: .endedAt)
        error = try c.decodeIfPresent(String.self, forKey: .error)
        trigger = try c.decodeIfPresent(RunTrigger.self, forKey: .trigger) ?? .manual
        kind = try c.decodeIfPresent(RunKind.self, forKey: .kind) ?? .pipeline
        name = try c.decodeIfPresent(String.self, forKey: .name)
    }
}

/// What started a run. Recorded beside the run (never in its config or artifacts, so a triggered run caches and
/// reproduces like a manual one).
public struct RunTrigger: Codable, Sendable, Equatable {
    /// The kinds of trigger.
    public enum Kind: String, Codable, Sendable, CaseIterable {
        /// Someone ran `sluice run` (or called the engine).
        case manual
        /// `sluice schedule`: a cron expression came due.
        case schedule
        /// `sluice watch`: files appeared or changed in a watched folder.
        case watch
        /// `sluice runs reproduce`: a re-execution of another run.
        case reproduce
    }

    public var kind: Kind
    /// The specifics: the cron expression and the time it came due, the folder watched, the reproduced run's ID.
    public var detail: String?
    /// For a watch trigger, the files that appeared or changed (paths as given, sorted); empty otherwise.
    public var files: [String]

    /// Creates a trigger record.
    public init(kind: Kind, detail: String? = nil, files: [String] = []) {
        self.kind = kind
        self.detail = detail
        self.files = files
    }

    /// A run started by hand.
    public static let manual = RunTrigger(kind: .manual)

    /// One line for listings: `watch: 3 files in data/incoming (a.csv, b.csv, …)`.
    public var summary: String {
        var text = kind.rawValue
        if let detail { text += ": \(detail)" }
        if !files.isEmpty {
            let names = files.prefix(3).map { ($0 as NSString).lastPathComponent }.joined(separator: ", ")
            let more = files.count > 3 ? ", …" : ""
            text += " (\(files.count) file\(files.count == 1 ? "" : "s"): \(names)\(more))"
        }
        return text
    }

    /// The record as stored in a metadata store's `triggered_by` column: nil for a manual run.
    public var storedJSON: String? {
        guard self != .manual else { return nil }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(self)).flatMap { String(data: $0, encoding: .utf8) }
    }

    /// Reads a stored `triggered_by` value: nil (runs recorded before triggers existed, and manual runs) is manual.
    public init(storedJSON: String?) {
        guard let storedJSON, let decoded = try? JSONDecoder().decode(RunTrigger.self, from: Data(storedJSON.utf8))
        else {
            self = .manual
            return
        }
        self = decoded
    }
}

/// Who ran a run, where, with which code.
public struct RunEnvironment: Codable, Sendable, Equatable {
    public var user: String
    public var host: String
    public var os: String
    public var swiftVersion: String
    public var sluiceVersion: String
    public var gitCommit: String?
    public var gitDirty: Bool?
    public var binaryPath: String?
    public var binaryHash: String?
    public var arguments: [String]

    /// Creates an environment record.
    public init(
        user: String, host: String, os: String, swiftVersion: String, sluiceVersion: String,
        gitCommit: String? = nil, gitDirty: Bool? = nil, binaryPath: String? = nil, binaryHash: String? = nil,
        arguments: [String] = []
    ) {
        self.user = user
        self.host = host
        self.os = os
        self.swiftVersion = swiftVersion
        self.sluiceVersion = sluiceVersion
        self.gitCommit = gitCommit
        self.gitDirty = gitDirty
        self.binaryPath = binaryPath
        self.binaryHash = binaryHash
        self.arguments = arguments
    }
}

/// One step's execution within a run: its status, cache key, parameters, timings and where its log is.
public struct StepRun: Codable, Sendable, Equatable, Identifiable {
    public var id: String
    public var runID: RunID
    /// The step's name in the pipeline.
    public var stepName: String
    /// The step's type name (`Split`, or the function step's name).
    public var kind: String
    public var status: StepRunStatus
    public var cacheKey: CacheKey?
    public var codeVersion: Int
    /// The resolved parameters, as canonical JSON.
    public var parameters: String
    public var seed: UInt64
    public var startedAt: Date?
    public var endedAt: Date?
    public var error: String?
    public var logPath: String?
    /// For a cached step run, the step run whose outputs it reused.
    public var cachedFrom: String?
    public var properties: [String: PropertyValue]

    /// Creates a step run record.
    public init(
        id: String, runID: RunID, stepName: String, kind: String, status: StepRunStatus,
        cacheKey: CacheKey?, codeVersion: Int, parameters: String, seed: UInt64, startedAt: Date?,
        endedAt: Date? = nil, error: String? = nil, logPath: String? = nil, cachedFrom: String? = nil,
        properties: [String: PropertyValue] = [:]
    ) {
        self.id = id
        self.runID = runID
        self.stepName = stepName
        self.kind = kind
        self.status = status
        self.cacheKey = cacheKey
        self.codeVersion = codeVersion
        self.parameters = parameters
        self.seed = seed
        self.startedAt = startedAt
        self.endedAt = endedAt
        self.error = error
        self.logPath = logPath
        self.cachedFrom = cachedFrom
        self.properties = properties
    }

    /// The property every step run carries naming the steps it reads from, comma-separated (`ingest,split`;
    /// empty for a source step). Keys starting `sluice.` are Sluice's own, not a step's.
    public static let upstreamProperty = "sluice.upstream"

    /// The steps this step reads from, as recorded in ``upstreamProperty`` (nil for step runs recorded before it).
    public var upstream: [String]? {
        guard case .string(let names)? = properties[Self.upstreamProperty] else { return nil }
        return names.isEmpty ? [] : names.split(separator: ",").map(String.init)
    }

    /// The properties a step set, without Sluice's own (`sluice.*`).
    public var stepProperties: [String: PropertyValue] { properties.filter { !$0.key.hasPrefix("sluice.") } }

    /// Time spent running, when the step ran.
    public var duration: TimeInterval? {
        guard let startedAt, let endedAt else { return nil }
        return endedAt.timeIntervalSince(startedAt)
    }
}

/// One stored output of one step run: its type, where it lives, its content hash and its properties.
public struct ArtifactRecord: Codable, Sendable, Equatable, Identifiable {
    public var id: String
    /// The output name it was produced under (`output`, `train`, …).
    public var name: String
    /// The Swift type of the value.
    public var typeName: String
    /// Where the content lives.
    public var uri: String
    /// `sha256:<hex>` of the content.
    public var contentHash: String
    public var size: Int64
    public var materializer: String
    public var materializerVersion: Int
    public var properties: [String: PropertyValue]
    /// The step run that wrote it.
    public var producerStepRunID: String
    public var createdAt: Date

    /// Creates an artifact record.
    public init(
        id: String, name: String, typeName: String, uri: String, contentHash: String, size: Int64,
        materializer: String, materializerVersion: Int, properties: [String: PropertyValue],
        producerStepRunID: String, createdAt: Date
    ) {
        self.id = id
        self.name = name
        self.typeName = typeName
        self.uri = uri
        self.contentHash = contentHash
        self.size = size
        self.materializer = materializer
        self.materializerVersion = materializerVersion
        self.properties = properties
        self.producerStepRunID = producerStepRunID
        self.createdAt = createdAt
    }
}

/// A link between a step run and an artifact it read or wrote.
public struct Event: Codable, Sendable, Hashable {
    /// Whether the step run read or wrote the artifact.
    public enum Kind: String, Codable, Sendable { case input, output }
    public var stepRunID: String
    public var artifactID: String
    public var kind: Kind
    /// The input or output name on the step.
    public var name: String

    /// Creates an event.
    public init(stepRunID: String, artifactID: String, kind: Kind, name: String) {
        self.stepRunID = stepRunID
        self.artifactID = artifactID
        self.kind = kind
        self.name = name
    }
}

/// A pipeline the store has seen, with how often and when it last ran.
public struct PipelineRecord: Codable, Sendable, Equatable {
    public var name: String
    public var firstSeen: Date
    public var runCount: Int
    public var lastRunAt: Date?

    /// Creates a pipeline record.
    public init(name: String, firstSeen: Date, runCount: Int, lastRunAt: Date?) {
        self.name = name
        self.firstSeen = firstSeen
        self.runCount = runCount
        self.lastRunAt = lastRunAt
    }
}

/// Generates time-ordered, unique, short IDs: a prefix, 12 hex digits of milliseconds, 8 random hex digits.
public enum RecordID {
    /// A new ID with the given prefix, like `run-0193c4f1a2b3-9f3e11aa`.
    public static func make(_ prefix: String, at date: Date = Date()) -> String {
        let millis = UInt64(max(0, date.timeIntervalSince1970 * 1000))
        let time = String(millis, radix: 16)
        let padded = String(repeating: "0", count: max(0, 12 - time.count)) + time
        let random = String(UInt32.random(in: .min ... .max), radix: 16)
        return "\(prefix)-\(padded)-\(String(repeating: "0", count: 8 - random.count))\(random)"
    }
}
