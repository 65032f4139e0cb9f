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
    /// The dashboard's access tokens, kept in the same store as the runs they open.
    public let tokens: any AccessTokenStore
    /// Tracked runs, experiments, tags, notes and search, in the same store as pipeline runs.
    public let tracking: any TrackingStore
    /// Where artifact content lives.
    public let artifacts: any ArtifactStore
    /// How output values are stored, by type.
    public let materializers: MaterializerRegistry
    /// Decides where and when its runs' steps execute.
    public let orchestrator: any Orchestrator
    /// Step properties that say where a step ran, for every orchestrator this build has: never carried over to a
    /// cache hit's record (a run on one stack may reuse a step run of another's).
    public let placementProperties: Set<String>
    /// Where the metadata store is, for people to read (a file path, or a URL without its password).
    public let metadataLocation: String
    /// Where step logs (`<run>/<step>.log`) and step scratch folders go.
    public let workDirectory: URL
    private let closeStores: @Sendable () async -> Void

    /// Creates a stack over opened stores; `close` releases them (connection pools, background tasks).
    public init(
        name: String, settings: StackSettings, overrides: StackSettings = StackSettings(),
        metadata: any MetadataStore & ModelRegistry, tokens: any AccessTokenStore, tracking: any TrackingStore,
        artifacts: any ArtifactStore,
        materializers: MaterializerRegistry,
        orchestrator: any Orchestrator = InProcessOrchestrator(), placementProperties: Set<String> = [],
        metadataLocation: String, workDirectory: URL, close: @escaping @Sendable () async -> Void = {}
    ) {
        self.placementProperties = placementProperties.union(orchestrator.placementProperties)
        self.name = name
        self.settings = settings
        self.overrides = overrides
        self.metadata = metadata
        self.tokens = tokens
        self.tracking = tracking
        self.artifacts = artifacts
        self.materializers = materializers
        self.orchestrator = orchestrator
        self.metadataLocation = metadataLocation
        self.workDirectory = workDirectory
        self.closeStores = close
    }

    /// A run engine over this stack; `environment` captures the run's environment (git state, binary hash).
    ///
    /// Its steps run through the stack's orchestrator (or `orchestrator` when given). Those it starts in other
    /// processes run the running executable's `step run` (right for an executable made with `Sluice.main`, whose
    /// `step run` command has its pipelines) with `pipelineArguments` (`--file` for a YAML pipeline) and the
    /// arguments and environment that select this stack and its project.
    public func engine(
        environment: @escaping @Sendable () async -> RunEnvironment = { RunEnvironment.basic() },
        orchestrator: (any Orchestrator)? = nil, pipelineArguments: [String] = []
    ) -> RunEngine {
        var engine = RunEngine(
            metadata: metadata, artifacts: artifacts, materializers: materializers,
            logDirectory: workDirectory.appending(path: "logs"),
            scratchDirectory: workDirectory.appending(path: "scratch"), environment: environment,
            orchestrator: orchestrator ?? self.orchestrator,
            stepCommand: StepCommandLine(arguments: pipelineArguments + stepArguments, environment: stepEnvironment))
        engine.placementProperties = placementProperties
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
