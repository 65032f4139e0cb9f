import Foundation

/// What a model predicts.
public enum ModelTask: Codable, Sendable, Equatable {
    /// A number.
    case regression
    /// One of these classes (two: binary, the second is positive).
    case classification(classes: [String])
}

/// A fitted learner of any kind.
public enum Learner: Codable, Sendable, Equatable {
    /// Ridge, logistic or softmax regression.
    case linear(LinearModel)
    /// Gradient-boosted trees.
    case trees(TreeEnsemble)
}

/// Predictions for many rows.
public struct Predictions: Sendable, Equatable {
    /// Regression: one value per row. Classification: class probabilities, `rows × classes`, row-major.
    public var values: [Double]
    /// Values per row: 1 for regression, the number of classes otherwise.
    public var width: Int

    /// Rows predicted.
    public var rowCount: Int { width == 0 ? 0 : values.count / width }

    /// The most probable class of each row (classification).
    public var predictedClasses: [Int32] {
        (0..<rowCount).map { row in
            var best = 0
            for c in 1..<width where values[row * width + c] > values[row * width + best] { best = c }
            return Int32(best)
        }
    }

    /// The positive class's probability per row (binary classification).
    public var positiveScores: [Double] { (0..<rowCount).map { values[$0 * width + 1] } }
}

/// A trained model as a serializable value with a stable, versioned format: its task, its learner, and how its
/// training went. Saving and loading gives the same predictions, bit for bit.
public struct TrainedModel: Codable, Sendable, Equatable {
    /// Version of the serialized form this code writes.
    public static let formatVersion = 1
    /// What the model predicts.
    public var task: ModelTask
    /// The fitted learner.
    public var learner: Learner

    /// Creates a model.
    public init(task: ModelTask, learner: Learner) {
        self.task = task
        self.learner = learner
    }

    /// The input layout the model expects.
    public var layout: FeatureLayout {
        switch learner {
        case .linear(let model): model.layout
        case .trees(let model): model.layout
        }
    }

    /// Predicts values or class probabilities.
    public func predict(_ x: FeatureMatrix) -> Predictions {
        let margins: [Double]
        let outputs: Int
        switch learner {
        case .linear(let model):
            margins = model.margins(x)
            outputs = model.outputs
        case .trees(let model):
            margins = model.margins(x)
            outputs = model.outputs
        }
        switch task {
        case .regression: return Predictions(values: margins, width: 1)
        case .classification(let classes):
            if outputs == 1 {
                var values = [Double](repeating: 0, count: margins.count * 2)
                for (row, m) in margins.enumerated() {
                    let p = m >= 0 ? 1 / (1 + Foundation.exp(-m)) : Foundation.exp(m) / (1 + Foundation.exp(m))
                    values[row * 2] = 1 - p
                    values[row * 2 + 1] = p
                }
                return Predictions(values: values, width: 2)
            }
            let k = classes.count
            var values = margins
            for row in 0..<(margins.count / k) {
                var top = -Double.infinity
                for c in 0..<k { top = max(top, values[row * k + c]) }
                var sum = 0.0
                for c in 0..<k {
                    values[row * k + c] = Foundation.exp(values[row * k + c] - top)
                    sum += values[row * k + c]
                }
                for c in 0..<k { values[row * k + c] /= sum }
            }
            return Predictions(values: values, width: k)
        }
    }

    private enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version"
        case task, learner
    }

    /// Decodes a model, refusing a format newer than this code.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let version = try container.decode(Int.self, forKey: .formatVersion)
        guard version <= Self.formatVersion else {
            throw TrainingError(
                problem: "the model has format version \(version); this Sluice reads up to \(Self.formatVersion)",
                fix: "upgrade Sluice to load it.")
        }
        task = try container.decode(ModelTask.self, forKey: .task)
        learner = try container.decode(Learner.self, forKey: .learner)
    }

    /// Encodes the model with its format version.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(Self.formatVersion, forKey: .formatVersion)
        try container.encode(task, forKey: .task)
        try container.encode(learner, forKey: .learner)
    }

    /// The model as canonical JSON bytes (sorted keys, shortest round-trip numbers): equal models give equal bytes.
    public func serialized() throws -> Data { try ModelCoding.encoder().encode(self) }

    /// Loads a model from ``serialized()`` bytes.
    public static func load(_ data: Data) throws -> TrainedModel {
        try ModelCoding.decoder().decode(TrainedModel.self, from: data)
    }
}

/// JSON settings shared by everything ML serializes.
public enum ModelCoding {
    /// Sorted keys; non-finite numbers as the strings the core's JSON materializer writes, so a bundle read
    /// straight from the artifact store loads with ``ModelBundle/load(_:)``.
    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "+Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return encoder
    }

    /// Reads what ``encoder()`` writes.
    public static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(
            positiveInfinity: "+Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return decoder
    }
}
