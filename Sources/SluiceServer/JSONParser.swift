import Foundation

/// A small, strict JSON parser straight from request bytes: into ``JSONValue`` for a whole document, or step by
/// step (``nextKey(_:)``, ``nextElement(_:)``, ``value(depth:)``) so a decoder that knows the document's shape
/// builds its result without intermediate dictionaries. No thrown error per value (Foundation's decoder tries
/// each type in turn, which dominated the request time).
struct JSONParser {
    private let bytes: UnsafeBufferPointer<UInt8>
    private var index = 0

    /// Parses a whole document.
    static func parse(_ raw: UnsafeRawBufferPointer) throws -> JSONValue {
        try parsing(raw) { try $0.value(depth: 0) }
    }

    /// Runs `body` on a parser at the start of the document, then checks that nothing but space follows.
    static func parsing<T>(_ raw: UnsafeRawBufferPointer, _ body: (inout JSONParser) throws -> T) throws -> T {
        var parser = JSONParser(bytes: raw.bindMemory(to: UInt8.self))
        parser.skipSpace()
        let result = try body(&parser)
        parser.skipSpace()
        guard parser.index == parser.bytes.count else { throw parser.error("unexpected text after the JSON value") }
        return result
    }

    private init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    private func error(_ message: String) -> RequestError { Self.failure(message, at: index) }

    private static func failure(_ message: String, at byte: Int) -> RequestError {
        RequestError.badRequest("the body is not valid JSON: \(message) at byte \(byte)")
    }

    /// The next byte that is not space (without consuming it), or nil at the end.
    mutating func peek() -> UInt8? {
        skipSpace()
        return index < bytes.count ? bytes[index] : nil
    }

    /// The next key of the object the parser is in (opening it when `first`), positioned at its value; nil
    /// after the closing brace.
    mutating func nextKey(_ first: inout Bool) throws -> String? {
        try nextRawKey(&first)?.text()
    }

    /// ``nextKey(_:)`` without making a `String`, for decoders that only compare keys with the names they know.
    mutating func nextRawKey(_ first: inout Bool) throws -> RawText? {
        guard try nextMember(&first, open: UInt8(ascii: "{"), close: UInt8(ascii: "}"), of: "an object") else {
            return nil
        }
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw error("expected a key") }
        let key = RawText(bytes: try rawString(), at: index)
        skipSpace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw error("expected ':'") }
        index += 1
        skipSpace()
        return key
    }

    /// The string at the parser's position as it is written in the body, or nil (moving nowhere) when the value
    /// is not a string.
    mutating func nextRawText() throws -> RawText? {
        guard peek() == UInt8(ascii: "\"") else { return nil }
        return RawText(bytes: try rawString(), at: index)
    }

    /// A key or string as it is written in the body, compared without making a `String` (valid only while the
    /// parser's bytes are).
    struct RawText {
        fileprivate let bytes: (raw: UnsafeBufferPointer<UInt8>, plain: Bool)
        fileprivate let at: Int

        /// Whether the text is `name`.
        func `is`(_ name: StaticString) -> Bool {
            if bytes.plain {
                return bytes.raw.count == name.utf8CodeUnitCount
                    && (bytes.raw.isEmpty || memcmp(bytes.raw.baseAddress!, name.utf8Start, bytes.raw.count) == 0)
            }
            return (try? text()) == name.description
        }

        /// Whether the text is `string`.
        func `is`(_ string: String) -> Bool {
            guard bytes.plain else { return (try? text()) == string }
            let raw = bytes.raw
            return string.utf8.withContiguousStorageIfAvailable {
                $0.count == raw.count && (raw.isEmpty || memcmp($0.baseAddress!, raw.baseAddress!, raw.count) == 0)
            } ?? string.utf8.elementsEqual(raw)
        }

        /// The text as a `String`.
        func text() throws -> String { try JSONParser.decode(bytes, at: at) }
    }

    /// Whether another element of the array the parser is in follows (opening it when `first`), positioned at
    /// it; false after the closing bracket.
    mutating func nextElement(_ first: inout Bool) throws -> Bool {
        try nextMember(&first, open: UInt8(ascii: "["), close: UInt8(ascii: "]"), of: "a list")
    }

    /// Whether another member of the object or list the parser is in follows (opening it with `open` when
    /// `first`), positioned at it; false after `close`.
    private mutating func nextMember(_ first: inout Bool, open: UInt8, close: UInt8, of kind: String) throws -> Bool {
        skipSpace()
        if first {
            guard index < bytes.count, bytes[index] == open else { throw error("expected \(kind)") }
            index += 1
            first = false
            skipSpace()
        } else {
            guard index < bytes.count else { throw error("unexpected end") }
            if bytes[index] != close {
                guard bytes[index] == UInt8(ascii: ",") else {
                    throw error("expected ',' or '\(Character(Unicode.Scalar(close)))'")
                }
                index += 1
                skipSpace()
                return true
            }
        }
        guard index < bytes.count, bytes[index] == close else { return true }
        index += 1
        return false
    }

    private mutating func skipSpace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    /// The value at the parser's position, whole.
    mutating func value(depth: Int) throws -> JSONValue {
        guard depth < 64 else { throw error("nesting deeper than 64") }
        guard index < bytes.count else { throw error("unexpected end") }
        switch bytes[index] {
        case UInt8(ascii: "{"):
            var object: [String: JSONValue] = [:]
            var first = true
            while let key = try nextKey(&first) { object[key] = try value(depth: depth + 1) }
            return .object(object)
        case UInt8(ascii: "["):
            var array: [JSONValue] = []
            var first = true
            while try nextElement(&first) { array.append(try value(depth: depth + 1)) }
            return .array(array)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): return try literal("true", .bool(true))
        case UInt8(ascii: "f"): return try literal("false", .bool(false))
        case UInt8(ascii: "n"): return try literal("null", .null)
        // Not JSON, but what Python's json module and pandas write for missing and infinite numbers: read them so
        // the answer can say what to do rather than "not valid JSON".
        case UInt8(ascii: "N"): return try literal("NaN", .number(.nan))
        case UInt8(ascii: "I"): return try literal("Infinity", .number(.infinity))
        case UInt8(ascii: "-") where index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: "I"):
            return try literal("-Infinity", .number(-.infinity))
        default: return .number(try number())
        }
    }

    private mutating func literal(_ word: StaticString, _ value: JSONValue) throws -> JSONValue {
        let count = word.utf8CodeUnitCount
        guard index + count <= bytes.count,
            memcmp(bytes.baseAddress! + index, word.utf8Start, count) == 0
        else { throw error("unknown literal") }
        index += count
        return value
    }

    private mutating func number() throws -> Double {
        let start = index
        while index < bytes.count, Self.isNumberByte(bytes[index]) { index += 1 }
        // Whole numbers of up to 15 digits (shapes, sizes, counts) are exact as a Double: read them without a
        // String and strtod.
        let negative = index > start && bytes[start] == UInt8(ascii: "-")
        let digits = (negative ? start + 1 : start)..<index
        if !digits.isEmpty, digits.count <= 15, bytes[digits].allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) {
            var whole = 0
            for byte in bytes[digits] { whole = whole &* 10 &+ Int(byte &- 0x30) }
            return negative ? -Double(whole) : Double(whole)
        }
        guard index > start,
            let value = Double(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self))
        else { throw error("expected a value") }
        return value
    }

    private static func isNumberByte(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "-")
            || byte == UInt8(ascii: "+") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "e")
            || byte == UInt8(ascii: "E")
    }

    private mutating func string() throws -> String { try Self.decode(try rawString(), at: index) }

    /// The bytes between the quotes of the string at the parser's position, and whether they hold no escapes.
    private mutating func rawString() throws -> (raw: UnsafeBufferPointer<UInt8>, plain: Bool) {
        index += 1  // opening quote
        let start = index
        var plain = true
        while index < bytes.count, bytes[index] != UInt8(ascii: "\"") {
            if bytes[index] == UInt8(ascii: "\\") {
                plain = false
                index += 2
            } else {
                if bytes[index] < 0x20 { throw error("a control character inside a string") }
                index += 1
            }
        }
        guard index < bytes.count else { throw error("an unterminated string") }
        let raw = UnsafeBufferPointer(rebasing: bytes[start..<index])
        index += 1
        return (raw, plain)
    }

    /// The text of a string's bytes; `at` locates errors.
    fileprivate static func decode(_ string: (raw: UnsafeBufferPointer<UInt8>, plain: Bool), at: Int) throws -> String {
        if string.plain {
            // ASCII needs no validation; `String(validating:)` is generic over the encoding and not specialized,
            // which made it the costliest call of a request.
            if string.raw.allSatisfy({ $0 < 0x80 }) { return String(decoding: string.raw, as: UTF8.self) }
            guard let text = String(validating: string.raw, as: UTF8.self) else {
                throw failure("invalid UTF-8", at: at)
            }
            return text
        }
        // Escapes: let Foundation decode this one string.
        var quoted = Data([UInt8(ascii: "\"")])
        quoted.append(contentsOf: string.raw)
        quoted.append(UInt8(ascii: "\""))
        guard let text = try? JSONDecoder().decode(String.self, from: quoted) else {
            throw failure("a bad escape", at: at)
        }
        return text
    }
}
