import Foundation
import SluiceCore
import SluiceData

/// What an ingest read: the dataset's content version, its files and how many rows were good and bad.
public struct DatasetInfo: Codable, Sendable, Equatable {
    /// The content version (a hash of the files' contents).
    public var version: String
    /// The files read.
    public var files: [String]
    /// Rows read.
    public var rows: Int
    /// Rows skipped as malformed (only with `skip_bad_rows`).
    public var badRows: Int
    /// The first skipped rows, with file, line and reason.
    public var badRowExamples: [String]
}

/// A table and what was read to make it.
public struct IngestedData: MultipleOutputs {
    /// The rows, as an Arrow file of record batches carrying their statistics.
    public var table: TableFile
    /// The dataset version and file list.
    public var info: DatasetInfo
    public static let outputs: [NamedOutput<IngestedData>] = [.init("table", \.table), .init("info", \.info)]
}

/// Reads CSV files (paths, folders or globs) into a table file and records the dataset's content version. The version
/// joins the cache key, so changed files re-run the pipeline from here and unchanged ones never do.
///
/// Streaming: parsed rows go to disk batch by batch (memory stays bounded by the reader's window however large the
/// files are), and the rows' statistics are computed in the same pass and stored in the file, where the statistics
/// step finds them.
public struct IngestCSV: ExternalInputStep {
    /// What to read and how.
    public struct Parameters: Codable, Sendable, Equatable {
        /// Files, folders or glob patterns, relative to the working directory.
        public var paths: [String] = []
        /// Skip malformed rows (counted, with the first examples recorded) instead of failing.
        public var skipBadRows = false
        /// The field delimiter.
        public var delimiter = ","
        /// Creates parameters.
        public init(paths: [String] = []) { self.paths = paths }
    }
    public static let name = "ingest"
    public static let version = 1
    /// Draws nothing from the run seed: a new seed reuses its cached output.
    public static let usesRunSeed = false
    public var parameters: Parameters

    /// Creates the step.
    public init(paths: [String] = []) { parameters = Parameters(paths: paths) }

    func reader() throws -> CSVReader {
        guard !parameters.paths.isEmpty else {
            throw ComponentError(
                problem: "the ingest step has no paths", fix: "set steps.ingest.parameters.paths to CSV files or globs."
            )
        }
        return try CSVReader(
            paths: parameters.paths,
            options: csvOptions(delimiter: parameters.delimiter, skipBadRows: parameters.skipBadRows))
    }

    /// The dataset's content version (unchanged files are not re-hashed).
    public func externalFingerprint() throws -> String {
        try DatasetVersion.compute(try reader().files, cache: FileHashCache(url: Self.hashCache)).id
    }

    /// The content version of `paths` (a ``DatasetVersion`` ID; unchanged files are not re-hashed).
    static func contentVersion(of paths: [String]) throws -> String {
        try DatasetVersion.compute(paths.map { URL(fileURLWithPath: $0) }, cache: FileHashCache(url: hashCache)).id
    }

    static var hashCache: URL {
        FileManager.default.homeDirectoryForCurrentUser.appending(path: ".cache/sluice/file-hashes.json")
    }

    public func run(_ input: Void, context: StepContext) async throws -> IngestedData {
        let reader = try reader()
        let version = try DatasetVersion.compute(reader.files, cache: FileHashCache(url: Self.hashCache))
        let writer = try TableFileWriter(
            url: context.scratchDirectory.appending(path: "table.arrow"), computeStatistics: true)
        let summary = try reader.forEachChunk { chunk in
            try writer.append(chunk.table)
            context.reportProgress(completed: Int(chunk.bytesRead), total: Int(chunk.totalBytes), unit: "bytes")
        }
        let table = try writer.finish(columnNames: summary.columnNames, columnTypes: summary.columnTypes)
        let info = DatasetInfo(
            version: version.id, files: reader.files.map(\.path), rows: table.rowCount, badRows: summary.badRowCount,
            badRowExamples: summary.badRows.map { "\($0.place): \($0.problem)" })
        context.setProperty("dataset_version", .string(version.id), forOutput: "table")
        context.setProperty("files", .int(reader.files.count), forOutput: "table")
        context.setProperty("bad_rows", .int(summary.badRowCount), forOutput: "table")
        context.log(metric: "rows", Double(table.rowCount))
        context.log(metric: "bad_rows", Double(summary.badRowCount))
        return IngestedData(table: table, info: info)
    }
}

/// A component cannot run as configured, with what to do about it.
public struct ComponentError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What is wrong.
    public var problem: String
    /// What to do.
    public var fix: String

    /// Creates an error.
    public init(problem: String, fix: String) {
        self.problem = problem
        self.fix = fix
    }
}

/// CSV reading options of the components that read CSV files: the delimiter (one byte) and bad-row handling.
func csvOptions(delimiter: String, skipBadRows: Bool) throws -> CSVOptions {
    guard delimiter.utf8.count == 1 else {
        throw ComponentError(problem: "the delimiter '\(delimiter)' is not one byte", fix: "use a single character.")
    }
    var options = CSVOptions()
    options.skipBadRows = skipBadRows
    options.delimiter = delimiter.utf8.first!
    return options
}

/// Writes an HTML page into the step's scratch directory as a file artifact.
func htmlArtifact(_ html: String, named name: String, context: StepContext) throws -> FileArtifact {
    let url = context.scratchDirectory.appending(path: name)
    try Data(html.utf8).write(to: url)
    return FileArtifact(url: url)
}

/// What one shard of a sharded CSV step gave: its rows (a table file in the step's shard folder) and its bad rows.
public struct ShardRows: Codable, Sendable {
    /// The table file's name in ``SluiceCore/StepContext/shardDirectory``.
    public var name: String
    /// Rows written.
    public var rows: Int
    /// Rows skipped as malformed.
    public var badRows: Int
    /// The first skipped rows, with file, line and reason.
    public var badRowExamples: [String]

    init(name: String, rows: Int, summary: CSVSummary) {
        self.name = name
        self.rows = rows
        badRows = summary.badRowCount
        badRowExamples = summary.badRows.map { "\($0.place): \($0.problem)" }
    }

    /// The shard folder's file name for the rows of `file` (unique per input file, so shards computed at once in
    /// one folder never collide).
    static func fileName(for file: String) -> String {
        String(ContentHasher.hash(Data(file.utf8)).dropFirst("sha256:".count).prefix(16)) + ".arrow"
    }

    /// The shards' table files in `folder`, in order.
    static func tables(_ partials: [ShardRows], in folder: URL) throws -> [TableFile] {
        try partials.map { try TableFile(contentsOf: folder.appending(path: $0.name)) }
    }

    /// Appends the tables' rows, in order, to `writer`.
    static func join(_ tables: [TableFile], into writer: TableFileWriter) throws {
        for table in tables { try table.forEachBatch { batch, _ in try writer.append(batch) } }
    }
}

/// Reads CSV files into a table file one shard per file, then joins the shards' tables: a ``ShardedStep``. Locally
/// the files are parsed in parallel; on Slurm each is a job of an array (its table written beside the artifact
/// store) and one job joins them. The result is the same bytes as ``IngestCSV`` over the same files: every shard
/// types its columns as the first file's rows do, integers widened to floats where any file needs it, and the
/// join cuts the rows into the same batches and computes the same statistics. The join reads and writes the data
/// once more, so on one machine ``IngestCSV`` is faster: use this where the shards run on many nodes.
public struct ShardedIngestCSV: ShardedStep, ExternalInputStep {
    public typealias Input = Void
    public typealias Output = IngestedData
    public typealias Partial = ShardRows
    public static let name = "ingest_sharded"
    public static let version = 1
    /// Draws nothing from the run seed: a new seed reuses its cached output.
    public static let usesRunSeed = false
    /// The same parameters as ``IngestCSV``.
    public var parameters = IngestCSV.Parameters()
    /// Creates the step.
    public init(paths: [String] = []) { parameters = IngestCSV.Parameters(paths: paths) }

    private var ingest: IngestCSV {
        var ingest = IngestCSV()
        ingest.parameters = parameters
        return ingest
    }

    public func shardFiles(of _: Void) throws -> [String] { try ingest.reader().files.map(\.path) }

    /// The dataset's content version, as ``IngestCSV`` computes it.
    public func externalFingerprint() throws -> String { try ingest.externalFingerprint() }

    /// The content version of the shards' files, as ``IngestCSV`` computes it over the same files.
    public func externalFingerprint(of files: [String]) throws -> String? { try IngestCSV.contentVersion(of: files) }

    public func runShard(_ file: String, of files: [String], context: StepContext) async throws -> ShardRows {
        // Typed as the first file's rows type the columns, so every shard reads values as one reader would (the
        // files as the run listed them: not listed again here).
        let base = try csvOptions(delimiter: parameters.delimiter, skipBadRows: parameters.skipBadRows)
        var options = base
        if let first = files.first.map({ URL(fileURLWithPath: $0) }), first.path != file {
            struct Enough: Error {}
            var types: [String: ColumnType] = [:]
            do {
                try CSVReader(files: [first], options: base).forEachChunk { chunk in
                    for column in chunk.table.columns { types[column.name] = column.type }
                    throw Enough()
                }
            } catch is Enough {}
            options.schema.merge(types) { explicit, _ in explicit }
        }
        let reader = CSVReader(files: [URL(fileURLWithPath: file)], options: options)
        let name = ShardRows.fileName(for: file)
        let writer = try TableFileWriter(url: context.shardDirectory.appending(path: name))
        let summary = try reader.forEachChunk { chunk in try writer.append(chunk.table) }
        let table = try writer.finish(columnNames: summary.columnNames, columnTypes: summary.columnTypes)
        return ShardRows(name: name, rows: table.rowCount, summary: summary)
    }

    public func merge(_ partials: [ShardRows], files: [String], context: StepContext) async throws -> IngestedData {
        let tables = try ShardRows.tables(partials, in: context.shardDirectory)
        guard let first = tables.first else {
            throw ComponentError(
                problem: "the ingest step has no files to read", fix: "set steps.STEP.parameters.paths.")
        }
        var types = first.columnTypes
        for (table, file) in zip(tables, files) {
            guard table.columnNames == first.columnNames else {
                throw ComponentError(
                    problem: "\(file) has the columns \(table.columnNames.joined(separator: ", ")), but \(files[0]) "
                        + "has \(first.columnNames.joined(separator: ", "))",
                    fix: "give the step files of one dataset (the same header).")
            }
            for index in types.indices where types[index] != table.columnTypes[index] {
                guard Set([types[index], table.columnTypes[index]]) == [.integer, .float] else {
                    throw ComponentError(
                        problem: "column '\(first.columnNames[index])' holds \(table.columnTypes[index]) values in "
                            + "\(file) but \(types[index]) values in \(files[0])",
                        fix: "fix the file, or give the column's type in a schema.")
                }
                types[index] = .float
            }
        }
        let writer = try TableFileWriter(
            url: context.scratchDirectory.appending(path: "table.arrow"), computeStatistics: true)
        try ShardRows.join(tables, into: writer)
        let table = try writer.finish(columnNames: first.columnNames, columnTypes: types)
        let version = try DatasetVersion.compute(
            files.map { URL(fileURLWithPath: $0) }, cache: FileHashCache(url: IngestCSV.hashCache))
        let badRows = partials.reduce(0) { $0 + $1.badRows }
        let examples = Array(partials.flatMap(\.badRowExamples).prefix(CSVOptions().badRowExamples))
        let info = DatasetInfo(
            version: version.id, files: files, rows: table.rowCount, badRows: badRows, badRowExamples: examples)
        context.setProperty("dataset_version", .string(version.id), forOutput: "table")
        context.setProperty("files", .int(files.count), forOutput: "table")
        context.setProperty("bad_rows", .int(badRows), forOutput: "table")
        context.log(metric: "rows", Double(table.rowCount))
        context.log(metric: "bad_rows", Double(badRows))
        return IngestedData(table: table, info: info)
    }
}
