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
final class Slots<T>: @unchecked Sendable {
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
