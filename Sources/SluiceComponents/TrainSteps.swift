import Foundation
import SluiceCore
import SluiceData
import SluiceML

/// Fits the preprocessing on the training rows: a spec given in config, or by default every column but the label,
/// numbers imputed with the mean and standardized, text imputed with the most frequent value and one-hot encoded.

public struct FitTransforms: Step {
    /// The label to leave out and the transforms to fit.
    public struct Parameters: Codable, Sendable, Equatable {
        /// The label column (never a feature).
        public var label = "label"
        /// Columns to leave out besides the label (identifiers, timestamps…).
        public var exclude: [String] = []
        /// An explicit spec; when absent, the default described above.
        public var spec: TransformSpec?
        /// Creates parameters.
        public init() {}
    }
    public static let name = "transform"
    public static let version = 1
    /// Draws nothing from the run seed: a new seed reuses its cached output.
    public static let usesRunSeed = false
    public var parameters = Parameters()
    /// Creates the step.
    public init() {}

    /// The default spec for a table: every column except the label and the excluded ones.
    public static func defaultSpec(for table: Table, label: String, exclude: [String]) -> TransformSpec {
        defaultSpec(
            columnNames: table.columnNames, columnTypes: table.columns.map(\.type), label: label, exclude: exclude)
    }

    /// The default spec for columns with these names and types.
    public static func defaultSpec(columnNames: [String], columnTypes: [ColumnType], label: String, exclude: [String])
        -> TransformSpec
    {
        TransformSpec(
            features: zip(columnNames, columnTypes).filter { $0.0 != label && !exclude.contains($0.0) }.map {
                name, type in
                type == .string
                    ? FeatureSpec(name, .impute(.mostFrequent), .oneHot(minFrequency: 1, oovBuckets: 1))
                    : FeatureSpec(name, .impute(.mean), .standardize)
            })
    }

    public func run(_ train: TableFile, context: StepContext) async throws -> TransformGraph {
        guard train.columnNames.contains(parameters.label) else {
            throw ComponentError(
                problem: "the training data has no label column '\(parameters.label)'",
                fix: "set the label (columns: \(train.columnNames.joined(separator: ", "))).")
        }
        let spec =
            parameters.spec
            ?? Self.defaultSpec(
                columnNames: train.columnNames, columnTypes: train.columnTypes, label: parameters.label,
                exclude: parameters.exclude)
        // Fitted from the batches (the transforms' statistics merge), one in memory at a time.
        let graph = try TransformGraph.fit(spec) { consume in try train.forEachBatch { batch, _ in try consume(batch) }
        }
        context.setProperty("features", .int(graph.layout.slots.count))
        context.setProperty("columns", .int(graph.layout.expandedCount))
        return graph
    }
}

/// Trains a model on transformed training rows: gradient-boosted trees, logistic/softmax regression, or ridge.
public struct TrainModel: Step {
    /// The learner and its hyper-parameters.
    public struct Parameters: Codable, Sendable, Equatable {
        /// The label column.
        public var label = "label"
        /// `auto` (text, boolean or few whole numbers: classification), `classification` or `regression`.
        public var task = "auto"
        /// `gbdt`, `logistic` (softmax for more than two classes) or `linear` (ridge).
        public var learner = "gbdt"
        /// Boosting rounds.
        public var rounds = 100
        /// Tree depth.
        public var maxDepth = 6
        /// Shrinkage per round.
        public var learningRate = 0.3
        /// L2 penalty (leaf values for trees, weights for linear models).
        public var l2: Double?
        /// Row and column sampling for trees.
        public var subsample = 1.0
        public var columnSample = 1.0
        /// Smallest hessian sum per leaf.
        public var minChildWeight = 1.0
        /// Stop after this many rounds without improvement on a held-out tenth of the training rows.
        public var earlyStoppingRounds: Int?
        /// Creates parameters.
        public init() {}
    }
    public static let name = "train"
    public static let version = 1
    public var parameters = Parameters()
    /// Creates the step.
    public init() {}

    public func run(_ input: (TableFile, TransformGraph), context: StepContext) async throws -> TrainedModel {
        let (train, graph) = input
        guard train.columnNames.contains(parameters.label) else {
            throw ComponentError(
                problem: "the training data has no label column '\(parameters.label)'",
                fix: "set steps.train.parameters.label.")
        }
        let labelColumn = try train.column(parameters.label)
        // The learners read the rows batch by batch, transformed as they are read: gradient boosting twice (into a
        // matrix of one byte per feature), the linear learners once per optimizer evaluation.
        let batches = FeatureBatches(rowCount: train.rowCount, layout: graph.layout) { consume in
            try train.forEachBatch { batch, first in try consume(try graph.transform(batch), first) }
        }
        let progress: TrainingCallback = { step in
            context.reportProgress(completed: step.iteration, total: step.maxIterations, unit: "iterations")
            context.log(metric: "train_loss", step.loss, step: step.iteration)
            if let metric = step.evalMetric {
                context.log(metric: "eval_\(metric.name)", metric.value, step: step.iteration)
            }
        }
        let classification = try isClassification(labelColumn)
        var random = context.random()
        if classification {
            let mapping = try LabelMapping(fitting: labelColumn)
            let labels = try mapping.encode(labelColumn)
            let task = ModelTask.classification(classes: mapping.classes)
            let classes = mapping.classes.count
            switch parameters.learner {
            case "gbdt":
                var learner = GradientBoosting(objective: classes == 2 ? .logistic : .softmax)
                configure(&learner, seed: random.next())
                let holdOut = learner.earlyStoppingRounds == nil ? nil : holdOut(train.rowCount, seed: random.next())
                let model = try learner.fit(
                    batches, labels: labels, classes: classes, holdOut: holdOut, progress: progress)
                context.setProperty("rounds", .int(model.rounds))
                return TrainedModel(task: task, learner: .trees(model))
            case "logistic":
                let l2 = parameters.l2 ?? 1e-4
                let model =
                    classes == 2
                    ? try LogisticRegression(l2: l2).fit(batches, labels: labels, progress: progress)
                    : try SoftmaxRegression(l2: l2).fit(batches, labels: labels, classes: classes, progress: progress)
                context.setProperty("converged", .bool(model.convergence.converged))
                return TrainedModel(task: task, learner: .linear(model))
            default:
                throw ComponentError(
                    problem: "learner '\(parameters.learner)' cannot classify",
                    fix: "use gbdt or logistic for classification (linear is for regression).")
            }
        }
        let targets = try LabelMapping.targets(labelColumn)
        switch parameters.learner {
        case "gbdt":
            var learner = GradientBoosting(objective: .squaredError)
            configure(&learner, seed: random.next())
            let holdOut = learner.earlyStoppingRounds == nil ? nil : holdOut(train.rowCount, seed: random.next())
            return TrainedModel(
                task: .regression,
                learner: .trees(try learner.fit(batches, targets: targets, holdOut: holdOut, progress: progress)))
        case "linear":
            let model = try LinearRegression(l2: parameters.l2 ?? 1e-4).fit(
                batches, targets: targets, progress: progress)
            return TrainedModel(task: .regression, learner: .linear(model))
        default:
            throw ComponentError(
                problem: "learner '\(parameters.learner)' cannot do regression", fix: "use gbdt or linear.")
        }
    }

    private func isClassification(_ label: Column) throws -> Bool {
        switch parameters.task {
        case "classification": return true
        case "regression": return false
        case "auto":
            if label.type == .string || label.type == .boolean { return true }
            if label.type == .integer { return ColumnStatistics(label).distinctCount <= 20 }
            return false
        default:
            throw ComponentError(
                problem: "unknown task '\(parameters.task)'", fix: "use auto, classification or regression.")
        }
    }

    private func configure(_ learner: inout GradientBoosting, seed: UInt64) {
        learner.rounds = parameters.rounds
        learner.maxDepth = parameters.maxDepth
        learner.learningRate = parameters.learningRate
        if let l2 = parameters.l2 { learner.l2 = l2 }
        learner.subsample = parameters.subsample
        learner.columnSample = parameters.columnSample
        learner.minChildWeight = parameters.minChildWeight
        learner.earlyStoppingRounds = parameters.earlyStoppingRounds
        learner.seed = seed
    }

    /// A tenth of the rows, reproducibly shuffled, marked to be held out for early stopping.
    private func holdOut(_ rows: Int, seed: UInt64) -> [Bool] {
        var order = Array(0..<rows)
        var random = SeededRandom(seed: seed)
        order.shuffle(using: &random)
        var marks = [Bool](repeating: false, count: rows)
        for row in order[..<(rows / 10)] { marks[row] = true }
        return marks
    }
}
