import Foundation

/// Reads an Arrow IPC file one record batch at a time: the file is memory-mapped and only the batch being read
/// is copied out, so a file of many batches is never whole in memory. Single-batch files (what Sluice wrote
/// before) and files written by pyarrow read the same way.
public struct ArrowFileReader: Sendable {
    /// Column names, in order.
    public let columnNames: [String]
    /// Column types, in order.
    public let columnTypes: [ColumnType]
    /// How many record batches the file holds.
    public var batchCount: Int { blocks.count }

    private let bytes: Data
    private let footer: FlatBufferReader
    private let fields: [ArrowFile.Field]
    private let dictionaries: [Int64: Column.Storage]
    private let blocks: [Int]

    /// Opens the file at `url` (memory-mapped).
    /// - Throws: ``ArrowFile/FormatError`` when it is not an Arrow file Sluice reads.
    public init(contentsOf url: URL) throws {
        try self.init(data: Data(contentsOf: url, options: .alwaysMapped))
    }

    /// Opens Arrow IPC file bytes.
    /// - Throws: ``ArrowFile/FormatError`` when they are not an Arrow file Sluice reads.
    public init(data: Data) throws {
        bytes = data
        (footer, fields, dictionaries, blocks) = try ArrowFile.open(data)
        columnNames = fields.map(\.name)
        columnTypes = fields.map(\.type)
    }

    /// Record batch `index` as a table.
    /// - Throws: ``ArrowFile/FormatError`` when the batch is malformed.
    public func batch(_ index: Int) throws -> Table {
        precondition(blocks.indices.contains(index), "batch \(index) of \(blocks.count)")
        return try ArrowFile.readBatch(
            at: blocks[index], footer: footer, fields: fields, dictionaries: dictionaries, in: bytes)
    }

    /// Calls `body` with each record batch in order; only one is in memory at a time.
    public func forEachBatch(_ body: (Table) throws -> Void) throws {
        for index in blocks.indices { try body(try batch(index)) }
    }

    /// Every batch, concatenated into one table (integers widened to floats where batches disagree).
    public func readAll() throws -> Table {
        var parts: [Table] = []
        try forEachBatch { parts.append($0) }
        guard !parts.isEmpty else { return ArrowFile.emptyTable(fields) }
        return Table.concatenating(parts, names: columnNames, types: parts[0].columns.map(\.type))
    }
}

/// Writes an Arrow IPC file one record batch at a time, so a table larger than memory is written as it is made.
/// The file appears at its path only when ``finish()`` succeeds (written beside it, then renamed): a crash or an
/// error midway leaves no half-written file.
public final class ArrowFileWriter {
    /// The file being written.
    public let url: URL
    /// Column names, in order.
    public let columnNames: [String]
    /// Column types, in order.
    public let columnTypes: [ColumnType]
    /// Rows written so far.
    public private(set) var rowsWritten = 0

    private let file: PendingFile
    private var offset: Int
    private var blocks: [ArrowFile.Block] = []

    /// Starts a file at `url` for tables with these columns.
    /// - Throws: when the folder cannot be written.
    public init(url: URL, columnNames: [String], columnTypes: [ColumnType]) throws {
        precondition(columnNames.count == columnTypes.count, "one type per column")
        self.url = url
        self.columnNames = columnNames
        self.columnTypes = columnTypes
        file = try PendingFile(url)
        let opening = ArrowFile.opening(names: columnNames, types: columnTypes)
        try file.write(opening)
        offset = opening.count
    }

    /// Appends `table` as one record batch. Its columns must be this file's, in order, with the same types.
    /// - Throws: ``ArrowFile/FormatError`` when the columns differ; a write error from the file system.
    public func write(_ table: Table) throws {
        guard table.columnNames == columnNames, table.columns.map(\.type) == columnTypes else {
            throw ArrowFile.FormatError(
                problem:
                    "a batch with columns \(zip(table.columnNames, table.columns.map(\.type)).map { "\($0) \($1)" }) "
                    + "does not match the file's \(zip(columnNames, columnTypes).map { "\($0) \($1)" })")
        }
        var out = Data()
        let block = ArrowFile.appendBatch(table, to: &out, base: offset)
        try file.write(out)
        offset += out.count
        blocks.append(block)
        rowsWritten += table.rowCount
    }

    /// Writes the footer, closes the file and moves it to ``url`` (replacing what was there).
    public func finish() throws {
        try file.write(ArrowFile.closing(names: columnNames, types: columnTypes, blocks: blocks))
        try file.finish()
    }
}
