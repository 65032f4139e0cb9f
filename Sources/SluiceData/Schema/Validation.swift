import Foundation

/// One way new data departs from its schema or its baseline.
public struct Anomaly: Codable, Sendable, Equatable {
    /// What kind of problem.
    public enum Kind: String, Codable, Sendable {
        case missingColumn = "missing_column"
        case unexpectedColumn = "unexpected_column"
        case typeChange = "type_change"
        case outOfRange = "out_of_range"
        case unseenCategories = "unseen_categories"
        case missingValues = "missing_values"
        case drift
    }
    /// The column concerned.
    public var column: String
    /// The kind of problem.
    public var kind: Kind
    /// What was found, in words.
    public var description: String
    /// The measured distance, for drift.
    public var value: Double?
}

/// The result of validating data against a schema (and optionally a baseline): pass, or the anomalies.
public struct Validation: Codable, Sendable, Equatable {
    /// Every anomaly found, in column order.
    public var anomalies: [Anomaly]
    /// Drift distances measured per column (whether or not over the threshold).
    public var drift: [String: Double]
    /// What the data was checked against, when it was a model's training data (`churn@3, dataset version …`).
    public var reference: String?

    /// Whether the data passed.
    public var passed: Bool { anomalies.isEmpty }

    /// Validates `statistics` of new data against `schema`, and, given `baseline` statistics, checks drift.
    public static func check(
        _ statistics: DatasetStatistics, against schema: Schema, baseline: DatasetStatistics? = nil
    ) -> Validation {
        var anomalies: [Anomaly] = []
        var drift: [String: Double] = [:]
        for expected in schema.columns {
            guard let actual = statistics[expected.name] else {
                anomalies.append(
                    Anomaly(
                        column: expected.name, kind: .missingColumn, description: "the column is missing from the data")
                )
                continue
            }
            let compatible = actual.type == expected.type || (expected.type == .float && actual.type == .integer)
            if !compatible {
                anomalies.append(
                    Anomaly(
                        column: expected.name, kind: .typeChange,
                        description: "expected \(expected.type) values but the data has \(actual.type)"))
                continue
            }
            if expected.required && actual.missing > 0 {
                anomalies.append(
                    Anomaly(
                        column: expected.name, kind: .missingValues,
                        description: "\(actual.missing) missing values in a required column"))
            } else if let limit = expected.maxMissingRate, actual.missingRate > limit {
                anomalies.append(
                    Anomaly(
                        column: expected.name, kind: .missingValues,
                        description: String(
                            format: "%.2f%% missing, above the allowed %.2f%%", actual.missingRate * 100, limit * 100)))
            }
            if let low = expected.min, let observed = actual.min, observed < low {
                let below = Int(actual.quantiles.rank(of: low).rounded())
                anomalies.append(
                    Anomaly(
                        column: expected.name, kind: .outOfRange,
                        description:
                            "values down to \(show(observed)), below the minimum \(show(low)) (about \(max(below, 1)) values)"
                    ))
            }
            if let high = expected.max, let observed = actual.max, observed > high {
                let above = actual.count - Int(actual.quantiles.rank(of: high).rounded())
                anomalies.append(
                    Anomaly(
                        column: expected.name, kind: .outOfRange,
                        description:
                            "values up to \(show(observed)), above the maximum \(show(high)) (about \(max(above, 1)) values)"
                    ))
            }
            if let domain = expected.domain {
                let allowed = Set(domain)
                let unseen = actual.valueCounts.filter { !allowed.contains($0.key) }.sorted { $0.value > $1.value }
                if !unseen.isEmpty {
                    let rows = unseen.reduce(0) { $0 + $1.value }
                    let examples = unseen.prefix(5).map { "'\($0.key)' (\($0.value))" }.joined(separator: ", ")
                    anomalies.append(
                        Anomaly(
                            column: expected.name, kind: .unseenCategories,
                            description:
                                "\(unseen.count) value\(unseen.count == 1 ? "" : "s") outside the domain in \(rows) rows: \(examples)"
                        ))
                }
            }
            if let threshold = expected.drift, let reference = baseline?[expected.name] {
                let distance: Double
                switch threshold.metric {
                case .jensenShannon: distance = jensenShannon(reference, actual)
                case .lInfinity: distance = lInfinity(reference, actual)
                }
                drift[expected.name] = distance
                if distance > threshold.threshold {
                    anomalies.append(
                        Anomaly(
                            column: expected.name, kind: .drift,
                            description: String(
                                format: "%@ distance %.3f from the baseline, above the threshold %.3f",
                                threshold.metric == .jensenShannon ? "Jensen–Shannon" : "L-infinity", distance,
                                threshold.threshold), value: distance))
                }
            }
        }
        let known = Set(schema.columns.map(\.name))
        for column in statistics.columns where !known.contains(column.name) {
            anomalies.append(
                Anomaly(column: column.name, kind: .unexpectedColumn, description: "the column is not in the schema"))
        }
        return Validation(anomalies: anomalies, drift: drift)
    }

    static func show(_ value: Double) -> String { StatisticsReport.number(value) }

    /// Jensen–Shannon divergence (base 2) of two numeric columns' distributions over 30 shared bins spanning both.
    public static func jensenShannon(_ a: ColumnStatistics, _ b: ColumnStatistics) -> Double {
        guard let lowA = a.min, let highA = a.max, let lowB = b.min, let highB = b.max, a.count > 0, b.count > 0 else {
            return 0
        }
        let low = min(lowA, lowB)
        let high = max(highA, highB)
        guard high > low else { return 0 }
        let bins = 30
        func distribution(_ c: ColumnStatistics) -> [Double] {
            var previous = 0.0
            var result: [Double] = []
            for k in 1...bins {
                let edge = k == bins ? high : low + (high - low) * Double(k) / Double(bins)
                let cumulative = k == bins ? Double(c.quantiles.count) : c.quantiles.rank(of: edge)
                result.append(max(0, cumulative - previous))
                previous = max(previous, cumulative)
            }
            let total = result.reduce(0, +)
            return result.map { total > 0 ? $0 / total : 0 }
        }
        return divergence(distribution(a), distribution(b))
    }

    /// The largest difference in any value's relative frequency between two categorical columns.
    public static func lInfinity(_ a: ColumnStatistics, _ b: ColumnStatistics) -> Double {
        let totalA = Double(max(a.count, 1))
        let totalB = Double(max(b.count, 1))
        var largest = 0.0
        for value in Set(a.valueCounts.keys).union(b.valueCounts.keys) {
            let difference = abs(
                Double(a.valueCounts[value] ?? 0) / totalA - Double(b.valueCounts[value] ?? 0) / totalB)
            largest = max(largest, difference)
        }
        return largest
    }

    static func divergence(_ p: [Double], _ q: [Double]) -> Double {
        func kl(_ x: [Double], _ m: [Double]) -> Double {
            zip(x, m).reduce(0) { sum, pair in pair.0 > 0 ? sum + pair.0 * log2(pair.0 / pair.1) : sum }
        }
        let m = zip(p, q).map { ($0 + $1) / 2 }
        return max(0, min(1, (kl(p, m) + kl(q, m)) / 2))
    }

    /// A human-readable report: PASS, or FAIL with one line per anomaly.
    public func text() -> String {
        var lines = [
            passed
                ? "PASS: the data matches the schema"
                : "FAIL: \(anomalies.count) anomal\(anomalies.count == 1 ? "y" : "ies")"
        ]
        for anomaly in anomalies {
            lines.append("  \(anomaly.column): [\(anomaly.kind.rawValue)] \(anomaly.description)")
        }
        if let reference { lines.insert("checked against the schema and training statistics of \(reference)", at: 1) }
        if !drift.isEmpty {
            lines.append("drift from the baseline:")
            for (column, distance) in drift.sorted(by: { $0.key < $1.key }) {
                lines.append(String(format: "  %@: %.4f", column, distance))
            }
        }
        return lines.joined(separator: "\n")
    }
}
