import Foundation
import SluiceCore
import SluiceData
import SluiceErrors

/// A source read for a join or a check: its rows as Arrow table files (in source order), its content version and its
/// columns.
public struct ResolvedSource: Sendable {
    /// The source's name in the definitions.
    public var name: String
    /// The rows, in source order.
    public var tables: [TableFile]
    /// The content version: a dataset version of the files, or the content hash of a pipeline step's table.
    public var version: String
    /// What was read, for messages and lineage (`data/orders.csv`, `churn/score run-…`).
    public var origin: String
    /// Column types by name.
    public var columns: [String: ColumnType]

    /// Creates a resolved source.
    public init(name: String, tables: [TableFile], version: String, origin: String) {
        self.name = name
        self.tables = tables
        self.version = version
        self.origin = origin
        var columns: [String: ColumnType] = [:]
        for table in tables {
            for (name, type) in zip(table.columnNames, table.columnTypes) where columns[name] == nil {
                columns[name] = type
            }
        }
        self.columns = columns
    }

    /// Rows in every table.
    public var rowCount: Int { tables.reduce(0) { $0 + $1.rowCount } }
}

/// Finds and reads the sources of feature definitions: files relative to the project's directory (CSV read once per
/// content version into an Arrow table file kept under the cache folder), or a pipeline step's table output found by
/// the caller.
public struct FeatureSourceReader: Sendable {
    /// Where relative paths start.
    public var directory: URL
    /// Where CSV sources are kept as Arrow files, by content version.
    public var cache: URL
    /// Finds a pipeline step's table output: (pipeline, step, output, run or nil for the newest completed run) →
    /// the table file and its content hash.
    public var pipelineOutput:
        (
            @Sendable (_ pipeline: String, _ step: String, _ output: String, _ run: String?) async throws -> (
                URL, String
            )
        )?

    /// Creates a reader.
    public init(
        directory: URL, cache: URL,
        pipelineOutput: (
            @Sendable (_ pipeline: String, _ step: String, _ output: String, _ run: String?) async throws -> (
                URL, String
            )
        )? = nil
    ) {
        self.directory = directory
        self.cache = cache
        self.pipelineOutput = pipelineOutput
    }

    /// Reads the source `name`.
    /// - Throws: ``FeatureError`` when its files are missing or unreadable (naming the file, line and column of a
    ///   malformed CSV row), or a pipeline output cannot be found.
    public func read(_ name: String, _ source: FeatureSource) async throws -> ResolvedSource {
        switch source.origin {
        case .files(let patterns):
            let absolute = patterns.map { $0.hasPrefix("/") ? $0 : directory.appending(path: $0).path }
            let files: [URL]
            do {
                files = try CSVReader.expand(absolute)
            } catch {
                throw FeatureError(
                    problem: "\(place(source))source '\(name)': \(error)",
                    fix: "check `path:` (relative to \(directory.path)); globs like data/*.csv are allowed.")
            }
            guard !files.isEmpty else {
                throw FeatureError(
                    problem: "\(place(source))source '\(name)': no file matches \(patterns.joined(separator: ", ")).",
                    fix: "check `path:` (relative to \(directory.path)).")
            }
            let version = try DatasetVersion.compute(
                files, cache: FileHashCache(url: cache.appending(path: "file-hashes.json")))
            let arrow = files.allSatisfy { ["arrow", "feather"].contains($0.pathExtension.lowercased()) }
            let tables: [TableFile]
            if arrow {
                tables = try files.map { try TableFile(contentsOf: $0) }
            } else {
                tables = [try csvTable(files, version: version.id, source: name)]
            }
            let shown = patterns.joined(separator: ", ")
            return ResolvedSource(name: name, tables: tables, version: version.id, origin: shown)
        case .pipeline(let pipeline, let step, let output, let run):
            guard let pipelineOutput else {
                throw FeatureError(
                    problem: "\(place(source))source '\(name)' reads pipeline '\(pipeline)', but no metadata store is "
                        + "open here.",
                    fix: "run this in the Sluice project whose runs hold that pipeline.")
            }
            let (url, hash) = try await pipelineOutput(pipeline, step, output, run)
            return ResolvedSource(
                name: name, tables: [try TableFile(contentsOf: url)], version: hash,
                origin: "\(pipeline)/\(step).\(output) (\(run ?? "latest run"))")
        }
    }

    /// The CSV files as one Arrow table file, converted once per content version.
    private func csvTable(_ files: [URL], version: String, source: String) throws -> TableFile {
        let url = cache.appending(path: "sources/\(version.replacingOccurrences(of: ":", with: "-")).arrow")
        if let table = try? TableFile(contentsOf: url) { return table }
        try FileManager.default.createDirectory(
            at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let writer = try TableFileWriter(url: url)
        let summary: CSVSummary
        do {
            summary = try CSVReader(files: files).forEachChunk { try writer.append($0.table) }
        } catch {
            throw FeatureError(
                problem: "source '\(source)': \(error)", fix: "correct the file, then run the command again.")
        }
        return try writer.finish(columnNames: summary.columnNames, columnTypes: summary.columnTypes)
    }

    private func place(_ source: FeatureSource) -> String { source.location.map { "\($0): " } ?? "" }
}

/// A feature definition, source or join that cannot be used, with what to do.
public struct FeatureError: SluiceError, Sendable, Equatable {
    /// What is wrong.
    public var problem: String
    /// What to do next.
    public var fix: String

    /// Creates an error.
    public init(problem: String, fix: String) {
        self.problem = problem
        self.fix = fix
    }

    public var exitStatus: ExitStatus { .unusableInput }
}
