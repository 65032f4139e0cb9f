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

/// Computes per-column statistics and draws them: the statistics a file carries when the step that wrote it
/// computed them while writing (ingest does), otherwise from its batches one at a time.
public struct ComputeStatistics: Step {
    public static let name = "statistics"
    public static let version = 1
    /// Draws nothing from the run seed: a new seed reuses its cached output.
    public static let usesRunSeed = false
    /// Creates the step.
    public init() {}

    public func run(_ table: TableFile, context: StepContext) async throws -> StatisticsOutputs {
        let statistics = try Self.statistics(of: table)
        context.setProperty("rows", .int(statistics.rows), forOutput: "statistics")
        context.setProperty("columns", .int(statistics.columns.count), forOutput: "statistics")
        let html = StatisticsReport.html(statistics, title: "Statistics of \(context.stepName)")
        return StatisticsOutputs(
            statistics: statistics, report: try htmlArtifact(html, named: "statistics.html", context: context))
    }

    /// The statistics of a table file's rows: those it carries, or computed batch by batch and merged in order (the
    /// way ``SluiceData/TableFileWriter`` computes the ones it stores, so both give the same numbers).
    public static func statistics(of table: TableFile) throws -> DatasetStatistics {
        if let carried = try table.embeddedStatistics() { return carried }
        var statistics = DatasetStatistics()
        try table.forEachBatch { batch, _ in statistics.merge(DatasetStatistics(batch)) }
        if statistics.columns.isEmpty {
            statistics.columns = zip(table.columnNames, table.columnTypes).map { ColumnStatistics(name: $0, type: $1) }
        }
        return statistics
    }
}

/// Infers a schema from statistics, or takes the production model's training schema, or loads a curated one.
///
/// With a ``reference`` (the standard pipeline gives it the production version's ``TrainingReference``), new data is
/// held to the schema the production model was trained under rather than one inferred from the new data itself;
/// a curated file overrides both. The reference and the curated file's content are in the step's cache key.
public struct InferSchema: ExternalInputStep {
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
    /// The production model's training data, whose schema new data is held to (none on a model's first run).
    public var reference: TrainingReference?
    /// Creates the step.
    public init(reference: TrainingReference? = nil) { self.reference = reference }

    public func externalFingerprint() throws -> String {
        if let curated = parameters.curated {
            let (hash, _) = try ContentHasher.hash(URL(fileURLWithPath: curated))
            return "curated \(hash)"
        }
        return reference.map { "reference \($0.fingerprint)" } ?? "inferred"
    }

    public func run(_ statistics: DatasetStatistics, context: StepContext) async throws -> Schema {
        if let curated = parameters.curated {
            context.setProperty("schema_source", .string("curated \(curated)"))
            return try Schema.load(contentsOf: URL(fileURLWithPath: curated))
        }
        if let reference {
            // The data the reference was trained on needs no reference: it gives the schema inferred then (or
            // curated), and downstream steps stay cached.
            context.setProperty(
                "schema_source",
                .string(
                    statistics == reference.statistics ? "the training data of \(reference)" : reference.description))
            return reference.schema
        }
        context.setProperty("schema_source", .string("inferred"))
        return Schema.inferred(from: statistics, domainLimit: parameters.domainLimit)
    }
}

/// What the production version of a model was trained on: the schema and the dataset statistics its training run
/// recorded, found from the version's run in the metadata store.
public struct TrainingReference: Sendable, CustomStringConvertible {
    /// The production version.
    public var version: ModelVersion
    /// The schema its training data was held to.
    public var schema: Schema
    /// The statistics of the data it was trained on.
    public var statistics: DatasetStatistics
    /// The content version of that data (the registry records it with the version).
    public var datasetVersion: String? { version.datasetVersion }

    /// Creates a reference.
    public init(version: ModelVersion, schema: Schema, statistics: DatasetStatistics) {
        self.version = version
        self.schema = schema
        self.statistics = statistics
    }

    /// `penguins@1 (dataset version 3f2a…)`.
    public var description: String {
        "\(version.model)@\(version.version)" + (datasetVersion.map { " (dataset version \($0))" } ?? "")
    }

    /// Changes whenever the reference does: for the cache keys of the steps that use it.
    var fingerprint: String {
        let hashes = [contentFingerprint(schema), contentFingerprint(statistics)]
        return "\(version.model)@\(version.version) " + hashes.joined(separator: " ")
    }

    /// The reference of `model`'s production version, or `nil` when it has none (or its run recorded no schema
    /// and statistics, as a version registered by hand has not).
    public static func production(
        of model: String, registry: any MetadataStore & ModelRegistry, artifacts: any ArtifactStore
    ) async throws -> TrainingReference? {
        guard let version = try await registry.productionVersion(model), let run = version.runID else { return nil }
        var schema: Schema?
        var statistics: DatasetStatistics?
        for stepRun in try await registry.stepRuns(ofRun: run) where stepRun.status.producedOutputs {
            for artifact in try await registry.outputs(ofStepRun: stepRun.id).values {
                if artifact.typeName == String(reflecting: Schema.self), schema == nil {
                    schema =
                        try AnyMaterializer(CodableMaterializer<Schema>()).load(artifact.uri, from: artifacts)
                        as? Schema
                } else if artifact.typeName == String(reflecting: DatasetStatistics.self), statistics == nil {
                    statistics =
                        try AnyMaterializer(CodableMaterializer<DatasetStatistics>()).load(
                            artifact.uri, from: artifacts) as? DatasetStatistics
                }
            }
        }
        guard let schema, let statistics else { return nil }
        return TrainingReference(
            version: version, schema: schema, statistics: statistics)
    }
}

/// Validates data's statistics against a schema (and drift against a baseline's statistics when given one: the
/// standard pipeline gives it the production model's training statistics). Anomalies stop the pipeline with the
/// report, unless `warn_only` is set. The baseline is in the step's cache key.
public struct ValidateData: ExternalInputStep {
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
    /// What the baseline is, for the report (`penguins@1 (dataset version …)`).
    public var reference: String?

    /// Creates the step.
    public init(baseline: DatasetStatistics? = nil, reference: String? = nil) {
        self.baseline = baseline
        self.reference = reference
    }

    /// Creates the step checking drift against the production model's training data.
    public init(reference: TrainingReference?) {
        self.init(baseline: reference?.statistics, reference: reference?.description)
    }

    public func externalFingerprint() throws -> String {
        guard let baseline else { return "no baseline" }
        return "baseline \(reference ?? "") \(contentFingerprint(baseline))"
    }

    public func run(_ input: (DatasetStatistics, Schema), context: StepContext) async throws -> Validation {
        let (statistics, schema) = input
        // Data identical to the baseline (the production model's own training data, run again) is not new data:
        // checked as it was then, so its report, and every step after it, stay the same.
        let isBaseline = statistics == baseline
        var validation = Validation.check(statistics, against: schema, baseline: isBaseline ? nil : baseline)
        validation.reference = isBaseline ? nil : reference
        context.setProperty("passed", .bool(validation.passed))
        context.setProperty("anomalies", .int(validation.anomalies.count))
        if let reference { context.setProperty("checked_against", .string(reference)) }
        if !validation.passed && !parameters.warnOnly {
            throw ComponentError(
                problem: "the data does not match "
                    + (reference.map { "what \($0) was trained on" } ?? "the schema") + ":\n" + validation.text(),
                fix: "fix the data, or update the schema if the change is expected (set warn_only to go on).")
        }
        return validation
    }
}

/// Training and evaluation tables.
public struct TrainEvalTables: MultipleOutputs {
    /// Rows to train on.
    public var train: TableFile
    /// Rows to evaluate on.
    public var eval: TableFile
    public static let outputs: [NamedOutput<TrainEvalTables>] = [.init("train", \.train), .init("eval", \.eval)]
}

/// Splits validated data into training and evaluation rows: at random (seeded), stratified by a label, by a hash
/// of a key column, or by time. It reads the validation result, so it waits for validation and is skipped when
/// validation stops the pipeline. Every method streams: only the method's column and one batch are in memory.
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

    public func run(_ input: (TableFile, Validation), context: StepContext) async throws -> TrainEvalTables {
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
        let result = try table.split(
            method, evalFraction: parameters.evalFraction,
            train: context.scratchDirectory.appending(path: "train.arrow"),
            eval: context.scratchDirectory.appending(path: "eval.arrow"))
        context.setProperty("rows", .int(result.info.trainRows), forOutput: "train")
        context.setProperty("rows", .int(result.info.evalRows), forOutput: "eval")
        context.setProperty("seed", .int(Int(truncatingIfNeeded: parameters.seed)))
        return TrainEvalTables(train: result.train, eval: result.eval)
    }
}

/// The SHA-256 of a value's canonical JSON (sorted keys): what the cache keys of steps configured with that value
/// (a reference schema, baseline statistics) hold.
func contentFingerprint<T: Encodable>(_ value: T) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    // These values are plain Codable data (no custom encoding that can throw); a failure would be a programming error.
    guard let data = try? encoder.encode(value) else { preconditionFailure("cannot encode \(T.self)") }
    return ContentHasher.hash(data)
}
