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
    private let closeStores: @Sendable () async -> Void

    /// Creates a stack over opened stores; `close` releases them (connection pools, background tasks).
    public init(
        name: String, settings: StackSettings, metadata: any MetadataStore & ModelRegistry,
        artifacts: any ArtifactStore, materializers: MaterializerRegistry, orchestrator: OrchestratorKind,
        metadataLocation: String, workDirectory: URL, close: @escaping @Sendable () async -> Void = {}
    ) {
        self.name = name
        self.settings = settings
        self.metadata = metadata
        self.artifacts = artifacts
        self.materializers = materializers
        self.orchestrator = orchestrator
        self.metadataLocation = metadataLocation
        self.workDirectory = workDirectory
        self.closeStores = close
    }

    /// A run engine over this stack; `environment` captures the run's environment (git state, binary hash).
    public func engine(environment: @escaping @Sendable () async -> RunEnvironment = { RunEnvironment.basic() })
        -> RunEngine
    {
        RunEngine(
            metadata: metadata, artifacts: artifacts, materializers: materializers,
            logDirectory: workDirectory.appending(path: "logs"),
            scratchDirectory: workDirectory.appending(path: "scratch"), environment: environment)
    }

    /// Releases the stores' connections. The stack is not used afterwards.
    public func close() async { await closeStores() }
}

/// Where a stack's step runs execute.
public enum OrchestratorKind: String, Sendable, CaseIterable {
    /// Steps run as tasks of the process that started the run, concurrently up to the run's parallelism.
    case inProcess = "in_process"

    /// Reads the `orchestrator` setting of the stack called `stack`.
    /// - Throws: ``ConfigError`` for an orchestrator this build does not have, saying which it has.
    public init(setting: String, stack: String) throws {
        guard let kind = OrchestratorKind(rawValue: setting) else {
            let known = OrchestratorKind.allCases.map(\.rawValue)
            let planned = ["process", "slurm", "airflow", "container"]
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
