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
    /// The stored bytes, for materializers that build them in memory anyway (JSON, raw bytes): the store
    /// then hashes them as they are instead of reading the file back. `nil` (the default) uses ``write(_:to:)``.
    func data(for value: Value) throws -> Data?
}

extension Materializer {
    /// No properties by default.
    public func properties(of value: Value) -> [String: PropertyValue] { [:] }
    /// Writes through ``write(_:to:)`` by default.
    public func data(for value: Value) throws -> Data? { nil }
}

/// A type-erased ``Materializer``, as the engine holds them.
public struct AnyMaterializer: Sendable {
    /// The materializer's identifier.
    public let identifier: String
    /// The materializer's format version.
    public let version: Int
    let write: @Sendable (Any, URL) throws -> Void

    /// Stores `value` in `store`, through memory when the materializer offers its bytes.
    func store(_ value: Any, in store: any ArtifactStore) throws -> StoredContent {
        if let bytes = try data(value) { return try store.store(data: bytes) }
        return try store.store { url in try write(value, url) }
    }
    let read: @Sendable (URL) throws -> any Sendable
    let properties: @Sendable (Any) -> [String: PropertyValue]
    let data: @Sendable (Any) throws -> Data?

    /// Wraps a materializer.
    public init<M: Materializer>(_ materializer: M) where M.Value: Sendable {
        identifier = M.identifier
        version = M.version
        write = { value, url in
            guard let typed = value as? M.Value else {
                preconditionFailure("\(M.identifier) materializer given a \(type(of: value)), not a \(M.Value.self)")
            }
            try materializer.write(typed, to: url)
        }
        read = { url in try materializer.read(from: url) }
        properties = { value in (value as? M.Value).map(materializer.properties(of:)) ?? [:] }
        data = { value in try (value as? M.Value).flatMap(materializer.data(for:)) }
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

    /// The materializer for values of `type`, or `nil` when none can store it.
    public func materializer(for type: Any.Type) -> AnyMaterializer? {
        if let registered = byType[ObjectIdentifier(type)] { return registered }
        if type == Data.self { return AnyMaterializer(BytesMaterializer()) }
        if type == FileArtifact.self { return AnyMaterializer(FileMaterializer()) }
        if let codable = type as? any (Codable & Sendable).Type { return Self.codableSendable(codable) }
        return nil
    }

    private static func codableSendable<T: Codable & Sendable>(_ type: T.Type) -> AnyMaterializer {
        AnyMaterializer(CodableMaterializer<T>())
    }
}
