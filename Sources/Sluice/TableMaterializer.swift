import Foundation
import SluiceCore
import SluiceData

/// Stores a ``SluiceData/Table`` as an Apache Arrow IPC file (Feather v2), readable by
/// `pyarrow.feather.read_table`; records its row and column counts and column types as properties.
public struct TableMaterializer: Materializer {
    public static var identifier: String { "arrow-ipc" }
    public static var version: Int { 1 }

    /// Creates the materializer.
    public init() {}

    public func write(_ value: Table, to url: URL) throws { try ArrowFile.write(value, to: url) }
    public func read(from url: URL) throws -> Table { try ArrowFile.read(contentsOf: url) }

    public func properties(of value: Table) -> [String: PropertyValue] {
        [
            "rows": .int(value.rowCount), "columns": .int(value.columns.count),
            "schema": .string(value.columns.map { "\($0.name):\($0.type)" }.joined(separator: ",")),
        ]
    }
}

/// Stores a ``SluiceData/TableFile`` as it is (an Arrow IPC file of record batches, the same format
/// ``TableMaterializer`` writes, so either reads the other's artifacts): the step's file is hard-linked into the
/// store when both are on one file system, copied otherwise; readers get a handle and read batches as they need.
public struct TableFileMaterializer: Materializer {
    public static var identifier: String { "arrow-ipc" }
    public static var version: Int { 1 }
    public static var valuesAreFileHandles: Bool { true }

    /// Creates the materializer.
    public init() {}

    public func write(_ value: TableFile, to url: URL) throws {
        if link(value.url.path, url.path) != 0 { try FileManager.default.copyItem(at: value.url, to: url) }
    }

    public func read(from url: URL) throws -> TableFile { try TableFile(contentsOf: url) }

    public func properties(of value: TableFile) -> [String: PropertyValue] {
        [
            "rows": .int(value.rowCount), "columns": .int(value.columnNames.count), "batches": .int(value.batchCount),
            "schema": .string(zip(value.columnNames, value.columnTypes).map { "\($0):\($1)" }.joined(separator: ",")),
        ]
    }
}

extension MaterializerRegistry {
    /// The built-ins plus the materializers for Sluice's data types (tables and table files as Arrow files).
    public static var standard: MaterializerRegistry {
        var registry = MaterializerRegistry()
        registry.register(TableMaterializer())
        registry.register(TableFileMaterializer())
        return registry
    }
}
