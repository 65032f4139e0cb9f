import ArgumentParser
import Foundation
import SluiceCore
import SluiceStack

/// `--stack NAME`, on every command that opens a project.
struct StackOption: ParsableArguments {
    @Option(name: .customLong("stack"), help: "The stack of .sluice/stack.yaml to use (default: the file's default).")
    var name: String?
}

/// The project and its opened stack, as every command needs them.
struct Workspace {
    let project: Project
    let stack: Stack
    var metadata: any MetadataStore & ModelRegistry { stack.metadata }
    var artifacts: any ArtifactStore { stack.artifacts }
    var metadataLocation: String { stack.metadataLocation }

    /// Opens the nearest project's stack; `create` makes the project when there is none (for `run`).
    static func open(
        create: Bool, stack name: String? = nil, stackOverrides: StackSettings = StackSettings(),
        durability: Durability? = nil, forOneStep: Bool = false
    ) async throws -> Workspace {
        let project = create ? try Project.findOrCreate() : try requireProject()
        let stack = try await Stack.open(
            project: project, name: name, overrides: stackOverrides, durability: durability,
            materializers: Catalog.materializers, forOneStep: forOneStep)
        return Workspace(project: project, stack: stack)
    }

    /// The nearest project, or an error saying how to make one.
    static func requireProject() throws -> Project {
        guard let project = Project.find() else {
            throw CLIError(
                problem: "no Sluice project here: no .sluice/ folder in \(Project.currentDirectory.path) or above.",
                fix: "run `sluice init` here, run a pipeline (which creates one), or set SLUICE_PROJECT.")
        }
        return project
    }

    /// An engine over this stack with the full environment capture (git state, binary hash). With the `process`
    /// and `slurm` orchestrators, step runs start as `THIS-EXECUTABLE step run …`, with `--file` for a YAML
    /// pipeline.
    func engine(pipelineFile: String? = nil) -> RunEngine {
        let project = self.project
        let file = pipelineFile.map { ["--file", URL(fileURLWithPath: $0).standardizedFileURL.path] } ?? []
        return stack.engine(
            environment: {
                await RunEnvironment.capture(
                    gitDirectory: Project.currentDirectory, cacheDirectory: project.directory.appending(path: "cache"))
            },
            pipelineArguments: file)
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
struct CLIError: SluiceError {
    var problem: String
    var fix: String
    var exitStatus: ExitStatus { .unusableInput }
}
