import Foundation
import SluiceCore
import SluiceStoreSQLite

/// The project, its stack and its opened stores, as every command needs them.
struct Workspace {
    let project: Project
    let stack: StackSettings
    let metadata: any MetadataStore
    let artifacts: LocalArtifactStore
    let metadataLocation: String

    /// Opens the nearest project's stores; `create` makes the project when there is none (for `run`).
    static func open(create: Bool, stackOverrides: StackSettings = StackSettings(), durability: Durability? = nil)
        throws
        -> Workspace
    {
        let project: Project
        if create {
            project = try Project.findOrCreate()
        } else if let found = Project.find() {
            project = found
        } else {
            throw CLIError(
                problem: "no Sluice project here: no .sluice/ folder in \(Project.currentDirectory.path) or above.",
                fix: "run `sluice init` here, run a pipeline (which creates one), or set SLUICE_PROJECT.")
        }
        let stack = try project.stack(overrides: stackOverrides)
        let durability = durability ?? stack.durability ?? .process
        let location = stack.metadataStore ?? "metadata.sqlite"
        if location.hasPrefix("postgres://") || location.hasPrefix("postgresql://") {
            throw CLIError(
                problem: "metadata_store is a PostgreSQL URL, but this build of Sluice has only the SQLite store.",
                fix: "point metadata_store in \(project.stackFile.path) at a SQLite file for now.")
        }
        let path = project.resolve(location).path
        let metadata = try SQLiteMetadataStore(path: path, durability: durability)
        let artifacts = try LocalArtifactStore(
            root: project.resolve(stack.artifactStore ?? "artifacts"), durability: durability)
        return Workspace(
            project: project, stack: stack, metadata: metadata, artifacts: artifacts, metadataLocation: path)
    }

    /// An engine over these stores with the full environment capture (git state, binary hash).
    func engine(materializers: MaterializerRegistry) -> RunEngine {
        let project = self.project
        return RunEngine(
            metadata: metadata, artifacts: artifacts, materializers: materializers,
            logDirectory: project.directory.appending(path: "logs"),
            scratchDirectory: project.directory.appending(path: "scratch"),
            environment: {
                await RunEnvironment.capture(
                    gitDirectory: Project.currentDirectory, cacheDirectory: project.directory.appending(path: "cache"))
            })
    }

    /// A path shown relative to the working directory when it is below it.
    func display(_ path: String) -> String {
        let cwd = Project.currentDirectory.standardizedFileURL.path
        return path.hasPrefix(cwd + "/") ? String(path.dropFirst(cwd.count + 1)) : path
    }

    func requireRun(_ idOrPrefix: String) async throws -> Run {
        guard let run = try await metadata.run(idOrPrefix) else {
            throw CLIError(problem: "no run matches '\(idOrPrefix)'.", fix: "list runs with `sluice runs list`.")
        }
        return run
    }

    func requireArtifact(_ idOrPrefix: String) async throws -> ArtifactRecord {
        guard let artifact = try await metadata.artifact(idOrPrefix) else {
            throw CLIError(
                problem: "no artifact matches '\(idOrPrefix)'.", fix: "list artifacts with `sluice artifacts list`.")
        }
        return artifact
    }
}

/// A mistake on the command line or in the project: what is wrong and what to do.
struct CLIError: Error, CustomStringConvertible {
    var problem: String
    var fix: String
    var description: String { "\(problem)\n  To fix: \(fix)" }
}
