/// What one transformed feature contributes to the model's input: one number, or one category out of a block of
/// one-hot columns.
public struct FeatureSlot: Codable, Sendable, Equatable {
    /// The feature's name (its spec's name, or the cross's name).
    public var name: String
    /// Whether the feature is a number or a category index.
    public var kind: Kind
    /// For a categorical feature, a label per category (vocabulary entries, bucket ranges, hash buckets).
    public var categories: [String]?

    /// A number, or one of `width` categories (one-hot encoded in the expanded vector).
    public enum Kind: Codable, Sendable, Equatable {
        case numeric
        case categorical(width: Int)
    }

    /// Creates a slot.
    public init(name: String, kind: Kind, categories: [String]? = nil) {
        self.name = name
        self.kind = kind
        self.categories = categories
    }

    /// Columns this feature takes in the expanded (dense, one-hot) vector.
    public var width: Int {
        switch kind {
        case .numeric: 1
        case .categorical(let width): width
        }
    }
}

/// The order and meaning of a model's input: numeric features and one-hot blocks, with the names of the expanded
/// columns (`cat_a=red`).
public struct FeatureLayout: Codable, Sendable, Equatable {
    /// The features in order.
    public let slots: [FeatureSlot]
    /// Index of each slot among the numeric features, or among the categorical ones.
    public let storageIndex: [Int]
    /// First expanded column of each slot.
    public let expandedOffset: [Int]
    /// Number of numeric features.
    public let numericCount: Int
    /// Number of categorical features.
    public let categoricalCount: Int
    /// Length of the expanded vector.
    public let expandedCount: Int

    /// Creates a layout from slots.
    public init(_ slots: [FeatureSlot]) {
        self.slots = slots
        var numeric = 0
        var categorical = 0
        var offset = 0
        var storageIndex: [Int] = []
        var expandedOffset: [Int] = []
        for slot in slots {
            expandedOffset.append(offset)
            offset += slot.width
            switch slot.kind {
            case .numeric:
                storageIndex.append(numeric)
                numeric += 1
            case .categorical:
                storageIndex.append(categorical)
                categorical += 1
            }
        }
        self.storageIndex = storageIndex
        self.expandedOffset = expandedOffset
        self.numericCount = numeric
        self.categoricalCount = categorical
        self.expandedCount = offset
    }

    private enum CodingKeys: String, CodingKey { case slots }

    /// Decodes the slots; the indices are derived.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(try container.decode([FeatureSlot].self, forKey: .slots))
    }

    /// Encodes the slots only.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(slots, forKey: .slots)
    }

    /// Names of the expanded columns: a numeric feature's name, or `name=category` for each one-hot column.
    public var expandedNames: [String] {
        slots.flatMap { slot -> [String] in
            switch slot.kind {
            case .numeric: [slot.name]
            case .categorical(let width):
                (0..<width).map { k in "\(slot.name)=\(slot.categories.map { $0[k] } ?? String(k))" }
            }
        }
    }

    /// Where an expanded column comes from: numeric feature `index`, or category `category` of categorical feature
    /// `index`.
    public func source(ofExpanded column: Int) -> ExpandedSource {
        var low = 0
        var high = slots.count - 1
        while low < high {
            let mid = (low + high + 1) / 2
            if expandedOffset[mid] <= column { low = mid } else { high = mid - 1 }
        }
        switch slots[low].kind {
        case .numeric: return .numeric(storageIndex[low])
        case .categorical: return .category(storageIndex[low], Int32(column - expandedOffset[low]))
        }
    }

    /// Expanded column of numeric feature `index` (by numeric storage order).
    public func expandedColumn(numeric index: Int) -> Int {
        expandedOffset[slots.indices.first { slots[$0].kind == .numeric && storageIndex[$0] == index }!]
    }

    /// First expanded column and width of categorical feature `index` (by categorical storage order).
    public func expandedRange(categorical index: Int) -> Range<Int> {
        let slot = slots.indices.first { slots[$0].kind != .numeric && storageIndex[$0] == index }!
        return expandedOffset[slot]..<(expandedOffset[slot] + slots[slot].width)
    }
}

/// Where an expanded column's value comes from.
public enum ExpandedSource: Sendable, Equatable {
    /// The numeric feature at this storage index.
    case numeric(Int)
    /// One category of the categorical feature at this storage index: the column is 1 when the row's category is
    /// this one.
    case category(Int, Int32)
}

/// A model's input for many rows, stored compactly: numeric features row-major as `Double` (NaN is missing) and
/// categorical features row-major as category indices (`-1`: no category, all of its one-hot columns are 0).
///
/// This is exactly the dense expanded vector of ``FeatureLayout`` without the zeros of the one-hot blocks, so
/// learners run in time proportional to the number of features, not the number of categories.
public struct FeatureMatrix: Sendable, Equatable {
    /// What the columns mean.
    public var layout: FeatureLayout
    /// Number of rows.
    public var rowCount: Int
    /// Numeric features, `rowCount × layout.numericCount`, row-major; NaN is missing.
    public var numeric: [Double]
    /// Categorical features, `rowCount × layout.categoricalCount`, row-major; `-1` is no category.
    public var categorical: [Int32]

    /// Creates a matrix from its parts.
    public init(layout: FeatureLayout, rowCount: Int, numeric: [Double], categorical: [Int32]) {
        precondition(numeric.count == rowCount * layout.numericCount, "numeric part has the wrong size")
        precondition(categorical.count == rowCount * layout.categoricalCount, "categorical part has the wrong size")
        self.layout = layout
        self.rowCount = rowCount
        self.numeric = numeric
        self.categorical = categorical
    }

    /// Creates a matrix of plain numeric features from rows of numbers (for tests and simple uses).
    public init(rows: [[Double]], names: [String]? = nil) {
        let width = rows.first?.count ?? names?.count ?? 0
        let names = names ?? (0..<width).map { "x\($0)" }
        self.init(
            layout: FeatureLayout(names.map { FeatureSlot(name: $0, kind: .numeric) }), rowCount: rows.count,
            numeric: rows.flatMap { $0 }, categorical: [])
    }

    /// Row `row` as the dense expanded vector (one-hot blocks written out).
    public func expandedRow(_ row: Int) -> [Double] {
        var out = [Double](repeating: 0, count: layout.expandedCount)
        for (k, slot) in layout.slots.enumerated() {
            let index = layout.storageIndex[k]
            switch slot.kind {
            case .numeric: out[layout.expandedOffset[k]] = numeric[row * layout.numericCount + index]
            case .categorical:
                let category = categorical[row * layout.categoricalCount + index]
                if category >= 0 { out[layout.expandedOffset[k] + Int(category)] = 1 }
            }
        }
        return out
    }

    /// Value of expanded column `column` in row `row`.
    @inline(__always)
    public func value(row: Int, source: ExpandedSource) -> Double {
        switch source {
        case .numeric(let j): numeric[row * layout.numericCount + j]
        case .category(let c, let k): categorical[row * layout.categoricalCount + c] == k ? 1 : 0
        }
    }

    /// The rows at `indices`, in that order.
    public func rows(_ indices: [Int]) -> FeatureMatrix {
        let nN = layout.numericCount
        let nC = layout.categoricalCount
        var numeric: [Double] = []
        numeric.reserveCapacity(indices.count * nN)
        var categorical: [Int32] = []
        categorical.reserveCapacity(indices.count * nC)
        for row in indices {
            numeric.append(contentsOf: self.numeric[(row * nN)..<((row + 1) * nN)])
            categorical.append(contentsOf: self.categorical[(row * nC)..<((row + 1) * nC)])
        }
        return FeatureMatrix(layout: layout, rowCount: indices.count, numeric: numeric, categorical: categorical)
    }
}
