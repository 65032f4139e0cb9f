import Foundation
import SluiceCore
import SluiceData

/// Per-column statistics of CSV files, computed file by file and merged: a ``ShardedStep`` with one shard per
/// file. Locally the files are read in parallel; on Slurm each is a job of an array and one job merges. The merge
/// goes in file order, so the statistics are the same bytes however the shards ran.
public struct FileStatistics: ShardedStep, ExternalInputStep {
    /// What to read.
    public struct Parameters: Codable, Sendable, Equatable {
        /// Files, folders (every `.csv` in them) or globs (`data/*.csv`, `data/**/*.csv`).
        public var paths: [String] = []
        /// The field delimiter: one byte.
        public var delimiter = ","
        /// Skip rows that do not parse (counted) instead of stopping.
        public var skipBadRows = false
        /// Creates parameters.
        public init() {}
    }
    public typealias Input = Void
    public typealias Output = DatasetStatistics
    public typealias Partial = DatasetStatistics
    public static let name = "file_statistics"
    public static let version = 1
    /// Draws nothing from the run seed: a new seed reuses its cached output.
    public static let usesRunSeed = false
    public var parameters = Parameters()
    /// Creates the step.
    public init() {}

    func reader(_ files: [URL]? = nil) throws -> CSVReader {
        let options = try csvOptions(delimiter: parameters.delimiter, skipBadRows: parameters.skipBadRows)
        if let files { return CSVReader(files: files, options: options) }
        guard !parameters.paths.isEmpty else {
            throw ComponentError(
                problem: "file_statistics has no files to read", fix: "set steps.STEP.parameters.paths.")
        }
        return try CSVReader(paths: parameters.paths, options: options)
    }

    public func shardFiles(of _: Void) throws -> [String] { try reader().files.map(\.path) }

    /// The files' content version (unchanged files are not re-hashed).
    public func externalFingerprint() throws -> String { try IngestCSV.contentVersion(of: shardFiles(of: ())) }

    /// The content version of the shards' files.
    public func externalFingerprint(of files: [String]) throws -> String? { try IngestCSV.contentVersion(of: files) }

    public func runShard(_ file: String, of files: [String], context: StepContext) async throws
        -> DatasetStatistics
    {
        // No per-shard metrics: a shard job on Slurm has no step run to record them on, and the records must read
        // the same whichever orchestrator ran the shards.
        try DatasetStatistics.compute(try reader([URL(fileURLWithPath: file)])).statistics
    }

    public func merge(_ partials: [DatasetStatistics], files: [String], context: StepContext) async throws
        -> DatasetStatistics
    {
        var merged = DatasetStatistics()
        for (partial, file) in zip(partials, files) {
            if let first = files.first, !merged.columns.isEmpty {
                guard merged.columns.map(\.name) == partial.columns.map(\.name) else {
                    throw ComponentError(
                        problem: "\(file) has the columns \(partial.columns.map(\.name).joined(separator: ", ")), "
                            + "but \(first) has \(merged.columns.map(\.name).joined(separator: ", "))",
                        fix: "give file_statistics files of one dataset (the same header).")
                }
                for (ours, theirs) in zip(merged.columns, partial.columns) where ours.type != theirs.type {
                    let widens = Set([ours.type, theirs.type]) == [.integer, .float]
                    guard widens else {
                        throw ComponentError(
                            problem: "column '\(ours.name)' holds \(theirs.type) values in \(file) but \(ours.type) "
                                + "values in the files before it",
                            fix: "fix the file, or read the files with ingest_csv, which types columns over all files.")
                    }
                }
            }
            merged.merge(partial)
        }
        context.setProperty("rows", .int(merged.rows))
        context.setProperty("columns", .int(merged.columns.count))
        context.setProperty("files", .int(files.count))
        return merged
    }
}
