/// A columnar table: named, typed columns of equal length.
public struct Table: Sendable, Equatable {
    /// The columns, in order.
    public var columns: [Column]

    /// Creates a table; all columns must have the same number of rows.
    public init(columns: [Column]) {
        precondition(Set(columns.map(\.count)).count <= 1, "all columns of a table must have the same number of rows")
        self.columns = columns
    }

    /// Number of rows.
    public var rowCount: Int { columns.first?.count ?? 0 }

    /// The column names, in order.
    public var columnNames: [String] { columns.map(\.name) }

    /// The column called `name`.
    public subscript(name: String) -> Column? { columns.first { $0.name == name } }

    /// Rows `range` of every column.
    public func slice(_ range: Range<Int>) -> Table {
        Table(columns: columns.map { $0.slice(range) })
    }
}
