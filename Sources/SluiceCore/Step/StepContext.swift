import Foundation
import Logging
import Synchronization

/// What a running step can reach: its logger, progress reporting, a seeded random generator,
/// and metric and property logging that end up in the metadata store.
public final class StepContext: Sendable {
    /// The ID of the run this step belongs to.
    public let runID: RunID
    /// The step's name in the pipeline.
    public let stepName: String
    /// The seed this step run was given: derived from the run's seed and the step's name, and recorded.
    public let seed: UInt64
    /// A logger whose records go to this step run's log file (and its location into the metadata store).
    public let logger: Logger
    /// A private scratch directory for files the step builds before returning them as ``FileArtifact`` outputs.
    /// Created on first use (most steps never need one) and removed when the step run ends.
    public var scratchDirectory: URL {
        state.withLock { state in
            if !state.scratchCreated {
                try? FileManager.default.createDirectory(at: scratchURL, withIntermediateDirectories: true)
                state.scratchCreated = true
            }
        }
        return scratchURL
    }
    private let scratchURL: URL

    /// Where a shard of a ``ShardedStep`` leaves files its partial result names (by path relative to this folder),
    /// kept until the merge has run and readable by it: inside the scratch directory when the shards run in the
    /// step's own process, beside the artifact store (a folder every node sees) when they are Slurm array jobs.
    /// Created on first use.
    public var shardDirectory: URL {
        let url = shardURL ?? scratchDirectory.appending(path: "shards", directoryHint: .isDirectory)
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
    private let shardURL: URL?

    let observer: (any RunObserver)?
    private let state = Mutex(State())

    struct State {
        var metrics: [MetricRecord] = []
        var properties: [String: PropertyValue] = [:]
        var outputProperties: [String: [String: PropertyValue]] = [:]
        var scratchCreated = false
        var drewUndeclaredSeed = false
    }

    private let declaresRunSeed: Bool

    init(
        runID: RunID, stepName: String, seed: UInt64, logger: Logger, scratchDirectory: URL,
        observer: (any RunObserver)?, declaresRunSeed: Bool = true, shardDirectory: URL? = nil
    ) {
        self.shardURL = shardDirectory
        self.declaresRunSeed = declaresRunSeed
        self.runID = runID
        self.stepName = stepName
        self.seed = seed
        self.logger = logger
        self.scratchURL = scratchDirectory
        self.observer = observer
    }

    /// A random generator seeded with this step run's ``seed``: the same run config gives the same numbers, and
    /// a new run seed a new cache key (a step that declares ``Step/usesRunSeed`` `false` fails if it calls this).
    public func random() -> SeededRandom {
        if !declaresRunSeed { state.withLock { $0.drewUndeclaredSeed = true } }
        return SeededRandom(seed: seed)
    }

    /// A random generator seeded with `seed`, for steps whose seed is one of their parameters.
    public func random(seed: UInt64) -> SeededRandom { SeededRandom(seed: seed) }

    /// Records a metric value, optionally at a training step or epoch, for this step run.
    public func log(metric name: String, _ value: Double, step: Int? = nil) {
        let record = MetricRecord(name: name, value: value, step: step, loggedAt: Date())
        state.withLock { $0.metrics.append(record) }
    }

    /// Sets a property of this step run (a row count, a chosen threshold…), shown with the run.
    public func setProperty(_ key: String, _ value: PropertyValue) {
        state.withLock { $0.properties[key] = value }
    }

    /// Sets a property of one of this step's output artifacts, by output name (`output` for a single output).
    public func setProperty(_ key: String, _ value: PropertyValue, forOutput output: String) {
        state.withLock { $0.outputProperties[output, default: [:]][key] = value }
    }

    /// Reports progress on long work: `completed` of `total` units (rows, bytes, iterations).
    public func reportProgress(completed: Int, total: Int?, unit: String = "items") {
        observer?.stepProgressed(
            stepName, progress: StepProgress(completed: completed, total: total, unit: unit))
    }

    var recorded: State { state.withLock { $0 } }

    /// Removes the scratch directory if the step made one.
    func removeScratch() {
        if state.withLock({ $0.scratchCreated }) { try? FileManager.default.removeItem(at: scratchURL) }
    }
}

/// How far a long-running step has come.
public struct StepProgress: Sendable, Equatable {
    /// Units done so far.
    public var completed: Int
    /// Units in all, when known.
    public var total: Int?
    /// What a unit is: `rows`, `bytes`, `iterations`.
    public var unit: String
}

/// A metric value a step logged.
public struct MetricRecord: Codable, Sendable, Equatable {
    /// The metric's name, like `loss` or `auc`.
    public var name: String
    /// The value.
    public var value: Double
    /// The training step or epoch it belongs to, if any.
    public var step: Int?
    /// When it was logged.
    public var loggedAt: Date

    /// Creates a metric record.
    public init(name: String, value: Double, step: Int?, loggedAt: Date) {
        self.name = name
        self.value = value
        self.step = step
        self.loggedAt = loggedAt
    }
}

/// A scalar property of a step run or an artifact.
public enum PropertyValue: Codable, Sendable, Hashable, CustomStringConvertible {
    case int(Int)
    case double(Double)
    case string(String)
    case bool(Bool)

    public var description: String {
        switch self {
        case .int(let v): String(v)
        case .double(let v): String(v)
        case .string(let v): v
        case .bool(let v): String(v)
        }
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let v = try? c.decode(Bool.self) {
            self = .bool(v)
        } else if let v = try? c.decode(Int.self) {
            self = .int(v)
        } else if let v = try? c.decode(Double.self) {
            self = .double(v)
        } else {
            self = .string(try c.decode(String.self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .int(let v): try c.encode(v)
        case .double(let v): try c.encode(v)
        case .string(let v): try c.encode(v)
        case .bool(let v): try c.encode(v)
        }
    }
}
