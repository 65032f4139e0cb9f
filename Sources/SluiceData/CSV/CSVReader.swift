import Dispatch
import Foundation
import Synchronization

/// A piece of a CSV dataset: the rows of one window of one file, as a typed table.
public struct CSVChunk: Sendable {
    /// The rows.
    public var table: Table
    /// The file they came from.
    public var file: URL
    /// Bytes of all files read so far (for progress).
    public var bytesRead: Int64
    /// Bytes of all files in all.
    public var totalBytes: Int64
}

/// One slot per parallel worker, each written by exactly one of them.
private final class Slots<T>: @unchecked Sendable {
    let buffer: UnsafeMutableBufferPointer<T>

    init(_ items: [T]) {
        buffer = .allocate(capacity: items.count)
        _ = buffer.initialize(from: items)
    }

    func take() -> [T] { Array(buffer) }

    deinit {
        buffer.deinitialize()
        buffer.deallocate()
    }
}

/// How far a pass over a dataset has come.
public struct CSVProgress: Sendable {
    /// The file being read.
    public var file: URL
    /// Bytes of all files read so far.
    public var bytesRead: Int64
    /// Bytes of all files in all.
    public var totalBytes: Int64
}

/// What a pass over a CSV dataset found.
public struct CSVSummary: Sendable, Equatable {
    /// The files read, in order.
    public var files: [URL]
    /// Column names, in order.
    public var columnNames: [String]
    /// Column types (after any widening of integers to floats).
    public var columnTypes: [ColumnType]
    /// Rows read (bad rows excluded).
    public var rows: Int
    /// Bytes read.
    public var bytes: Int64
    /// Rows skipped as bad (with ``CSVOptions/skipBadRows``).
    public var badRowCount: Int
    /// The first bad rows, with where and why.
    public var badRows: [BadRow]
}

/// Reads one or many CSV files as one dataset, in windows of bounded size, parsing each window on all cores.
///
/// Memory stays bounded by the window size (times two while a window is parsed), however large the files:
/// ``forEachChunk(_:)`` hands each window's rows to the caller and drops them.
public struct CSVReader: Sendable {
    /// The files, in reading order.
    public let files: [URL]
    /// The options.
    public let options: CSVOptions

    /// A reader over `paths`: files, folders (every `.csv` below them, sorted) and glob patterns (`*` also
    /// matches across folders).
    /// - Throws: ``CSVError`` when a path matches nothing.
    public init(paths: [String], options: CSVOptions = CSVOptions()) throws {
        self.init(files: try Self.expand(paths), options: options)
    }

    /// A reader over files already listed (see ``expand(_:)``).
    public init(files: [URL], options: CSVOptions = CSVOptions()) {
        self.files = files
        self.options = options
    }

    /// Reads every row into one table (integers widened to floats where any file needed it).
    public func readTable() throws -> Table {
        var chunks: [Table] = []
        let summary = try forEachChunk { chunks.append($0.table) }
        return Table.concatenating(chunks, names: summary.columnNames, types: summary.columnTypes)
    }

    /// Streams the dataset: `body` gets each window's rows in file order.
    @discardableResult
    public func forEachChunk(_ body: (CSVChunk) throws -> Void) throws -> CSVSummary {
        try mapChunks(
            { $0 },
            { table, progress in
                try body(
                    CSVChunk(
                        table: table, file: progress.file, bytesRead: progress.bytesRead,
                        totalBytes: progress.totalBytes))
            })
    }

    /// Streams the dataset through `transform`, which runs on the parsing threads right after each piece is
    /// parsed (so per-chunk work such as statistics uses every core); `body` gets the results in file order.
    @discardableResult
    public func mapChunks<T>(
        _ transform: @escaping @Sendable (Table) throws -> T, _ body: (T, CSVProgress) throws -> Void
    ) throws -> CSVSummary {
        try pass(
            sink: BuilderSink.self,
            finish: { sink in
                let columns = sink.finish(building: sink.rows > 0)
                return sink.rows > 0 ? try transform(Table(columns: columns)) : nil
            }, body)
    }

    /// One streaming pass with a custom sink per piece: `finish` turns a piece's sink into a result on the
    /// parsing thread (nil for an empty piece, and it must release what the sink holds); `body` gets the results
    /// in file order.
    func pass<Sink: ChunkSink, T>(
        sink: Sink.Type, finish: @escaping @Sendable (Sink) throws -> T?, _ body: (T, CSVProgress) throws -> Void
    ) throws -> CSVSummary {
        let totalBytes = files.reduce(Int64(0)) { total, file in
            total + ((try? FileManager.default.attributesOfItem(atPath: file.path)[.size] as? Int64) ?? 0)
        }
        var state = PassState(totalBytes: totalBytes)
        for file in files {
            try read(file, state: &state, sink: sink, finish: finish, body: body)
        }
        let badRows = try state.badRowOffsets.map { file, offset, problem in
            let (line, column) = try Self.lineAndColumn(in: file, at: offset)
            return BadRow(place: "\(file.path):\(line):\(column)", problem: problem)
        }
        return CSVSummary(
            files: files, columnNames: state.names ?? [], columnTypes: state.types ?? [], rows: state.rows,
            bytes: state.bytesRead, badRowCount: state.badRowCount, badRows: badRows)
    }

    struct PassState {
        var totalBytes: Int64
        var names: [String]?
        var types: [ColumnType]?
        var rows = 0
        var bytesRead: Int64 = 0
        var badRowCount = 0
        var badRowOffsets: [(URL, Int64, String)] = []
    }

    struct Piece<T> {
        var start: Int
        var limit: Int
        var stop: TokenizerStop = .done
        var next = 0
        var rows = 0
        var widened: [Bool] = []
        var bad: [(Int, String)] = []
        var output: T?
        var failure: (any Error)?
    }

    private func read<Sink: ChunkSink, T>(
        _ file: URL, state: inout PassState, sink: Sink.Type, finish: @escaping @Sendable (Sink) throws -> T?,
        body: (T, CSVProgress) throws -> Void
    ) throws {
        let fd = open(file.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw CSVError(
                file: file.path, line: nil, column: nil,
                problem: "cannot open the file (\(String(cString: strerror(errno))))",
                fix: "check the path and its permissions.")
        }
        defer { close(fd) }
        var capacity = max(options.windowSize, 1 << 16)
        var buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 64)
        defer { buffer.deallocate() }
        var filled = 0
        var windowOffset: Int64 = 0  // file offset of buffer[0]
        var atEOF = false
        var headerDone = false
        var start = 0
        let missing = MissingTokens(options.missingValues)
        let threads = max(1, options.threads ?? ProcessInfo.processInfo.activeProcessorCount)

        func error(at offset: Int, _ problem: String, _ fix: String) throws -> Never {
            let absolute = windowOffset + Int64(offset)
            let (line, column) = try Self.lineAndColumn(in: file, at: absolute)
            throw CSVError(file: file.path, line: line, column: column, problem: problem, fix: fix)
        }

        while true {
            // Ctrl-C (the task cancelled) stops the read between windows: within a window's parse of it.
            if Task.isCancelled { throw CancellationError() }
            // Fill the window.
            while !atEOF && filled < capacity {
                let count = Foundation.read(fd, buffer.baseAddress! + filled, capacity - filled)
                if count < 0 {
                    if errno == EINTR { continue }
                    throw CSVError(
                        file: file.path, line: nil, column: nil,
                        problem: "reading failed (\(String(cString: strerror(errno))))",
                        fix: "check the disk and the file.")
                }
                if count == 0 { atEOF = true }
                filled += count
            }
            let window = UnsafeRawBufferPointer(start: buffer.baseAddress, count: filled)

            if !headerDone {
                if filled >= 3, window[0] == 0xEF, window[1] == 0xBB, window[2] == 0xBF { start = 3 }
                if start >= filled && atEOF {
                    throw CSVError(
                        file: file.path, line: 1, column: 1, problem: "the file is empty: there is no header row",
                        fix: "check that the file was written completely, or remove it from the inputs.")
                }
                if options.hasHeader {
                    var tokenizer = Tokenizer(delimiter: options.delimiter, columnCount: -1)
                    var header = HeaderSink()
                    let (stop, next, _) = tokenizer.run(
                        window, from: start, limit: start + 1, atEndOfFile: atEOF, skipBadRows: false, sink: &header,
                        onBadRow: { _, _ in })
                    if stop == .needMoreData {
                        guard grow(&buffer, &capacity, filled) else {
                            try error(at: start, "the header row is too long", "check the delimiter.")
                        }
                        continue
                    }
                    if case .error(let offset, let problem, let fix) = stop { try error(at: offset, problem, fix) }
                    if header.invalid {
                        try error(at: start, "the header is not valid UTF-8", "re-encode the file as UTF-8.")
                    }
                    let names = header.names.enumerated().map { $1.isEmpty ? "column_\($0 + 1)" : $1 }
                    if let duplicate = Dictionary(grouping: names, by: { $0 }).first(where: { $1.count > 1 })?.key {
                        try error(
                            at: start, "the column name '\(duplicate)' appears twice in the header",
                            "give every column its own name.")
                    }
                    if let expected = state.names, expected != names {
                        try error(
                            at: start,
                            "this file's columns (\(names.joined(separator: ", "))) differ from the first file's (\(expected.joined(separator: ", ")))",
                            "read files with the same columns together, or select the files with a narrower pattern.")
                    }
                    state.names = names
                    start = next
                } else if state.names == nil {
                    var tokenizer = Tokenizer(delimiter: options.delimiter, columnCount: -1)
                    var header = HeaderSink()
                    _ = tokenizer.run(
                        window, from: start, limit: start + 1, atEndOfFile: atEOF, skipBadRows: false, sink: &header,
                        onBadRow: { _, _ in })
                    state.names = (1...max(1, header.names.count)).map { "column_\($0)" }
                }
                if state.types == nil {
                    var inference = InferenceSink(columnCount: state.names!.count, missing: missing)
                    var tokenizer = Tokenizer(delimiter: options.delimiter, columnCount: state.names!.count)
                    // Sample rows from the start of the window (malformed rows are reported by the real pass).
                    var position = start
                    var sampled = 0
                    while sampled < options.inferenceRows && position < filled {
                        let (_, next, rows) = tokenizer.run(
                            window, from: position, limit: position + 1, atEndOfFile: atEOF, skipBadRows: true,
                            sink: &inference, onBadRow: { _, _ in })
                        if next <= position { break }
                        position = next
                        sampled += max(rows, 1)
                    }
                    state.types = zip(state.names!, inference.types).map { options.schema[$0] ?? $1 }
                }
                headerDone = true
            }

            let names = state.names!
            let types = state.types!
            // Split the rest of the window into pieces at line ends; each is parsed on its own thread.
            let pieceCount = filled - start > 1 << 20 ? threads * 4 : 1
            var bounds = [start]
            for index in 1..<max(pieceCount, 1) {
                var cut = start + (filled - start) * index / pieceCount
                while cut < filled && window[cut] != UInt8(ascii: "\n") { cut += 1 }
                cut = min(cut + 1, filled)
                if cut > bounds.last! && cut < filled { bounds.append(cut) }
            }
            bounds.append(filled)
            var pieces = (0..<(bounds.count - 1)).map { Piece<T>(start: bounds[$0], limit: bounds[$0 + 1]) }
            let estimate = max(16, (filled - start) / max(1, names.count * 8) / pieces.count)
            nonisolated(unsafe) let shared = window  // read-only while pieces are parsed
            let endOfFile = atEOF
            let parse: @Sendable (inout Piece<T>) -> Void = { piece in
                var tokenizer = Tokenizer(delimiter: options.delimiter, columnCount: names.count)
                var sink = Sink(names: names, types: types, missing: missing, capacity: estimate)
                var bad: [(Int, String)] = []
                let (stop, next, _) = tokenizer.run(
                    shared, from: piece.start, limit: piece.limit, atEndOfFile: endOfFile,
                    skipBadRows: options.skipBadRows,
                    sink: &sink, onBadRow: { bad.append(($0, $1)) })
                piece.stop = stop
                piece.next = next
                piece.bad = bad
                piece.rows = sink.rows
                piece.widened = sink.widened
                do {
                    piece.output = try finish(sink)
                } catch {
                    piece.failure = error
                }
            }
            if pieces.count > 1 {
                // Each worker writes only its own slot; concurrentPerform returns after all have finished.
                let slots = Slots(pieces)
                DispatchQueue.concurrentPerform(iterations: pieces.count) { index in
                    parse(&slots.buffer[index])
                }
                pieces = slots.take()
            } else {
                parse(&pieces[0])
            }

            // Keep pieces that started where the previous one ended; re-parse any that started inside a
            // quoted field the previous piece ran through.
            var expected = start
            var consumed = start
            var needMore = false
            var outputs: [T] = []
            for index in pieces.indices {
                var piece = pieces[index]
                if piece.start != expected {
                    guard expected < piece.limit else { continue }
                    piece.start = expected
                    parse(&piece)
                }
                for (offset, problem) in piece.bad {
                    state.badRowCount += 1
                    if state.badRowOffsets.count < options.badRowExamples {
                        state.badRowOffsets.append((file, windowOffset + Int64(offset), problem))
                    }
                }
                if case .error(let offset, let problem, let fix) = piece.stop { try error(at: offset, problem, fix) }
                if let failure = piece.failure { throw failure }
                if let output = piece.output { outputs.append(output) }
                state.rows += piece.rows
                for (index, widened) in piece.widened.enumerated() where widened { state.types![index] = .float }
                expected = piece.next
                consumed = piece.next
                if piece.stop == .needMoreData {
                    needMore = true
                    break
                }
            }
            state.bytesRead += Int64(consumed)
            for output in outputs {
                try body(output, CSVProgress(file: file, bytesRead: state.bytesRead, totalBytes: state.totalBytes))
            }
            if atEOF && !needMore { break }
            if consumed == 0 || (consumed == start && needMore) {
                // One row is larger than the window: make room and read on.
                guard grow(&buffer, &capacity, filled) else {
                    try error(
                        at: start, "a row is larger than 2 GiB", "check the quoting: a quote may never be closed.")
                }
                continue
            }
            // Move the unfinished tail to the front and read on.
            let tail = filled - consumed
            if tail > 0 { memmove(buffer.baseAddress!, buffer.baseAddress! + consumed, tail) }
            windowOffset += Int64(consumed)
            filled = tail
            start = 0
        }
    }

    /// Doubles the window, keeping its contents; `false` past 2 GiB.
    private func grow(_ buffer: inout UnsafeMutableRawBufferPointer, _ capacity: inout Int, _ filled: Int) -> Bool {
        guard capacity < 1 << 31 else { return false }
        let bigger = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity * 2, alignment: 64)
        bigger.baseAddress!.copyMemory(from: buffer.baseAddress!, byteCount: filled)
        buffer.deallocate()
        buffer = bigger
        capacity *= 2
        return true
    }

    /// The 1-based line and byte column of a file offset (counting physical lines).
    static func lineAndColumn(in file: URL, at offset: Int64) throws -> (Int, Int) {
        let fd = open(file.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return (0, 0) }
        defer { close(fd) }
        var line = 1
        var lineStart: Int64 = 0
        var position: Int64 = 0
        let block = 1 << 20
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: block, alignment: 16)
        defer { buffer.deallocate() }
        while position < offset {
            let count = pread(fd, buffer.baseAddress, min(block, Int(offset - position)), off_t(position))
            if count <= 0 { break }
            for k in 0..<count where buffer[k] == UInt8(ascii: "\n") {
                line += 1
                lineStart = position + Int64(k) + 1
            }
            position += Int64(count)
        }
        return (line, Int(offset - lineStart) + 1)
    }

    /// Files named by paths, folders and glob patterns, in a stable order.
    public static func expand(_ paths: [String]) throws -> [URL] {
        var files: [URL] = []
        for path in paths {
            if path.contains(where: { "*?[".contains($0) }) {
                let prefix = path.prefix { !"*?[".contains($0) }
                let root = prefix.contains("/") ? String(prefix[...prefix.lastIndex(of: "/")!]) : "."
                let matches = walk(root).filter {
                    fnmatch(path, $0.hasPrefix("./") && !path.hasPrefix("./") ? String($0.dropFirst(2)) : $0, 0) == 0
                }
                guard !matches.isEmpty else {
                    throw CSVError(
                        file: path, line: nil, column: nil, problem: "no file matches this pattern",
                        fix: "check the pattern; quote it so the shell does not expand it first.")
                }
                files += matches.sorted().map { URL(fileURLWithPath: $0) }
                continue
            }
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw CSVError(
                    file: path, line: nil, column: nil, problem: "no such file or folder", fix: "check the path.")
            }
            if isDirectory.boolValue {
                let found = walk(path).filter { $0.lowercased().hasSuffix(".csv") }.sorted()
                guard !found.isEmpty else {
                    throw CSVError(
                        file: path, line: nil, column: nil, problem: "this folder holds no .csv files",
                        fix: "point at the files, or at a folder that holds .csv files.")
                }
                files += found.map { URL(fileURLWithPath: $0) }
            } else {
                files.append(URL(fileURLWithPath: path))
            }
        }
        return files
    }

    private static func walk(_ root: String) -> [String] {
        guard let enumerator = FileManager.default.enumerator(atPath: root) else { return [] }
        var paths: [String] = []
        let base = root.hasSuffix("/") ? root : root + "/"
        while let relative = enumerator.nextObject() as? String {
            var isDirectory: ObjCBool = false
            let path = base + relative
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
                paths.append(path)
            }
        }
        return paths
    }
}

extension Table {
    /// Stacks tables with the same columns; integer columns become float where `types` says so, and string
    /// dictionaries are merged.
    public static func concatenating(_ tables: [Table], names: [String], types: [ColumnType]) -> Table {
        let columns = names.indices.map { index -> Column in
            let name = names[index]
            let parts = tables.map { $0.columns[index] }
            switch types[index] {
            case .float:
                var values: [Double] = []
                var valid: [Bool] = []
                for part in parts {
                    switch part.storage {
                    case .float(let v, let m):
                        values += v
                        valid += m
                    case .integer(let v, let m):
                        values += v.map(Double.init)
                        valid += m
                    default: break
                    }
                }
                return Column(name: name, storage: .float(values, valid: valid))
            case .integer, .timestamp:
                var values: [Int64] = []
                var valid: [Bool] = []
                for part in parts {
                    if case .integer(let v, let m) = part.storage {
                        values += v
                        valid += m
                    }
                    if case .timestamp(let v, let m) = part.storage {
                        values += v
                        valid += m
                    }
                }
                return Column(
                    name: name,
                    storage: types[index] == .integer
                        ? .integer(values, valid: valid) : .timestamp(values, valid: valid))
            case .boolean:
                var values: [Bool] = []
                var valid: [Bool] = []
                for part in parts {
                    if case .boolean(let v, let m) = part.storage {
                        values += v
                        valid += m
                    }
                }
                return Column(name: name, storage: .boolean(values, valid: valid))
            case .string:
                var dictionary: [String] = []
                var lookup: [String: Int32] = [:]
                var codes: [Int32] = []
                for part in parts {
                    guard case .string(let partCodes, let partDictionary) = part.storage else { continue }
                    let remap = partDictionary.map { value -> Int32 in
                        if let code = lookup[value] { return code }
                        let code = Int32(dictionary.count)
                        dictionary.append(value)
                        lookup[value] = code
                        return code
                    }
                    codes += partCodes.map { $0 < 0 ? -1 : remap[Int($0)] }
                }
                return Column(name: name, storage: .string(codes: codes, dictionary: dictionary))
            }
        }
        return Table(columns: columns)
    }
}
