import Foundation

/// Reads an Arrow IPC file one record batch at a time: each batch's bytes are read from the file when asked for
/// (never mapped, so neither resident memory nor the address space grows with the file), so a file of many batches
/// is never whole in memory. Single-batch files (what Sluice wrote before) and files written by pyarrow read the
/// same way.
public struct ArrowFileReader: Sendable {
    /// Column names, in order.
    public let columnNames: [String]
    /// Column types, in order.
    public let columnTypes: [ColumnType]
    /// Key-value metadata in the file's schema (`custom_metadata`).
    public let metadata: [String: String]
    /// How many record batches the file holds.
    public var batchCount: Int { blocks.count }

    private let bytes: ArrowBytes
    private let footer: FlatBufferReader
    private let fields: [ArrowFile.Field]
    private let dictionaries: [Int64: Column.Storage]
    private let blocks: [Int]

    /// Opens the file at `url`.
    /// - Throws: ``ArrowFile/FormatError`` when it is not an Arrow file Sluice reads; a file system error when it
    ///   cannot be opened.
    public init(contentsOf url: URL) throws {
        try self.init(bytes: ArrowBytes(file: url))
    }

    /// Opens Arrow IPC file bytes.
    /// - Throws: ``ArrowFile/FormatError`` when they are not an Arrow file Sluice reads.
    public init(data: Data) throws {
        try self.init(bytes: ArrowBytes(data: data))
    }

    private init(bytes: ArrowBytes) throws {
        self.bytes = bytes
        (footer, fields, dictionaries, blocks, metadata) = try ArrowFile.open(bytes)
        columnNames = fields.map(\.name)
        columnTypes = fields.map(\.type)
    }

    /// Record batch `index` as a table; with `columns`, only those (in the file's order), the others not decoded.
    /// - Throws: ``ArrowFile/FormatError`` when the batch is malformed.
    public func batch(_ index: Int, columns: [String]? = nil) throws -> Table {
        precondition(blocks.indices.contains(index), "batch \(index) of \(blocks.count)")
        return try ArrowFile.readBatch(
            at: blocks[index], footer: footer, fields: fields, dictionaries: dictionaries, in: bytes,
            wanted: columns.map { names in columnNames.map { names.contains($0) } })
    }

    /// The number of rows in each record batch, read from the batches' metadata (no data is read).
    /// - Throws: ``ArrowFile/FormatError`` when a batch's metadata is malformed.
    public func batchRowCounts() throws -> [Int] {
        try blocks.map { try ArrowFile.batchLength(at: $0, footer: footer, in: bytes) }
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

/// The bytes of an Arrow file: in memory, or in a file read range by range with `pread`.
final class ArrowBytes: @unchecked Sendable {
    // @unchecked: the descriptor is only read with pread (no shared offset) and closed once, in deinit.
    private let data: Data?
    private let descriptor: Int32
    private let path: String
    /// The file's length in bytes.
    let count: Int

    init(data: Data) {
        self.data = data
        descriptor = -1
        path = ""
        count = data.count
    }

    init(file url: URL) throws {
        data = nil
        path = url.path
        descriptor = open(url.path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw CocoaError(
                .fileReadNoSuchFile,
                userInfo: [
                    NSFilePathErrorKey: url.path,
                    NSLocalizedDescriptionKey: "cannot open \(url.path): \(String(cString: strerror(errno)))",
                ])
        }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            close(descriptor)
            throw CocoaError(.fileReadUnknown, userInfo: [NSFilePathErrorKey: url.path])
        }
        count = Int(status.st_size)
    }

    deinit { if descriptor >= 0 { close(descriptor) } }

    /// The bytes in `range` (which must lie in the file), as a new buffer indexed from 0.
    func read(_ range: Range<Int>) throws -> Data {
        precondition(range.lowerBound >= 0 && range.upperBound <= count, "\(range) outside \(count) bytes")
        if let data { return Data(data[(data.startIndex + range.lowerBound)..<(data.startIndex + range.upperBound)]) }
        var out = Data(count: range.count)
        try out.withUnsafeMutableBytes { buffer in
            var done = 0
            while done < range.count {
                let got = pread(
                    descriptor, buffer.baseAddress! + done, range.count - done, off_t(range.lowerBound + done))
                if got < 0 && errno == EINTR { continue }
                guard got > 0 else {
                    throw CocoaError(
                        .fileReadUnknown,
                        userInfo: [
                            NSFilePathErrorKey: path,
                            NSLocalizedDescriptionKey:
                                "cannot read \(path): \(got < 0 ? String(cString: strerror(errno)) : "it is shorter than it was")",
                        ])
                }
                done += got
            }
        }
        return out
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

    /// Writes the footer (with `metadata` as the schema's key-value metadata), closes the file and moves it to
    /// ``url`` (replacing what was there).
    public func finish(metadata: [(String, String)] = []) throws {
        try file.write(ArrowFile.closing(names: columnNames, types: columnTypes, blocks: blocks, metadata: metadata))
        try file.finish()
    }
}
