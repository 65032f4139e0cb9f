import Foundation

/// Decodes `Decodable` values from a ``ConfigValue`` tree, accepting snake_case keys for camelCase
/// properties, and reporting every problem with the file and line it came from.
///
/// It also records which keys the decoded type asked for, so keys nobody asked for can be reported as
/// unknown, with a "did you mean".
public struct ConfigDecoder {
    /// Keys found in the tree that the decoded type never asked for.
    public struct UnknownKey: Sendable, Equatable {
        /// The dotted path of the key.
        public var path: String
        /// Where it was written.
        public var location: SourceLocation?
        /// The keys the type accepts at that level, in snake_case.
        public var known: [String]
    }

    /// Creates a decoder.
    public init() {}

    /// Decodes `type` from `value`; `path` is the dotted prefix used in messages (`steps.split.parameters`).
    /// - Returns: the value, and the keys it did not use.
    /// - Throws: ``ConfigError`` for a missing required key or a value of the wrong type.
    public func decode<T: Decodable>(_ type: T.Type, from value: ConfigValue, path: String) throws
        -> (value: T, unknownKeys: [UnknownKey])
    {
        let tracker = KeyTracker()
        let decoder = TreeDecoder(value: value, path: path.isEmpty ? [] : [path], tracker: tracker)
        let result: T
        do {
            result = try decoder.unbox(value, as: T.self)
        } catch let error as ConfigError {
            throw error
        }
        return (result, tracker.unknownKeys(in: value, path: path))
    }
}

final class KeyTracker {
    /// Object path → keys asked for there (as written in the tree when found, snake_case otherwise).
    var asked: [String: Set<String>] = [:]
    var used: Set<String> = []

    func unknownKeys(in value: ConfigValue, path: String) -> [ConfigDecoder.UnknownKey] {
        var unknown: [ConfigDecoder.UnknownKey] = []
        walk(value, path: path, into: &unknown)
        return unknown
    }

    private func walk(_ value: ConfigValue, path: String, into unknown: inout [ConfigDecoder.UnknownKey]) {
        switch value.kind {
        case .object(let entries):
            // Only objects a type decoded as a keyed container are checked; free-form ones are not.
            guard let known = asked[path] else { return }
            for (key, child) in entries {
                let childPath = path.isEmpty ? key : "\(path).\(key)"
                if used.contains(childPath) {
                    walk(child, path: childPath, into: &unknown)
                } else {
                    unknown.append(
                        .init(path: childPath, location: child.location ?? value.location, known: known.sorted()))
                }
            }
        case .array(let items):
            for (index, item) in items.enumerated() { walk(item, path: "\(path)[\(index)]", into: &unknown) }
        default: break
        }
    }
}

struct TreeDecoder: Decoder {
    let value: ConfigValue
    let path: [String]
    let tracker: KeyTracker
    var codingPath: [any CodingKey] { path.map { AnyCodingKey($0) } }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    var dottedPath: String { Self.dotted(path) }

    static func dotted(_ path: [String]) -> String {
        path.reduce("") { result, part in
            part.hasPrefix("[") ? result + part : (result.isEmpty ? part : "\(result).\(part)")
        }
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard let entries = value.entries else { throw mismatch("a mapping of keys to values") }
        tracker.asked[dottedPath, default: []].formUnion([])
        return KeyedDecodingContainer(KeyedContainer<Key>(decoder: self, entries: entries))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case .array(let items) = value.kind else { throw mismatch("a list") }
        return UnkeyedContainer(decoder: self, items: items)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { SingleContainer(decoder: self) }

    func mismatch(_ expected: String, example: String? = nil) -> ConfigError {
        let place = value.location.map { "\($0): " } ?? ""
        let name = dottedPath.isEmpty ? "the value" : "'\(dottedPath)'"
        return ConfigError(
            problem: "\(place)\(name) must be \(expected), but it is \(value.kindDescription).",
            fix: example.map { "write \(expected), for example \($0)." } ?? "write \(expected).")
    }

    func child(_ value: ConfigValue, _ component: String) -> TreeDecoder {
        TreeDecoder(value: value, path: path + [component], tracker: tracker)
    }

    func unbox<T: Decodable>(_ value: ConfigValue, as type: T.Type) throws -> T {
        let decoder = TreeDecoder(value: value, path: path, tracker: tracker)
        if let primitive = try decoder.primitive(T.self) { return primitive }
        do {
            return try T(from: decoder)
        } catch let error as DecodingError {
            // A type's own validation (an enum's unknown raw value, say): keep its words, add the place.
            if let cases = T.self as? any CaseIterable.Type {
                let names = (cases.allCases as any Collection).map {
                    "\(($0 as? any RawRepresentable)?.rawValue ?? $0)"
                }
                throw decoder.mismatch("one of \(names.joined(separator: ", "))")
            }
            throw decoder.mismatch("a valid \(T.self) (\(Self.reason(error)))")
        }
    }

    static func reason(_ error: DecodingError) -> String {
        switch error {
        case .dataCorrupted(let context), .typeMismatch(_, let context), .valueNotFound(_, let context),
            .keyNotFound(_, let context):
            return context.debugDescription
        @unknown default:
            return "\(error)"
        }
    }

    /// Decodes standard scalar types directly, with messages that speak YAML rather than Swift.
    func primitive<T>(_ type: T.Type) throws -> T? {
        switch type {
        case is Bool.Type:
            guard case .bool(let v) = value.kind else { throw mismatch("true or false") }
            return v as? T
        case is String.Type:
            switch value.kind {
            case .string(let v): return v as? T
            case .int(let v): return String(v) as? T
            case .double(let v): return String(v) as? T
            case .bool(let v): return String(v) as? T
            default: throw mismatch("text")
            }
        case is Double.Type: return try number() as? T
        case is Float.Type: return Float(try number()) as? T
        case is Int.Type: return try integer(Int.self) as? T
        case is Int64.Type: return try integer(Int64.self) as? T
        case is Int32.Type: return try integer(Int32.self) as? T
        case is UInt.Type: return try integer(UInt.self) as? T
        case is UInt64.Type: return try integer(UInt64.self) as? T
        case is UInt32.Type: return try integer(UInt32.self) as? T
        default: return nil
        }
    }

    func number() throws -> Double {
        switch value.kind {
        case .double(let v): return v
        case .int(let v): return Double(v)
        default: throw mismatch("a number", example: "0.5")
        }
    }

    func integer<I: FixedWidthInteger>(_ type: I.Type) throws -> I {
        switch value.kind {
        case .int(let v):
            guard let exact = I(exactly: v) else { throw mismatch("a whole number from \(I.min) to \(I.max)") }
            return exact
        case .double(let v) where v.rounded() == v:
            guard let exact = I(exactly: v) else { throw mismatch("a whole number from \(I.min) to \(I.max)") }
            return exact
        default:
            throw mismatch("a whole number", example: "3")
        }
    }
}

private struct KeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let decoder: TreeDecoder
    let entries: [(key: String, value: ConfigValue)]
    var codingPath: [any CodingKey] { decoder.codingPath }
    var allKeys: [Key] { entries.compactMap { Key(stringValue: $0.key) } }

    /// The entry for `key`: written exactly, or in snake_case.
    func entry(_ key: Key) -> (key: String, value: ConfigValue)? {
        let snake = snakeCased(key.stringValue)
        let found = entries.first { $0.key == key.stringValue } ?? entries.first { $0.key == snake }
        let path = decoder.dottedPath
        decoder.tracker.asked[path, default: []].insert(found?.key ?? snake)
        if let found { decoder.tracker.used.insert(path.isEmpty ? found.key : "\(path).\(found.key)") }
        return found
    }

    func contains(_ key: Key) -> Bool { entry(key) != nil }

    func decodeNil(forKey key: Key) throws -> Bool {
        guard let found = entry(key) else { return true }
        return found.value.kind == .null
    }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        guard let found = entry(key) else {
            let place = decoder.value.location.map { "\($0): " } ?? ""
            let full =
                decoder.dottedPath.isEmpty ? key.stringValue : "\(decoder.dottedPath).\(snakeCased(key.stringValue))"
            throw ConfigError(
                problem: "\(place)'\(full)' is required but missing.",
                fix: "add `\(snakeCased(key.stringValue)):` with a value.")
        }
        return try decoder.child(found.value, found.key).unbox(found.value, as: T.self)
    }

    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        guard let found = entry(key), found.value.kind != .null else { return nil }
        return try decoder.child(found.value, found.key).unbox(found.value, as: T.self)
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws
        -> KeyedDecodingContainer<NestedKey>
    {
        let found = entry(key)
        let value = found?.value ?? .emptyObject
        return try decoder.child(value, found?.key ?? snakeCased(key.stringValue)).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        let found = entry(key)
        let value = found?.value ?? ConfigValue(.array([]))
        return try decoder.child(value, found?.key ?? snakeCased(key.stringValue)).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder { decoder }
    func superDecoder(forKey key: Key) throws -> any Decoder {
        let found = entry(key)
        return decoder.child(found?.value ?? ConfigValue(.null), key.stringValue)
    }
}

private struct UnkeyedContainer: UnkeyedDecodingContainer {
    let decoder: TreeDecoder
    let items: [ConfigValue]
    var currentIndex = 0
    var codingPath: [any CodingKey] { decoder.codingPath }
    var count: Int? { items.count }
    var isAtEnd: Bool { currentIndex >= items.count }

    init(decoder: TreeDecoder, items: [ConfigValue]) {
        self.decoder = decoder
        self.items = items
    }

    mutating func next() throws -> TreeDecoder {
        guard !isAtEnd else {
            throw ConfigError(
                problem: "\(decoder.value.location.map { "\($0): " } ?? "")'\(decoder.dottedPath)' has too few items.",
                fix: "add the missing items.")
        }
        defer { currentIndex += 1 }
        return decoder.child(items[currentIndex], "[\(currentIndex)]")
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd, items[currentIndex].kind == .null else { return false }
        currentIndex += 1
        return true
    }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        let child = try next()
        return try child.unbox(child.value, as: T.self)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws
        -> KeyedDecodingContainer<NestedKey>
    { try next().container(keyedBy: type) }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer { try next().unkeyedContainer() }
    mutating func superDecoder() throws -> any Decoder { try next() }
}

private struct SingleContainer: SingleValueDecodingContainer {
    let decoder: TreeDecoder
    var codingPath: [any CodingKey] { decoder.codingPath }

    func decodeNil() -> Bool { decoder.value.kind == .null }

    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        if let primitive = try decoder.primitive(T.self) { return primitive }
        return try T(from: decoder)
    }
}
