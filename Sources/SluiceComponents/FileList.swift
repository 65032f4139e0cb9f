import Foundation
import SluiceCore
import SluiceData

/// Files listed by one step for others to split their work over, with the files' content version: the artifact's
/// bytes, and so the cache keys of the steps that read it, change whenever a listed file does.
public struct FileList: Codable, Sendable, Equatable {
    /// The files, as absolute paths, in the order their shards are merged.
    public var files: [String]
    /// The files' content version when they were listed (``DatasetVersion``).
    public var version: String

    /// Creates a list.
    public init(files: [String], version: String) {
        self.files = files
        self.version = version
    }
}

/// Lists files (`list_files`): files, folders (every `.csv` in them) or globs, resolved once, so every step that
/// reads the list works on the same files however many arrive during the run.
public struct ListFiles: ExternalInputStep {
    /// What to list.
    public struct Parameters: Codable, Sendable, Equatable {
        /// Files, folders (every `.csv` in them) or globs (`data/*.csv`, `data/**/*.csv`).
        public var paths: [String] = []
        /// Creates parameters.
        public init() {}
    }
    public typealias Input = Void
    public typealias Output = FileList
    public static let name = "list_files"
    public static let version = 1
    /// Draws nothing from the run seed: a new seed reuses its cached output.
    public static let usesRunSeed = false
    public var parameters = Parameters()
    /// Creates the step.
    public init() {}

    func files() throws -> [String] {
        guard !parameters.paths.isEmpty else {
            throw ComponentError(problem: "list_files has no paths to list", fix: "set steps.STEP.parameters.paths.")
        }
        return try CSVReader(paths: parameters.paths, options: CSVOptions()).files.map(\.path)
    }

    /// The listed files' content version (unchanged files are not re-hashed).
    public func externalFingerprint() throws -> String { try IngestCSV.contentVersion(of: files()) }

    public func run(_ input: Void, context: StepContext) async throws -> FileList {
        let files = try files()
        context.setProperty("files", .int(files.count))
        return FileList(files: files, version: try IngestCSV.contentVersion(of: files))
    }
}

/// A sharded step whose files its `paths` parameter names and whose only outside input they are: it can split
/// over a ``FileList`` another step made instead (``OverListedFiles``).
public protocol FilePathsStep: ShardedStep where Input == Void {
    /// The files, folders or globs its parameters name (empty when none).
    var paths: [String] { get }
}

extension FileStatistics: FilePathsStep {
    public var paths: [String] { parameters.paths }
}

extension ShardedIngestCSV: FilePathsStep {
    public var paths: [String] { parameters.paths }
}

/// `Base` split over the files of its input, a ``FileList`` an upstream step made, instead of the files its own
/// `paths` name: the same parameters (but `paths`, refused), partials and merge, so the same files give the same
/// bytes. On Slurm the job array is sized when the list exists (a planning job), not at submission.
public struct OverListedFiles<Base: FilePathsStep>: ShardedStep {
    public typealias Input = FileList
    public typealias Output = Base.Output
    public typealias Partial = Base.Partial
    public static var name: String { Base.name }
    public static var version: Int { Base.version }
    public static var usesRunSeed: Bool { Base.usesRunSeed }
    /// The base step, with its parameters.
    public var base: Base
    public var parameters: Base.Parameters {
        get { base.parameters }
        set { base.parameters = newValue }
    }

    /// Wraps `base`.
    public init(_ base: Base) { self.base = base }

    public func checkParameters() throws {
        guard base.paths.isEmpty else {
            throw ComponentError(
                problem: "\(Base.name) reads the files its 'files' input lists, and its parameters also name paths "
                    + "(\(base.paths.joined(separator: ", ")))",
                fix: "remove parameters.paths, or remove the 'files' input and let paths name the files.")
        }
    }

    public func shardFiles(of input: FileList) throws -> [String] { input.files }

    public func runShard(_ file: String, of files: [String], context: StepContext) async throws -> Base.Partial {
        try await base.runShard(file, of: files, context: context)
    }

    public func merge(_ partials: [Base.Partial], files: [String], context: StepContext) async throws -> Base.Output {
        try await base.merge(partials, files: files, context: context)
    }
}
