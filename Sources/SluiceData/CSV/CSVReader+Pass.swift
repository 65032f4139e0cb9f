import Dispatch
import Foundation

/// One file's streaming pass, in named phases: fill a window of the file, read the header (once per file) and infer
/// the column types (once per dataset), split the window into pieces at line ends and parse them on every core,
/// stitch the pieces back in file order (re-parsing one that started inside a quoted field), then slide the window
/// on. Errors name the file, line and column.
extension CSVReader {
    /// What a pass has learned so far, across files.
    struct PassState {
        var totalBytes: Int64
        var names: [String]?
        var types: [ColumnType]?
        var rows = 0
        var bytesRead: Int64 = 0
        var badRowCount = 0
        var badRowOffsets: [(URL, Int64, String)] = []
    }

    /// A piece of a window, parsed on a thread of its own.
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

    /// The part of a file in memory: `bytes[0..<filled]` are the file's bytes from `offset` on.
    struct Window: ~Copyable {
        let file: URL
        let fd: Int32
        var buffer: UnsafeMutableRawBufferPointer
        var capacity: Int
        var filled = 0
        /// The file offset of `buffer[0]`.
        var offset: Int64 = 0
        var atEndOfFile = false

        /// Opens `file` with a window of `capacity` bytes.
        init(_ file: URL, capacity: Int) throws {
            let fd = open(file.path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                throw CSVError(
                    file: file.path, line: nil, column: nil,
                    problem: "cannot open the file (\(String(cString: strerror(errno))))",
                    fix: "check the path and its permissions.")
            }
            self.file = file
            self.fd = fd
            self.capacity = capacity
            buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 64)
        }

        deinit {
            buffer.deallocate()
            close(fd)
        }

        /// The bytes in memory.
        var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: buffer.baseAddress, count: filled) }

        /// Reads until the window is full or the file ends.
        mutating func fill() throws {
            while !atEndOfFile && filled < capacity {
                let count = Foundation.read(fd, buffer.baseAddress! + filled, capacity - filled)
                if count < 0 {
                    if errno == EINTR { continue }
                    throw CSVError(
                        file: file.path, line: nil, column: nil,
                        problem: "reading failed (\(String(cString: strerror(errno))))",
                        fix: "check the disk and the file.")
                }
                if count == 0 { atEndOfFile = true }
                filled += count
            }
        }

        /// Doubles the window, keeping its contents; `false` past 2 GiB.
        mutating func grow() -> Bool {
            guard capacity < 1 << 31 else { return false }
            let bigger = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity * 2, alignment: 64)
            bigger.baseAddress!.copyMemory(from: buffer.baseAddress!, byteCount: filled)
            buffer.deallocate()
            buffer = bigger
            capacity *= 2
            return true
        }

        /// Moves the unfinished tail after `consumed` to the front, to read on after it.
        mutating func slide(past consumed: Int) {
            let tail = filled - consumed
            if tail > 0 { memmove(buffer.baseAddress!, buffer.baseAddress! + consumed, tail) }
            offset += Int64(consumed)
            filled = tail
        }

        /// Throws a ``CSVError`` at `position` of the window, with its line and column in the file.
        func error(at position: Int, _ problem: String, _ fix: String) throws -> Never {
            let (line, column) = try CSVReader.lineAndColumn(in: file, at: offset + Int64(position))
            throw CSVError(file: file.path, line: line, column: column, problem: problem, fix: fix)
        }
    }

    /// Streams one file of the pass: each window's pieces go through `finish` on the parsing threads and then, in
    /// file order, to `body`.
    func read<Sink: ChunkSink, T>(
        _ file: URL, state: inout PassState, sink: Sink.Type, finish: @escaping @Sendable (Sink) throws -> T?,
        body: (T, CSVProgress) throws -> Void
    ) throws {
        var window = try Window(file, capacity: max(options.windowSize, 1 << 16))
        var headerDone = false
        var start = 0
        let missing = MissingTokens(options.missingValues)
        while true {
            // Ctrl-C (the task cancelled) stops the read between windows: within a window's parse of it.
            if Task.isCancelled { throw CancellationError() }
            try window.fill()
            if !headerDone {
                guard let next = try readHeader(&window, from: start, state: &state) else {
                    guard window.grow() else {
                        try window.error(at: start, "the header row is too long", "check the delimiter.")
                    }
                    continue
                }
                start = next
                if state.types == nil {
                    state.types = inferTypes(
                        window.bytes, from: start, atEndOfFile: window.atEndOfFile, state: state, missing)
                }
                headerDone = true
            }
            let pieces = parse(
                window.bytes, from: start, atEndOfFile: window.atEndOfFile, names: state.names!, types: state.types!,
                missing: missing, sink: sink, finish: finish)
            let (consumed, needMore, outputs) = try stitch(
                pieces, from: start, in: window, state: &state, names: state.names!, types: state.types!,
                missing: missing, sink: sink, finish: finish)
            state.bytesRead += Int64(consumed)
            for output in outputs {
                try body(output, CSVProgress(file: file, bytesRead: state.bytesRead, totalBytes: state.totalBytes))
            }
            if window.atEndOfFile && !needMore { break }
            if consumed == 0 || (consumed == start && needMore) {
                // One row is larger than the window: make room and read on.
                guard window.grow() else {
                    try window.error(
                        at: start, "a row is larger than 2 GiB", "check the quoting: a quote may never be closed.")
                }
                continue
            }
            window.slide(past: consumed)
            start = 0
        }
    }

    /// Reads the file's header (after a UTF-8 byte order mark) into `state.names`, checking it against the first
    /// file's; names the columns `column_N` when the files have no header. Returns where the rows start, or `nil`
    /// when the header does not fit in the window yet.
    private func readHeader(_ window: inout Window, from start: Int, state: inout PassState) throws -> Int? {
        let bytes = window.bytes
        var start = start
        if window.filled >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF { start = 3 }
        if start >= window.filled && window.atEndOfFile {
            throw CSVError(
                file: window.file.path, line: 1, column: 1, problem: "the file is empty: there is no header row",
                fix: "check that the file was written completely, or remove it from the inputs.")
        }
        var tokenizer = Tokenizer(delimiter: options.delimiter, columnCount: -1)
        var header = HeaderSink()
        guard options.hasHeader else {
            if state.names == nil {
                _ = tokenizer.run(
                    bytes, from: start, limit: start + 1, atEndOfFile: window.atEndOfFile, skipBadRows: false,
                    sink: &header, onBadRow: { _, _ in })
                state.names = (1...max(1, header.names.count)).map { "column_\($0)" }
            }
            return start
        }
        let (stop, next, _) = tokenizer.run(
            bytes, from: start, limit: start + 1, atEndOfFile: window.atEndOfFile, skipBadRows: false, sink: &header,
            onBadRow: { _, _ in })
        if stop == .needMoreData { return nil }
        if case .error(let offset, let problem, let fix) = stop { try window.error(at: offset, problem, fix) }
        if header.invalid {
            try window.error(at: start, "the header is not valid UTF-8", "re-encode the file as UTF-8.")
        }
        let names = header.names.enumerated().map { $1.isEmpty ? "column_\($0 + 1)" : $1 }
        if let duplicate = Dictionary(grouping: names, by: { $0 }).first(where: { $1.count > 1 })?.key {
            try window.error(
                at: start, "the column name '\(duplicate)' appears twice in the header",
                "give every column its own name.")
        }
        if let expected = state.names, expected != names {
            try window.error(
                at: start,
                "this file's columns (\(names.joined(separator: ", "))) differ from the first file's (\(expected.joined(separator: ", ")))",
                "read files with the same columns together, or select the files with a narrower pattern.")
        }
        state.names = names
        return next
    }

    /// The column types from a sample of rows at the start of the window (malformed rows are reported by the real
    /// pass), with the schema's types where it names a column.
    private func inferTypes(
        _ bytes: UnsafeRawBufferPointer, from start: Int, atEndOfFile: Bool, state: PassState,
        _ missing: MissingTokens
    ) -> [ColumnType] {
        let names = state.names!
        var inference = InferenceSink(columnCount: names.count, missing: missing)
        var tokenizer = Tokenizer(delimiter: options.delimiter, columnCount: names.count)
        var position = start
        var sampled = 0
        while sampled < options.inferenceRows && position < bytes.count {
            let (_, next, rows) = tokenizer.run(
                bytes, from: position, limit: position + 1, atEndOfFile: atEndOfFile, skipBadRows: true,
                sink: &inference, onBadRow: { _, _ in })
            if next <= position { break }
            position = next
            sampled += max(rows, 1)
        }
        return zip(names, inference.types).map { options.schema[$0] ?? $1 }
    }

    /// Parses the window after `start` on every core: cut into pieces at line ends (one piece below 1 MiB), each
    /// tokenized into its own sink and finished on its thread.
    private func parse<Sink: ChunkSink, T>(
        _ bytes: UnsafeRawBufferPointer, from start: Int, atEndOfFile: Bool, names: [String], types: [ColumnType],
        missing: MissingTokens, sink: Sink.Type, finish: @escaping @Sendable (Sink) throws -> T?
    ) -> [Piece<T>] {
        let threads = max(1, options.threads ?? ProcessInfo.processInfo.activeProcessorCount)
        let filled = bytes.count
        let pieceCount = filled - start > 1 << 20 ? threads * 4 : 1
        var bounds = [start]
        for index in 1..<max(pieceCount, 1) {
            var cut = start + (filled - start) * index / pieceCount
            while cut < filled && bytes[cut] != UInt8(ascii: "\n") { cut += 1 }
            cut = min(cut + 1, filled)
            if cut > bounds.last! && cut < filled { bounds.append(cut) }
        }
        bounds.append(filled)
        var pieces = (0..<(bounds.count - 1)).map { Piece<T>(start: bounds[$0], limit: bounds[$0 + 1]) }
        let estimate = max(16, (filled - start) / max(1, names.count * 8) / pieces.count)
        let parse = pieceParser(
            bytes, atEndOfFile: atEndOfFile, names: names, types: types, missing: missing, estimate: estimate,
            sink: sink, finish: finish)
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
        return pieces
    }

    /// What parses one piece of the window into a sink and finishes it.
    private func pieceParser<Sink: ChunkSink, T>(
        _ bytes: UnsafeRawBufferPointer, atEndOfFile: Bool, names: [String], types: [ColumnType],
        missing: MissingTokens, estimate: Int, sink: Sink.Type, finish: @escaping @Sendable (Sink) throws -> T?
    ) -> @Sendable (inout Piece<T>) -> Void {
        nonisolated(unsafe) let shared = bytes  // read-only while pieces are parsed
        let options = options
        return { piece in
            var tokenizer = Tokenizer(delimiter: options.delimiter, columnCount: names.count)
            var sink = Sink(names: names, types: types, missing: missing, capacity: estimate)
            var bad: [(Int, String)] = []
            let (stop, next, _) = tokenizer.run(
                shared, from: piece.start, limit: piece.limit, atEndOfFile: atEndOfFile,
                skipBadRows: options.skipBadRows, sink: &sink, onBadRow: { bad.append(($0, $1)) })
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
    }

    /// Takes the parsed pieces in file order: keeps those that started where the previous one ended and re-parses
    /// any that started inside a quoted field the previous piece ran through; records bad rows, row counts and
    /// widened columns. Returns how far the window was consumed, whether a row runs past it, and the outputs.
    private func stitch<Sink: ChunkSink, T>(
        _ pieces: [Piece<T>], from start: Int, in window: borrowing Window, state: inout PassState, names: [String],
        types: [ColumnType], missing: MissingTokens, sink: Sink.Type, finish: @escaping @Sendable (Sink) throws -> T?
    ) throws -> (consumed: Int, needMore: Bool, outputs: [T]) {
        let bytes = window.bytes
        var expected = start
        var consumed = start
        var outputs: [T] = []
        for index in pieces.indices {
            var piece = pieces[index]
            if piece.start != expected {
                guard expected < piece.limit else { continue }
                piece.start = expected
                let estimate = max(16, (piece.limit - piece.start) / max(1, names.count * 8))
                pieceParser(
                    bytes, atEndOfFile: window.atEndOfFile, names: names, types: types, missing: missing,
                    estimate: estimate, sink: sink, finish: finish)(&piece)
            }
            for (offset, problem) in piece.bad {
                state.badRowCount += 1
                if state.badRowOffsets.count < options.badRowExamples {
                    state.badRowOffsets.append((window.file, window.offset + Int64(offset), problem))
                }
            }
            if case .error(let offset, let problem, let fix) = piece.stop { try window.error(at: offset, problem, fix) }
            if let failure = piece.failure { throw failure }
            if let output = piece.output { outputs.append(output) }
            state.rows += piece.rows
            for (column, widened) in piece.widened.enumerated() where widened { state.types![column] = .float }
            expected = piece.next
            consumed = piece.next
            if piece.stop == .needMoreData { return (consumed, true, outputs) }
        }
        return (consumed, false, outputs)
    }
}
