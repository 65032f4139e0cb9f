import Foundation
import Logging

/// Runs pipelines: records the run, schedules its steps in DAG order (``Scheduler``), reuses cached results and
/// executes the rest through its ``Orchestrator`` (in this process by default), each through the one
/// ``StepRunner`` path; outputs go to the artifact store and every step run is recorded in the metadata store.
///
/// Failure policy: a failed step fails the run and its dependents are skipped, while independent branches
/// finish. Cancelling the task that awaits ``run(_:config:observer:)`` cancels running steps and records
/// the run as cancelled.
public struct RunEngine: Sendable {
    /// Where runs, step runs, artifacts and events are recorded.
    public var metadata: any MetadataStore
    /// Where artifact content is written.
    public var artifacts: any ArtifactStore
    /// How output values are stored, by type.
    public var materializers: MaterializerRegistry
    /// Where step logs go: `<logs>/<run>/<step>.log`.
    public var logDirectory: URL
    /// Where steps get scratch directories.
    public var scratchDirectory: URL
    /// Captures the run's environment (git state, binary hash); runs concurrently with the steps.
    public var environment: @Sendable () async -> RunEnvironment
    /// Decides where and when the steps that are not cache hits execute: in this process by default.
    public var orchestrator: any Orchestrator
    /// How a process that runs one step run of this engine's runs is started (for orchestrators that start them
    /// elsewhere): the running executable, the pipeline file and stack arguments, the project's environment.
    public var stepCommand: StepCommandLine
    /// Properties recorded on every step run this engine executes or reuses (where a step process runs: its job,
    /// its image, as its orchestrator reads them from the environment).
    public var stepProperties: [String: PropertyValue] = [:]
    /// Step properties that say where a step ran, never carried over from the step run a cache hit reuses (every
    /// orchestrator's ``Orchestrator/placementProperties``, which `Stack.engine` fills in).
    public var placementProperties: Set<String> = []
    /// Whether a ``ShardedStep`` merges the partials its shard processes saved
    /// (``runShard(_:ofRun:pipeline:stepRunID:index:)``) instead of computing its shards itself: the merge job of a
    /// cluster's job array.
    public var mergeSavedShards = false

    /// Creates an engine over the given stores.
    public init(
        metadata: any MetadataStore, artifacts: any ArtifactStore,
        materializers: MaterializerRegistry = MaterializerRegistry(), logDirectory: URL, scratchDirectory: URL,
        environment: @escaping @Sendable () async -> RunEnvironment = { RunEnvironment.basic() },
        orchestrator: any Orchestrator = InProcessOrchestrator(), stepCommand: StepCommandLine = StepCommandLine()
    ) {
        self.orchestrator = orchestrator
        self.stepCommand = stepCommand
        self.metadata = metadata
        self.artifacts = artifacts
        self.materializers = materializers
        self.logDirectory = logDirectory
        self.scratchDirectory = scratchDirectory
        self.environment = environment
    }

    /// The steps of a pipeline with parameters resolved against `config`, and the config as it will be stored.
    /// - Throws: ``PipelineValidationError`` listing every problem in the graph and the config.
    public func resolve(_ pipeline: Pipeline, config: RunConfig) throws -> ResolvedPipeline {
        try resolve(pipeline, config: config, binding: nil)
    }

    /// Resolves the pipeline, binding the parameters of only the step called `only` when given (what a single step
    /// run needs: binding every step of a long pipeline would cost each step process time in proportion to it).
    func resolve(_ pipeline: Pipeline, config: RunConfig, binding only: String?) throws -> ResolvedPipeline {
        let materializers = try pipeline.validated(config: config, materializers: materializers)
        var problems: [String] = []
        var bound: [BoundStep?] = []
        for node in pipeline.nodes {
            guard only == nil || node.name == only else {
                bound.append(nil)
                continue
            }
            do {
                bound.append(try node.binder.bind(config.steps[node.name]?.parameters, "steps.\(node.name).parameters"))
            } catch {
                problems.append("\(error)")
            }
        }
        if !problems.isEmpty { throw PipelineValidationError(pipeline: pipeline.name, problems: problems) }
        return ResolvedPipeline(pipeline: pipeline, config: config, steps: bound, materializers: materializers)
    }

    /// Runs `pipeline` with `config`, reporting progress to `observer`.
    /// - Returns: the run's records; check ``RunResult/run``'s status for failures in steps.
    /// - Throws: ``PipelineValidationError`` before anything runs, or a store error that stopped the run.
    public func run(_ pipeline: Pipeline, config: RunConfig = RunConfig(), observer: (any RunObserver)? = nil)
        async throws -> RunResult
    {
        try await run(resolve(pipeline, config: config), observer: observer)
    }

    /// Runs an already resolved pipeline, recording what started it.
    public func run(
        _ resolved: ResolvedPipeline, trigger: RunTrigger = .manual, observer: (any RunObserver)? = nil
    ) async throws -> RunResult {
        if let result = try await orchestrator.run(resolved, engine: self, trigger: trigger, observer: observer) {
            return result
        }
        try await orchestrator.prepare()
        let pipeline = resolved.pipeline
        let config = resolved.config
        let startedAt = Date()
        let run = Run(
            id: RecordID.make("run", at: startedAt), pipeline: pipeline.name, status: .running,
            config: resolved.configYAML, environment: .basic(), owner: .current, startedAt: startedAt,
            trigger: trigger)
        // Half-written artifacts of killed runs are never visible (they sit under .tmp/); clear them away.
        artifacts.sweepAbandonedTemporaries()
        try await metadata.registerPipeline(pipeline.name)
        try await metadata.insert(run)
        let capture = Task { await environment() }
        observer?.runStarted(run, steps: pipeline.stepNames)
        for name in pipeline.stepNames { observer?.stepChanged(name, to: .queued) }

        let scheduler = Scheduler(runner: StepRunner(engine: self, resolved: resolved, run: run, observer: observer))
        let outcome = await scheduler.execute(
            parallelism: config.parallelism ?? ProcessInfo.processInfo.activeProcessorCount)

        var finished = run
        finished.environment = await capture.value
        finished.endedAt = Date()
        finished.status = outcome.status
        finished.error = outcome.error
        let ended = try await shielded { [metadata, finished] in
            try await metadata.updateEnvironment(run.id, finished.environment)
            return try await metadata.finishRun(
                run.id, status: finished.status, endedAt: finished.endedAt!, error: finished.error)
        }
        // A run ends once: an end recorded first by someone else stands, and the result reports it.
        if !ended, let recorded = try await metadata.run(run.id) { finished = recorded }
        if let storeError = outcome.storeError { throw storeError }
        let result = RunResult(
            run: finished, stepRuns: outcome.stepRuns, outputs: outcome.outputs, artifacts: artifacts,
            materializers: materializers)
        observer?.runFinished(result)
        return result
    }
}

// MARK: - One step run

extension RunEngine {
    /// Runs the step called `step` of the recorded run `runID` of `pipeline`: the contract every out-of-process
    /// orchestrator calls (`BINARY step run --run RUN --step STEP`). Reads the run's recorded config, resolves the
    /// step's inputs from the recorded outputs of its upstream step runs in that run, checks the cache, executes
    /// the step, writes its outputs and its record. The in-process scheduler runs steps through the same
    /// `reuse` and `runStep` code.
    /// - Returns: the step run's record (`completed`, `cached`, `failed` or `cancelled`).
    /// - Throws: ``StepRunError`` when the run, the step or an upstream output is not there; a store error.
    /// - Parameter stepRunID: the ID to record the step run under (an orchestrator picks it to find the record);
    ///   a new one when `nil`.
    public func runStep(
        _ step: String, ofRun runID: RunID, pipeline: Pipeline, stepRunID: String? = nil,
        observer: (any RunObserver)? = nil
    ) async throws -> StepRun {
        guard let run = try await metadata.run(runID) else { throw StepRunError.unknownRun(runID) }
        guard run.pipeline == pipeline.name else {
            throw StepRunError(
                problem: "run \(run.id) is a run of pipeline '\(run.pipeline)', not '\(pipeline.name)'.",
                fix: "start the step with the executable (or YAML file) of pipeline '\(run.pipeline)'.")
        }
        let resolved = try resolve(pipeline, config: try RunConfig(recordedIn: run, step: step), binding: step)
        let nodes = pipeline.nodes
        guard let index = nodes.firstIndex(where: { $0.name == step }) else {
            let guess = pipeline.stepNames.closest(to: step).map { " Did you mean '\($0)'?" } ?? ""
            throw StepRunError(
                problem: "pipeline '\(pipeline.name)' has no step named '\(step)'.\(guess)",
                fix: "use one of \(pipeline.stepNames.joined(separator: ", ")).")
        }
        let inputs = try await recordedInputs(of: index, in: pipeline, run: run)
        artifacts.sweepAbandonedTemporaries()
        var runner = StepRunner(engine: self, resolved: resolved, run: run, observer: observer)
        runner.stepRunID = stepRunID
        let outcome: StepRunner.StepOutcome
        switch await runner.reuse(index, inputs: inputs, startOnMiss: true) {
        case .settled(let reused, let record):
            if let record {
                try await shielded { [metadata] in try await metadata.insertCachedStepRuns([record]) }
            }
            outcome = reused
        case .run(let started):
            outcome = await runner.runStep(index, inputs: inputs, started: started)
        }
        if let storeError = outcome.storeError { throw StoreFailure(message: storeError) }
        return outcome.stepRun
    }
}

extension RunEngine {
    /// The inputs of node `index` in run `run`: each from the newest completed (or cached) step run of its producer.
    /// - Throws: ``StepRunError`` when a producer has not finished in this run.
    package func recordedInputs(of index: Int, in pipeline: Pipeline, run: Run) async throws -> StepRunner.Inputs {
        let nodes = pipeline.nodes
        let recorded = try await metadata.stepRuns(
            ofRun: run.id, steps: Array(Set(nodes[index].inputs.map { nodes[$0.node].name })))
        var inputs: StepRunner.Inputs = []
        for edge in nodes[index].inputs {
            let producer = nodes[edge.node].name
            guard
                let source = recorded.last(where: {
                    $0.stepName == producer && ($0.status == .completed || $0.status == .cached)
                }),
                let artifact = try await metadata.outputs(ofStepRun: source.id)[edge.output]
            else {
                throw StepRunError(
                    problem: "step '\(nodes[index].name)' reads '\(edge.name)', but run \(run.id) has no finished "
                        + "'\(producer)' step run yet.",
                    fix: "run step '\(producer)' of this run first (its orchestrator starts steps in DAG order).")
            }
            inputs.append((edge, artifact, nil))
        }
        return inputs
    }
}

extension RunEngine {
    /// The cache keys the steps without inputs (the ones that read data from outside, like ingest) would have if
    /// the run started now: comparing them with a past run's tells whether its data or code are still the same.
    public func sourceCacheKeys(_ resolved: ResolvedPipeline) -> [String: CacheKey] {
        let run = Run(
            id: "", pipeline: resolved.pipeline.name, status: .running, config: "", environment: .basic(),
            owner: .current, startedAt: Date())
        let runner = StepRunner(engine: self, resolved: resolved, run: run, observer: nil)
        var keys: [String: CacheKey] = [:]
        for (index, node) in resolved.pipeline.nodes.enumerated() where node.inputs.isEmpty {
            keys[node.name] = runner.newStepRun(index, inputs: []).cacheKey
        }
        return keys
    }
}

/// Runs `body` even when the current task is cancelled: the records of a cancelled run must still be
/// written, and stores (GRDB's async API among them) refuse work from a cancelled task.
package func shielded<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
    if Task.isCancelled {
        try await Task { try await body() }.value
    } else {
        try await body()
    }
}
