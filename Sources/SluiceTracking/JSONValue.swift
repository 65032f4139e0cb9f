import Foundation
import SluiceCore
import SluiceData

/// A JSON value as MLflow's protocol sends it: numbers that may come as strings (protobuf's JSON writes int64 and
/// NaN so), parsed with the standard library's decoder (exact doubles) and written back compactly.
public enum JSONValue: Sendable, Equatable, Decodable {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let b = try? container.decode(Bool.self) {
            self = .bool(b)
        } else if let i = try? container.decode(Int64.self) {
            self = .integer(i)
        } else if let d = try? container.decode(Double.self) {
            self = .number(d)
        } else if let s = try? container.decode(String.self) {
            self = .string(s)
        } else if let a = try? container.decode([JSONValue].self) {
            self = .array(a)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    /// Parses a request body; an empty body is an empty object.
    /// - Throws: ``TrackingError`` `malformedRequest` when it is not a JSON object.
    public static func parse(_ data: Data) throws -> [String: JSONValue] {
        if data.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\n") || $0 == UInt8(ascii: "\r") }) {
            return [:]
        }
        // Python's json writes bare NaN and Infinity, which strict JSON lacks: they become strings first.
        let text = String(decoding: data, as: UTF8.self)
        let repaired = Self.quotingNonFiniteNumbers(text)
        let decoder = JSONDecoder()
        do {
            guard case .object(let object) = try decoder.decode(JSONValue.self, from: Data(repaired.utf8)) else {
                throw TrackingError(.badRequest, "the request body must be a JSON object")
            }
            return object
        } catch let error as TrackingError {
            throw error
        } catch {
            throw TrackingError(.badRequest, "the request body is not valid JSON: \(error)")
        }
    }

    /// Bare `NaN`, `Infinity` and `-Infinity` tokens outside strings, quoted.
    static func quotingNonFiniteNumbers(_ text: String) -> String {
        guard text.contains("NaN") || text.contains("Infinity") else { return text }
        var out = ""
        var inString = false
        var escaped = false
        var index = text.startIndex
        while index < text.endIndex {
            let c = text[index]
            if inString {
                out.append(c)
                if escaped {
                    escaped = false
                } else if c == "\\" {
                    escaped = true
                } else if c == "\"" {
                    inString = false
                }
                index = text.index(after: index)
                continue
            }
            if c == "\"" {
                inString = true
                out.append(c)
                index = text.index(after: index)
                continue
            }
            var matched = false
            for token in ["-Infinity", "Infinity", "NaN"] where text[index...].hasPrefix(token) {
                out += "\"\(token)\""
                index = text.index(index, offsetBy: token.count)
                matched = true
                break
            }
            if !matched {
                out.append(c)
                index = text.index(after: index)
            }
        }
        return out
    }

    /// The value as text (a string, or a number written as text).
    public var text: String? {
        switch self {
        case .string(let s): s
        case .integer(let i): String(i)
        case .number(let d): String(d)
        case .bool(let b): b ? "true" : "false"
        default: nil
        }
    }

    /// The value as a double; strings `NaN`, `Infinity`, `-Infinity` and numerals are accepted.
    public var double: Double? {
        switch self {
        case .integer(let i): Double(i)
        case .number(let d): d
        case .string(let s):
            switch s {
            case "NaN": .nan
            case "Infinity": .infinity
            case "-Infinity": -.infinity
            default: Double(s)
            }
        default: nil
        }
    }

    /// The value as an integer; numerals in strings are accepted.
    public var int64: Int64? {
        switch self {
        case .integer(let i): i
        case .number(let d) where d == d.rounded() && abs(d) < 9e18: Int64(d)
        case .string(let s): Int64(s)
        default: nil
        }
    }

    /// The items of an array (nil for anything else).
    public var array: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    /// The fields of an object (nil for anything else).
    public var object: [String: JSONValue]? {
        if case .object(let o) = self { return o }
        return nil
    }
}

/// Numbers as MLflow's server writes them: non-finite doubles as strings (`JSONText.number` writes `null`, which
/// the client would read as a missing value).
enum JSONWriter {
    static func number(_ d: Double) -> String {
        if d.isNaN { return "\"NaN\"" }
        if d.isInfinite { return d > 0 ? "\"Infinity\"" : "\"-Infinity\"" }
        if d == d.rounded(), abs(d) < 1e15 { return String(Int64(d)) + ".0" }
        return "\(d)"
    }
}

/// A JSON object under construction, fields kept in order.
public struct JSONObject {
    var fields: [(String, String)] = []

    /// An empty object.
    public init() {}

    /// Adds a string field (skipped when nil).
    public mutating func set(_ key: String, _ value: String?) {
        if let value { fields.append((key, JSONText.quoted(value))) }
    }

    /// Adds an integer field (skipped when nil).
    public mutating func set(_ key: String, _ value: Int64?) {
        if let value { fields.append((key, String(value))) }
    }

    /// Adds a double field.
    public mutating func set(_ key: String, double value: Double) {
        fields.append((key, JSONWriter.number(value)))
    }

    /// Adds a boolean field.
    public mutating func set(_ key: String, _ value: Bool) {
        fields.append((key, value ? "true" : "false"))
    }

    /// Adds a nested object.
    public mutating func set(_ key: String, _ value: JSONObject) {
        fields.append((key, value.text))
    }

    /// Adds an array of objects (skipped when empty, as protobuf's JSON leaves out empty repeated fields).
    public mutating func set(_ key: String, _ values: [JSONObject]) {
        guard !values.isEmpty else { return }
        fields.append((key, "[" + values.map(\.text).joined(separator: ", ") + "]"))
    }

    /// The object's text.
    public var text: String {
        "{" + fields.map { "\(JSONText.quoted($0.0)): \($0.1)" }.joined(separator: ", ") + "}"
    }
}
