/// Raw values for serving, column by column: each column holds one value per row, in row order. A column the
/// batch leaves out is missing in every row.
public struct RawBatch: Sendable, Equatable {
    /// Number of rows.
    public let rowCount: Int
    /// Column name → one value per row.
    public let columns: [String: [RawValue]]

    /// Creates a batch; every column must hold `rowCount` values.
    public init(rowCount: Int, columns: [String: [RawValue]]) {
        precondition(columns.values.allSatisfy { $0.count == rowCount }, "every column needs one value per row")
        self.rowCount = rowCount
        self.columns = columns
    }

    /// Creates a batch from rows of column name → value; a column a row leaves out is missing there.
    public init(rows: [[String: RawValue]]) {
        var columns: [String: [RawValue]] = [:]
        for (r, row) in rows.enumerated() {
            for (name, value) in row {
                columns[name, default: Array(repeating: .missing, count: rows.count)][r] = value
            }
        }
        self.init(rowCount: rows.count, columns: columns)
    }
}
