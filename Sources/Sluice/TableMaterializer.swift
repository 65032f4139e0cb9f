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

extension MaterializerRegistry {
    /// The built-ins plus the materializers for Sluice's data types (tables as Arrow files).
    public static var standard: MaterializerRegistry {
        var registry = MaterializerRegistry()
        registry.register(TableMaterializer())
        return registry
    }
}
