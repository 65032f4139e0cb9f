import Foundation
import SluiceCore
import SluiceData
import SluiceML

/// What evaluating a candidate produced.
public struct EvaluationOutputs: MultipleOutputs {
    /// The model bundle: transforms, model, signature, metrics, lineage and model card.
    public var bundle: ModelBundle
    /// Metrics overall and per slice.
    public var evaluation: Evaluation
    /// An HTML page of the metrics and curves.
    public var report: FileArtifact
    public static let outputs: [NamedOutput<EvaluationOutputs>] = [
        .init("bundle", \.bundle), .init("evaluation", \.evaluation), .init("report", \.report),
    ]
}

/// Evaluates the candidate on the evaluation rows, overall and per slice, and packs the model bundle.
public struct EvaluateModel: ExternalInputStep {
    /// The model's name, the label and the slices.
    public struct Parameters: Codable, Sendable, Equatable {
        /// The model's name (for the bundle and its card).
        public var model = "model"
        /// The label column.
        public var label = "label"
        /// Columns whose values slice the metrics.
        public var slices: [String] = []
        /// Creates parameters.
        public init() {}
    }
    public static let name = "evaluate"
    public static let version = 1
    /// Draws nothing from the run seed: a new seed reuses its cached output.
    public static let usesRunSeed = false
    public var parameters = Parameters()
    /// The feature service the evaluation rows were joined from, when they were: the bundle records it, so a
    /// server takes entity keys (the runner finds it from the pipeline's feature_join step).
    let features: FeatureServiceSignature?

    /// Creates the step; `features` is the service its rows came from, if any.
    public init(features: FeatureServiceSignature? = nil) { self.features = features }

    /// The feature service the bundle records (it is in the bundle, so in the cache key).
    public func externalFingerprint() throws -> String {
        guard let features else { return "no feature service" }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(features), as: UTF8.self)
    }

    public func run(
        _ input: (TableFile, TransformGraph, TrainedModel, DatasetInfo, DatasetStatistics), context: StepContext
    ) async throws -> EvaluationOutputs {
        let (eval, graph, model, info, statistics) = input
        let evaluation = try Self.evaluate(model, graph, on: eval, label: parameters.label, slices: parameters.slices)
        for name in evaluation.overall.names {
            if let value = evaluation.overall.value(name) {
                context.log(metric: name, value)
                context.setProperty(name, .double(value), forOutput: "bundle")
            }
        }
        var facts = ["Training rows": String(info.rows - eval.rowCount), "Evaluation rows": String(eval.rowCount)]
        switch model.learner {
        case .trees(let trees): facts["Rounds"] = String(trees.rounds)
        case .linear(let linear): facts["Optimizer"] = linear.convergence.reason
        }
        let bundle = ModelBundle(
            name: parameters.model, transforms: graph, model: model, label: parameters.label,
            trainingStatistics: statistics, evaluation: evaluation, trainingRun: nil,
            datasetVersion: info.version, trainingFacts: facts
        ).servedFrom(features)
        // Content holds no run IDs or times (the same inputs give the same bytes); the run is in the metadata.
        let html = MetricCharts.html(evaluation, title: "Evaluation of \(parameters.model)")
        return EvaluationOutputs(
            bundle: bundle, evaluation: evaluation,
            report: try htmlArtifact(html, named: "evaluation.html", context: context))
    }

    /// Metrics of a model on labelled rows, overall and per slice.
    public static func evaluate(
        _ model: TrainedModel, _ transforms: TransformGraph, on eval: Table, label: String, slices names: [String]
    ) throws -> Evaluation {
        try evaluate(
            model, transforms, columnNames: eval.columnNames, label: label, slices: names,
            columns: { names in Table(columns: names.map { eval[$0]! }) },
            batches: { consume in try consume(eval) })
    }

    /// Metrics of a model on labelled rows in a table file, overall and per slice: the rows are scored batch by
    /// batch; only the label, the slice columns and the predictions are kept.
    public static func evaluate(
        _ model: TrainedModel, _ transforms: TransformGraph, on eval: TableFile, label: String, slices names: [String]
    ) throws -> Evaluation {
        try evaluate(
            model, transforms, columnNames: eval.columnNames, label: label, slices: names,
            columns: { try eval.columns($0) },
            batches: { consume in try eval.forEachBatch { batch, _ in try consume(batch) } })
    }

    private static func evaluate(
        _ model: TrainedModel, _ transforms: TransformGraph, columnNames: [String], label: String,
        slices names: [String], columns: ([String]) throws -> Table, batches: ((Table) throws -> Void) throws -> Void
    ) throws -> Evaluation {
        guard columnNames.contains(label) else {
            throw ComponentError(
                problem: "the evaluation data has no label column '\(label)'", fix: "set the label parameter.")
        }
        for name in names where !columnNames.contains(name) {
            throw ComponentError(
                problem: "cannot slice by '\(name)': the evaluation data has no such column",
                fix: "use one of \(columnNames.joined(separator: ", ")).")
        }
        let known = try columns([label] + names.filter { $0 != label })
        let labelColumn = known[label]!
        var slices: [String: [String?]] = [:]
        for name in names {
            let column = known[name]!
            slices[name] = (0..<column.count).map { column.string($0) }
        }
        var values: [Double] = []
        try batches { batch in values += model.predict(try transforms.transform(batch)).values }
        switch model.task {
        case .classification(let classes):
            let labels = try LabelMapping(classes: classes).encode(labelColumn)
            return Evaluation(labels: labels, probabilities: values, classes: classes, slices: slices)
        case .regression:
            return Evaluation(targets: try LabelMapping.targets(labelColumn), predictions: values, slices: slices)
        }
    }
}

/// The production model a candidate is compared with.
public struct Baseline: Sendable {
    /// Its registry version.
    public var version: ModelVersion
    /// Its bundle.
    public var bundle: ModelBundle

    /// Creates a baseline.
    public init(version: ModelVersion, bundle: ModelBundle) {
        self.version = version
        self.bundle = bundle
    }
}

extension Baseline {
    /// The production version of `model` with its bundle, or nil when none is in production.
    public static func production(
        of model: String, registry: any MetadataStore & ModelRegistry, artifacts: any ArtifactStore
    ) async throws -> Baseline? {
        guard let version = try await registry.productionVersion(model) else { return nil }
        return Baseline(
            version: version,
            bundle: try ModelBundle.load(try await bundleData(of: version, in: registry, artifacts: artifacts)))
    }
}
