import Foundation

/// What to compute from raw columns before a model sees them: a list of features, each a raw column passed
/// through a chain of steps, plus crosses of categorical features. Fit it with ``TransformGraph/fit(_:on:)``.
///
/// In YAML (keys in `snake_case`):
/// ```yaml
/// features:
///   - column: f00
///     steps: [{impute: mean}, standardize]
///   - column: cat_a
///     steps: [{one_hot: {min_frequency: 5, oov_buckets: 1}}]
/// crosses:
///   - {name: a_x_b, features: [cat_a, cat_b], buckets: 64}
/// ```
public struct TransformSpec: Codable, Sendable, Equatable {
    /// The features, in the order the model sees them.
    public var features: [FeatureSpec]
    /// Crosses of categorical features, after the features.
    public var crosses: [CrossSpec]

    /// Creates a spec.
    public init(features: [FeatureSpec], crosses: [CrossSpec] = []) {
        self.features = features
        self.crosses = crosses
    }

    private enum CodingKeys: String, CodingKey { case features, crosses }

    /// Decodes a spec; `crosses` may be left out.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        features = try container.decode([FeatureSpec].self, forKey: .features)
        crosses = try container.decodeIfPresent([CrossSpec].self, forKey: .crosses) ?? []
    }
}

/// One feature: a raw column and the steps applied to it, in order.
public struct FeatureSpec: Codable, Sendable, Equatable {
    /// The feature's name (defaults to the column's).
    public var name: String
    /// The raw input column.
    public var column: String
    /// The steps, applied in order; none passes a numeric column through.
    public var steps: [TransformStep]

    /// Creates a feature from `column` through `steps`.
    public init(_ column: String, name: String? = nil, _ steps: TransformStep...) {
        self.init(column, name: name, steps: steps)
    }

    /// Creates a feature from `column` through `steps`.
    public init(_ column: String, name: String? = nil, steps: [TransformStep]) {
        self.column = column
        self.name = name ?? column
        self.steps = steps
    }

    private enum CodingKeys: String, CodingKey { case name, column, steps }

    /// Decodes a feature; `name` and `steps` may be left out.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        column = try container.decode(String.self, forKey: .column)
        name = try container.decodeIfPresent(String.self, forKey: .name) ?? column
        steps = try container.decodeIfPresent([TransformStep].self, forKey: .steps) ?? []
    }
}

/// A feature crossing categorical features: each combination of their categories hashed into `buckets`.
public struct CrossSpec: Codable, Sendable, Equatable {
    /// The cross's name.
    public var name: String
    /// Names of categorical features (after their steps) to cross.
    public var features: [String]
    /// Number of hash buckets.
    public var buckets: Int

    /// Creates a cross.
    public init(name: String? = nil, features: [String], buckets: Int) {
        self.name = name ?? features.joined(separator: "_x_")
        self.features = features
        self.buckets = buckets
    }
}

/// How a missing value is filled in.
public enum Imputation: Sendable, Equatable {
    /// The training mean.
    case mean
    /// The training median (from the quantile sketch, within its stated error).
    case median
    /// The most frequent training value (for text too).
    case mostFrequent
    /// A fixed number.
    case number(Double)
    /// A fixed text.
    case text(String)
}

/// One step of a feature's chain. Numeric steps keep a number; `bucketize`, `oneHot` and `hash` turn the value into
/// a category.
public enum TransformStep: Sendable, Equatable {
    /// Fills missing values.
    case impute(Imputation)
    /// `(x − mean) / standard deviation` (population deviation, as scikit-learn's `StandardScaler`).
    case standardize
    /// `(x − min) / (max − min)`, to `[0, 1]` on the training data.
    case minMax
    /// `log(x + offset)`; values where `x + offset ≤ 0` become missing.
    case log(offset: Double = 1)
    /// Buckets between training quantiles: `buckets` categories of about equal size.
    case bucketize(buckets: Int)
    /// A vocabulary of values seen at least `minFrequency` times (at most `maxTokens`, most frequent first); other
    /// values go to one of `oovBuckets` out-of-vocabulary categories (by hash), or to none when it is 0.
    case oneHot(minFrequency: Int = 1, maxTokens: Int? = nil, oovBuckets: Int = 1)
    /// A stable hash of the value into `buckets` categories, for high-cardinality text.
    case hash(buckets: Int)
}

extension TransformStep: Codable {
    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ string: String) { stringValue = string }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    private static let names = ["impute", "standardize", "min_max", "log", "bucketize", "one_hot", "hash"]

    /// Decodes `standardize`, `{impute: mean}`, `{one_hot: {min_frequency: 5}}`, `{bucketize: 10}` and the like.
    public init(from decoder: any Decoder) throws {
        if let single = try? decoder.singleValueContainer(), let name = try? single.decode(String.self) {
            switch name {
            case "standardize": self = .standardize
            case "min_max": self = .minMax
            case "log": self = .log()
            case "one_hot": self = .oneHot()
            default:
                throw DecodingError.dataCorrupted(
                    .init(
                        codingPath: decoder.codingPath,
                        debugDescription:
                            "unknown transform step '\(name)'\(Self.suggestion(for: name)); steps are \(Self.names.joined(separator: ", "))"
                    ))
            }
            return
        }
        let container = try decoder.container(keyedBy: Key.self)
        guard container.allKeys.count == 1, let key = container.allKeys.first else {
            throw DecodingError.dataCorrupted(
                .init(
                    codingPath: decoder.codingPath,
                    debugDescription: "a transform step is one name, such as `standardize` or `{impute: mean}`"))
        }
        func options(_ type: [String: Double].Type) throws -> [String: Double] {
            if let number = try? container.decode(Double.self, forKey: key) { return ["": number] }
            return try container.decodeIfPresent([String: Double].self, forKey: key) ?? [:]
        }
        func integer(_ options: [String: Double], _ name: String, default value: Int? = nil) throws -> Int? {
            guard let number = options[name] ?? options[""] else { return value }
            guard number == number.rounded(), number >= 0 else {
                throw DecodingError.dataCorrupted(
                    .init(
                        codingPath: decoder.codingPath + [key],
                        debugDescription: "\(name) must be a whole number ≥ 0, not \(number)"))
            }
            return Int(number)
        }
        switch key.stringValue {
        case "impute":
            if let name = try? container.decode(String.self, forKey: key) {
                switch name {
                case "mean": self = .impute(.mean)
                case "median": self = .impute(.median)
                case "most_frequent": self = .impute(.mostFrequent)
                default:
                    throw DecodingError.dataCorrupted(
                        .init(
                            codingPath: decoder.codingPath + [key],
                            debugDescription:
                                "unknown imputation '\(name)'; use mean, median, most_frequent or {constant: VALUE}"))
                }
            } else {
                let nested = try container.nestedContainer(keyedBy: Key.self, forKey: key)
                if let number = try? nested.decode(Double.self, forKey: Key("constant")) {
                    self = .impute(.number(number))
                } else {
                    self = .impute(.text(try nested.decode(String.self, forKey: Key("constant"))))
                }
            }
        case "standardize": self = .standardize
        case "min_max": self = .minMax
        case "log":
            let options = try options([String: Double].self)
            self = .log(offset: options["offset"] ?? options[""] ?? 1)
        case "bucketize":
            let options = try options([String: Double].self)
            self = .bucketize(buckets: try integer(options, "buckets", default: 10)!)
        case "one_hot":
            let options = try options([String: Double].self)
            self = .oneHot(
                minFrequency: try integer(options, "min_frequency", default: 1)!,
                maxTokens: try integer(options, "max_tokens"),
                oovBuckets: try integer(options, "oov_buckets", default: 1)!)
        case "hash":
            let options = try options([String: Double].self)
            self = .hash(buckets: try integer(options, "buckets", default: 1024)!)
        default:
            throw DecodingError.dataCorrupted(
                .init(
                    codingPath: decoder.codingPath,
                    debugDescription:
                        "unknown transform step '\(key.stringValue)'\(Self.suggestion(for: key.stringValue)); steps are \(Self.names.joined(separator: ", "))"
                ))
        }
    }

    private static func suggestion(for name: String) -> String {
        let close = names.min { editDistance($0, name) < editDistance($1, name) }
        guard let close, editDistance(close, name) <= 2 else { return "" }
        return " (did you mean '\(close)'?)"
    }

    /// Encodes the step in its `{name: options}` form.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        switch self {
        case .impute(let how):
            switch how {
            case .mean: try container.encode("mean", forKey: Key("impute"))
            case .median: try container.encode("median", forKey: Key("impute"))
            case .mostFrequent: try container.encode("most_frequent", forKey: Key("impute"))
            case .number(let value): try container.encode(["constant": value], forKey: Key("impute"))
            case .text(let value): try container.encode(["constant": value], forKey: Key("impute"))
            }
        case .standardize: try container.encode([String: Double](), forKey: Key("standardize"))
        case .minMax: try container.encode([String: Double](), forKey: Key("min_max"))
        case .log(let offset): try container.encode(["offset": offset], forKey: Key("log"))
        case .bucketize(let buckets): try container.encode(["buckets": buckets], forKey: Key("bucketize"))
        case .oneHot(let minFrequency, let maxTokens, let oovBuckets):
            var options = ["min_frequency": minFrequency, "oov_buckets": oovBuckets]
            if let maxTokens { options["max_tokens"] = maxTokens }
            try container.encode(options, forKey: Key("one_hot"))
        case .hash(let buckets): try container.encode(["buckets": buckets], forKey: Key("hash"))
        }
    }
}

/// Levenshtein distance, for "did you mean".
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a)
    let b = Array(b)
    var previous = Array(0...b.count)
    for i in 1...max(a.count, 1) where !a.isEmpty {
        var current = [i] + Array(repeating: 0, count: b.count)
        for j in stride(from: 1, through: b.count, by: 1) {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        previous = current
    }
    return a.isEmpty ? b.count : previous[b.count]
}
