// Over 400 lines: one value type: parsing with source locations, access, encoding and printing, which share its private representation.
import Foundation
import Yams

/// A place in a config source: a file and line, or a command-line `--set`.
public struct SourceLocation: Sendable, Hashable, CustomStringConvertible {
    /// The file path, or `--set key` for a command-line override.
    public var source: String
    /// The 1-based line, when the source is a file.
    public var line: Int?
    /// The 1-based column, when known.
    public var column: Int?

    /// Creates a location.
    public init(source: String, line: Int? = nil, column: Int? = nil) {
        self.source = source
        self.line = line
        self.column = column
    }

    public var description: String {
        var text = source
        if let line { text += ":\(line)" }
        if let column { text += ":\(column)" }
        return text
    }
}

/// A configuration value tree (from YAML, `--set` or encoded defaults) that remembers where each value came from.
public struct ConfigValue: Sendable, Equatable {
    /// The value itself.
    public indirect enum Kind: Sendable, Equatable {
        case null
        case bool(Bool)
        case int(Int)
        case double(Double)
        case string(String)
        case array([ConfigValue])
        /// Keys in source order.
        case object([(key: String, value: ConfigValue)])

        public static func == (a: Kind, b: Kind) -> Bool {
            switch (a, b) {
            case (.null, .null): true
            case (.bool(let x), .bool(let y)): x == y
            case (.int(let x), .int(let y)): x == y
            case (.double(let x), .double(let y)): x == y || (x.isNaN && y.isNaN)
            case (.string(let x), .string(let y)): x == y
            case (.array(let x), .array(let y)): x == y
            case (.object(let x), .object(let y)): x.elementsEqual(y) { $0.key == $1.key && $0.value == $1.value }
            default: false
            }
        }
    }

    public var kind: Kind
    /// Where it was written, if it was written anywhere (defaults have no location).
    public var location: SourceLocation?

    /// Creates a value.
    public init(_ kind: Kind, at location: SourceLocation? = nil) {
        self.kind = kind
        self.location = location
    }

    public static func == (a: ConfigValue, b: ConfigValue) -> Bool { a.kind == b.kind }

    /// An empty object.
    public static var emptyObject: ConfigValue { ConfigValue(.object([])) }

    /// The entries, when this is an object.
    public var entries: [(key: String, value: ConfigValue)]? {
        if case .object(let entries) = kind { return entries }
        return nil
    }

    /// The value under `key`, when this is an object that has it.
    public subscript(key: String) -> ConfigValue? {
        entries?.first { $0.key == key }?.value
    }

    /// A short description of the value's kind, for error messages: "a number", "the string 'abc'".
    public var kindDescription: String {
        switch kind {
        case .null: "empty (null)"
        case .bool(let v): "the boolean \(v)"
        case .int(let v): "the integer \(v)"
        case .double(let v): "the number \(v)"
        case .string(let v): "the string '\(v.count > 40 ? String(v.prefix(40)) + "…" : v)'"
        case .array: "a list"
        case .object: "a mapping"
        }
    }

    /// Sets `value` at a dotted path of object keys, creating objects on the way.
    public mutating func set(_ value: ConfigValue, at path: [String]) {
        guard let first = path.first else {
            self = value
            return
        }
        var entries = self.entries ?? []
        if let index = entries.firstIndex(where: { $0.key == first }) {
            entries[index].value.set(value, at: Array(path.dropFirst()))
        } else {
            var child = ConfigValue.emptyObject
            child.set(value, at: Array(path.dropFirst()))
            entries.append((first, child))
        }
        kind = .object(entries)
    }

    /// Overlays `other` on this value: objects merge key by key (`keyMatch` finds the existing key an
    /// overriding key refers to), anything else is replaced.
    public func overlaid(with other: ConfigValue, keyMatch: (String, [String]) -> String? = { k, _ in k })
        -> ConfigValue
    {
        guard case .object(var mine) = kind, case .object(let theirs) = other.kind else { return other }
        for (key, value) in theirs {
            let target = keyMatch(key, mine.map(\.key)) ?? key
            if let index = mine.firstIndex(where: { $0.key == target }) {
                mine[index].value = mine[index].value.overlaid(with: value, keyMatch: keyMatch)
            } else {
                mine.append((key, value))
            }
        }
        return ConfigValue(.object(mine), at: location ?? other.location)
    }
}

// MARK: - YAML

extension ConfigValue {
    /// Parses YAML text; every value remembers its file and line.
    /// - Throws: ``ConfigError`` naming the line of a syntax error.
    public static func parseYAML(_ text: String, source: String) throws -> ConfigValue {
        let node: Node?
        do {
            // Plain scalars are typed by `PlainScalar` (YAML 1.1's rules, as Yams's default resolver has them, without
            // a regular expression per scalar: a long recorded config parses several times faster).
            node = try Yams.compose(yaml: text, .basic)
        } catch let error as YamlError {
            throw ConfigError.yamlSyntax(error, source: source)
        }
        guard let node else { return .emptyObject }
        return try ConfigValue(node: node, source: source)
    }

    /// Parses a single YAML scalar or flow value, as given to `--set key=value`.
    public static func parseOverrideValue(_ text: String, key: String) throws -> ConfigValue {
        let source = "--set \(key)"
        if text.isEmpty { return ConfigValue(.string(""), at: SourceLocation(source: source)) }
        var value = try parseYAML(text, source: source)
        value.clearLines(source: source)
        return value
    }

    private mutating func clearLines(source: String) {
        location = SourceLocation(source: source)
        switch kind {
        case .array(var items):
            for index in items.indices { items[index].clearLines(source: source) }
            kind = .array(items)
        case .object(var entries):
            for index in entries.indices { entries[index].value.clearLines(source: source) }
            kind = .object(entries)
        default: break
        }
    }

    init(node: Node, source: String) throws {
        let location = node.mark.map { SourceLocation(source: source, line: $0.line, column: $0.column) }
        switch node {
        case .scalar(let scalar):
            let quoted =
                scalar.style == .singleQuoted || scalar.style == .doubleQuoted
                || scalar.style == .literal || scalar.style == .folded
            if quoted {
                self.init(.string(scalar.string), at: location)
            } else {
                switch PlainScalar(scalar.string) {
                case .null: self.init(.null, at: location)
                case .bool: self.init(node.bool.map(Kind.bool) ?? .string(scalar.string), at: location)
                case .int: self.init(node.int.map(Kind.int) ?? .string(scalar.string), at: location)
                case .float: self.init(node.float.map(Kind.double) ?? .string(scalar.string), at: location)
                case .string: self.init(.string(scalar.string), at: location)
                }
            }
        case .sequence(let sequence):
            self.init(.array(try sequence.map { try ConfigValue(node: $0, source: source) }), at: location)
        case .mapping(let mapping):
            var entries: [(key: String, value: ConfigValue)] = []
            var seen = Set<String>()
            for (keyNode, valueNode) in mapping {
                guard let key = keyNode.string else {
                    throw ConfigError(
                        problem: "\(source):\(keyNode.mark?.line ?? 0): a mapping key must be text.",
                        fix: "write the key as a plain word, like `eval_fraction:`.")
                }
                if !seen.insert(key).inserted {
                    throw ConfigError(
                        problem: "\(source):\(keyNode.mark?.line ?? 0): the key '\(key)' appears twice in one mapping.",
                        fix: "keep one of them.")
                }
                var value = try ConfigValue(node: valueNode, source: source)
                // A nested mapping or list is reported at its key's line, where a reader looks for it.
                if value.entries != nil || { if case .array = value.kind { true } else { false } }(),
                    let mark = keyNode.mark
                {
                    value.location = SourceLocation(source: source, line: mark.line, column: mark.column)
                }
                entries.append((key, value))
            }
            self.init(.object(entries), at: location)
        case .alias:
            self.init(.null, at: location)
        }
    }

    /// Renders the value as YAML (keys in order, strings quoted where YAML would misread them).
    public func yaml() -> String {
        (try? Yams.serialize(node: yamlNode(), sortKeys: false)) ?? ""
    }

    func yamlNode() -> Node {
        switch kind {
        case .null: Node("null", Tag(.null))
        case .bool(let v): Node(v ? "true" : "false", Tag(.bool))
        case .int(let v): Node(String(v), Tag(.int))
        case .double(let v): Node(v.isFinite ? String(v) : (v.isNaN ? ".nan" : (v > 0 ? ".inf" : "-.inf")), Tag(.float))
        case .string(let v): Node(v, Tag(.str), .any)
        case .array(let items): Node(items.map { $0.yamlNode() })
        case .object(let entries): Node(entries.map { (Node($0.key), $0.value.yamlNode()) })
        }
    }
}

// MARK: - JSON and Codable

extension ConfigValue: Codable {
    /// Decodes from any decoder (used to turn encoded defaults into a tree).
    public init(from decoder: any Decoder) throws {
        if var array = try? decoder.unkeyedContainer() {
            var items: [ConfigValue] = []
            while !array.isAtEnd { items.append(try array.decode(ConfigValue.self)) }
            self.init(.array(items))
            return
        }
        if let object = try? decoder.container(keyedBy: AnyCodingKey.self) {
            let entries = try object.allKeys.sorted { $0.stringValue < $1.stringValue }.map {
                (key: $0.stringValue, value: try object.decode(ConfigValue.self, forKey: $0))
            }
            self.init(.object(entries))
            return
        }
        let single = try decoder.singleValueContainer()
        if single.decodeNil() {
            self.init(.null)
        } else if let v = try? single.decode(Bool.self) {
            self.init(.bool(v))
        } else if let v = try? single.decode(Int.self) {
            self.init(.int(v))
        } else if let v = try? single.decode(Double.self) {
            self.init(.double(v))
        } else {
            self.init(.string(try single.decode(String.self)))
        }
    }

    /// Encodes the tree as plain values.
    public func encode(to encoder: any Encoder) throws {
        switch kind {
        case .null:
            var c = encoder.singleValueContainer()
            try c.encodeNil()
        case .bool(let v):
            var c = encoder.singleValueContainer()
            try c.encode(v)
        case .int(let v):
            var c = encoder.singleValueContainer()
            try c.encode(v)
        case .double(let v):
            var c = encoder.singleValueContainer()
            try c.encode(v)
        case .string(let v):
            var c = encoder.singleValueContainer()
            try c.encode(v)
        case .array(let items):
            var c = encoder.unkeyedContainer()
            for item in items { try c.encode(item) }
        case .object(let entries):
            var c = encoder.container(keyedBy: AnyCodingKey.self)
            for (key, value) in entries { try c.encode(value, forKey: AnyCodingKey(key)) }
        }
    }

    /// The tree of an encodable value, through JSON with sorted keys (nil optionals are left out).
    public static func encoding<T: Encodable>(_ value: T) throws -> ConfigValue {
        try JSONDecoder().decode(ConfigValue.self, from: canonicalJSON(value))
    }
}

/// JSON with sorted keys and no extra whitespace: equal values give equal bytes.
public func canonicalJSON<T: Encodable>(_ value: T) throws -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    encoder.nonConformingFloatEncodingStrategy = .convertToString(
        positiveInfinity: "+Infinity", negativeInfinity: "-Infinity", nan: "NaN")
    return try encoder.encode(value)
}

/// A coding key made from any string or integer.
struct AnyCodingKey: CodingKey, Hashable {
    var stringValue: String
    var intValue: Int?
    init(_ string: String) { stringValue = string }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) {
        self.stringValue = String(intValue)
        self.intValue = intValue
    }
}

/// camelCase → snake_case, as YAML keys are written.
func snakeCased(_ key: String) -> String {
    var out = ""
    for character in key {
        if character.isUppercase {
            if !out.isEmpty { out.append("_") }
            out.append(contentsOf: character.lowercased())
        } else {
            out.append(character)
        }
    }
    return out
}

/// The type YAML 1.1 gives an unquoted scalar, by the rules of Yams's default resolver (bool, int, float, null, in
/// that order of precedence), matched by hand.
enum PlainScalar: Equatable {
    case null, bool, int, float, string

    init(_ text: String) {
        let bytes = Array(text.utf8)
        if Self.isBool(text) {
            self = .bool
        } else if Self.isInt(bytes) {
            self = .int
        } else if Self.isFloat(bytes) {
            self = .float
        } else if text.isEmpty || text == "~" || text == "null" || text == "Null" || text == "NULL" {
            self = .null
        } else {
            self = .string
        }
    }

    private static let bools: Set<String> = [
        "yes", "Yes", "YES", "no", "No", "NO", "true", "True", "TRUE", "false", "False", "FALSE", "on", "On", "ON",
        "off", "Off", "OFF",
    ]

    static func isBool(_ text: String) -> Bool { bools.contains(text) }

    private static func digit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }

    /// Whether `bytes[from...]` is one or more bytes of `allowed`.
    private static func all(_ bytes: ArraySlice<UInt8>, _ allowed: (UInt8) -> Bool) -> Bool {
        !bytes.isEmpty && bytes.allSatisfy(allowed)
    }

    /// `(:[0-5]?[0-9])+` at the end of a sexagesimal number.
    private static func sexagesimalTail(_ bytes: ArraySlice<UInt8>) -> Bool {
        guard bytes.first == UInt8(ascii: ":") else { return false }
        for group in bytes.dropFirst().split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false) {
            guard group.count == 1 || group.count == 2, group.allSatisfy(digit) else { return false }
            if group.count == 2, group.first! > UInt8(ascii: "5") { return false }
        }
        return true
    }

    private static func unsigned(_ bytes: [UInt8]) -> ArraySlice<UInt8> {
        if let first = bytes.first, first == UInt8(ascii: "-") || first == UInt8(ascii: "+") {
            return bytes.dropFirst()
        }
        return bytes[...]
    }

    static func isInt(_ bytes: [UInt8]) -> Bool {
        let body = unsigned(bytes)
        let underscore = UInt8(ascii: "_")
        if body.starts(with: Array("0b".utf8)) {
            return all(body.dropFirst(2)) { $0 == 0x30 || $0 == 0x31 || $0 == underscore }
        }
        if body.starts(with: Array("0x".utf8)) {
            return all(body.dropFirst(2)) { $0.isHexDigit || $0 == underscore }
        }
        if body.first == 0x30 {
            if body.count == 1 { return true }
            let rest = body.dropFirst().first == UInt8(ascii: "o") ? body.dropFirst(2) : body.dropFirst()
            return all(rest) { ($0 >= 0x30 && $0 <= 0x37) || $0 == underscore }
        }
        guard let first = body.first, first >= 0x31 && first <= 0x39 else { return false }
        let digits = body.prefix { digit($0) || $0 == underscore }
        let rest = body.dropFirst(digits.count)
        return rest.isEmpty || sexagesimalTail(rest)
    }

    static func isFloat(_ bytes: [UInt8]) -> Bool {
        let underscore = UInt8(ascii: "_")
        let dot = UInt8(ascii: ".")
        let text = String(decoding: bytes, as: UTF8.self)
        if [".nan", ".NaN", ".NAN"].contains(text) { return true }
        let body = unsigned(bytes)
        if [".inf", ".Inf", ".INF"].contains(String(decoding: body, as: UTF8.self)) { return true }
        // \.[0-9_]+([eE][-+][0-9]+)?, without a sign
        if bytes.first == dot {
            let digits = bytes.dropFirst().prefix { digit($0) || $0 == underscore }
            guard !digits.isEmpty else { return false }
            return exponent(bytes.dropFirst(1 + digits.count), signRequired: true)
        }
        // [-+]?[0-9][0-9_]* then (\.[0-9_]*)?([eE][-+]?[0-9]+)?, or a sexagesimal (:[0-5]?[0-9])+\.[0-9_]*
        guard let first = body.first, digit(first) else { return false }
        let digits = body.prefix { digit($0) || $0 == underscore }
        var rest = body.dropFirst(digits.count)
        if rest.first == UInt8(ascii: ":") {
            guard let point = rest.firstIndex(of: dot), sexagesimalTail(rest[..<point]) else { return false }
            return rest[(point + 1)...].allSatisfy { digit($0) || $0 == underscore }
        }
        if rest.first == dot {
            rest = rest.dropFirst()
            rest = rest.drop { digit($0) || $0 == underscore }
        }
        return exponent(rest, signRequired: false)
    }

    /// An optional `[eE][-+]?[0-9]+` that ends the text.
    private static func exponent(_ bytes: ArraySlice<UInt8>, signRequired: Bool) -> Bool {
        guard let first = bytes.first else { return true }
        guard first == UInt8(ascii: "e") || first == UInt8(ascii: "E") else { return false }
        var rest = bytes.dropFirst()
        if let sign = rest.first, sign == UInt8(ascii: "-") || sign == UInt8(ascii: "+") {
            rest = rest.dropFirst()
        } else if signRequired {
            return false
        }
        return all(rest, digit)
    }
}

extension UInt8 {
    fileprivate var isHexDigit: Bool {
        (self >= 0x30 && self <= 0x39) || (self >= 0x41 && self <= 0x46) || (self >= 0x61 && self <= 0x66)
    }
}
