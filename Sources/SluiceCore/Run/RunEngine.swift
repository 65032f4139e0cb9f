import Foundation
import Logging

/// Executes pipelines in this process: steps whose inputs are ready run concurrently, bounded by the
/// configured parallelism; outputs go to the artifact store; every step run is recorded in the metadata store.
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
    /// Where steps that are not cache hits execute: `nil` runs them as tasks of this process; a launcher (the
    /// `process` orchestrator's ``ProcessStepLauncher``) starts each as `step run` elsewhere and reads its record.
    public var launcher: (any StepLauncher)?
    /// With the `slurm` orchestrator, how step runs become Slurm jobs; ``run(_:trigger:observer:)`` then submits the
    /// run and follows it instead of executing steps here.
    public var slurm: SlurmSubmitter?
    /// Properties recorded on every step run this engine executes or reuses (the Slurm job a step ran in).
    public var stepProperties: [String: PropertyValue] = [:]
    /// Whether a ``ShardedStep`` merges the partials its shard jobs saved (``runShard(_:ofRun:pipeline:stepRunID:index:)``)
    /// instead of computing its shards itself: the merge job of a Slurm job array.
    public var mergeSavedShards = false

    /// Creates an engine over the given stores.
    public init(
        metadata: any MetadataStore, artifacts: any ArtifactStore,
        materializers: MaterializerRegistry = MaterializerRegistry(), logDirectory: URL, scratchDirectory: URL,
        environment: @escaping @Sendable () async -> RunEnvironment = { RunEnvironment.basic() },
        launcher: (any StepLauncher)? = nil
    ) {
        self.launcher = launcher
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
        if let slurm { return try await runOnSlurm(resolved, slurm: slurm, trigger: trigger, observer: observer) }
        try await launcher?.prepare()
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

        let execution = Execution(engine: self, resolved: resolved, run: run, observer: observer)
        let outcome = await execution.execute(
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
        var execution = Execution(engine: self, resolved: resolved, run: run, observer: observer)
        execution.stepRunID = stepRunID
        let outcome: Execution.StepOutcome
        switch await execution.reuse(index, inputs: inputs, startOnMiss: true) {
        case .settled(let reused, let record):
            if let record {
                try await shielded { [metadata] in try await metadata.insertCachedStepRuns([record]) }
            }
            outcome = reused
        case .run(let started):
            outcome = await execution.runStep(index, inputs: inputs, started: started)
        }
        if let storeError = outcome.storeError { throw StoreFailure(message: storeError) }
        return outcome.stepRun
    }
}

extension RunEngine {
    /// The inputs of node `index` in run `run`: each from the newest completed (or cached) step run of its producer.
    /// - Throws: ``StepRunError`` when a producer has not finished in this run.
    func recordedInputs(of index: Int, in pipeline: Pipeline, run: Run) async throws -> Execution.Inputs {
        let nodes = pipeline.nodes
        let recorded = try await metadata.stepRuns(
            ofRun: run.id, steps: Array(Set(nodes[index].inputs.map { nodes[$0.node].name })))
        var inputs: Execution.Inputs = []
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

extension RunConfig {
    /// The fully resolved config recorded with `run` when it started; with `step`, only that step's settings
    /// under `steps` (what a step run binds), so a step process of a long pipeline does not parse every step's.
    public init(recordedIn run: Run, step: String? = nil) throws {
        let text = step.map { Self.recordedText(run.config, keepingStep: $0) } ?? run.config
        var tree = try ConfigValue.parseYAML(text, source: "the config recorded with run \(run.id)")
        if let entries = tree.entries { tree = ConfigValue(.object(entries.filter { $0.key != "pipeline" })) }
        try self.init(tree: tree)
    }

    /// A recorded config's text without the blocks of `steps` other than `step`'s. The recorded config is Sluice's
    /// own block-style YAML: a step's block starts with its name indented two spaces under `steps:` and goes on
    /// with deeper lines. A block is dropped only when its name is a plain word that is not `step`; anything else
    /// (a quoted name, flow style) is kept, so the result parses to the same settings for `step`.
    static func recordedText(_ text: String, keepingStep step: String) -> String {
        // Over UTF-8 bytes: a step process of a 1,000-step pipeline scans 3,000 lines, and splitting them into
        // Substrings of Characters cost it 3 ms. The syntax looked at (spaces, colons, newlines, word characters)
        // is ASCII, so byte offsets are character boundaries; a name with other bytes is not plain, and kept.
        let bytes = Array(text.utf8)
        let wanted = Array(step.utf8)
        let (space, colon, newline) = (UInt8(ascii: " "), UInt8(ascii: ":"), UInt8(ascii: "\n"))
        var kept: [Range<Int>] = []
        var inSteps = false
        var keeping = true
        var stepsLine: Int?
        var blocks = 0
        var start = 0
        while start <= bytes.count {
            let end = bytes[start...].firstIndex(of: newline) ?? bytes.count
            let line = bytes[start..<end]
            let indent = line.prefix { $0 == space }.count
            if indent == 0 && !line.isEmpty {
                inSteps = line.elementsEqual("steps:".utf8)
                if inSteps { stepsLine = kept.count }
                keeping = true
            } else if inSteps && indent == 2 {
                let key = line.dropFirst(2).prefix { $0 != colon }
                let plain = !key.isEmpty && key.allSatisfy(Self.isPlainNameByte)
                keeping = !plain || key.elementsEqual(wanted) || line.dropFirst(2 + key.count).first != colon
                if keeping { blocks += 1 }
            }
            if keeping { kept.append(start..<end) }
            start = end + 1
        }
        var result: [UInt8] = []
        result.reserveCapacity(bytes.count)
        for (index, range) in kept.enumerated() {
            if index > 0 { result.append(newline) }
            // No block left (a step the pipeline does not have): an empty mapping, not a null.
            if index == stepsLine && blocks == 0 {
                result.append(contentsOf: "steps: {}".utf8)
            } else {
                result.append(contentsOf: bytes[range])
            }
        }
        return String(decoding: result, as: UTF8.self)
    }

    /// Whether `byte` may appear in a step name `recordedText` drops a block by: ASCII letters, digits, `_-.`.
    private static func isPlainNameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"), UInt8(ascii: "."):
            true
        default: false
        }
    }
}

extension RunEngine {
    /// The cache keys the steps without inputs (the ones that read data from outside, like ingest) would have if
    /// the run started now: comparing them with a past run's tells whether its data or code are still the same.
    public func sourceCacheKeys(_ resolved: ResolvedPipeline) -> [String: CacheKey] {
        let run = Run(
            id: "", pipeline: resolved.pipeline.name, status: .running, config: "", environment: .basic(),
            owner: .current, startedAt: Date())
        let execution = Execution(engine: self, resolved: resolved, run: run, observer: nil)
        var keys: [String: CacheKey] = [:]
        for (index, node) in resolved.pipeline.nodes.enumerated() where node.inputs.isEmpty {
            keys[node.name] = execution.newStepRun(index, inputs: []).cacheKey
        }
        return keys
    }
}

/// A step run that cannot start: an unknown run or step, or an upstream output not written yet.
public struct StepRunError: SluiceError, Equatable {
    public var problem: String
    public var fix: String
    public var exitStatus: ExitStatus { .unusableInput }

    /// Creates the error.
    public init(problem: String, fix: String) {
        self.problem = problem
        self.fix = fix
    }

    static func unknownRun(_ id: String) -> StepRunError {
        StepRunError(problem: "no run matches '\(id)'.", fix: "list runs with `sluice runs list`.")
    }
}

/// A pipeline whose parameters are resolved against a config: what will run, and the config to store.
public struct ResolvedPipeline: Sendable {
    /// The pipeline.
    public let pipeline: Pipeline
    /// The config it was resolved against.
    public let config: RunConfig
    /// Each step's bound parameters and body; `nil` for steps a single step run does not bind.
    let steps: [BoundStep?]
    let materializers: [[AnyMaterializer]]

    /// The fully resolved config: every step's parameters with defaults filled in, caching, parallelism,
    /// seed and durability, as YAML.
    public var configYAML: String {
        var steps: [(key: String, value: ConfigValue)] = []
        for (node, bound) in zip(pipeline.nodes, self.steps) {
            guard let bound else { continue }
            let cache = (config.steps[node.name]?.cache ?? node.cacheable) && config.cache
            var entries: [(key: String, value: ConfigValue)] = [
                ("cache", ConfigValue(.bool(cache))), ("parameters", bound.parameters),
            ]
            if let resources = config.steps[node.name]?.resources, !resources.isEmpty,
                let tree = try? ConfigValue.encoding(resources)
            {
                entries.append(("resources", tree))
            }
            steps.append((node.name, ConfigValue(.object(entries))))
        }
        var top: [(key: String, value: ConfigValue)] = [
            ("pipeline", ConfigValue(.string(pipeline.name))),
            ("parallelism", ConfigValue(.int(config.parallelism ?? ProcessInfo.processInfo.activeProcessorCount))),
            ("cache", ConfigValue(.bool(config.cache))),
            ("seed", ConfigValue(.int(Int(truncatingIfNeeded: config.seed)))),
            ("durability", ConfigValue(.string((config.durability ?? config.stack.durability ?? .process).rawValue))),
        ]
        let stack = config.stack.tree
        if stack.entries?.isEmpty == false { top.append(("stack", stack)) }
        top.append(("steps", ConfigValue(.object(steps))))
        return ConfigValue(.object(top)).yaml()
    }

    /// The canonical JSON of a step's resolved parameters.
    public func parameters(of step: String) -> String? {
        pipeline.nodes.firstIndex { $0.name == step }.flatMap { steps[$0]?.parametersJSON }
    }
}

/// What a run produced: its record, its step runs, and each step's output artifacts.
public struct RunResult: Sendable {
    /// The run's final record.
    public let run: Run
    /// Every step run, in the order they ended.
    public let stepRuns: [StepRun]
    /// Output artifacts by step name, then output name.
    public let outputs: [String: [String: ArtifactRecord]]
    let artifacts: any ArtifactStore
    let materializers: MaterializerRegistry

    /// The step run of the step called `name`.
    public func stepRun(_ name: String) -> StepRun? { stepRuns.first { $0.stepName == name } }

    /// Reads an output value back from the artifact store.
    public func value<T>(_ type: T.Type, step: String, output: String = "output") throws -> T {
        guard let record = outputs[step]?[output] else {
            throw CocoaError(
                .fileNoSuchFile,
                userInfo: [NSLocalizedDescriptionKey: "step '\(step)' has no output '\(output)' in this run"])
        }
        guard let materializer = materializers.materializer(for: T.self) else {
            preconditionFailure("no materializer for \(T.self)")
        }
        return try materializer.load(record.uri, from: artifacts) as! T
    }
}

// MARK: - Execution

/// The state of one run in progress. Only the scheduling loop touches it; steps run in child tasks. Its `reuse` and
/// `runStep` are also how ``RunEngine/runStep(_:ofRun:pipeline:observer:)`` runs a single step run.
struct Execution {
    let engine: RunEngine
    let resolved: ResolvedPipeline
    let run: Run
    let observer: (any RunObserver)?
    /// The ID of the one step run a single-step execution records (chosen by the orchestrator).
    var stepRunID: String?

    struct Outcome {
        var status: RunStatus
        var error: String?
        var stepRuns: [StepRun]
        var outputs: [String: [String: ArtifactRecord]]
        var storeError: Error?
    }

    /// What a step's task reports back.
    struct StepOutcome: Sendable {
        var node: Int
        var stepRun: StepRun
        var outputs: [ArtifactRecord]
        var values: [any Sendable]?
        var storeError: String?
    }

    enum NodeState { case waiting, running, produced, failed, skipped, cancelled }

    func execute(parallelism: Int) async -> Outcome {
        let nodes = resolved.pipeline.nodes
        var state = Array(repeating: NodeState.waiting, count: nodes.count)
        var remainingInputs = nodes.map { Set($0.inputs.map(\.node)).count }
        var consumers = Array(repeating: [Int](), count: nodes.count)
        for (index, node) in nodes.enumerated() {
            for producer in Set(node.inputs.map(\.node)) { consumers[producer].append(index) }
        }
        var pendingReads = consumers.map(\.count)
        var outputs = Array(repeating: [String: ArtifactRecord](), count: nodes.count)
        var values = Array(repeating: [any Sendable]?.none, count: nodes.count)
        var ready = nodes.indices.filter { remainingInputs[$0] == 0 }
        var readyHead = 0
        var stepRuns: [StepRun] = []
        var firstFailure: String?
        var storeError: String?
        var cancelled = false

        /// Marks `index` and everything downstream of it as not runnable.
        func skipDownstream(of index: Int, reason: String, as status: NodeState) async {
            var stack = consumers[index]
            while let next = stack.popLast() {
                guard state[next] == .waiting else { continue }
                state[next] = status
                let name = nodes[next].name
                let record = placeholder(next, status: status == .cancelled ? .cancelled : .skipped, reason: reason)
                stepRuns.append(record)
                do {
                    try await shielded { [metadata = engine.metadata] in try await metadata.insert(record, inputs: []) }
                } catch { storeError = storeError ?? "\(error)" }
                observer?.stepChanged(name, to: status == .cancelled ? .cancelled : .skipped(reason: reason))
                stack += consumers[next]
            }
        }

        var pendingCached: [CachedStepRun] = []
        func flushCached() async {
            guard !pendingCached.isEmpty else { return }
            let batch = pendingCached
            pendingCached = []
            do {
                try await shielded { [metadata = engine.metadata] in try await metadata.insertCachedStepRuns(batch) }
            } catch {
                storeError = storeError ?? "\(error)"
            }
        }

        /// Takes a finished step's outcome: releases values no one will read, wakes dependents or skips them.
        func finish(_ result: StepOutcome) async {
            let index = result.node
            stepRuns.append(result.stepRun)
            if let error = result.storeError { storeError = storeError ?? error }
            for edge in Set(nodes[index].inputs.map(\.node)) {
                pendingReads[edge] -= 1
                if pendingReads[edge] == 0 { values[edge] = nil }  // no one else will read them
            }
            switch result.stepRun.status {
            case .completed, .cached:
                state[index] = .produced
                outputs[index] = Dictionary(uniqueKeysWithValues: result.outputs.map { ($0.name, $0) })
                if pendingReads[index] > 0 { values[index] = result.values }
                for consumer in consumers[index] {
                    remainingInputs[consumer] -= 1
                    if remainingInputs[consumer] == 0 && state[consumer] == .waiting { ready.append(consumer) }
                }
            case .cancelled:
                state[index] = .cancelled
                cancelled = true
                await skipDownstream(of: index, reason: "the run was cancelled", as: .cancelled)
            default:
                state[index] = .failed
                firstFailure =
                    firstFailure ?? "step '\(nodes[index].name)' failed: \(result.stepRun.error ?? "unknown error")"
                await skipDownstream(of: index, reason: "'\(nodes[index].name)' failed", as: .skipped)
            }
        }

        await withTaskGroup(of: StepOutcome.self) { group in
            var running = 0
            while true {
                while running < parallelism, readyHead < ready.count, !cancelled {
                    let index = ready[readyHead]
                    readyHead += 1
                    state[index] = .running
                    let inputs = nodes[index].inputs.map { edge in
                        (
                            edge, outputs[edge.node][edge.output]!,
                            values[edge.node].map { vals in
                                vals[nodes[edge.node].outputs.firstIndex { $0.name == edge.output }!]
                            }
                        )
                    }
                    // Cache hits are settled here, without a task: a lookup, and a record written in a batch
                    // with the hits around it.
                    // In-process, a miss is also recorded started by the lookup (one store call) unless cached
                    // records wait to be written before it (records stay in start order). A step process records
                    // its own start.
                    let startOnMiss = engine.launcher == nil && pendingCached.isEmpty
                    let started: StepRun?
                    switch await reuse(index, inputs: inputs, startOnMiss: startOnMiss) {
                    case .settled(let reused, let record):
                        if let record { pendingCached.append(record) }
                        if pendingCached.count >= 256 { await flushCached() }
                        await finish(reused)
                        if Task.isCancelled { cancelled = true }
                        continue
                    case .run(let record):
                        started = record
                    }
                    await flushCached()  // keep records in start order
                    running += 1
                    if let launcher = engine.launcher {
                        group.addTask { await self.runStep(index, inputs: inputs, launcher: launcher) }
                    } else {
                        group.addTask { await self.runStep(index, inputs: inputs, started: started) }
                    }
                }
                await flushCached()
                guard running > 0, let result = await group.next() else { break }
                running -= 1
                await finish(result)
                if Task.isCancelled { cancelled = true }
            }
        }
        if Task.isCancelled { cancelled = true }
        // Steps never started because the run was cancelled.
        for index in nodes.indices where state[index] == .waiting {
            state[index] = .cancelled
            let record = placeholder(index, status: .cancelled, reason: "the run was cancelled")
            stepRuns.append(record)
            do {
                try await shielded { [metadata = engine.metadata] in try await metadata.insert(record, inputs: []) }
            } catch { storeError = storeError ?? "\(error)" }
            observer?.stepChanged(nodes[index].name, to: .cancelled)
        }
        let status: RunStatus =
            storeError != nil ? .failed : cancelled ? .cancelled : (firstFailure != nil ? .failed : .completed)
        let byName = Dictionary(uniqueKeysWithValues: nodes.indices.map { (nodes[$0].name, outputs[$0]) })
        return Outcome(
            status: status, error: storeError.map { "metadata store: \($0)" } ?? firstFailure, stepRuns: stepRuns,
            outputs: byName, storeError: storeError.map { StoreFailure(message: $0) })
    }

    func placeholder(_ index: Int, status: StepRunStatus, reason: String) -> StepRun {
        let node = resolved.pipeline.nodes[index]
        return StepRun(
            id: RecordID.make("step"), runID: run.id, stepName: node.name, kind: node.kind, status: status,
            cacheKey: nil, codeVersion: node.codeVersion, parameters: resolved.steps[index]?.parametersJSON ?? "{}",
            seed: SeededRandom.derive(seed: resolved.config.seed, name: node.name), startedAt: nil, endedAt: Date(),
            error: reason, properties: upstreamProperty(index))
    }

    /// ``StepRun/upstreamProperty``: the steps whose outputs node `index` reads, recorded on every step run so the
    /// run's graph can be drawn even where a step never ran (skipped steps have no input events).
    func upstreamProperty(_ index: Int) -> [String: PropertyValue] {
        let nodes = resolved.pipeline.nodes
        let names = Set(nodes[index].inputs.map { nodes[$0.node].name }).sorted()
        return [StepRun.upstreamProperty: .string(names.joined(separator: ","))]
    }

    /// What every step run this execution records carries: its upstream steps, and the engine's own properties.
    func recordedProperties(_ index: Int) -> [String: PropertyValue] {
        upstreamProperty(index).merging(engine.stepProperties) { $1 }
    }

    typealias Inputs = [(InputEdge, ArtifactRecord, (any Sendable)?)]

    /// A new step run record for node `index` reading `inputs`, with its cache key.
    func newStepRun(_ index: Int, inputs: Inputs) -> StepRun {
        let node = resolved.pipeline.nodes[index]
        let bound = resolved.steps[index]!  // bound: the scheduler binds every step, a single step run its own
        let seed = SeededRandom.derive(seed: resolved.config.seed, name: node.name)
        let key = CacheKey(
            ingredients: .init(
                stepName: node.name, codeVersion: node.codeVersion, parameters: bound.parametersJSON,
                stepSeed: node.usesRunSeed ? seed : nil,
                inputs: inputs.map { ($0.0.name, $0.1.contentHash) }
                    + (bound.externalFingerprint.map { [("external", $0)] } ?? []),
                outputs: zip(node.outputs, resolved.materializers[index]).map { ($0.name, $1.identifier, $1.version) }))
        return StepRun(
            id: stepRunID ?? RecordID.make("step"), runID: run.id, stepName: node.name, kind: node.kind,
            status: .running,
            cacheKey: key, codeVersion: node.codeVersion, parameters: bound.parametersJSON, seed: seed,
            startedAt: Date(), properties: recordedProperties(index))
    }

    func inputEvents(_ stepRunID: String, _ inputs: Inputs) -> [Event] {
        inputs.map { Event(stepRunID: stepRunID, artifactID: $0.1.id, kind: .input, name: $0.0.name) }
    }

    /// What ``reuse(_:inputs:startOnMiss:)`` decided for a step.
    enum Reuse {
        /// Settled without running: a cache hit (with its record for the caller to write, in a batch), or a store
        /// failure.
        case settled(StepOutcome, CachedStepRun?)
        /// Run it; `started` is its `running` record when the lookup already wrote it.
        case run(started: StepRun?)
    }

    /// Reuses an earlier step run's outputs when caching allows and they are all still stored. With `startOnMiss`,
    /// a miss also records the step run started, in the same store call (one round trip on PostgreSQL), and
    /// ``runStep(_:inputs:started:)`` goes on from that record. The cached step run's record is returned for the
    /// caller to write, not written here.
    func reuse(_ index: Int, inputs: Inputs, startOnMiss: Bool = false) async -> Reuse {
        let node = resolved.pipeline.nodes[index]
        let config = resolved.config
        guard config.cache && (config.steps[node.name]?.cache ?? node.cacheable) else { return .run(started: nil) }
        var stepRun = newStepRun(index, inputs: inputs)
        do {
            let found: (stepRun: StepRun, outputs: [ArtifactRecord])?
            if startOnMiss && !Task.isCancelled {
                guard
                    let hit = try await engine.metadata.cacheHitOrStart(
                        stepRun, inputs: inputEvents(stepRun.id, inputs))
                else { return .run(started: stepRun) }
                found = available(hit, node: node)
            } else {
                found = try await cachedOutputs(for: stepRun.cacheKey!, node: node)
            }
            guard let hit = found else { return .run(started: nil) }
            stepRun.status = .cached
            stepRun.cachedFrom = hit.stepRun.id
            // The job the original ran in is not this step run's.
            stepRun.properties = hit.stepRun.properties.filter { $0.key != SlurmSubmitter.jobProperty }
                .merging(recordedProperties(index)) { $1 }
            stepRun.endedAt = Date()
            let outputEvents = hit.outputs.map {
                Event(stepRunID: stepRun.id, artifactID: $0.id, kind: .output, name: $0.name)
            }
            let record = CachedStepRun(stepRun: stepRun, events: inputEvents(stepRun.id, inputs) + outputEvents)
            observer?.stepChanged(node.name, to: .cached(from: hit.stepRun.runID))
            return .settled(StepOutcome(node: index, stepRun: stepRun, outputs: hit.outputs, values: nil), record)
        } catch {
            stepRun.status = .failed
            stepRun.error = "metadata store: \(error)"
            observer?.stepChanged(node.name, to: .failed(reason: stepRun.error!))
            return .settled(
                StepOutcome(node: index, stepRun: stepRun, outputs: [], values: nil, storeError: "\(error)"), nil)
        }
    }

    /// Runs one step and stores its outputs; `started` is its `running` record when ``reuse(_:inputs:startOnMiss:)``
    /// already wrote it. Never throws: every outcome is a record.
    func runStep(_ index: Int, inputs: Inputs, started: StepRun? = nil) async -> StepOutcome {
        let node = resolved.pipeline.nodes[index]
        let bound = resolved.steps[index]!  // bound: the scheduler binds every step, a single step run its own
        let materializers = resolved.materializers[index]
        var stepRun = started ?? newStepRun(index, inputs: inputs)
        let seed = stepRun.seed

        do {
            if Task.isCancelled { throw CancellationError() }
            if started == nil { try await engine.metadata.insert(stepRun, inputs: inputEvents(stepRun.id, inputs)) }
        } catch is CancellationError {
            stepRun.status = .cancelled
            stepRun.endedAt = Date()
            stepRun.error = started == nil ? nil : "cancelled"
            var storeError: String?
            if started != nil {
                // Its `running` record is written: it must not stay running.
                do {
                    try await shielded { [metadata = engine.metadata, finished = stepRun] in
                        try await metadata.finishStepRun(finished, metrics: [])
                    }
                } catch { storeError = "\(error)" }
            }
            observer?.stepChanged(node.name, to: .cancelled)
            return StepOutcome(node: index, stepRun: stepRun, outputs: [], values: nil, storeError: storeError)
        } catch {
            stepRun.status = .failed
            stepRun.error = "metadata store: \(error)"
            observer?.stepChanged(node.name, to: .failed(reason: stepRun.error!))
            return StepOutcome(node: index, stepRun: stepRun, outputs: [], values: nil, storeError: "\(error)")
        }

        observer?.stepChanged(node.name, to: .running(since: stepRun.startedAt!))
        let logURL = engine.logDirectory.appending(path: "\(run.id)/\(node.name).log")
        let sink = StepLogHandler.Sink(url: logURL)
        var logger = Logger(label: "sluice.step.\(node.name)") { _ in StepLogHandler(sink: sink) }
        logger[metadataKey: "run.id"] = "\(run.id)"
        logger[metadataKey: "step.name"] = "\(node.name)"
        let scratch = engine.scratchDirectory.appending(path: stepRun.id, directoryHint: .isDirectory)
        let mergesSavedShards = engine.mergeSavedShards && bound.shards != nil
        let context = StepContext(
            runID: run.id, stepName: node.name, seed: seed, logger: logger, scratchDirectory: scratch,
            observer: observer, declaresRunSeed: node.usesRunSeed,
            shardDirectory: mergesSavedShards ? engine.shardFilesFolder(of: stepRun.id) : nil)

        var artifactsOut: [ArtifactRecord] = []
        var produced: [any Sendable] = []
        do {
            var inputValues: [any Sendable] = []
            for (edge, record, value) in inputs {
                if let value {
                    inputValues.append(value)
                } else {
                    inputValues.append(try load(record, edge: edge))
                }
            }
            defer { context.removeScratch() }
            let output: any Sendable
            if mergesSavedShards, let shards = bound.shards {
                // The shard jobs' folder goes once merged (or once the merge failed: a new run computes them again).
                defer { try? FileManager.default.removeItem(at: engine.shardFolder(of: stepRun.id)) }
                let files = try engine.savedShardFiles(of: stepRun.id) ?? shards.files(reading: inputValues)
                output = try await shards.merge(
                    try engine.savedShards(of: stepRun.id, count: files.count), files, context)
                context.setProperty("shards", .int(files.count))
            } else {
                output = try await bound.execute(inputValues, context)
            }
            try Task.checkCancellation()
            let recorded = context.recorded
            if recorded.drewUndeclaredSeed { throw UndeclaredSeedError(step: node.name, kind: node.kind) }
            for (slot, materializer) in zip(node.outputs, materializers) {
                let value = slot.extract(output)
                let stored: StoredContent
                do {
                    stored = try materializer.store(value, in: engine.artifacts)
                } catch {
                    throw ArtifactWriteError(output: slot.name, step: node.name, underlying: error)
                }
                // A file handle points into the scratch directory, removed when the step ends: steps downstream
                // get the stored file instead.
                produced.append(
                    materializer.valuesAreFileHandles
                        ? try materializer.load(stored.uri, from: engine.artifacts) : value)
                var properties = materializer.properties(value)
                properties.merge(recorded.outputProperties[slot.name] ?? [:]) { $1 }
                artifactsOut.append(
                    ArtifactRecord(
                        id: RecordID.make("art"), name: slot.name, typeName: slot.typeName, uri: stored.uri,
                        contentHash: stored.contentHash, size: stored.size, materializer: materializer.identifier,
                        materializerVersion: materializer.version, properties: properties,
                        producerStepRunID: stepRun.id, createdAt: Date()))
            }
            stepRun.status = .completed
            stepRun.endedAt = Date()
            stepRun.properties = recorded.properties.merging(recordedProperties(index)) { $1 }
            sink.close()
            if sink.wasWritten { stepRun.logPath = logURL.path }
            try await engine.metadata.completeStepRun(stepRun, outputs: artifactsOut, metrics: recorded.metrics)
            observer?.stepChanged(node.name, to: .completed(duration: stepRun.duration ?? 0))
            return StepOutcome(node: index, stepRun: stepRun, outputs: artifactsOut, values: produced)
        } catch {
            let isCancellation = error is CancellationError || Task.isCancelled
            stepRun.status = isCancellation ? .cancelled : .failed
            stepRun.error = isCancellation ? "cancelled" : Self.describe(error)
            stepRun.endedAt = Date()
            stepRun.properties = context.recorded.properties.merging(recordedProperties(index)) { $1 }
            if !isCancellation { logger.error("step failed: \(stepRun.error!)") }
            sink.close()
            if sink.wasWritten { stepRun.logPath = logURL.path }
            var storeError: String?
            do {
                let finished = stepRun
                let metrics = context.recorded.metrics
                try await shielded { [metadata = engine.metadata] in
                    try await metadata.finishStepRun(finished, metrics: metrics)
                }
            } catch {
                storeError = "\(error)"
            }
            observer?.stepChanged(node.name, to: isCancellation ? .cancelled : .failed(reason: stepRun.error!))
            return StepOutcome(node: index, stepRun: stepRun, outputs: [], values: nil, storeError: storeError)
        }
    }

    /// Runs one step through `launcher` (in another process) and reads back the record it wrote. A step process
    /// that ended without finishing its record (killed, crashed, refused to start) is recorded here: `failed` with
    /// how it ended and the last lines it printed, or `cancelled` when this run was cancelled. Never throws.
    func runStep(_ index: Int, inputs: Inputs, launcher: any StepLauncher) async -> StepOutcome {
        let node = resolved.pipeline.nodes[index]
        var stepRun = newStepRun(index, inputs: inputs)
        observer?.stepChanged(node.name, to: .running(since: stepRun.startedAt!))
        let outputFile = engine.logDirectory.appending(path: "\(run.id)/\(node.name).out")
        let end = await launcher.launch(
            StepLaunch(runID: run.id, step: node.name, stepRunID: stepRun.id, outputFile: outputFile))
        let metadata = engine.metadata
        do {
            let recorded = try await shielded { [id = stepRun.id] in try await metadata.stepRun(id) }
            if let recorded, recorded.status != .running {
                var outputs: [ArtifactRecord] = []
                if recorded.status.producedOutputs {
                    let byName = try await shielded { [id = recorded.id] in try await metadata.outputs(ofStepRun: id) }
                    for slot in node.outputs {
                        guard let output = byName[slot.name] else {
                            throw StoreFailure(message: "step run \(recorded.id) has no output '\(slot.name)' recorded")
                        }
                        outputs.append(output)
                    }
                }
                switch recorded.status {
                case .completed: observer?.stepChanged(node.name, to: .completed(duration: recorded.duration ?? 0))
                case .cached:
                    let original = try await shielded { [from = recorded.cachedFrom ?? ""] in
                        try await metadata.stepRun(from)
                    }
                    observer?.stepChanged(node.name, to: .cached(from: original?.runID ?? "?"))
                case .cancelled: observer?.stepChanged(node.name, to: .cancelled)
                default: observer?.stepChanged(node.name, to: .failed(reason: recorded.error ?? "\(end)"))
                }
                return StepOutcome(node: index, stepRun: recorded, outputs: outputs, values: nil)
            }
            // The process ended without finishing its record: say how it ended, with its last words.
            let cancelled = Task.isCancelled && end != .exited(0)
            let lastLines = Self.lastLines(of: outputFile, count: 5)
            stepRun.status = cancelled ? .cancelled : .failed
            stepRun.error =
                cancelled
                ? "cancelled"
                : "the step's process \(end)" + (lastLines.isEmpty ? "" : "; its last output:\n\(lastLines)")
            stepRun.endedAt = Date()
            if FileManager.default.fileExists(atPath: outputFile.path) { stepRun.logPath = outputFile.path }
            if let recorded {
                stepRun.startedAt = recorded.startedAt
                stepRun.properties = recorded.properties
                stepRun.logPath = recorded.logPath ?? stepRun.logPath
                try await shielded { [finished = stepRun] in try await metadata.finishStepRun(finished, metrics: []) }
            } else {
                try await shielded { [finished = stepRun, events = inputEvents(stepRun.id, inputs)] in
                    try await metadata.insert(finished, inputs: events)
                }
            }
            observer?.stepChanged(node.name, to: cancelled ? .cancelled : .failed(reason: stepRun.error!))
            return StepOutcome(node: index, stepRun: stepRun, outputs: [], values: nil)
        } catch {
            stepRun.status = .failed
            stepRun.error = "metadata store: \(error)"
            stepRun.endedAt = Date()
            observer?.stepChanged(node.name, to: .failed(reason: stepRun.error!))
            return StepOutcome(node: index, stepRun: stepRun, outputs: [], values: nil, storeError: "\(error)")
        }
    }

    /// The last `count` non-empty lines of a text file (a step process's output), or "" when there is none.
    static func lastLines(of file: URL, count: Int) -> String {
        guard let handle = try? FileHandle(forReadingFrom: file) else { return "" }
        defer { try? handle.close() }
        let size = (try? handle.seekToEnd()) ?? 0
        try? handle.seek(toOffset: size > 4096 ? size - 4096 : 0)
        let text = String(decoding: (try? handle.readToEnd()) ?? Data(), as: UTF8.self)
        return text.split(separator: "\n").suffix(count).map { "    " + $0 }.joined(separator: "\n")
    }

    /// The outputs of an earlier completed step run with this key, if they are all still in the store.
    func cachedOutputs(for key: CacheKey, node: StepNode) async throws -> (stepRun: StepRun, outputs: [ArtifactRecord])?
    {
        guard let hit = try await engine.metadata.cacheHit(for: key) else { return nil }
        return available(hit, node: node)
    }

    /// A cache hit's outputs in `node`'s order, if they are all still in the artifact store.
    func available(_ hit: CacheHit, node: StepNode) -> (stepRun: StepRun, outputs: [ArtifactRecord])? {
        var records: [ArtifactRecord] = []
        for slot in node.outputs {
            guard let record = hit.outputs[slot.name], engine.artifacts.contains(uri: record.uri) else { return nil }
            records.append(record)
        }
        return (hit.stepRun, records)
    }

    func load(_ record: ArtifactRecord, edge: InputEdge) throws -> any Sendable {
        let producer = resolved.pipeline.nodes[edge.node]
        guard let slot = producer.outputs.firstIndex(where: { $0.name == edge.output }) else {
            preconditionFailure("validated pipeline has no output \(edge.output)")
        }
        do {
            return try resolved.materializers[edge.node][slot].load(record.uri, from: engine.artifacts)
        } catch {
            throw ArtifactReadError(artifact: record, underlying: error)
        }
    }

    static func describe(_ error: Error) -> String {
        if let error = error as? LocalizedError, let text = error.errorDescription { return text }
        return String(describing: error)
    }
}

/// Runs `body` even when the current task is cancelled: the records of a cancelled run must still be
/// written, and stores (GRDB's async API among them) refuse work from a cancelled task.
func shielded<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
    if Task.isCancelled {
        try await Task { try await body() }.value
    } else {
        try await body()
    }
}

/// A step that declares `usesRunSeed = false` drew from the run seed: its output would change with the seed while
/// its cache key would not.
public struct UndeclaredSeedError: Error, CustomStringConvertible {
    /// The step's name in the pipeline.
    public var step: String
    /// Its type.
    public var kind: String
}

/// A metadata store failure that stopped a run.
public struct StoreFailure: Error, CustomStringConvertible {
    /// What the store said.
    public var message: String
    public var description: String { "the metadata store failed: \(message)" }
}

/// An output that could not be written to the artifact store.
public struct ArtifactWriteError: Error, CustomStringConvertible {
    public var output: String
    public var step: String
    public var underlying: Error
    public var description: String { "while saving artifact '\(output)' of step '\(step)': \(underlying)" }
}

/// An input artifact that could not be read back.
public struct ArtifactReadError: Error, CustomStringConvertible {
    public var artifact: ArtifactRecord
    public var underlying: Error
}
