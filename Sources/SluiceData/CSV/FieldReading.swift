/// One field's text read as CSV ingest reads it into a column, for code that gets values outside a CSV file (the
/// model server, batch scoring), so a value ingest accepted for a column is accepted there too, by the same code.
public enum FieldReading: Sendable, Equatable {
    /// One of the missing-value tokens (`""`, `NA`, `null`, `NaN`…).
    case missing
    /// A number: floats and integers as written, booleans as 1 or 0, timestamps as microseconds since the epoch.
    case number(Double)
    /// Text, for a text column.
    case text(String)
    /// Not a value of the column's type: what the column takes instead.
    case invalid(expected: String)

    /// Reads `text` for a column of `type`, with ingest's default missing-value tokens unless told others.
    public static func read(_ text: String, as type: ColumnType, missing: Set<String> = defaultMissing) -> FieldReading
    {
        if text.isEmpty || missing.contains(text) { return .missing }
        if type == .string { return .text(text) }
        var text = text
        return text.withUTF8 { buffer -> FieldReading in
            guard let p = buffer.baseAddress else { return .missing }
            let n = buffer.count
            switch type {
            case .float: return FieldParsing.double(p, n).map { .number($0) } ?? .invalid(expected: Self.expected(type))
            case .integer:
                return FieldParsing.integer(p, n).map { .number(Double($0)) } ?? .invalid(expected: Self.expected(type))
            case .boolean:
                return FieldParsing.boolean(p, n).map { .number($0 ? 1 : 0) } ?? .invalid(expected: Self.expected(type))
            case .timestamp:
                return FieldParsing.timestamp(p, n).map { .number(Double($0)) }
                    ?? .invalid(expected: Self.expected(type))
            case .string: return .text(String(decoding: buffer, as: UTF8.self))
            }
        }
    }

    /// CSV ingest's default missing-value tokens (made once: a set per value cost more than reading it).
    public static let defaultMissing = CSVOptions().missingValues

    /// What a column of `type` takes, in words.
    public static func expected(_ type: ColumnType) -> String {
        switch type {
        case .float: "a number"
        case .integer: "a whole number"
        case .boolean: "true or false"
        case .timestamp: "an ISO 8601 date or time (2024-03-01T12:00:00Z), or microseconds since 1970"
        case .string: "text"
        }
    }
}
