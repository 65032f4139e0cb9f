import Foundation
import SluiceCore
import SluiceData
import SluiceML

/// A registered version's bundle with its label (`churn@3`), as the `model` step hands it to `score`.
public struct ScoringModel: Codable, Sendable, Equatable {
    /// The version label written into every scored row.
    public var version: String
    /// The bundle.
    public var bundle: ModelBundle

    /// Creates a scoring model.
    public init(version: String, bundle: ModelBundle) {
        self.version = version
        self.bundle = bundle
    }
}

/// Reads a registered model version (`NAME@STAGE` or `NAME@VERSION`) for scoring. The runner resolves the
/// reference before the run; the resolved version and its bundle's content hash are the step's external
/// fingerprint, so a promotion makes it (and the scoring after it) run again, and an unchanged stage reuses the
/// cache.
public struct LoadModel: ExternalInputStep {
    /// Which version.
    public struct Parameters: Codable, Sendable, Equatable {
        /// `NAME@STAGE` or `NAME@VERSION`.
        public var model = "model@production"
        /// Creates parameters.
        public init() {}
    }
    public static let name = "model"
    public static let version = 1
    /// Draws nothing from the run seed.
    public static let usesRunSeed = false
    public var parameters = Parameters()
    let resolved: Result<(ScoringModel, String), ComponentError>

    /// Creates the step over what the runner resolved: the model and its bundle's content hash, or why it could not.
    public init(resolved: Result<(ScoringModel, String), ComponentError>) { self.resolved = resolved }

    public func externalFingerprint() throws -> String {
        let (model, hash) = try resolved.get()
        return "\(model.version) \(hash)"
    }

    public func run(_ input: Void, context: StepContext) async throws -> ScoringModel {
        let (model, _) = try resolved.get()
        context.setProperty("version", .string(model.version))
        return model
    }
}

/// Scores a table with a registered model through the bundle's own transforms: the kept columns, `prediction`,
/// `probability_CLASS` per class and `model_version` (as `sluice score` writes them).
public struct ScoreTable: Step {
    /// What to keep beside the predictions.
    public struct Parameters: Codable, Sendable, Equatable {
        /// Input columns copied to the output.
        public var keep: [String] = []
        /// Creates parameters.
        public init() {}
    }
    public static let name = "score"
    public static let version = 1
    /// Draws nothing from the run seed.
    public static let usesRunSeed = false
    public var parameters = Parameters()

    /// Creates the step.
    public init() {}

    public func run(_ input: (TableFile, ScoringModel), context: StepContext) async throws -> TableFile {
        let (table, model) = input
        let scorer = try BatchScorer(bundle: model.bundle, version: model.version, keep: parameters.keep)
        try scorer.check(columns: table.columnNames, source: "the input table of step '\(context.stepName)'")
        // Batch by batch: the scored rows go to disk as they are made.
        let writer = try TableFileWriter(url: context.scratchDirectory.appending(path: "scored.arrow"))
        var names: [String] = []
        var types: [ColumnType] = []
        try table.forEachBatch { batch, _ in
            let scored = try scorer.score(batch)
            names = scored.columnNames
            types = scored.columns.map(\.type)
            try writer.append(scored)
        }
        if table.rowCount == 0 {
            let empty = try scorer.score(
                Table.concatenating([], names: table.columnNames, types: table.columnTypes))
            names = empty.columnNames
            types = empty.columns.map(\.type)
        }
        let scored = try writer.finish(columnNames: names, columnTypes: types)
        context.setProperty("rows", .int(scored.rowCount))
        context.setProperty("model_version", .string(model.version))
        return scored
    }
}

extension LoadModel {
    /// Resolves `reference` in `registry` for a `model` step.
    public static func resolve(
        _ reference: String, registry: any MetadataStore & ModelRegistry, artifacts: any ArtifactStore
    ) async -> Result<(ScoringModel, String), ComponentError> {
        do {
            let version = try await registry.resolve(reference)
            guard let record = try await registry.artifact(version.artifactID) else {
                throw ComponentError(
                    problem: "the bundle of \(version.model)@\(version.version) is not recorded",
                    fix: "check the project's metadata store.")
            }
            let bundle = try ModelBundle.load(try artifacts.data(for: record.uri))
            return .success(
                (ScoringModel(version: "\(version.model)@\(version.version)", bundle: bundle), record.contentHash))
        } catch let error as ComponentError {
            return .failure(error)
        } catch {
            return .failure(
                ComponentError(
                    problem: "model step: cannot read '\(reference)' from the registry: \(error)",
                    fix: "name a registered model and a stage it has (`sluice models list`), or a version."))
        }
    }
}

/// Scores CSV files with a registered model version, one shard per file: a ``ShardedStep`` (a Slurm job array, or
/// the files in parallel locally). Each shard reads its file as `sluice score` does (the model's input columns as
/// its signature types them, every core, bad rows stopping the step with file, line and column or skipped and
/// counted) and writes its scored rows beside the artifact store; the merge joins them in file order into one table
/// file: the kept columns, `prediction`, `probability_CLASS` per class and `model_version`. The model reference is
/// resolved by the runner before the run, as the `model` step's is: the version and its bundle's content hash join
/// the cache key with the files' content version.
public struct ShardedScoreCSV: ShardedStep, ExternalInputStep {
    /// What to score, with which model, and what to keep.
    public struct Parameters: Codable, Sendable, Equatable {
        /// Files, folders or globs.
        public var paths: [String] = []
        /// `NAME@STAGE` or `NAME@VERSION`.
        public var model = "model@production"
        /// Input columns copied to the output.
        public var keep: [String] = []
        /// Skip rows that cannot be scored (counted, the first examples recorded) instead of stopping.
        public var skipBadRows = false
        /// The field delimiter: one byte.
        public var delimiter = ","
        /// Creates parameters.
        public init() {}
    }
    public typealias Input = Void
    public typealias Output = TableFile
    public typealias Partial = ShardRows
    public static let name = "score_files"
    public static let version = 1
    /// Draws nothing from the run seed.
    public static let usesRunSeed = false
    public var parameters = Parameters()
    let resolved: Result<(ScoringModel, String), ComponentError>

    /// Creates the step over what the runner resolved for ``Parameters/model``.
    public init(resolved: Result<(ScoringModel, String), ComponentError>) { self.resolved = resolved }

    func reader(_ files: [URL]? = nil, schema: [String: ColumnType] = [:]) throws -> CSVReader {
        var options = try csvOptions(delimiter: parameters.delimiter, skipBadRows: parameters.skipBadRows)
        options.schema = schema
        if let files { return CSVReader(files: files, options: options) }
        guard !parameters.paths.isEmpty else {
            throw ComponentError(problem: "score_files has no files to score", fix: "set steps.STEP.parameters.paths.")
        }
        return try CSVReader(paths: parameters.paths, options: options)
    }

    func scorer() throws -> BatchScorer {
        let (model, _) = try resolved.get()
        return try BatchScorer(bundle: model.bundle, version: model.version, keep: parameters.keep)
    }

    public func shardFiles(of _: Void) throws -> [String] { try reader().files.map(\.path) }

    /// The files' content version, the model version and its bundle's content hash.
    public func externalFingerprint() throws -> String { try fingerprint(try reader().files.map(\.path)) }

    /// The shards' files' content version, the model version and its bundle's content hash.
    public func externalFingerprint(of files: [String]) throws -> String? { try fingerprint(files) }

    private func fingerprint(_ files: [String]) throws -> String {
        let (model, hash) = try resolved.get()
        return "\(try IngestCSV.contentVersion(of: files)) \(model.version) \(hash)"
    }

    public func runShard(_ file: String, of files: [String], context: StepContext) async throws -> ShardRows {
        let scorer = try scorer()
        let reader = try reader([URL(fileURLWithPath: file)], schema: scorer.readingSchema)
        let name = ShardRows.fileName(for: file)
        let writer = try TableFileWriter(url: context.shardDirectory.appending(path: name))
        // Windows are scored on the parsing threads (every core) and written in file order.
        let summary = try reader.mapChunks(
            { table -> Table? in
                (try? scorer.check(columns: table.columnNames, source: file)) == nil ? nil : try scorer.score(table)
            },
            { scored, _ in
                try Task.checkCancellation()
                guard let scored else { return }
                try writer.append(scored)
            })
        try scorer.check(columns: summary.columnNames, source: file)
        let table = try writer.finish(columnNames: scorer.outputNames, columnTypes: scorer.outputTypes)
        return ShardRows(name: name, rows: table.rowCount, summary: summary)
    }

    public func merge(_ partials: [ShardRows], files: [String], context: StepContext) async throws -> TableFile {
        let scorer = try scorer()
        let writer = try TableFileWriter(url: context.scratchDirectory.appending(path: "scored.arrow"))
        try ShardRows.join(try ShardRows.tables(partials, in: context.shardDirectory), into: writer)
        let scored = try writer.finish(columnNames: scorer.outputNames, columnTypes: scorer.outputTypes)
        let badRows = partials.reduce(0) { $0 + $1.badRows }
        context.setProperty("rows", .int(scored.rowCount))
        context.setProperty("bad_rows", .int(badRows))
        context.setProperty("files", .int(files.count))
        context.setProperty("model_version", .string(scorer.version))
        if badRows > 0 {
            context.logger.warning(
                "skipped \(badRows) bad rows; the first: \(partials.flatMap(\.badRowExamples).prefix(10).joined(separator: "; "))"
            )
        }
        return scored
    }
}
