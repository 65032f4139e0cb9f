import Foundation
import SluiceData

/// One raw input column of a model: its name, its type in training, and whether a request must give it.
public struct SignatureColumn: Codable, Sendable, Equatable {
    /// The column's name.
    public var name: String
    /// Its type in the training data (numbers arrive as FP64/INT64/BOOL, text as BYTES).
    public var type: ColumnType
    /// Whether every training row had a value (a request without it is refused).
    public var required: Bool

    /// Creates a column.
    public init(name: String, type: ColumnType, required: Bool) {
        self.name = name
        self.type = type
        self.required = required
    }
}

/// What a model reads and returns.
public struct ModelSignature: Codable, Sendable, Equatable {
    /// The raw columns it reads.
    public var inputs: [SignatureColumn]
    /// What it predicts.
    public var task: ModelTask
    /// The label column it was trained on.
    public var label: String
    /// The label column's type in training, so predictions keep it (an integer label answers integers); nil in
    /// bundles written before it was recorded, whose labels are answered as text.
    public var labelType: ColumnType?
    /// For a model trained from a feature service: the service, so a server can take entity keys and fetch the
    /// rest (nil for a model trained from plain tables, and in bundles written before it was recorded).
    public var features: FeatureServiceSignature?

    /// Creates a signature.
    public init(
        inputs: [SignatureColumn], task: ModelTask, label: String, labelType: ColumnType?,
        features: FeatureServiceSignature? = nil
    ) {
        self.inputs = inputs
        self.task = task
        self.label = label
        self.labelType = labelType
        self.features = features
    }

    /// What a request sends: every input, or for a model served from a feature service, its entity keys and the
    /// inputs the service does not give (request-time inputs).
    public var requestInputs: [SignatureColumn] {
        guard let features else { return inputs }
        let fetched = Set(features.fetched.keys)
        let keys = Set(features.entityKeys.map(\.name))
        return features.entityKeys + inputs.filter { !fetched.contains($0.name) && !keys.contains($0.name) }
    }
}

/// The feature service a model was trained from: what a request sends instead of the features (the entity keys),
/// which inputs the server fetches from the online store, and what to do when an entity has no values.
public struct FeatureServiceSignature: Codable, Sendable, Equatable {
    /// What the server does for an entity the online store has no values for.
    public enum MissingEntity: String, Codable, Sendable, CaseIterable {
        /// Refuse the request (4xx naming the key).
        case refuse
        /// Predict with the features missing, as training treated missing values (the fitted imputation).
        case missing
    }

    /// The service's name.
    public var service: String
    /// Its content version when the model was trained.
    public var version: String
    /// The join keys a request sends (numbers as integers, text as strings).
    public var entityKeys: [SignatureColumn]
    /// Model input name → the `view:feature` the server fetches for it.
    public var fetched: [String: String]
    /// What to do for an entity without values.
    public var missingEntity: MissingEntity

    /// Creates the signature of a service.
    public init(
        service: String, version: String, entityKeys: [SignatureColumn], fetched: [String: String],
        missingEntity: MissingEntity
    ) {
        self.service = service
        self.version = version
        self.entityKeys = entityKeys
        self.fetched = fetched
        self.missingEntity = missingEntity
    }
}

extension ModelSignature {
    /// What a classifier's labels are, in the label column's training type (text for a regressor, or for bundles
    /// written before the type was recorded).
    public var labelKind: LabelKind {
        guard case .classification(let classes) = task else { return .text }
        return LabelKind(classes: classes, trainedAs: labelType)
    }
}

/// The type a classifier's labels are answered in: the label column's type when the model was trained (an integer
/// label answers integers, a boolean one booleans), text otherwise.
public enum LabelKind: Sendable, Equatable {
    /// The labels as text.
    case text
    /// The labels as integers, in class order.
    case integer([Int64])
    /// The labels as booleans, in class order.
    case boolean([Bool])

    /// The kind for `classes` learned from a column of `type` (text when a class does not read as that type).
    public init(classes: [String], trainedAs type: ColumnType?) {
        switch type {
        case .integer?:
            let values = classes.compactMap { Int64($0) }
            self = values.count == classes.count ? .integer(values) : .text
        case .boolean?:
            let values = classes.compactMap { $0 == "true" ? true : $0 == "false" ? false : nil }
            self = values.count == classes.count ? .boolean(values) : .text
        default: self = .text
        }
    }

    /// The column type labels of this kind are stored in.
    public var columnType: ColumnType {
        switch self {
        case .text: .string
        case .integer: .integer
        case .boolean: .boolean
        }
    }
}

/// Everything needed to serve a model, in one versioned value: the fitted transform graph, the model, the input
/// signature, the label classes, the evaluation, where it came from (training run, dataset version) and a
/// human-readable model card. Loading and predicting needs only `SluiceML` and `SluiceData`.
public struct ModelBundle: Codable, Sendable, Equatable {
    /// Version of the serialized form this code writes.
    public static let formatVersion = 1
    /// The model's name (as registered).
    public var name: String
    /// The preprocessing, fitted on the training data.
    public var transforms: TransformGraph
    /// The trained model.
    public var model: TrainedModel
    /// The raw inputs and the output.
    public var signature: ModelSignature
    /// Metrics on the evaluation data, overall and per slice.
    public var evaluation: Evaluation?
    /// The run that trained it, in bundles written before content stopped naming runs (Sluice's components leave
    /// it empty: the same inputs give the same bundle bytes, and the registry records the run).
    public var trainingRun: String?
    /// The version of the dataset it was trained on.
    public var datasetVersion: String?
    /// Hyper-parameters and training facts, as text (shown in the model card).
    public var trainingFacts: [String: String]
    /// The model card, in Markdown.
    public var card: String

    /// Creates a bundle and writes its model card.
    public init(
        name: String, transforms: TransformGraph, model: TrainedModel, label: String,
        trainingStatistics: DatasetStatistics?, evaluation: Evaluation?, trainingRun: String?,
        datasetVersion: String?, trainingFacts: [String: String]
    ) {
        self.name = name
        self.transforms = transforms
        self.model = model
        self.signature = ModelSignature(
            inputs: transforms.inputs.map { input in
                let missing = trainingStatistics?[input.name]?.missing ?? 1
                return SignatureColumn(name: input.name, type: input.type, required: missing == 0)
            }, task: model.task, label: label, labelType: trainingStatistics?[label]?.type)
        self.evaluation = evaluation
        self.trainingRun = trainingRun
        self.datasetVersion = datasetVersion
        self.trainingFacts = trainingFacts
        self.card = ""
        self.card = ModelCard.markdown(self)
    }

    /// This bundle, served from the feature service `features` (recorded in its signature and model card).
    public func servedFrom(_ features: FeatureServiceSignature?) -> ModelBundle {
        var bundle = self
        bundle.signature.features = features
        bundle.card = ModelCard.markdown(bundle)
        return bundle
    }

    /// Predicts from raw rows (column name → value), through the bundle's own transforms.
    public func predict(rows: [[String: RawValue]]) throws -> Predictions {
        try predict(RawBatch(rows: rows))
    }

    /// Predicts from a batch of raw values given column by column, through the bundle's own transforms.
    public func predict(_ batch: RawBatch) throws -> Predictions {
        model.predict(try transforms.transform(batch))
    }

    /// Predicts from a batch and counts, per text column, the values not seen in training (the serving path).
    public func predict(_ batch: RawBatch, unknownCategories: inout [String: Int]) throws -> Predictions {
        model.predict(try transforms.transform(batch, unknownCategories: &unknownCategories))
    }

    /// Predicts for every row of a table.
    public func predict(_ table: Table) throws -> Predictions {
        model.predict(try transforms.transform(table))
    }

    /// The bundle as canonical JSON.
    public func serialized() throws -> Data { try ModelCoding.encoder().encode(self) }

    /// Loads a bundle from ``serialized()`` bytes.
    public static func load(_ data: Data) throws -> ModelBundle {
        try ModelCoding.decoder().decode(ModelBundle.self, from: data)
    }

    private enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version"
        case name, transforms, model, signature, evaluation
        case trainingRun = "training_run"
        case datasetVersion = "dataset_version"
        case trainingFacts = "training_facts"
        case card
    }

    /// Decodes a bundle, refusing a format newer than this code.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let version = try container.decode(Int.self, forKey: .formatVersion)
        guard version <= Self.formatVersion else {
            throw TrainingError(
                problem:
                    "the model bundle has format version \(version); this Sluice reads up to \(Self.formatVersion)",
                fix: "upgrade Sluice to load it.")
        }
        name = try container.decode(String.self, forKey: .name)
        transforms = try container.decode(TransformGraph.self, forKey: .transforms)
        model = try container.decode(TrainedModel.self, forKey: .model)
        signature = try container.decode(ModelSignature.self, forKey: .signature)
        evaluation = try container.decodeIfPresent(Evaluation.self, forKey: .evaluation)
        trainingRun = try container.decodeIfPresent(String.self, forKey: .trainingRun)
        datasetVersion = try container.decodeIfPresent(String.self, forKey: .datasetVersion)
        trainingFacts = try container.decode([String: String].self, forKey: .trainingFacts)
        card = try container.decode(String.self, forKey: .card)
    }

    /// Encodes the bundle with its format version.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(Self.formatVersion, forKey: .formatVersion)
        try container.encode(name, forKey: .name)
        try container.encode(transforms, forKey: .transforms)
        try container.encode(model, forKey: .model)
        try container.encode(signature, forKey: .signature)
        try container.encodeIfPresent(evaluation, forKey: .evaluation)
        try container.encodeIfPresent(trainingRun, forKey: .trainingRun)
        try container.encodeIfPresent(datasetVersion, forKey: .datasetVersion)
        try container.encode(trainingFacts, forKey: .trainingFacts)
        try container.encode(card, forKey: .card)
    }
}

/// Writes a bundle's model card.
enum ModelCard {
    static func markdown(_ bundle: ModelBundle) -> String {
        let md = Markdown.escaped
        var lines = ["# Model card: \(md(bundle.name))", ""]
        switch bundle.model.task {
        case .regression: lines.append("Predicts **\(md(bundle.signature.label))** (regression).")
        case .classification(let classes):
            lines.append(
                "Predicts **\(md(bundle.signature.label))**, one of \(classes.count) classes: "
                    + classes.map(Markdown.code).joined(separator: ", ") + ".")
        }
        lines.append("")
        lines.append("## Training")
        let learner: String
        switch bundle.model.learner {
        case .linear(let model):
            learner =
                "linear model (\(model.kind.rawValue)), \(model.convergence.iterations) optimizer iterations, "
                + (model.convergence.converged ? "converged" : "not converged: \(model.convergence.reason)")
        case .trees(let model):
            learner = "gradient-boosted trees (\(model.objective.rawValue)), \(model.rounds) rounds kept"
        }
        lines.append("- Learner: \(learner)")
        if let run = bundle.trainingRun { lines.append("- Training run: \(Markdown.code(run))") }
        if let version = bundle.datasetVersion { lines.append("- Dataset version: \(Markdown.code(version))") }
        for key in bundle.trainingFacts.keys.sorted() {
            lines.append("- \(md(key)): \(md(bundle.trainingFacts[key]!))")
        }
        lines.append("")
        lines.append("## Inputs")
        lines.append("| column | type | required |")
        lines.append("| --- | --- | --- |")
        for column in bundle.signature.inputs {
            lines.append("| \(md(column.name)) | \(column.type) | \(column.required ? "yes" : "no") |")
        }
        if let service = bundle.signature.features {
            lines.append("")
            lines.append(
                "Served from the feature service \(Markdown.code(service.service)) (version "
                    + "\(Markdown.code(service.version))): a request sends "
                    + service.entityKeys.map { Markdown.code($0.name) }.joined(separator: ", ")
                    + " and the server fetches \(service.fetched.count) features from the online store; an entity "
                    + "without values is "
                    + (service.missingEntity == .refuse ? "refused." : "predicted with its features missing."))
        }
        lines.append("")
        lines.append(
            "Features: \(bundle.transforms.layout.slots.count) (\(bundle.transforms.layout.expandedCount) columns after one-hot encoding), computed by the bundled transforms, the same code at training and serving time."
        )
        if let evaluation = bundle.evaluation {
            lines.append("")
            lines.append("## Evaluation")
            lines.append("| metric | value |")
            lines.append("| --- | ---: |")
            for name in evaluation.overall.names {
                if let value = evaluation.overall.value(name) {
                    lines.append("| \(md(name)) | \(String(format: "%.4f", value)) |")
                }
            }
            lines.append("")
            lines.append("Measured on \(evaluation.overall.count) held-out rows.")
            let columns = Set(evaluation.slices.map(\.column)).sorted()
            for column in columns {
                let key = evaluation.overall.names.first { evaluation.overall.value($0) != nil } ?? "accuracy"
                let parts = evaluation.slices.filter { $0.column == column }.map { slice in
                    "\(md(slice.value)) \(slice.metrics.value(key).map { String(format: "%.3f", $0) } ?? "–") (\(slice.metrics.count) rows)"
                }
                lines.append("By \(md(column)) (\(md(key))): " + parts.joined(separator: "; ") + ".")
            }
        }
        if case .trees(let model) = bundle.model.learner {
            let top = model.featureImportance().prefix(8)
            if !top.isEmpty {
                lines.append("")
                lines.append("## Most important features (total split gain)")
                for (feature, gain) in top { lines.append("- \(md(feature)): \(String(format: "%.1f", gain))") }
            }
        }
        lines.append("")
        lines.append("## Limits")
        lines.append(
            "Valid for data like the training data. Values outside the training range and categories never seen in training are accepted (unseen categories go to the out-of-vocabulary bucket) but predictions there are extrapolations; check drift with `sluice data validate` before trusting them."
        )
        return lines.joined(separator: "\n") + "\n"
    }
}
