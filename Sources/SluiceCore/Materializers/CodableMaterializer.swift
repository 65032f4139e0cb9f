import Foundation

/// Stores any `Codable` value as JSON with sorted keys, so equal values give equal bytes and equal hashes.
public struct CodableMaterializer<Value: Codable & Sendable>: InMemoryMaterializer {
    public static var identifier: String { "json" }
    public static var version: Int { 1 }

    /// Creates the materializer.
    public init() {}

    public func encode(_ value: Value) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "+Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        encoder.dateEncodingStrategy = .iso8601
        return try encoder.encode(value)
    }

    public func decode(_ data: Data) throws -> Value {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(
            positiveInfinity: "+Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode(Value.self, from: data)
    }

    public func properties(of value: Value) -> [String: PropertyValue] {
        if let collection = value as? any Collection { return ["count": .int(collection.count)] }
        return [:]
    }
}

/// Stores raw bytes as they are.
public struct BytesMaterializer: InMemoryMaterializer {
    /// Raw bytes.
    public typealias Value = Data
    public static var identifier: String { "bytes" }
    public static var version: Int { 1 }

    /// Creates the materializer.
    public init() {}

    public func encode(_ value: Data) throws -> Data { value }
    public func decode(_ data: Data) throws -> Data { data }
}

/// A file or directory a step produced, stored in the artifact store as it is.
///
/// Build it in ``StepContext/scratchDirectory`` and return it; readers get a ``FileArtifact`` pointing
/// into the store, which they must treat as read-only.
public struct FileArtifact: Codable, Sendable, Hashable {
    /// Where the file or directory is.
    public var url: URL

    /// Wraps a file or directory.
    public init(url: URL) { self.url = url }
}

/// Stores a ``FileArtifact`` by copying its file or directory tree.
public struct FileMaterializer: Materializer {
    public static var identifier: String { "file" }
    public static var version: Int { 1 }
    public static var valuesAreFileHandles: Bool { true }

    /// Creates the materializer.
    public init() {}

    public func write(_ value: FileArtifact, to url: URL) throws {
        try FileManager.default.copyItem(at: value.url, to: url)
    }

    public func read(from url: URL) throws -> FileArtifact { FileArtifact(url: url) }
}
