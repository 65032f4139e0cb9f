import Foundation
import SluiceCore
import SluiceData
import SluiceFeatures
import SluiceML

/// A built-in component as YAML pipelines see it: its typed, named inputs and outputs, and how to add it.
public struct ComponentEntry: Sendable {
    /// One input or output: its name and Swift type.
    public struct Port: @unchecked Sendable {
        // @unchecked: `Any.Type` is an immutable metatype.
        /// The port's name.
        public var name: String
        /// The value's type.
        public var type: Any.Type
        /// Whether a step may leave it unwired.
        public var isOptional: Bool
        /// The type's name, for messages.
        public var typeName: String { String(describing: type) }

        init(_ name: String, _ type: Any.Type, optional: Bool = false) {
            self.name = name
            self.type = type
            self.isOptional = optional
        }
    }

    /// The component's name in YAML (`split`, `train`…).
    public var name: String
    /// What it is for, in one line.
    public var summary: String
    /// Its inputs, in order.
    public var inputs: [Port]
    /// Its outputs (`output` when it has one).
    public var outputs: [Port]
    /// Adds the step named `stepName` reading `inputs` (`Handle`s in input order, types already checked; `nil` for
    /// an optional input left unwired); returns its outputs' handles by name.
    let add: @Sendable (PipelineBuilder, String, [Any?], ComponentContext) -> [String: Any]
}

/// What components that touch the registry need from the runner.
public struct ComponentContext: Sendable {
    /// The registry register steps write to (nil: register steps are refused).
    public var registry: (any MetadataStore & ModelRegistry)?
    /// The production version of each model, to compare candidates with.
    public var baselines: [String: Baseline]
    /// What the production version of the pipeline's model was trained on: schema steps hold new data to its schema
    /// and validate steps check drift against its statistics (nil on a model's first run).
    public var reference: TrainingReference?
    /// What each `model` step's reference resolved to (by step name): the version and its bundle's content hash,
    /// or why it could not be read.
    public var scoringModels: [String: Result<(ScoringModel, String), ComponentError>]
    /// Where register steps read a production version promoted during the run, to compare with it (nil: such a
    /// candidate is not promoted).
    public var artifacts: (any ArtifactStore)?

    /// What the runner resolved for the step `name` (a `model` or `score_files` step), or why there is nothing.
    func scoringModel(forStep name: String, component: String) -> Result<(ScoringModel, String), ComponentError> {
        scoringModels[name]
            ?? .failure(
                ComponentError(
                    problem: "\(component) step '\(name)': no registry was open to resolve its model",
                    fix: "run the pipeline in a Sluice project (`sluice run`)."))
    }

    /// What each `feature_join` step's service resolved to (by step name), or why it could not.
    public var featureJoins: [String: Result<PreparedJoin, ComponentError>]
    /// The feature service each `evaluate` step's bundle is served from (by step name): its rows came from a
    /// `feature_join` step.
    public var servingFeatures: [String: FeatureServiceSignature]

    /// Creates a context.
    public init(
        registry: (any MetadataStore & ModelRegistry)?, baselines: [String: Baseline] = [:],
        reference: TrainingReference? = nil,
        scoringModels: [String: Result<(ScoringModel, String), ComponentError>] = [:],
        artifacts: (any ArtifactStore)? = nil, featureJoins: [String: Result<PreparedJoin, ComponentError>] = [:],
        servingFeatures: [String: FeatureServiceSignature] = [:]
    ) {
        self.featureJoins = featureJoins
        self.servingFeatures = servingFeatures
        self.artifacts = artifacts
        self.registry = registry
        self.baselines = baselines
        self.reference = reference
        self.scoringModels = scoringModels
    }
}

/// The built-in components, by YAML name.
public enum ComponentCatalog {
    /// Every component.
    public static let entries: [ComponentEntry] = [
        ComponentEntry(
            name: "ingest_csv", summary: "read CSV files (paths, folders, globs) into a table with its dataset version",
            inputs: [], outputs: [.init("table", TableFile.self), .init("info", DatasetInfo.self)]
        ) { p, name, _, _ in
            let o = p.add(IngestCSV(), name: name)
            return ["table": o.table, "info": o.info]
        },
        ComponentEntry(
            name: "ingest_csv_sharded",
            summary: "ingest_csv one shard per file (a Slurm job array), joined into the same table and info; "
                + "the files from paths or from a list_files step (input files)",
            inputs: [.init("files", FileList.self, optional: true)],
            outputs: [.init("table", TableFile.self), .init("info", DatasetInfo.self)]
        ) { p, name, inputs, _ in
            if let files = inputs[0] as? Handle<FileList> {
                let o = p.add(OverListedFiles(ShardedIngestCSV()), name: name, files)
                return ["table": o.table, "info": o.info]
            }
            let o = p.add(ShardedIngestCSV(), name: name)
            return ["table": o.table, "info": o.info]
        },
        ComponentEntry(
            name: "list_files",
            summary: "list files (paths, folders, globs) once, with their content version, for sharded steps to read",
            inputs: [], outputs: [.init("output", FileList.self)]
        ) { p, name, _, _ in
            ["output": p.add(ListFiles(), name: name)]
        },
        ComponentEntry(
            name: "feature_join",
            summary: "entity rows (join keys + timestamp) with a feature service's values as of each row's time",
            inputs: [.init("table", TableFile.self)], outputs: [.init("output", TableFile.self)]
        ) { p, name, inputs, context in
            let prepared =
                context.featureJoins[name]
                ?? .failure(
                    ComponentError(
                        problem: "feature_join step '\(name)': no feature store was open to prepare its join",
                        fix: "run the pipeline in a Sluice project (`sluice run`)."))
            return ["output": p.add(FeatureJoin(prepared: prepared), name: name, inputs[0] as! Handle<TableFile>)]
        },
        ComponentEntry(
            name: "statistics", summary: "per-column statistics and their HTML report",
            inputs: [.init("table", TableFile.self)],
            outputs: [.init("statistics", DatasetStatistics.self), .init("report", FileArtifact.self)]
        ) { p, name, inputs, _ in
            let o = p.add(ComputeStatistics(), name: name, inputs[0] as! Handle<TableFile>)
            return ["statistics": o.statistics, "report": o.report]
        },
        ComponentEntry(
            name: "file_statistics",
            summary: "per-column statistics of CSV files, one shard per file (parallel; a job array on Slurm); "
                + "the files from paths or from a list_files step (input files)",
            inputs: [.init("files", FileList.self, optional: true)], outputs: [.init("output", DatasetStatistics.self)]
        ) { p, name, inputs, _ in
            if let files = inputs[0] as? Handle<FileList> {
                return ["output": p.add(OverListedFiles(FileStatistics()), name: name, files)]
            }
            return ["output": p.add(FileStatistics(), name: name)]
        },
        ComponentEntry(
            name: "schema",
            summary: "the production model's training schema, or one inferred from statistics, or a curated one",
            inputs: [.init("statistics", DatasetStatistics.self)], outputs: [.init("output", Schema.self)]
        ) { p, name, inputs, context in
            [
                "output": p.add(
                    InferSchema(reference: context.reference), name: name, inputs[0] as! Handle<DatasetStatistics>)
            ]
        },
        ComponentEntry(
            name: "validate", summary: "check statistics against a schema; stop on anomalies unless warn_only",
            inputs: [.init("statistics", DatasetStatistics.self), .init("schema", Schema.self)],
            outputs: [.init("output", Validation.self)]
        ) { p, name, inputs, context in
            [
                "output": p.add(
                    ValidateData(reference: context.reference), name: name, inputs[0] as! Handle<DatasetStatistics>,
                    inputs[1] as! Handle<Schema>)
            ]
        },
        ComponentEntry(
            name: "split", summary: "split validated rows into train and eval (random, stratified, hashed, time)",
            inputs: [.init("table", TableFile.self), .init("validation", Validation.self)],
            outputs: [.init("train", TableFile.self), .init("eval", TableFile.self)]
        ) { p, name, inputs, _ in
            let o = p.add(SplitTable(), name: name, inputs[0] as! Handle<TableFile>, inputs[1] as! Handle<Validation>)
            return ["train": o.train, "eval": o.eval]
        },
        ComponentEntry(
            name: "transform", summary: "fit the preprocessing (a spec, or impute + standardize + one-hot)",
            inputs: [.init("train", TableFile.self)], outputs: [.init("output", TransformGraph.self)]
        ) { p, name, inputs, _ in
            ["output": p.add(FitTransforms(), name: name, inputs[0] as! Handle<TableFile>)]
        },
        ComponentEntry(
            name: "train", summary: "train gradient-boosted trees, logistic/softmax or ridge regression",
            inputs: [.init("train", TableFile.self), .init("transforms", TransformGraph.self)],
            outputs: [.init("output", TrainedModel.self)]
        ) { p, name, inputs, _ in
            [
                "output": p.add(
                    TrainModel(), name: name, inputs[0] as! Handle<TableFile>, inputs[1] as! Handle<TransformGraph>)
            ]
        },
        ComponentEntry(
            name: "evaluate", summary: "metrics overall and per slice, and the model bundle",
            inputs: [
                .init("eval", TableFile.self), .init("transforms", TransformGraph.self),
                .init("model", TrainedModel.self),
                .init("dataset", DatasetInfo.self), .init("statistics", DatasetStatistics.self),
            ],
            outputs: [
                .init("bundle", ModelBundle.self), .init("evaluation", Evaluation.self),
                .init("report", FileArtifact.self),
            ]
        ) { p, name, inputs, context in
            let o = p.add(
                EvaluateModel(features: context.servingFeatures[name]), name: name, inputs[0] as! Handle<TableFile>,
                inputs[1] as! Handle<TransformGraph>,
                inputs[2] as! Handle<TrainedModel>, inputs[3] as! Handle<DatasetInfo>,
                inputs[4] as! Handle<DatasetStatistics>)
            return ["bundle": o.bundle, "evaluation": o.evaluation, "report": o.report]
        },
        ComponentEntry(
            name: "register", summary: "bless against thresholds and production; register the bundle when blessed",
            inputs: [
                .init("eval", TableFile.self), .init("bundle", ModelBundle.self), .init("evaluation", Evaluation.self),
            ],
            outputs: [.init("output", Registration.self)]
        ) { p, name, inputs, context in
            // The model name is a parameter; the runner loads each register step's baseline under the step's name.
            let step = RegisterModel(
                store: context.registry!, baseline: context.baselines[name], artifacts: context.artifacts)
            return [
                "output": p.add(
                    step, name: name, cache: false, inputs[0] as! Handle<TableFile>, inputs[1] as! Handle<ModelBundle>,
                    inputs[2] as! Handle<Evaluation>)
            ]
        },
        ComponentEntry(
            name: "model", summary: "a registered model version (NAME@STAGE or NAME@VERSION) for scoring",
            inputs: [], outputs: [.init("output", ScoringModel.self)]
        ) { p, name, _, context in
            ["output": p.add(LoadModel(resolved: context.scoringModel(forStep: name, component: "model")), name: name)]
        },
        ComponentEntry(
            name: "score_files",
            summary: "score CSV files with a registered version (model: NAME@STAGE), one shard per file",
            inputs: [], outputs: [.init("output", TableFile.self)]
        ) { p, name, _, context in
            [
                "output": p.add(
                    ShardedScoreCSV(resolved: context.scoringModel(forStep: name, component: "score_files")), name: name
                )
            ]
        },
        ComponentEntry(
            name: "score", summary: "score a table with a model: kept columns, prediction, probabilities, version",
            inputs: [.init("table", TableFile.self), .init("model", ScoringModel.self)],
            outputs: [.init("output", TableFile.self)]
        ) { p, name, inputs, _ in
            [
                "output": p.add(
                    ScoreTable(), name: name, inputs[0] as! Handle<TableFile>, inputs[1] as! Handle<ScoringModel>)
            ]
        },
    ]

    /// The component called `name`.
    public static func entry(_ name: String) -> ComponentEntry? { entries.first { $0.name == name } }
}
