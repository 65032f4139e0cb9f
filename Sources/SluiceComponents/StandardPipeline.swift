import Foundation
import SluiceCore
import SluiceData
import SluiceML

/// The standard pipeline of built-in components:
///
/// ```
/// ingest ─▶ statistics ─▶ schema ─▶ validate ─▶ split ─▶ transform ─▶ train ─▶ evaluate ─▶ register
/// ```
/// (split also reads the ingested table; evaluate reads the evaluation rows, the dataset info and statistics;
/// register reads the evaluation rows to compare with the production version.)
public enum StandardPipeline {
    /// What the pipeline trains on and how it judges the result.
    public struct Options: Sendable {
        /// The pipeline's name.
        public var name = "standard"
        /// The registered model's name.
        public var model: String
        /// CSV files, folders or globs.
        public var paths: [String]
        /// The label column.
        public var label: String
        /// Columns to slice metrics by.
        public var slices: [String] = []
        /// The blessing rules.
        public var thresholds: [MetricThreshold] = []
        /// Split stratified by the label (classification) rather than at random.
        public var stratify = true
        /// The learner (`gbdt`, `logistic`, `linear`) and its main settings.
        public var learner = "gbdt"
        public var rounds = 100
        public var maxDepth = 6
        public var learningRate = 0.3
        /// When a registered version goes to production on its own (default: the first blessed version).
        public var promote = RegisterModel.Promotion.first

        /// Creates options.
        public init(model: String, paths: [String], label: String) {
            self.model = model
            self.paths = paths
            self.label = label
        }
    }

    /// Builds the pipeline; without a registry the register step is left out. With `reference` (the production
    /// version's ``TrainingReference``), new data is validated against the schema and statistics that version was
    /// trained on instead of a schema inferred from the new data itself; the first run infers and records one.
    /// `artifacts` lets the register step read a version promoted while the run went on, to compare with it.
    public static func make(
        _ options: Options, registry: (any MetadataStore & ModelRegistry)?, baseline: Baseline?,
        reference: TrainingReference? = nil, artifacts: (any ArtifactStore)? = nil
    ) -> Pipeline {
        Pipeline(options.name) { p in
            let data = p.add(IngestCSV(paths: options.paths))
            let statistics = p.add(ComputeStatistics(), data.table)
            var inferSchema = InferSchema(reference: reference)
            inferSchema.parameters.domainLimit = 100
            let schema = p.add(inferSchema, statistics.statistics)
            let validation = p.add(ValidateData(reference: reference), statistics.statistics, schema)
            var split = SplitTable()
            if options.stratify {
                split.parameters.method = "stratified"
                split.parameters.column = options.label
            }
            let sets = p.add(split, data.table, validation)
            var fit = FitTransforms()
            fit.parameters.label = options.label
            let transforms = p.add(fit, sets.train)
            var train = TrainModel()
            train.parameters.label = options.label
            train.parameters.learner = options.learner
            train.parameters.rounds = options.rounds
            train.parameters.maxDepth = options.maxDepth
            train.parameters.learningRate = options.learningRate
            let model = p.add(train, sets.train, transforms)
            var evaluate = EvaluateModel()
            evaluate.parameters.model = options.model
            evaluate.parameters.label = options.label
            evaluate.parameters.slices = options.slices
            let result = p.add(evaluate, sets.eval, transforms, model, data.info, statistics.statistics)
            if let registry {
                var register = RegisterModel(store: registry, baseline: baseline, artifacts: artifacts)
                register.parameters.model = options.model
                register.parameters.label = options.label
                register.parameters.thresholds = options.thresholds
                register.parameters.promote = options.promote
                p.add(register, cache: false, sets.eval, result.bundle, result.evaluation)
            }
        }
    }
}
