import Foundation
import SluiceData
import SluiceML

/// A request the server refuses, with the status and the reason sent back as `{"error": "..."}`.
struct RequestError: HTTPRefusal {
    var status: Int
    var message: String
    var httpStatus: Int { status }
    var httpMessage: String { message }

    static func badRequest(_ message: String) -> RequestError { RequestError(status: 400, message: message) }
}

/// A JSON value, as ``JSONParser`` reads it.
enum JSONValue: Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    var object: [String: JSONValue]? { if case .object(let o) = self { o } else { nil } }
    var array: [JSONValue]? { if case .array(let a) = self { a } else { nil } }
    var string: String? { if case .string(let s) = self { s } else { nil } }

    /// The value as compact JSON text (object keys sorted, so the same value always reads the same).
    var serialized: String {
        switch self {
        case .null: "null"
        case .bool(let flag): flag ? "true" : "false"
        case .number(let number):
            number.isFinite && number == number.rounded() && abs(number) < 1e15
                ? String(Int64(number)) : Protocols.number(number)
        case .string(let text): Protocols.jsonString(text)
        case .array(let values): "[" + values.map(\.serialized).joined(separator: ",") + "]"
        case .object(let members):
            "{"
                + members.sorted { $0.key < $1.key }.map { Protocols.jsonString($0.key) + ":" + $0.value.serialized }
                .joined(separator: ",") + "}"
        }
    }

    var kind: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "text"
        case .array: "a list"
        case .object: "an object"
        }
    }
}

/// Collects request values column by column into a ``RawBatch``, checked against the model's signature: the type
/// of every value, required columns present in every row, no column given twice.
struct BatchBuilder {
    let signature: ModelSignature
    private var columns: [String: [RawValue]] = [:]

    init(signature: ModelSignature) {
        self.signature = signature
        columns.reserveCapacity(signature.inputs.count)
    }

    /// The signature's entry for `column`, or an error listing what the model reads.
    func input(_ column: String) throws -> SignatureColumn {
        guard let input = signature.inputs.first(where: { $0.name == column }) else {
            throw RequestError.badRequest(
                "unknown input '\(column)'; the model reads: \(signature.inputs.map(\.name).joined(separator: ", "))")
        }
        return input
    }

    /// Sets `column` in row `row` (rows arrive in order; a column a row left out is missing there).
    mutating func set(_ column: String, row: Int, to json: JSONValue) throws {
        let value = try Self.value(json, input: try input(column), row: row)
        var values = columns.removeValue(forKey: column) ?? []
        guard values.count <= row else { throw RequestError.badRequest("row \(row + 1) gives '\(column)' twice") }
        while values.count < row { values.append(.missing) }
        values.append(value)
        columns[column] = values
    }

    /// Sets a whole column.
    mutating func setColumn(_ column: String, to json: [JSONValue]) throws {
        let input = try input(column)
        guard columns[column] == nil else { throw RequestError.badRequest("input '\(column)' is given twice") }
        var values: [RawValue] = []
        values.reserveCapacity(json.count)
        for (row, value) in json.enumerated() { values.append(try Self.value(value, input: input, row: row)) }
        columns[column] = values
    }

    /// The batch of `rowCount` rows, after checking that every required column is present in every row.
    mutating func batch(rowCount: Int) throws -> RawBatch {
        guard rowCount > 0 else { throw RequestError.badRequest("the request has no rows") }
        for input in signature.inputs {
            let count = columns[input.name]?.count ?? 0
            if input.required {
                // A required value that is null was refused on arrival: a missing one here was left out.
                if let row = columns[input.name]?.firstIndex(of: .missing) ?? (count < rowCount ? count : nil) {
                    throw RequestError.badRequest(
                        "row \(row + 1): required input '\(input.name)' (\(input.type)) is missing")
                }
            }
            if count > 0, count < rowCount {
                columns[input.name]!.append(contentsOf: repeatElement(.missing, count: rowCount - count))
            }
        }
        return RawBatch(rowCount: rowCount, columns: columns)
    }

    /// A raw value for `input` from a JSON value, or an error naming the problem.
    static func value(_ json: JSONValue, input: SignatureColumn, row: Int) throws -> RawValue {
        let column = input.name
        func missing(_ written: String) throws -> RawValue {
            guard !input.required else {
                throw RequestError.badRequest(
                    "row \(row + 1): '\(column)' is required but missing (\(written)); every training row had it, so send a value"
                )
            }
            return .missing
        }
        switch json {
        case .null: return try missing("null")
        // NaN is how pandas and Python clients write a missing value: it means missing, as null does.
        case .number(let number) where number.isNaN: return try missing("NaN")
        case .string(let text):
            // Text is read as CSV ingest read the column's values (an ISO 8601 time for a timestamp column, "true"
            // for a boolean one, "3.5" for a number, "NA" for missing): what the model was trained from.
            switch FieldReading.read(text, as: input.type) {
            case .text(let value): return .text(value)
            case .number(let number): return .number(number)
            case .missing: return try missing("\"\(text)\"")
            case .invalid(let expected):
                throw RequestError.badRequest(
                    "row \(row + 1): '\(column)' holds \(input.type) values, but \"\(text.prefix(40))\" is not "
                        + "\(expected) (as CSV ingest reads it)")
            }
        case .number(let number):
            guard input.type != .string else {
                throw RequestError.badRequest(
                    "row \(row + 1): '\(column)' holds text, but the value is the number \(number); send it as a string"
                )
            }
            guard number.isFinite else {
                throw RequestError.badRequest(
                    "row \(row + 1): '\(column)' is \(number > 0 ? "Infinity" : "-Infinity"), not a finite number; send null for a missing value"
                )
            }
            return .number(number)
        case .bool(let flag):
            guard input.type != .string else {
                throw RequestError.badRequest("row \(row + 1): '\(column)' holds text, but the value is a boolean")
            }
            return .number(flag ? 1 : 0)
        default:
            throw RequestError.badRequest("row \(row + 1): '\(column)' must be a single value, not \(json.kind)")
        }
    }
}
