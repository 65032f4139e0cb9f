import ArgumentParser
import Foundation
import SluiceCore
import SluiceStack

/// `--stack NAME`, on every command that opens a project.
package struct StackOption: ParsableArguments {
    @Option(name: .customLong("stack"), help: "The stack of .sluice/stack.yaml to use (default: the file's default).")
    package var name: String?

    package init() {}
}

/// The project and its opened stack, as every command needs them.
package struct Workspace {
    package let project: Project
    package let stack: Stack
    package var metadata: any MetadataStore & ModelRegistry { stack.metadata }
    package var artifacts: any ArtifactStore { stack.artifacts }
    var metadataLocation: String { stack.metadataLocation }

    /// Opens the nearest project's stack; `create` makes the project when there is none (for `run`).
    package static func open(
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
        var engine = stack.engine(
            environment: {
                await RunEnvironment.capture(
                    gitDirectory: Project.currentDirectory, cacheDirectory: project.directory.appending(path: "cache"))
            },
            pipelineArguments: file)
        if let lean = Self.stepExecutable() { engine.stepCommand.executable = [lean] }
        return engine
    }

    /// The executable step processes of the `sluice` tool run: `sluice-step` beside it (the same commands without
    /// the serving ones, so it starts without loading the model server and the dashboard), when it is there;
    /// `nil` in a pipeline executable, which is lean itself.
    static func stepExecutable(tool: Bool = SluiceCommand.isTool) -> String? {
        guard tool else { return nil }
        let path = URL(fileURLWithPath: StepCommandLine.currentExecutable).deletingLastPathComponent()
            .appending(path: "sluice-step").path
        return FileManager.default.isExecutableFile(atPath: path) ? path : nil
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
package struct CLIError: SluiceError {
    package var problem: String
    package var fix: String
    package var exitStatus: ExitStatus { .unusableInput }

    package init(problem: String, fix: String) {
        self.problem = problem
        self.fix = fix
    }
}
