import Foundation
import SluiceData

/// A raw column a transform graph reads, with the type it had in training.
public struct InputColumn: Codable, Sendable, Equatable {
    /// The column's name.
    public var name: String
    /// Its type in the training data.
    public var type: ColumnType
}

/// A feature with its fitted steps.
struct FittedFeature: Codable, Sendable, Equatable {
    var name: String
    var column: String
    var steps: [FittedStep]
    var slot: FeatureSlot
}

/// A transform spec that cannot be fitted or applied, with what to do about it.
public struct TransformError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What is wrong.
    public var problem: String
    /// What to do.
    public var fix: String
}

/// The fitted preprocessing: maps raw rows (by column name, with raw types) to a model's ``FeatureMatrix``. It is a
/// plain serializable value, and the very same code transforms a training table and a single serving row, so the
/// features cannot differ between training and serving.
public struct TransformGraph: Sendable, Equatable {
    /// Version of the serialized form this code writes.
    public static let formatVersion = 1
    /// The raw columns read, with their training types.
    public let inputs: [InputColumn]
    /// What the model sees.
    public let layout: FeatureLayout
    let features: [FittedFeature]
    let crosses: [CrossSpec]
    /// Per feature, per step: the vocabulary as a dictionary (derived, not serialized).
    let lookups: [[[String: Int32]?]]
    /// Per feature: the training type of the column it reads (derived).
    let columnTypes: [ColumnType]
    /// Per feature: the index of the vocabulary step whose misses count as unknown categories of its column, for
    /// the first such feature of each column only, so a value is counted once (derived).
    let unknownCounted: [Int?]
    /// Per cross: the categorical storage indices of the features it combines (derived).
    let crossParts: [[Int]]

    init(inputs: [InputColumn], features: [FittedFeature], crosses: [CrossSpec]) {
        self.inputs = inputs
        self.features = features
        self.crosses = crosses
        var slots = features.map(\.slot)
        for cross in crosses {
            slots.append(FeatureSlot(name: cross.name, kind: .categorical(width: cross.buckets)))
        }
        self.layout = FeatureLayout(slots)
        self.lookups = features.map { feature in
            feature.steps.map { step in
                guard case .vocabulary(let tokens, _) = step else { return nil }
                return Dictionary(uniqueKeysWithValues: tokens.enumerated().map { ($0.element, Int32($0.offset)) })
            }
        }
        self.columnTypes = features.map { feature in inputs.first { $0.name == feature.column }!.type }
        var countedColumns: Set<String> = []
        self.unknownCounted = features.map { feature in
            let step = feature.steps.firstIndex { if case .vocabulary = $0 { true } else { false } }
            guard step != nil, countedColumns.insert(feature.column).inserted else { return nil }
            return step
        }
        let featureSlots = Dictionary(
            features.enumerated().map { ($0.element.name, $0.offset) }, uniquingKeysWith: { first, _ in first })
        let layout = self.layout
        self.crossParts = crosses.map { cross in cross.features.map { layout.storageIndex[featureSlots[$0]!] } }
    }

    public static func == (a: TransformGraph, b: TransformGraph) -> Bool {
        a.inputs == b.inputs && a.features == b.features && a.crosses == b.crosses
    }

    // MARK: Applying

    /// Transforms a table (the training and batch path).
    /// - Throws: ``TransformError`` when a column is missing or has an incompatible type.
    public func transform(_ table: Table) throws -> FeatureMatrix {
        let rows = table.rowCount
        var numericOut: [[Double]] = []
        var categoricalOut: [[Int32]] = []
        var columns: [Column] = []
        for (f, feature) in features.enumerated() {
            guard let column = table[feature.column] else {
                throw TransformError(
                    problem: "the data has no column '\(feature.column)', which feature '\(feature.name)' reads",
                    fix: "provide the column (the model was trained on: \(inputs.map(\.name).joined(separator: ", ")))."
                )
            }
            try checkType(of: column, feature: f)
            columns.append(column)
        }
        // Features are independent: compute them on all cores.
        let results = UnsafeMutableBufferPointer<Output?>.allocate(capacity: features.count)
        results.initialize(repeating: nil)
        defer {
            results.deinitialize()
            results.deallocate()
        }
        let box = UncheckedBox(results)
        parallelFor(features.count) { f in box.value[f] = self.compute(f, on: columns[f], rows: rows) }
        for f in features.indices {
            switch results[f]! {
            case .numbers(let values): numericOut.append(values)
            case .categories(let values): categoricalOut.append(values)
            }
        }
        // Categorical features were appended in storage order, so a cross's parts index `categoricalOut`.
        for c in crosses.indices {
            var key = [Int32](repeating: 0, count: crossParts[c].count)
            let crossed = (0..<rows).map { row in crossCategory(c, key: &key) { categoricalOut[$0][row] } }
            categoricalOut.append(crossed)
        }
        return Self.interleave(layout: layout, rows: rows, numeric: numericOut, categorical: categoricalOut)
    }

    /// Transforms rows given as column name → raw value (the serving path). A column left out is missing.
    /// - Throws: ``TransformError`` when a value has the wrong type for its column.
    public func transform(rows: [[String: RawValue]]) throws -> FeatureMatrix {
        var unknown: [String: Int] = [:]
        return try transform(RawBatch(rows: rows), unknownCategories: &unknown)
    }

    /// Transforms a batch of raw values given column by column (the serving path).
    /// - Throws: ``TransformError`` when a value has the wrong type for its column.
    public func transform(_ batch: RawBatch) throws -> FeatureMatrix {
        var unknown: [String: Int] = [:]
        return try transform(batch, unknownCategories: &unknown)
    }

    /// Transforms a batch column by column and counts, per text column, the rows whose value is not in the
    /// training vocabulary (it goes to the out-of-vocabulary bucket), for monitoring at serving time.
    /// - Throws: ``TransformError`` when a value has the wrong type for its column.
    public func transform(_ batch: RawBatch, unknownCategories: inout [String: Int]) throws -> FeatureMatrix {
        let rows = batch.rowCount
        let numericCount = layout.numericCount
        let categoricalCount = layout.categoricalCount
        var numeric = [Double](repeating: 0, count: rows * numericCount)
        var categorical = [Int32](repeating: 0, count: rows * categoricalCount)
        for (f, feature) in features.enumerated() {
            let values = batch.columns[feature.column]
            let type = columnTypes[f]
            let slot = layout.storageIndex[f]
            let counted = unknownCounted[f]
            var unknown = 0
            for row in 0..<rows {
                var value = try initialValue(values?[row] ?? .missing, type: type, feature: feature)
                for (s, step) in feature.steps.enumerated() {
                    let next = step.apply(value, lookup: lookups[f][s])
                    if s == counted, !value.isMissing, case .vocabulary(let tokens, _) = step,
                        case .category(let k) = next, k < 0 || Int(k) >= tokens.count
                    {
                        unknown += 1
                    }
                    value = next
                }
                switch value {
                case .number(let x): numeric[row * numericCount + slot] = x
                case .category(let k): categorical[row * categoricalCount + slot] = k
                case .token: preconditionFailure("a fitted feature never ends as text")
                }
            }
            if unknown > 0 { unknownCategories[feature.column, default: 0] += unknown }
        }
        for c in crosses.indices {
            let slot = layout.storageIndex[features.count + c]
            var key = [Int32](repeating: 0, count: crossParts[c].count)
            for row in 0..<rows {
                let base = row * categoricalCount
                categorical[base + slot] = crossCategory(c, key: &key) { categorical[base + $0] }
            }
        }
        return FeatureMatrix(layout: layout, rowCount: rows, numeric: numeric, categorical: categorical)
    }

    /// Cross `c`'s category for one row, from its parts' categories (`category` reads one by storage index);
    /// -1 when a part has none. `key` is scratch space of the cross's width.
    @inline(__always)
    private func crossCategory(_ c: Int, key: inout [Int32], _ category: (Int) -> Int32) -> Int32 {
        for (p, part) in crossParts[c].enumerated() {
            key[p] = category(part)
            if key[p] < 0 { return -1 }
        }
        return Int32(stableHash(key) % UInt64(crosses[c].buckets))
    }

    private func initialValue(_ raw: RawValue, type: ColumnType, feature: FittedFeature) throws -> StepValue {
        switch (type, raw) {
        case (.string, .text(let text)): return .token(text)
        case (.string, .missing): return .token(nil)
        case (.string, .number(let x)): return .token(FittedStep.token(.number(x)))
        case (_, .number(let x)): return .number(x)
        case (_, .missing): return .number(.nan)
        case (_, .text(let text)):
            throw TransformError(
                problem:
                    "column '\(feature.column)' holds numbers (\(type)), but the value given is the text \"\(text)\"",
                fix: "send a number, or leave the value out when it is missing.")
        }
    }

    enum Output {
        case numbers([Double])
        case categories([Int32])
    }

    private func checkType(of column: Column, feature f: Int) throws {
        let feature = features[f]
        let expected = columnTypes[f]
        guard (column.type == .string) == (expected == .string) else {
            throw TransformError(
                problem: "column '\(feature.column)' is \(column.type) here but was \(expected) in training",
                fix: "give the column the training type (or refit the transforms on data of this type).")
        }
    }

    /// Applies feature `f`'s steps to a whole column: numbers value by value, text once per dictionary entry.
    func compute(_ f: Int, on column: Column, rows: Int) -> Output {
        let feature = features[f]
        if case .string(let codes, let dictionary) = column.storage {
            let lookup = lookups[f]
            func run(_ token: String?) -> StepValue {
                var value = StepValue.token(token)
                for (s, step) in feature.steps.enumerated() { value = step.apply(value, lookup: lookup[s]) }
                return value
            }
            let mapped = dictionary.map { run($0) }
            let missing = run(nil)
            guard case .category(let missingCategory) = missing else { preconditionFailure("text ends as category") }
            let categories = mapped.map { value -> Int32 in
                guard case .category(let k) = value else { preconditionFailure("text ends as category") }
                return k
            }
            return .categories(codes.map { $0 < 0 ? missingCategory : categories[Int($0)] })
        }
        var values = [Double](repeating: .nan, count: rows)
        switch column.storage {
        case .float(let v, let valid):
            for k in 0..<rows where valid[k] { values[k] = v[k] }
        case .integer(let v, let valid), .timestamp(let v, let valid):
            for k in 0..<rows where valid[k] { values[k] = Double(v[k]) }
        case .boolean(let v, let valid):
            for k in 0..<rows where valid[k] { values[k] = v[k] ? 1 : 0 }
        case .string: preconditionFailure("handled above")
        }
        var s = 0
        while s < feature.steps.count, feature.steps[s].isNumeric {
            let step = feature.steps[s]
            values.withUnsafeMutableBufferPointer { values in
                for k in 0..<rows { values[k] = step.applyNumber(values[k]) }
            }
            s += 1
        }
        if s == feature.steps.count { return .numbers(values) }
        if s == feature.steps.count - 1, case .bucketize(let cuts) = feature.steps[s] {
            return .categories(values.map { FittedStep.bucket($0, cuts: cuts) })
        }
        let rest = Array(feature.steps[s...])
        let lookup = Array(lookups[f][s...])
        return .categories(
            values.map { x in
                var value = StepValue.number(x)
                for (r, step) in rest.enumerated() { value = step.apply(value, lookup: lookup[r]) }
                guard case .category(let k) = value else { preconditionFailure("a chain ends as category") }
                return k
            })
    }

    static func interleave(layout: FeatureLayout, rows: Int, numeric: [[Double]], categorical: [[Int32]])
        -> FeatureMatrix
    {
        let nN = numeric.count
        let nC = categorical.count
        var numericOut = [Double](repeating: 0, count: rows * nN)
        numericOut.withUnsafeMutableBufferPointer { out in
            for (j, column) in numeric.enumerated() {
                column.withUnsafeBufferPointer { values in
                    for row in 0..<rows { out[row * nN + j] = values[row] }
                }
            }
        }
        var categoricalOut = [Int32](repeating: 0, count: rows * nC)
        categoricalOut.withUnsafeMutableBufferPointer { out in
            for (j, column) in categorical.enumerated() {
                column.withUnsafeBufferPointer { values in
                    for row in 0..<rows { out[row * nC + j] = values[row] }
                }
            }
        }
        return FeatureMatrix(layout: layout, rowCount: rows, numeric: numericOut, categorical: categoricalOut)
    }
}

extension TransformGraph: Codable {
    private enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version"
        case inputs, features, crosses
    }

    /// Decodes a graph, refusing a format newer than this code.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let version = try container.decode(Int.self, forKey: .formatVersion)
        guard version <= Self.formatVersion else {
            throw TransformError(
                problem:
                    "the transform graph has format version \(version); this Sluice reads up to \(Self.formatVersion)",
                fix: "upgrade Sluice to load it.")
        }
        self.init(
            inputs: try container.decode([InputColumn].self, forKey: .inputs),
            features: try container.decode([FittedFeature].self, forKey: .features),
            crosses: try container.decode([CrossSpec].self, forKey: .crosses))
    }

    /// Encodes the graph with its format version.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(Self.formatVersion, forKey: .formatVersion)
        try container.encode(inputs, forKey: .inputs)
        try container.encode(features, forKey: .features)
        try container.encode(crosses, forKey: .crosses)
    }
}

extension TransformGraph {
    /// A plausible raw row: each numeric column at its training center (mean or median when a step learned
    /// one, else 0), each text column at its most frequent training value. For profiling and smoke tests.
    public func typicalRow() -> [String: RawValue] {
        var row: [String: RawValue] = [:]
        for (f, feature) in features.enumerated() where row[feature.column] == nil {
            if columnTypes[f] == .string {
                var text = "a"
                for step in feature.steps {
                    if case .vocabulary(let tokens, _) = step, let first = tokens.first {
                        text = first
                        break
                    }
                    if case .fillToken(let fill) = step { text = fill }
                }
                row[feature.column] = .text(text)
            } else {
                var value = 0.0
                for step in feature.steps {
                    if case .scale(let center, _) = step {
                        value = center
                        break
                    }
                    if case .fillNumber(let fill) = step { value = fill }
                }
                row[feature.column] = .number(value)
            }
        }
        return row
    }
}
