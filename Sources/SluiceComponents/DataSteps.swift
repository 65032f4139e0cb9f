import Foundation
import SluiceCore
import SluiceData

/// Statistics of a table and their HTML picture.
public struct StatisticsOutputs: MultipleOutputs {
    /// Per-column statistics (mergeable, with sketches).
    public var statistics: DatasetStatistics
    /// A page with a summary table and a chart per column.
    public var report: FileArtifact
    public static let outputs: [NamedOutput<StatisticsOutputs>] = [
        .init("statistics", \.statistics), .init("report", \.report),
    ]
}

/// Computes per-column statistics and draws them.
public struct ComputeStatistics: Step {
    public static let name = "statistics"
    public static let version = 1
    /// Draws nothing from the run seed: a new seed reuses its cached output.
    public static let usesRunSeed = false
    /// Creates the step.
    public init() {}

    public func run(_ table: Table, context: StepContext) async throws -> StatisticsOutputs {
        let statistics = DatasetStatistics(table)
        context.setProperty("rows", .int(statistics.rows), forOutput: "statistics")
        context.setProperty("columns", .int(statistics.columns.count), forOutput: "statistics")
        let html = StatisticsReport.html(statistics, title: "Statistics of \(context.stepName)")
        return StatisticsOutputs(
            statistics: statistics, report: try htmlArtifact(html, named: "statistics.html", context: context))
    }
}

/// Infers a schema from statistics, or loads a curated one.
public struct InferSchema: Step {
    /// Where the schema comes from.
    public struct Parameters: Codable, Sendable, Equatable {
        /// A curated schema YAML file to use instead of inferring (as `sluice data schema` writes).
        public var curated: String?
        /// Text columns with at most this many values get a categorical domain.
        public var domainLimit = 100
        /// Creates parameters.
        public init() {}
    }
    public static let name = "schema"
    public static let version = 1
    /// Draws nothing from the run seed: a new seed reuses its cached output.
    public static let usesRunSeed = false
    public var parameters = Parameters()
    /// Creates the step.
    public init() {}

    public func run(_ statistics: DatasetStatistics, context: StepContext) async throws -> Schema {
        if let curated = parameters.curated {
            return try Schema.load(contentsOf: URL(fileURLWithPath: curated))
        }
        return Schema.inferred(from: statistics, domainLimit: parameters.domainLimit)
    }
}

/// Validates data's statistics against a schema (and drift against a baseline's statistics when given one).
/// Anomalies stop the pipeline with the report, unless `warn_only` is set.
public struct ValidateData: Step {
    /// How strict to be.
    public struct Parameters: Codable, Sendable, Equatable {
        /// Record anomalies but let the pipeline go on.
        public var warnOnly = false
        /// Creates parameters.
        public init() {}
    }
    public static let name = "validate"
    public static let version = 1
    /// Draws nothing from the run seed: a new seed reuses its cached output.
    public static let usesRunSeed = false
    public var parameters = Parameters()
    /// Statistics to check drift against (for example the data the production model was trained on).
    public var baseline: DatasetStatistics?

    /// Creates the step.
    public init(baseline: DatasetStatistics? = nil) { self.baseline = baseline }

    public func run(_ input: (DatasetStatistics, Schema), context: StepContext) async throws -> Validation {
        let (statistics, schema) = input
        let validation = Validation.check(statistics, against: schema, baseline: baseline)
        context.setProperty("passed", .bool(validation.passed))
        context.setProperty("anomalies", .int(validation.anomalies.count))
        if !validation.passed && !parameters.warnOnly {
            throw ComponentError(
                problem: "the data does not match the schema:\n" + validation.text(),
                fix: "fix the data, or update the schema if the change is expected (set warn_only to go on).")
        }
        return validation
    }
}

/// Training and evaluation tables.
public struct TrainEvalTables: MultipleOutputs {
    /// Rows to train on.
    public var train: Table
    /// Rows to evaluate on.
    public var eval: Table
    public static let outputs: [NamedOutput<TrainEvalTables>] = [.init("train", \.train), .init("eval", \.eval)]
}

/// Splits validated data into training and evaluation rows: at random (seeded), stratified by a label, by a hash
/// of a key column, or by time. It reads the validation result, so it waits for validation and is skipped when
/// validation stops the pipeline.
public struct SplitTable: Step {
    /// How to split.
    public struct Parameters: Codable, Sendable, Equatable {
        /// `random`, `stratified`, `hashed` or `time`.
        public var method = "random"
        /// The share of rows for evaluation.
        public var evalFraction = 0.2
        /// The seed (random and stratified).
        public var seed: UInt64 = 42
        /// The label (stratified), key (hashed) or time column.
        public var column: String?
        /// Creates parameters.
        public init() {}
    }
    public static let name = "split"
    public static let version = 1
    /// Draws nothing from the run seed: a new seed reuses its cached output.
    public static let usesRunSeed = false
    public var parameters = Parameters()
    /// Creates the step.
    public init() {}

    public func run(_ input: (Table, Validation), context: StepContext) async throws -> TrainEvalTables {
        let table = input.0
        func column() throws -> String {
            guard let column = parameters.column else {
                throw ComponentError(
                    problem: "the \(parameters.method) split needs a column", fix: "set steps.split.parameters.column.")
            }
            return column
        }
        let method: SplitMethod
        switch parameters.method {
        case "random": method = .random(seed: parameters.seed)
        case "stratified": method = .stratified(label: try column(), seed: parameters.seed)
        case "hashed": method = .hashed(key: try column())
        case "time": method = .byTime(column: try column())
        default:
            throw ComponentError(
                problem: "unknown split method '\(parameters.method)'", fix: "use random, stratified, hashed or time.")
        }
        let result = try table.split(method, evalFraction: parameters.evalFraction)
        context.setProperty("rows", .int(result.info.trainRows), forOutput: "train")
        context.setProperty("rows", .int(result.info.evalRows), forOutput: "eval")
        context.setProperty("seed", .int(Int(truncatingIfNeeded: parameters.seed)))
        return TrainEvalTables(train: result.train, eval: result.eval)
    }
}
