import Foundation

/// Metrics of one kind of model on one data set.
public enum MetricSet: Codable, Sendable, Equatable {
    /// A classifier's metrics.
    case classification(ClassificationMetrics)
    /// A regressor's metrics.
    case regression(RegressionMetrics)

    /// A named scalar metric, or nil when unknown or undefined.
    public func value(_ name: String) -> Double? {
        switch self {
        case .classification(let metrics): metrics.value(name)
        case .regression(let metrics): metrics.value(name)
        }
    }

    /// Names ``value(_:)`` knows for this kind.
    public var names: [String] {
        switch self {
        case .classification: ClassificationMetrics.names
        case .regression: RegressionMetrics.names
        }
    }

    /// Rows measured.
    public var count: Int {
        switch self {
        case .classification(let metrics): metrics.count
        case .regression(let metrics): metrics.count
        }
    }

    /// Whether larger values of a metric are better (false for losses and errors).
    public static func higherIsBetter(_ name: String) -> Bool {
        !["log_loss", "rmse", "mae"].contains(name)
    }
}

/// The rows sharing one value of a slicing column, and the metrics on them.
public struct SliceMetrics: Codable, Sendable, Equatable {
    /// The slicing column.
    public var column: String
    /// The value (`"(missing)"` for rows without one).
    public var value: String
    /// Metrics on those rows.
    public var metrics: MetricSet
}

/// A model's metrics on evaluation data, overall and per slice.
public struct Evaluation: Codable, Sendable, Equatable {
    /// Metrics on all rows.
    public var overall: MetricSet
    /// Metrics per value of each slicing column.
    public var slices: [SliceMetrics]

    /// Evaluates class probabilities (`rows × classes`) against class indices; `slices` maps a column name to each
    /// row's value of it.
    public init(
        labels: [Int32], probabilities: [Double], classes: [String], slices: [String: [String?]] = [:]
    ) {
        let k = classes.count
        overall = .classification(ClassificationMetrics(labels: labels, probabilities: probabilities, classes: classes))
        self.slices = Self.groups(slices).map { column, value, rows in
            SliceMetrics(
                column: column, value: value,
                metrics: .classification(
                    ClassificationMetrics(
                        labels: rows.map { labels[$0] },
                        probabilities: rows.flatMap { probabilities[($0 * k)..<(($0 + 1) * k)] }, classes: classes)))
        }
    }

    /// Evaluates regression predictions; `slices` maps a column name to each row's value of it.
    public init(targets: [Double], predictions: [Double], slices: [String: [String?]] = [:]) {
        overall = .regression(RegressionMetrics(targets: targets, predictions: predictions))
        self.slices = Self.groups(slices).map { column, value, rows in
            SliceMetrics(
                column: column, value: value,
                metrics: .regression(
                    RegressionMetrics(targets: rows.map { targets[$0] }, predictions: rows.map { predictions[$0] })))
        }
    }

    /// Evaluates a model's predictions on its evaluation data.
    public init(
        predictions: Predictions, task: ModelTask, labels: [Int32]?, targets: [Double]?,
        slices: [String: [String?]] = [:]
    ) {
        switch task {
        case .classification(let classes):
            self.init(labels: labels ?? [], probabilities: predictions.values, classes: classes, slices: slices)
        case .regression:
            self.init(targets: targets ?? [], predictions: predictions.values, slices: slices)
        }
    }

    private static func groups(_ slices: [String: [String?]]) -> [(String, String, [Int])] {
        var out: [(String, String, [Int])] = []
        for column in slices.keys.sorted() {
            var rows: [String: [Int]] = [:]
            for (row, value) in slices[column]!.enumerated() { rows[value ?? "(missing)", default: []].append(row) }
            for value in rows.keys.sorted() { out.append((column, value, rows[value]!)) }
        }
        return out
    }

    /// The metrics of one slice, or of all rows when `slice` is nil.
    public func metrics(slice: SliceKey?) -> MetricSet? {
        guard let slice else { return overall }
        return slices.first { $0.column == slice.column && $0.value == slice.value }?.metrics
    }
}

/// Names one slice: a column and one of its values.
public struct SliceKey: Codable, Sendable, Equatable, Hashable, CustomStringConvertible {
    /// The slicing column.
    public var column: String
    /// The value.
    public var value: String

    /// Creates a key.
    public init(column: String, value: String) {
        self.column = column
        self.value = value
    }

    public var description: String { "\(column)=\(value)" }
}
