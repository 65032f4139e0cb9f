import Foundation

/// The type of a column's values.
public enum ColumnType: String, Codable, Sendable, CaseIterable, CustomStringConvertible {
    /// 64-bit floating point.
    case float
    /// 64-bit signed integer.
    case integer
    /// `true` or `false`.
    case boolean
    /// Text, stored dictionary-encoded (each distinct value once, rows hold codes).
    case string
    /// An instant, stored as microseconds since 1970-01-01T00:00:00Z.
    case timestamp

    public var description: String { rawValue }

    /// Whether values are numbers (statistics compute moments and quantiles).
    public var isNumeric: Bool { self == .float || self == .integer || self == .timestamp }
}

/// One typed column with missing values: values in a contiguous array, validity in a separate bitmap-free
/// byte array (1 = present), so numeric loops stay tight.
public struct Column: Sendable, Equatable {
    /// The column's name.
    public var name: String
    /// The column's values.
    public var storage: Storage

    /// The values of a column, by type.
    public enum Storage: Sendable, Equatable {
        case float([Double], valid: [Bool])
        case integer([Int64], valid: [Bool])
        case boolean([Bool], valid: [Bool])
        /// Codes into `dictionary`; `-1` is missing.
        case string(codes: [Int32], dictionary: [String])
        case timestamp([Int64], valid: [Bool])
    }

    /// Creates a column.
    public init(name: String, storage: Storage) {
        self.name = name
        self.storage = storage
    }

    /// The column's type.
    public var type: ColumnType {
        switch storage {
        case .float: .float
        case .integer: .integer
        case .boolean: .boolean
        case .string: .string
        case .timestamp: .timestamp
        }
    }

    /// Number of rows.
    public var count: Int {
        switch storage {
        case .float(let v, _): v.count
        case .integer(let v, _): v.count
        case .boolean(let v, _): v.count
        case .string(let codes, _): codes.count
        case .timestamp(let v, _): v.count
        }
    }

    /// Whether row `index` has a value.
    public func isPresent(_ index: Int) -> Bool {
        switch storage {
        case .float(_, let valid), .integer(_, let valid), .boolean(_, let valid), .timestamp(_, let valid):
            valid[index]
        case .string(let codes, _): codes[index] >= 0
        }
    }

    /// Row `index` as a number, when the column is numeric and the row present.
    public func double(_ index: Int) -> Double? {
        guard isPresent(index) else { return nil }
        switch storage {
        case .float(let v, _): return v[index]
        case .integer(let v, _), .timestamp(let v, _): return Double(v[index])
        case .boolean(let v, _): return v[index] ? 1 : 0
        case .string: return nil
        }
    }

    /// Row `index` as text (numbers formatted), or `nil` when missing.
    public func string(_ index: Int) -> String? {
        guard isPresent(index) else { return nil }
        switch storage {
        case .float(let v, _): return String(v[index])
        case .integer(let v, _): return String(v[index])
        case .boolean(let v, _): return String(v[index])
        case .string(let codes, let dictionary): return dictionary[Int(codes[index])]
        case .timestamp(let v, _): return Column.formatTimestamp(v[index])
        }
    }

    /// Rows `range` of this column (dictionaries are shared, not compacted).
    public func slice(_ range: Range<Int>) -> Column {
        switch storage {
        case .float(let v, let m): Column(name: name, storage: .float(Array(v[range]), valid: Array(m[range])))
        case .integer(let v, let m): Column(name: name, storage: .integer(Array(v[range]), valid: Array(m[range])))
        case .boolean(let v, let m): Column(name: name, storage: .boolean(Array(v[range]), valid: Array(m[range])))
        case .string(let c, let d): Column(name: name, storage: .string(codes: Array(c[range]), dictionary: d))
        case .timestamp(let v, let m):
            Column(name: name, storage: .timestamp(Array(v[range]), valid: Array(m[range])))
        }
    }

    /// ISO 8601 text of a timestamp in microseconds.
    public static func formatTimestamp(_ micros: Int64) -> String {
        let seconds = Double(micros) / 1_000_000
        return Date(timeIntervalSince1970: seconds).formatted(
            .iso8601.year().month().day().time(includingFractionalSeconds: micros % 1_000_000 != 0))
    }
}
