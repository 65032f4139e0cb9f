import Foundation
import SluiceData
import Synchronization

/// Rows kept per key bucket: in memory when there is one bucket, else in one Arrow spill file per bucket (written
/// batch by batch, read back whole for the bucket's join or batch by batch by a ``BucketCursor``).
final class BucketSink: Sendable {
    let buckets: Int
    let directory: URL?
    let names: [String]
    let types: [ColumnType]
    private let state: Mutex<State>

    private struct State: @unchecked Sendable {
        // @unchecked: ArrowFileWriter is a class used only under the mutex.
        var memory: [[Table]]
        var writers: [ArrowFileWriter?]
    }

    init(buckets: Int, directory: URL?, names: [String], types: [ColumnType]) throws {
        self.buckets = buckets
        self.directory = directory
        self.names = names
        self.types = types
        if let directory { try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true) }
        state = Mutex(
            State(memory: .init(repeating: [], count: buckets), writers: .init(repeating: nil, count: buckets)))
    }

    func url(_ bucket: Int) -> URL? { directory?.appending(path: "\(bucket).arrow") }

    /// Adds rows to a bucket.
    func append(_ table: Table, bucket: Int) throws {
        guard let url = url(bucket) else {
            state.withLock { $0.memory[bucket].append(table) }
            return
        }
        try state.withLock { state in
            if state.writers[bucket] == nil {
                state.writers[bucket] = try ArrowFileWriter(url: url, columnNames: names, columnTypes: types)
            }
            try state.writers[bucket]!.write(table)
        }
    }

    /// Finishes every spill file (a bucket with no rows gets an empty one).
    func finish() throws {
        guard directory != nil else { return }
        try state.withLock { state in
            for b in 0..<buckets {
                if state.writers[b] == nil {
                    state.writers[b] = try ArrowFileWriter(url: url(b)!, columnNames: names, columnTypes: types)
                }
                try state.writers[b]!.finish()
                state.writers[b] = nil
            }
        }
    }

    /// A bucket's rows as one table.
    func table(_ bucket: Int) throws -> Table {
        let parts: [Table]
        if let url = url(bucket) {
            var read: [Table] = []
            try ArrowFileReader(contentsOf: url).forEachBatch { read.append($0) }
            parts = read
        } else {
            parts = state.withLock { $0.memory[bucket] }
        }
        guard !parts.isEmpty else {
            return Table(columns: zip(names, types).map { Column.missing($0, $1, count: 0) })
        }
        return parts.count == 1 ? parts[0] : Table.concatenating(parts, names: names, types: types)
    }

    /// The batches of a bucket, for a cursor.
    func parts(_ bucket: Int) throws -> [Table] {
        if let url = url(bucket) {
            let reader = try ArrowFileReader(contentsOf: url)
            return try (0..<reader.batchCount).map { try reader.batch($0) }
        }
        return state.withLock { $0.memory[bucket] }
    }

    /// Lets go of a bucket's rows held in memory.
    func release(_ bucket: Int) {
        state.withLock { $0.memory[bucket] = [] }
    }

    /// Deletes the spill files.
    func remove() {
        if let directory { try? FileManager.default.removeItem(at: directory) }
    }
}

/// Reads one bucket's rows front to back, any number at a time, holding one batch of a spill file at once.
final class BucketCursor {
    private let sink: BucketSink
    private let bucket: Int
    private var reader: ArrowFileReader?
    private var memory: [Table] = []
    private var nextBatch = 0
    private var current: Table?
    private var offset = 0

    init(sink: BucketSink, bucket: Int) {
        self.sink = sink
        self.bucket = bucket
    }

    /// The next `count` rows.
    func take(_ count: Int) throws -> Table {
        var pieces: [Table] = []
        var needed = count
        while needed > 0 {
            if current == nil || offset == current!.rowCount {
                guard let batch = try nextPart() else {
                    throw FeatureError(
                        problem: "a join bucket ended \(needed) rows early (bucket \(bucket)).",
                        fix: "this is a bug in Sluice: report it with the command that showed it.")
                }
                current = batch
                offset = 0
                continue
            }
            let n = min(needed, current!.rowCount - offset)
            pieces.append(offset == 0 && n == current!.rowCount ? current! : current!.slice(offset..<(offset + n)))
            offset += n
            needed -= n
        }
        if pieces.isEmpty {
            return Table(columns: zip(sink.names, sink.types).map { Column.missing($0, $1, count: 0) })
        }
        return pieces.count == 1 ? pieces[0] : Table.concatenating(pieces, names: sink.names, types: sink.types)
    }

    private func nextPart() throws -> Table? {
        if let url = sink.url(bucket) {
            if reader == nil { reader = try ArrowFileReader(contentsOf: url) }
            guard nextBatch < reader!.batchCount else { return nil }
            defer { nextBatch += 1 }
            return try reader!.batch(nextBatch)
        }
        if nextBatch == 0 { memory = try sink.parts(bucket) }
        guard nextBatch < memory.count else { return nil }
        defer { nextBatch += 1 }
        return memory[nextBatch]
    }
}
