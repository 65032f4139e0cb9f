import Foundation

/// Writes values of one Swift type into the artifact store and reads them back.
///
/// The engine picks a materializer by the output's Swift type: one registered for that exact type in a
/// ``MaterializerRegistry`` first (tables and models plug in this way), then the built-ins for `Data`,
/// ``FileArtifact`` and any `Codable` value.
public protocol Materializer<Value>: Sendable {
    /// The type this materializer stores.
    associatedtype Value
    /// A stable name, recorded with every artifact it writes (`json`, `bytes`, `arrow-ipc`…).
    static var identifier: String { get }
    /// The format version; bump it when the stored bytes of the same value change, which invalidates caches.
    static var version: Int { get }
    /// Writes `value` to `url`, which does not exist yet: create a file or a directory there.
    func write(_ value: Value, to url: URL) throws
    /// Reads a value written by ``write(_:to:)``.
    func read(from url: URL) throws -> Value
    /// Properties recorded with the artifact (row counts, sizes…).
    func properties(of value: Value) -> [String: PropertyValue]
    /// Whether values are handles to files (``FileArtifact``, table files) rather than data in memory. Steps
    /// downstream then get the value read back from the store, where the file now lives, instead of the one the
    /// step returned, whose file was in its scratch directory (removed when the step ends).
    static var valuesAreFileHandles: Bool { get }
}

/// A materializer whose stored form is one buffer built in memory (JSON, raw bytes).
///
/// The store hashes the buffer as it is, and may pack small ones together instead of giving each a file.
/// `write(_:to:)` and `read(from:)` come for free.
public protocol InMemoryMaterializer: Materializer {
    /// The stored bytes of `value`.
    func encode(_ value: Value) throws -> Data
    /// The value stored as `data`.
    func decode(_ data: Data) throws -> Value
}

extension InMemoryMaterializer {
    /// Writes the encoded bytes to a file.
    public func write(_ value: Value, to url: URL) throws { try encode(value).write(to: url) }
    /// Reads and decodes a file.
    public func read(from url: URL) throws -> Value { try decode(Data(contentsOf: url)) }
}

extension Materializer {
    /// No properties by default.
    public func properties(of value: Value) -> [String: PropertyValue] { [:] }
    /// Values are data in memory by default.
    public static var valuesAreFileHandles: Bool { false }
}

/// A type-erased ``Materializer``, as the engine holds them.
public struct AnyMaterializer: Sendable {
    /// The materializer's identifier.
    public let identifier: String
    /// The materializer's format version.
    public let version: Int
    /// Whether values are handles to files, read back from the store for steps downstream.
    public let valuesAreFileHandles: Bool
    let write: @Sendable (Any, URL) throws -> Void
    let read: @Sendable (URL) throws -> any Sendable
    let properties: @Sendable (Any) -> [String: PropertyValue]
    /// For in-memory materializers: the bytes of a value, and the value of bytes.
    let encode: (@Sendable (Any) throws -> Data)?
    let decode: (@Sendable (Data) throws -> any Sendable)?

    /// Stores `value` in `store`, through memory when the materializer builds its bytes there.
    public func store(_ value: Any, in store: any ArtifactStore) throws -> StoredContent {
        if let encode { return try store.store(data: encode(value)) }
        return try store.store { url in try write(value, url) }
    }

    /// Reads the value stored at `uri` in `store`.
    public func load(_ uri: String, from store: any ArtifactStore) throws -> any Sendable {
        if let decode { return try decode(store.data(for: uri)) }
        guard let url = store.url(for: uri) else {
            throw CocoaError(
                .fileReadUnsupportedScheme,
                userInfo: [
                    NSLocalizedDescriptionKey:
                        "\(uri) is a packed object, which the \(identifier) materializer cannot read"
                ])
        }
        return try read(url)
    }

    /// Wraps a materializer.
    public init<M: Materializer>(_ materializer: M) where M.Value: Sendable {
        self.init(materializer, encode: nil, decode: nil)
    }

    /// Wraps a materializer that works in memory.
    public init<M: InMemoryMaterializer>(_ materializer: M) where M.Value: Sendable {
        self.init(
            materializer, encode: { value in try materializer.encode(Self.typed(value, for: materializer)) },
            decode: { data in try materializer.decode(data) })
    }

    private init<M: Materializer>(
        _ materializer: M, encode: (@Sendable (Any) throws -> Data)?, decode: (@Sendable (Data) throws -> any Sendable)?
    ) where M.Value: Sendable {
        identifier = M.identifier
        version = M.version
        valuesAreFileHandles = M.valuesAreFileHandles
        write = { value, url in try materializer.write(Self.typed(value, for: materializer), to: url) }
        read = { url in try materializer.read(from: url) }
        properties = { value in (value as? M.Value).map(materializer.properties(of:)) ?? [:] }
        self.encode = encode
        self.decode = decode
    }

    /// The value as the materializer's type; anything else is a programming error in the engine.
    private static func typed<M: Materializer>(_ value: Any, for materializer: M) -> M.Value {
        guard let typed = value as? M.Value else {
            preconditionFailure("\(M.identifier) materializer given a \(type(of: value)), not a \(M.Value.self)")
        }
        return typed
    }
}

/// The materializers a run can use, looked up by Swift type.
public struct MaterializerRegistry: Sendable {
    private var byType: [ObjectIdentifier: AnyMaterializer] = [:]

    /// A registry with only the built-in materializers (`Codable`, `Data`, ``FileArtifact``).
    public init() {}

    /// Registers `materializer` for its value type, replacing any earlier one for that type.
    public mutating func register<M: Materializer>(_ materializer: M) where M.Value: Sendable {
        byType[ObjectIdentifier(M.Value.self)] = AnyMaterializer(materializer)
    }

    /// Registers an in-memory `materializer` for its value type (its small artifacts may be packed).
    public mutating func register<M: InMemoryMaterializer>(_ materializer: M) where M.Value: Sendable {
        byType[ObjectIdentifier(M.Value.self)] = AnyMaterializer(materializer)
    }

    /// The materializer for values of `type`, or `nil` when none can store it.
    public func materializer(for type: Any.Type) -> AnyMaterializer? {
        if let registered = byType[ObjectIdentifier(type)] { return registered }
        if type == Data.self { return AnyMaterializer(BytesMaterializer()) }
        if type == FileArtifact.self { return AnyMaterializer(FileMaterializer()) }
        if let codable = type as? any (Codable & Sendable).Type { return Self.codableSendable(codable) }
        return nil
    }

    /// The materializer of each output of each node, `nil` where none can store it; looked up once per type (a
    /// cast to `Codable` per output of a long pipeline costs every step process of it).
    func materializers(forOutputsOf nodes: [StepNode]) -> [[AnyMaterializer?]] {
        var found: [ObjectIdentifier: AnyMaterializer?] = [:]
        return nodes.map { node in
            node.outputs.map { output in
                let key = ObjectIdentifier(output.valueType)
                if let known = found[key] { return known }
                let materializer = materializer(for: output.valueType)
                found[key] = materializer
                return materializer
            }
        }
    }

    private static func codableSendable<T: Codable & Sendable>(_ type: T.Type) -> AnyMaterializer {
        AnyMaterializer(CodableMaterializer<T>())
    }
}
