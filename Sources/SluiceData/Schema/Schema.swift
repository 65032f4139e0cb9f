import Foundation
import Yams

/// What data is expected to look like: per column, its type, whether it may be missing (and how often),
/// its value range or categorical domain, and how much drift from a baseline is tolerated.
///
/// Inferred from statistics with ``Schema/inferred(from:)``, saved as YAML for people to edit, and used by
/// ``Validation`` to check new data.
public struct Schema: Codable, Sendable, Equatable {
    /// The expected columns, in order.
    public var columns: [ColumnSchema]

    /// Creates a schema.
    public init(columns: [ColumnSchema]) { self.columns = columns }

    /// The expectation for a column.
    public subscript(name: String) -> ColumnSchema? { columns.first { $0.name == name } }

    /// A schema that the data behind `statistics` satisfies: observed types and ranges, categorical domains
    /// for text columns with at most `domainLimit` values, missing rates with a little headroom.
    public static func inferred(from statistics: DatasetStatistics, domainLimit: Int = 100) -> Schema {
        Schema(
            columns: statistics.columns.map { c in
                var column = ColumnSchema(name: c.name, type: c.type)
                column.required = c.missing == 0
                if c.missing > 0 { column.maxMissingRate = ((c.missingRate + 0.02) * 1000).rounded(.up) / 1000 }
                if c.type.isNumeric {
                    column.min = c.min
                    column.max = c.max
                    column.drift = DriftThreshold(metric: .jensenShannon, threshold: 0.1)
                } else if c.type == .string || c.type == .boolean {
                    if !c.valueCountsPruned && c.valueCounts.count <= domainLimit {
                        column.domain = c.valueCounts.keys.sorted()
                    }
                    column.drift = DriftThreshold(metric: .lInfinity, threshold: 0.1)
                }
                return column
            })
    }

    /// The schema as YAML, with a comment saying how to edit it.
    public func yaml() throws -> String {
        // Built node by node so numbers read as people write them (0.031, not 3.1e-2).
        func number(_ value: Double) -> Node {
            Node(value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value), Tag(.float))
        }
        let columns = Node(
            columns.map { c -> Node in
                var pairs: [(Node, Node)] = [
                    (Node("name"), Node(c.name, Tag(.str))), (Node("type"), Node(c.type.rawValue)),
                ]
                pairs.append((Node("required"), Node(c.required ? "true" : "false", Tag(.bool))))
                if let rate = c.maxMissingRate { pairs.append((Node("max_missing_rate"), number(rate))) }
                if let low = c.min { pairs.append((Node("min"), number(low))) }
                if let high = c.max { pairs.append((Node("max"), number(high))) }
                if let domain = c.domain {
                    pairs.append((Node("domain"), Node(domain.map { Node($0, Tag(.str)) }, Tag(.seq), .flow)))
                }
                if let drift = c.drift {
                    pairs.append(
                        (
                            Node("drift"),
                            Node(
                                [
                                    (Node("metric"), Node(drift.metric.rawValue)),
                                    (Node("threshold"), number(drift.threshold)),
                                ],
                                Tag(.map), .flow)
                        ))
                }
                return Node(pairs)
            })
        let body = try Yams.serialize(node: Node([(Node("columns"), columns)]), sortKeys: false)
        return """
            # Sluice data schema. Edit freely: loosen ranges, extend domains, change thresholds.
            # Validate data against it with `sluice data validate DATA --schema THIS_FILE [--baseline OLD_DATA]`.
            \(body)
            """
    }

    /// Reads a schema from YAML.
    /// - Throws: ``SchemaError`` naming the file and what is wrong.
    public static func load(contentsOf url: URL) throws -> Schema {
        let text: String
        do {
            text = try String(contentsOf: url, encoding: .utf8)
        } catch {
            throw SchemaError(file: url.path, problem: "cannot read the schema (\(error.localizedDescription))")
        }
        do {
            return try YAMLDecoder().decode(Schema.self, from: text)
        } catch let error as DecodingError {
            throw SchemaError(file: url.path, problem: Self.describe(error))
        } catch {
            throw SchemaError(
                file: url.path, problem: "this is not valid YAML (\("\(error)".split(separator: "\n").first ?? ""))")
        }
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
                .trimmingCharacters(in: CharacterSet(charactersIn: "."))
        }
        switch error {
        case .keyNotFound(let key, let context):
            return
                "'\(path(context).isEmpty ? key.stringValue : path(context) + "." + key.stringValue)' is required but missing"
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            return "'\(path(context))': \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }
}

/// The expectations for one column.
public struct ColumnSchema: Codable, Sendable, Equatable {
    /// The column's name.
    public var name: String
    /// Its type. An integer column also satisfies a float expectation.
    public var type: ColumnType
    /// Whether every row must have a value.
    public var required = false
    /// The largest tolerated fraction of missing values, when some are allowed.
    public var maxMissingRate: Double?
    /// The smallest allowed value (numeric columns).
    public var min: Double?
    /// The largest allowed value (numeric columns).
    public var max: Double?
    /// The allowed values (categorical columns); values outside it are unseen categories.
    public var domain: [String]?
    /// How far the distribution may move from a baseline's.
    public var drift: DriftThreshold?

    /// Creates an expectation with only a type.
    public init(name: String, type: ColumnType) {
        self.name = name
        self.type = type
    }

    enum CodingKeys: String, CodingKey {
        case name, type, required
        case maxMissingRate = "max_missing_rate"
        case min, max, domain, drift
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        type = try c.decode(ColumnType.self, forKey: .type)
        required = try c.decodeIfPresent(Bool.self, forKey: .required) ?? false
        maxMissingRate = try c.decodeIfPresent(Double.self, forKey: .maxMissingRate)
        min = try c.decodeIfPresent(Double.self, forKey: .min)
        max = try c.decodeIfPresent(Double.self, forKey: .max)
        domain = try c.decodeIfPresent([String].self, forKey: .domain)
        drift = try c.decodeIfPresent(DriftThreshold.self, forKey: .drift)
    }
}

/// A drift limit: the distance metric and the largest tolerated distance from the baseline.
public struct DriftThreshold: Codable, Sendable, Equatable {
    /// How distributions are compared.
    public enum Metric: String, Codable, Sendable {
        /// Jensen–Shannon divergence (base 2, 0…1) between histograms on shared bins; for numeric columns.
        case jensenShannon = "jensen_shannon"
        /// The largest difference in any value's frequency (0…1); for categorical columns.
        case lInfinity = "l_infinity"
    }
    /// The metric.
    public var metric: Metric
    /// The largest tolerated distance.
    public var threshold: Double

    /// Creates a threshold.
    public init(metric: Metric, threshold: Double) {
        self.metric = metric
        self.threshold = threshold
    }
}

/// A schema file that cannot be used.
public struct SchemaError: Error, Sendable, CustomStringConvertible {
    /// The file.
    public var file: String
    /// What is wrong.
    public var problem: String
    /// The file, then the problem and the fix (``SluiceError/fix``).
    public var description: String { "\(file): \(problem)\n  To fix: \(fix)" }
}
