import Foundation

/// Where a project's runs execute and where their records and artifacts live, as one value: the metadata store
/// and model registry, the artifact store, the materializers and the orchestrator.
///
/// Built in one place from the project's stack file (`Stack.open` in `SluiceStack`); the CLI, `Sluice.main`, the
/// server, benchmarks and tests all take a `Stack` rather than opening stores themselves.
public struct Stack: Sendable {
    /// The stack's name in the stack file (`local` by default).
    public let name: String
    /// Its settings, defaults filled in and overrides applied.
    public let settings: StackSettings
    /// The settings that were applied on top of the stack file's (a run config's `stack:`).
    public let overrides: StackSettings
    /// Records of runs, step runs, artifacts and lineage, and the model registry.
    public let metadata: any MetadataStore & ModelRegistry
    /// Where artifact content lives.
    public let artifacts: any ArtifactStore
    /// How output values are stored, by type.
    public let materializers: MaterializerRegistry
    /// Where step runs execute.
    public let orchestrator: OrchestratorKind
    /// Where the metadata store is, for people to read (a file path, or a URL without its password).
    public let metadataLocation: String
    /// Where step logs (`<run>/<step>.log`) and step scratch folders go.
    public let workDirectory: URL
    /// With `container: IMAGE` on a `process` stack: how each step run starts inside the image (podman and the
    /// image are looked up when a run starts, not when the stack opens).
    public let container: ContainerRuntime?
    private let closeStores: @Sendable () async -> Void

    /// Creates a stack over opened stores; `close` releases them (connection pools, background tasks).
    public init(
        name: String, settings: StackSettings, overrides: StackSettings = StackSettings(),
        metadata: any MetadataStore & ModelRegistry,
        artifacts: any ArtifactStore, materializers: MaterializerRegistry, orchestrator: OrchestratorKind,
        metadataLocation: String, workDirectory: URL, container: ContainerRuntime? = nil,
        close: @escaping @Sendable () async -> Void = {}
    ) {
        self.container = container
        self.name = name
        self.settings = settings
        self.overrides = overrides
        self.metadata = metadata
        self.artifacts = artifacts
        self.materializers = materializers
        self.orchestrator = orchestrator
        self.metadataLocation = metadataLocation
        self.workDirectory = workDirectory
        self.closeStores = close
    }

    /// A run engine over this stack; `environment` captures the run's environment (git state, binary hash).
    ///
    /// With the `process` orchestrator, steps run through `launcher`; without one, through a
    /// ``ProcessStepLauncher`` of the running executable (right for an executable made with `Sluice.main`, whose
    /// `step run` command has its pipelines) selecting this stack and its project.
    ///
    /// With the `slurm` orchestrator, the engine submits runs as Slurm jobs of the running executable with this
    /// stack's `slurm:` settings; `pipelineArguments` (`--file` for a YAML pipeline) come before the stack's own.
    public func engine(
        environment: @escaping @Sendable () async -> RunEnvironment = { RunEnvironment.basic() },
        launcher: (any StepLauncher)? = nil, pipelineArguments: [String] = []
    ) -> RunEngine {
        var engine = RunEngine(
            metadata: metadata, artifacts: artifacts, materializers: materializers,
            logDirectory: workDirectory.appending(path: "logs"),
            scratchDirectory: workDirectory.appending(path: "scratch"), environment: environment)
        switch orchestrator {
        case .inProcess: break
        case .process:
            // A YAML pipeline's folder is mounted too, so the step reads the same file inside a container.
            let file = zip(pipelineArguments, pipelineArguments.dropFirst()).first { $0.0 == "--file" }
                .map { URL(fileURLWithPath: $0.1).deletingLastPathComponent().path }
            if let launcher {
                engine.launcher = launcher
            } else if let container {
                engine.launcher = ContainerStepLauncher(
                    container: container, stack: name, extraMounts: file.map { [$0] } ?? [],
                    arguments: pipelineArguments + stepArguments, environment: stepEnvironment)
            } else {
                engine.launcher = ProcessStepLauncher(
                    arguments: pipelineArguments + stepArguments, environment: stepEnvironment)
            }
        case .slurm:
            engine.slurm = SlurmSubmitter(
                settings: settings.slurm ?? SlurmSettings(), command: [ProcessStepLauncher.currentExecutable],
                arguments: pipelineArguments + stepArguments, environment: stepEnvironment,
                directory: workDirectory.lastPathComponent == ".sluice"
                    ? workDirectory.deletingLastPathComponent() : workDirectory,
                logDirectory: engine.logDirectory)
        }
        return engine
    }

    /// The arguments that make a `step run` child open this stack as this process did: `--stack NAME`, the
    /// overrides it was opened with (a run config's `stack:`) and its durability, as `--set stack.KEY=VALUE`.
    public var stepArguments: [String] {
        var overrides = self.overrides
        overrides.durability = settings.durability
        var arguments = ["--stack", name]
        for (key, value) in overrides.assignments { arguments += ["--set", "stack.\(key)=\(value)"] }
        return arguments
    }

    /// The environment a `step run` child needs to find this stack's project: `SLUICE_PROJECT`, when the work
    /// directory is a project's `.sluice/` folder.
    public var stepEnvironment: [String: String] {
        guard workDirectory.lastPathComponent == ".sluice" else { return [:] }
        return ["SLUICE_PROJECT": workDirectory.deletingLastPathComponent().path]
    }

    /// Releases the stores' connections. The stack is not used afterwards.
    public func close() async { await closeStores() }
}

/// Where a stack's step runs execute.
public enum OrchestratorKind: String, Sendable, CaseIterable {
    /// Steps run as tasks of the process that started the run, concurrently up to the run's parallelism.
    case inProcess = "in_process"
    /// Every step run that is not a cache hit runs as `BINARY step run …` in a child process of its own, up to the
    /// run's parallelism at once.
    case process
    /// Every step run that is not a cache hit at submission is a Slurm batch job, with dependencies mirroring the
    /// pipeline's; the run goes on on the cluster without the process that submitted it.
    case slurm

    /// Reads the `orchestrator` setting of the stack called `stack`.
    /// - Throws: ``ConfigError`` for an orchestrator this build does not have, saying which it has.
    public init(setting: String, stack: String) throws {
        guard let kind = OrchestratorKind(rawValue: setting) else {
            let known = OrchestratorKind.allCases.map(\.rawValue)
            if setting == "airflow" {
                throw ConfigError(
                    problem: "stack '\(stack)' asks for the 'airflow' orchestrator: Airflow runs Sluice pipelines "
                        + "from a DAG file, not from a stack.",
                    fix: "write the DAG with `sluice export airflow PIPELINE -o DAGS-FOLDER`, and set "
                        + "`orchestrator:` to one of \(known.joined(separator: ", ")).")
            }
            let planned = ["container"]
            let problem =
                planned.contains(setting)
                ? "stack '\(stack)' asks for the '\(setting)' orchestrator, which this build of Sluice does not have "
                    + "yet: running in-process instead would be a different run than the one asked for."
                : "stack '\(stack)' names an unknown orchestrator '\(setting)'."
                    + (known.closest(to: setting).map { " Did you mean '\($0)'?" } ?? "")
            throw ConfigError(
                problem: problem,
                fix: "set `orchestrator:` to one of \(known.joined(separator: ", ")) in .sluice/stack.yaml.")
        }
        self = kind
    }
}
