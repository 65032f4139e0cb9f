import Dispatch
import Foundation

/// A table stored as an Arrow IPC file of record batches: steps read it one batch at a time, so it never has to fit
/// in memory. What pipeline steps pass between them for data of any size.
public struct TableFile: Sendable, Hashable {
    /// Rows per record batch in files Sluice writes: batch boundaries depend only on the rows, so the same rows give
    /// the same bytes however they arrived.
    public static let defaultBatchRows = 65_536
    /// The schema metadata key under which a file carries the statistics of its rows.
    static let statisticsKey = "sluice.statistics"

    /// Where the file is.
    public let url: URL
    /// Column names, in order.
    public let columnNames: [String]
    /// Column types, in order.
    public let columnTypes: [ColumnType]
    /// Rows in each record batch, in order.
    public let batchRowCounts: [Int]

    /// Rows in all.
    public var rowCount: Int { batchRowCounts.reduce(0, +) }
    /// How many record batches the file holds.
    public var batchCount: Int { batchRowCounts.count }

    /// Opens the Arrow file at `url`, reading only its footer and the batches' metadata.
    /// - Throws: ``ArrowFile/FormatError`` when it is not an Arrow file Sluice reads.
    public init(contentsOf url: URL) throws {
        let reader = try ArrowFileReader(contentsOf: url)
        self.url = url
        columnNames = reader.columnNames
        columnTypes = reader.columnTypes
        batchRowCounts = try reader.batchRowCounts()
    }

    public static func == (a: TableFile, b: TableFile) -> Bool { a.url == b.url }
    public func hash(into hasher: inout Hasher) { hasher.combine(url) }

    /// A reader of the file's batches (safe to use from several threads at once).
    public func reader() throws -> ArrowFileReader { try ArrowFileReader(contentsOf: url) }

    /// Calls `body` with each record batch and the index of its first row, in order. The next batch is read on
    /// another thread while `body` works on this one, so at most two are in memory at a time.
    public func forEachBatch(_ body: (_ batch: Table, _ firstRow: Int) throws -> Void) throws {
        try forEachBatch(columns: nil, body)
    }

    /// Calls `body` with each record batch holding only `columns` (in the file's order; the others are not
    /// decoded), or every column when nil.
    public func forEachBatch(columns: [String]?, _ body: (_ batch: Table, _ firstRow: Int) throws -> Void) throws {
        let reader = try reader()
        let count = reader.batchCount
        guard count > 0 else { return }
        let ahead = Prefetch()
        ahead.start { try reader.batch(0, columns: columns) }
        var first = 0
        for index in 0..<count {
            try Task.checkCancellation()
            let batch = try ahead.take()
            if index + 1 < count { ahead.start { try reader.batch(index + 1, columns: columns) } }
            try body(batch, first)
            first += batch.rowCount
        }
    }

    /// The columns `names` of every row (only those columns are kept in memory).
    /// - Throws: ``TableFileError`` when a column is missing.
    public func columns(_ names: [String]) throws -> Table {
        for name in names where !columnNames.contains(name) {
            throw TableFileError(
                problem: "there is no column '\(name)'", fix: "use one of \(columnNames.joined(separator: ", ")).")
        }
        var parts: [Table] = []
        try forEachBatch(columns: names) { batch, _ in parts.append(Table(columns: names.map { batch[$0]! })) }
        let types = names.map { columnTypes[columnNames.firstIndex(of: $0)!] }
        return Table.concatenating(parts, names: names, types: types)
    }

    /// The column `name` of every row.
    /// - Throws: ``TableFileError`` when there is no such column.
    public func column(_ name: String) throws -> Column { try columns([name]).columns[0] }

    /// Every row in one table in memory: for steps that need the whole table (small data).
    public func readAll() throws -> Table { try columns(columnNames) }

    /// The statistics of the rows, when the step that wrote the file computed them in the same pass.
    /// - Throws: when the statistics stored in the file cannot be decoded.
    public func embeddedStatistics() throws -> DatasetStatistics? {
        guard let text = try reader().metadata[Self.statisticsKey] else { return nil }
        return try JSONDecoder().decode(DatasetStatistics.self, from: Data(text.utf8))
    }

    /// Writes `table` as a table file (in batches of `batchRows` rows).
    @discardableResult
    public static func write(_ table: Table, to url: URL, batchRows: Int = defaultBatchRows) throws -> TableFile {
        let writer = try TableFileWriter(url: url, batchRows: batchRows)
        try writer.append(table)
        return try writer.finish(columnNames: table.columnNames, columnTypes: table.columns.map(\.type))
    }
}

extension Table {
    /// The table with each text column's dictionary reduced to the values its rows use, in order of first use.
    func compactingDictionaries() -> Table {
        Table(
            columns: columns.map { column in
                guard case .string(let codes, let dictionary) = column.storage else { return column }
                var remap = [Int32](repeating: -1, count: dictionary.count)
                var kept: [String] = []
                let compacted = codes.map { code -> Int32 in
                    guard code >= 0 else { return -1 }
                    if remap[Int(code)] < 0 {
                        remap[Int(code)] = Int32(kept.count)
                        kept.append(dictionary[Int(code)])
                    }
                    return remap[Int(code)]
                }
                return Column(name: column.name, storage: .string(codes: compacted, dictionary: kept))
            })
    }
}

/// One batch being read on another thread.
private final class Prefetch: @unchecked Sendable {
    // @unchecked: `result` is written by the reading thread before it signals, and read only after waiting.
    private var result: Result<Table, any Error>?
    private let done = DispatchSemaphore(value: 0)

    func start(_ read: @escaping @Sendable () throws -> Table) {
        DispatchQueue.global().async {
            self.result = Result { try read() }
            self.done.signal()
        }
    }

    func take() throws -> Table {
        done.wait()
        defer { result = nil }
        return try result!.get()
    }
}

/// A table file cannot be read as asked, with what to do about it.
public struct TableFileError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What is wrong.
    public var problem: String
    /// What to do.
    public var fix: String
}

/// Writes a ``TableFile`` from tables of any size arriving in any pieces: rows are cut into batches of a fixed
/// number of rows (so the bytes depend only on the rows), written as they fill, and optionally summarized into
/// ``DatasetStatistics`` in the same pass. The file appears only when ``finish(columnNames:columnTypes:)`` succeeds.
///
/// Integer columns may turn into float columns midway (as CSV type inference widens them): batches written before
/// are converted when the file is finished, so every batch has the final types.
public final class TableFileWriter {
    /// The file being written.
    public let url: URL
    /// Rows per batch.
    public let batchRows: Int
    /// Rows appended so far.
    public private(set) var rowsAppended = 0

    private let computesStatistics: Bool
    private var statistics = DatasetStatistics()
    private var pending: [Table] = []
    private var pendingRows = 0
    /// Finished segments (batches of one set of types), and the one being written.
    private var segments: [URL] = []
    private var current: ArrowFileWriter?

    /// Starts a file at `url`.
    /// - Parameters:
    ///   - batchRows: rows per record batch.
    ///   - computeStatistics: summarize the rows into statistics stored in the file (see
    ///     ``TableFile/embeddedStatistics()``).
    public init(url: URL, batchRows: Int = TableFile.defaultBatchRows, computeStatistics: Bool = false) throws {
        precondition(batchRows > 0, "a batch holds at least one row")
        self.url = url
        self.batchRows = batchRows
        computesStatistics = computeStatistics
    }

    deinit {
        for segment in segments { try? FileManager.default.removeItem(at: segment) }
    }

    /// Adds rows (same column names as earlier pieces; integer columns may have become float).
    /// - Throws: ``TableFileError`` when the columns differ from earlier pieces; file system errors.
    public func append(_ table: Table) throws {
        guard table.rowCount > 0 else { return }
        if let first = pending.first, first.columnNames != table.columnNames {
            throw TableFileError(
                problem: "rows with columns \(table.columnNames) follow rows with columns \(first.columnNames)",
                fix: "give every piece the same columns in the same order.")
        }
        if let current, current.columnNames != table.columnNames {
            throw TableFileError(
                problem: "rows with columns \(table.columnNames) follow rows with columns \(current.columnNames)",
                fix: "give every piece the same columns in the same order.")
        }
        pending.append(table)
        pendingRows += table.rowCount
        rowsAppended += table.rowCount
        if pendingRows >= batchRows { try flush(final: false) }
    }

    /// Writes what is left, converts earlier batches to `columnTypes` where they differ, stores the statistics,
    /// and moves the file into place.
    /// - Parameters:
    ///   - columnNames: the columns (used when no row was appended).
    ///   - columnTypes: the final column types.
    /// - Returns: the finished file.
    public func finish(columnNames: [String], columnTypes: [ColumnType]) throws -> TableFile {
        try flush(final: true)
        var metadata: [(String, String)] = []
        if computesStatistics {
            var statistics = self.statistics
            if statistics.columns.isEmpty {
                statistics.columns = zip(columnNames, columnTypes).map { ColumnStatistics(name: $0, type: $1) }
            }
            for index in statistics.columns.indices where index < columnTypes.count {
                statistics.columns[index].type = columnTypes[index]
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            metadata.append((TableFile.statisticsKey, String(decoding: try encoder.encode(statistics), as: UTF8.self)))
        }
        if segments.isEmpty, let current, current.columnTypes == columnTypes, current.columnNames == columnNames {
            // One set of types all along: the file is finished where it was written and moved into place.
            try current.finish(metadata: metadata)
            self.current = nil
            guard rename(current.url.path, url.path) == 0 else {
                throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: url.path])
            }
            return try TableFile(contentsOf: url)
        }
        if let current {
            try current.finish()
            segments.append(current.url)
            self.current = nil
        }
        // Rewrite: every batch with the final types (and the metadata in the footer).
        let output = try ArrowFileWriter(url: url, columnNames: columnNames, columnTypes: columnTypes)
        for segment in segments {
            let reader = try ArrowFileReader(contentsOf: segment)
            for index in 0..<reader.batchCount {
                let batch = try reader.batch(index)
                try output.write(
                    batch.columns.map(\.type) == columnTypes
                        ? batch : Table.concatenating([batch], names: columnNames, types: columnTypes))
            }
            try FileManager.default.removeItem(at: segment)
        }
        segments = []
        try output.finish(metadata: metadata)
        return try TableFile(contentsOf: url)
    }

    /// Text values held for the next batch (for tests: bounded by the rows held, not by the rows written).
    var heldTextValues: Int {
        pending.reduce(0) { total, table in
            total
                + table.columns.reduce(0) { sum, column in
                    if case .string(_, let dictionary) = column.storage { return sum + dictionary.count }
                    return sum
                }
        }
    }

    /// Writes every full batch held (and, when `final`, the last partial one).
    private func flush(final: Bool) throws {
        guard pendingRows > 0, final || pendingRows >= batchRows else { return }
        let names = pending[0].columnNames
        let types = names.indices.map { index -> ColumnType in
            let kinds = Set(pending.map { $0.columns[index].type })
            return kinds == [.integer, .float] ? .float : pending[0].columns[index].type
        }
        let all = pending.count == 1 ? pending[0] : Table.concatenating(pending, names: names, types: types)
        var batches: [Table] = []
        var start = 0
        while all.rowCount - start >= batchRows || (final && start < all.rowCount) {
            let end = min(all.rowCount, start + batchRows)
            batches.append(start == 0 && end == all.rowCount ? all : all.slice(start..<end))
            start = end
        }
        // The rows kept for the next batch drop the text values only written rows used: otherwise a column of
        // distinct values (an ID) would carry every value seen so far from flush to flush.
        pending = start < all.rowCount ? [all.slice(start..<all.rowCount).compactingDictionaries()] : []
        pendingRows = all.rowCount - start
        if computesStatistics {
            // Each batch's columns summarized on all cores, merged in batch order: the same rows give the same
            // statistics however many cores there are.
            let width = names.count
            let parts = UnsafeMutableBufferPointer<ColumnStatistics?>.allocate(capacity: batches.count * width)
            parts.initialize(repeating: nil)
            defer {
                parts.deinitialize()
                parts.deallocate()
            }
            nonisolated(unsafe) let slots = parts
            let shared = batches
            DispatchQueue.concurrentPerform(iterations: batches.count * width) { k in
                slots[k] = ColumnStatistics(shared[k / width].columns[k % width])
            }
            for (b, batch) in batches.enumerated() {
                var part = DatasetStatistics()
                part.rows = batch.rowCount
                part.columns = (0..<width).map { parts[b * width + $0]! }
                statistics.merge(part)
            }
        }
        for batch in batches {
            let batchTypes = batch.columns.map(\.type)
            if let writer = current, writer.columnTypes != batchTypes {
                try writer.finish()
                segments.append(writer.url)
                current = nil
            }
            if current == nil {
                let segment = url.deletingLastPathComponent().appending(
                    path: ".\(url.lastPathComponent).segment\(segments.count)")
                current = try ArrowFileWriter(url: segment, columnNames: names, columnTypes: batchTypes)
            }
            try current!.write(batch)
        }
    }
}
