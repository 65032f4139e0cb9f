import ArgumentParser
import Dispatch
import Foundation
import SluiceComponents
import SluiceCore
import SluiceFeatures
import SluiceML
import SluiceOrchestrators
import Synchronization

/// `sluice run`: runs a pipeline in this process.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a pipeline.",
        discussion: """
            Steps whose inputs are ready run concurrently. Unchanged steps are reused from the cache.
            Examples:
              sluice run prices
              sluice run prices --config run.yaml --set split.eval_fraction=0.3
              sluice run prices --print-config > run.yaml
              sluice run pipeline.yaml --set train.rounds=50     (a YAML pipeline of built-in components)
              sluice run --components                             (the components a YAML pipeline can use)
            """)

    @Argument(help: "The pipeline to run, or a YAML pipeline file (optional when the executable has only one).")
    var pipeline: String?

    @Flag(help: "List the built-in components YAML pipelines can use, with their inputs and outputs.")
    var components = false

    @Option(name: .shortAndLong, help: "A YAML run config: step parameters, caching, parallelism, seed, stack.")
    var config: String?

    @Option(
        name: .customLong("set"),
        help: ArgumentHelp("Override a setting: STEP.PARAM=VALUE, or parallelism=N, seed=N…", valueName: "key=value"))
    var overrides: [String] = []

    @Flag(name: .customLong("no-cache"), help: "Run every step, reusing nothing from earlier runs.")
    var noCache = false

    @Option(name: .shortAndLong, help: "How many steps may run at once (default: one per core).")
    var parallelism: Int?

    @Flag(help: "Print the fully resolved run config and exit without running.")
    var printConfig = false

    @Flag(help: "Print the run's record as JSON when it ends, instead of the summary.")
    var json = false

    @Flag(help: "On a Slurm stack: submit the run, print its ID and return; `sluice runs wait RUN` follows it.")
    var detach = false

    @OptionGroup var stackOption: StackOption

    func run() async throws {
        if components {
            for entry in ComponentCatalog.entries {
                print("\(entry.name): \(entry.summary)")
                print(
                    "  inputs:  \(entry.inputs.map { "\($0.name) (\($0.typeName)\($0.isOptional ? ", optional" : ""))" }.joined(separator: ", "))"
                )
                print("  outputs: \(entry.outputs.map { "\($0.name) (\($0.typeName))" }.joined(separator: ", "))")
            }
            return
        }
        let request = PipelineRequest(pipeline: pipeline, configPath: config, overrides: overrides)
        if let parallelism, parallelism < 1 { throw ValidationError("--parallelism must be at least 1.") }
        let (workspace, pipeline, runConfig) = try await request.open(stack: stackOption.name) { [stackOption] config in
            if noCache { config.cache = false }
            if let parallelism { config.parallelism = parallelism }
            if detach {
                // Checked before the pipeline is built: nothing is read or recorded for a run that cannot detach.
                let (name, settings) =
                    try Project.find()?.stack(named: stackOption.name, overrides: config.stack)
                    ?? ("local", StackFile.defaults.overlaid(with: config.stack))
                guard Orchestrators.detaching.contains(settings.orchestrator ?? "in_process") else {
                    throw ValidationError(
                        "--detach is for stacks whose orchestrator is "
                            + Orchestrators.detaching.sorted().joined(separator: " or ")
                            + "; stack '\(name)' runs steps "
                            + "\(settings.orchestrator ?? "in_process"), which ends with this command.")
                }
            }
        }
        let engine = workspace.engine(pipelineFile: request.yamlFile)
        let resolved = try engine.resolve(pipeline, config: runConfig)
        if printConfig {
            print(resolved.configYAML, terminator: "")
            return
        }
        if let note = Self.resourcesNote(runConfig, stack: workspace.stack) { printError(note) }
        if detach,
            let submission = try await engine.orchestrator.submit(
                resolved, engine: engine, trigger: .manual, observer: nil)
        {
            await workspace.stack.close()
            print(submission.run.id)
            let file = request.yamlFile.map { " --file \($0)" } ?? ""
            if submission.jobs.isEmpty {
                printError("run \(submission.run.id) \(submission.run.status.rawValue): every step was in the cache")
            } else {
                printError(
                    "submitted run \(submission.run.id): \(submission.jobs.count) \(engine.orchestrator.name) jobs "
                        + "(\(submission.jobs.map { "\($0.step)=\($0.job)" }.joined(separator: " "))), "
                        + "\(submission.cachedSteps.count) steps from the cache. Follow it with "
                        + "`sluice runs wait \(submission.run.id)\(file)`; cancel it with "
                        + "`sluice runs cancel \(submission.run.id)\(file)`.")
            }
            return
        }

        let result = try await Self.runWithProgress(engine, resolved)
        if json {
            print(try jsonString(result.run))
        } else {
            Self.printSummary(result, workspace: workspace)
        }
        try Self.requireCompleted(result.run)
    }

    /// Returns for a completed run; otherwise ends the command with the status that says how it ended: 130
    /// cancelled (Ctrl-C), 1 failed or crashed.
    static func requireCompleted(_ run: Run) throws {
        switch run.status {
        case .completed: return
        case .cancelled: throw ExitCode(ExitStatus.interrupted.rawValue)
        default: throw ExitCode(ExitStatus.failed.rawValue)
        }
    }

    /// Builds a YAML pipeline over the workspace's stack: register steps compare with the production version in the
    /// same store the run records in.
    static func build(_ yaml: YAMLPipeline, config: RunConfig, workspace: Workspace) async throws -> Pipeline {
        var baselines: [String: Baseline] = [:]
        let registered = yaml.registeredModels(config: config)
        for (step, model) in registered {
            baselines[step] = try await Baseline.production(
                of: model, registry: workspace.metadata, artifacts: workspace.artifacts)
        }
        // Schema and validate steps hold new data to what the production model was trained on (one model per
        // pipeline: with several register steps there is no single "production" to compare with).
        let models = Set(registered.values)
        let reference =
            models.count == 1
            ? try await TrainingReference.production(
                of: models.first!, registry: workspace.metadata, artifacts: workspace.artifacts) : nil
        // Model steps read the version their reference names now; its bundle's hash is their cache fingerprint.
        var scoringModels: [String: Result<(ScoringModel, String), ComponentError>] = [:]
        for (step, reference) in yaml.scoringReferences(config: config) {
            scoringModels[step] = await LoadModel.resolve(
                reference, registry: workspace.metadata, artifacts: workspace.artifacts)
        }
        // Feature joins read the project's feature definitions and sources now; their versions are the steps'
        // cache fingerprints.
        var featureJoins: [String: Result<PreparedJoin, ComponentError>] = [:]
        for (step, service) in yaml.featureJoinServices(config: config) {
            featureJoins[step] = await FeatureJoin.prepare(
                service: service, root: workspace.project.root,
                cache: workspace.project.directory.appending(path: "features"), metadata: workspace.metadata,
                artifacts: workspace.artifacts)
        }
        // A bundle evaluated on rows from a feature join records the service, so `sluice serve` takes entity keys.
        var servingFeatures: [String: FeatureServiceSignature] = [:]
        for (evaluate, join) in yaml.featureJoinFeeding() {
            if case .success(let prepared)? = featureJoins[join] {
                servingFeatures[evaluate] = FeatureJoin.servingSignature(prepared)
            }
        }
        return try yaml.build(
            context: ComponentContext(
                registry: workspace.metadata, baselines: baselines, reference: reference, scoringModels: scoringModels,
                artifacts: workspace.artifacts, featureJoins: featureJoins, servingFeatures: servingFeatures))
    }

    /// Runs a resolved pipeline with live per-step progress on standard error and Ctrl-C cancelling it.
    static func runWithProgress(
        _ engine: RunEngine, _ resolved: ResolvedPipeline, trigger: RunTrigger = .manual
    ) async throws -> RunResult {
        let terminal = Terminal.standardError
        let reporter = RunReporter(terminal: terminal)
        // The handler is in place before any step starts, so an early Ctrl-C is never lost.
        let cancellation = CancellationLatch()
        let interrupts = InterruptHandler {
            printError(terminal.paint("\n■ cancelling the run… (press Ctrl-C again to stop at once)", .yellow))
            cancellation.cancel()
        }
        let task = Task { try await engine.run(resolved, trigger: trigger, observer: reporter) }
        cancellation.attach { task.cancel() }
        let ticker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(100))
                reporter.tick()
            }
        }
        defer {
            ticker.cancel()
            interrupts.stop()
        }
        let result = try await task.value
        ticker.cancel()
        return result
    }

    /// How many steps ended which way: `3 done, 6 cached`.
    static func stepCounts(_ result: RunResult) -> String {
        var counts: [StepRunStatus: Int] = [:]
        for stepRun in result.stepRuns { counts[stepRun.status, default: 0] += 1 }
        return [StepRunStatus.completed, .cached, .failed, .skipped, .cancelled].compactMap { status -> String? in
            guard let n = counts[status], n > 0 else { return nil }
            return "\(n) \(status == .completed ? "done" : status.rawValue)"
        }.joined(separator: ", ")
    }

    static func printSummary(_ result: RunResult, workspace: Workspace) {
        let t = Terminal.standardOutput
        let run = result.run
        let mark: String
        switch run.status {
        case .completed: mark = t.paint("✔", .green, .bold)
        case .cancelled: mark = t.paint("■", .yellow, .bold)
        default: mark = t.paint("✘", .red, .bold)
        }
        print(
            "\(mark) run \(t.paint(run.id, .bold)) \(run.status.rawValue) in \(formatDuration(run.duration)): \(stepCounts(result))"
        )
        if let error = run.error, run.status != .completed { print("  \(t.paint("reason:", .bold)) \(error)") }
        print("  records:   \(workspace.display(workspace.metadataLocation))  →  sluice runs show \(run.id)")
        print(
            "  artifacts: \(workspace.display(workspace.artifacts.root.path))  →  sluice artifacts list --run \(run.id)"
        )
        if let failed = result.stepRuns.first(where: { $0.status == .failed }), let log = failed.logPath {
            print("  log of '\(failed.stepName)': \(workspace.display(log))")
        }
    }
}

/// Remembers a cancellation request made before there was anything to cancel.
final class CancellationLatch: Sendable {
    private let state = Mutex<(requested: Bool, action: (@Sendable () -> Void)?)>((false, nil))

    func cancel() {
        let action = state.withLock { state -> (@Sendable () -> Void)? in
            state.requested = true
            return state.action
        }
        action?()
    }

    func attach(_ action: @escaping @Sendable () -> Void) {
        let requested = state.withLock { state -> Bool in
            state.action = action
            return state.requested
        }
        if requested { action() }
    }
}

/// Turns the first Ctrl-C (SIGINT) or SIGTERM (from an orchestrator, a scheduler, `kill`) into a callback and the
/// second into an immediate exit.
final class InterruptHandler: @unchecked Sendable {
    // @unchecked: the signal sources are only resumed at init and cancelled once in stop().
    private let sources: [any DispatchSourceSignal]
    private static let signals = [SIGINT, SIGTERM]

    init(onFirst: @escaping @Sendable () -> Void) {
        let count = Counter()
        let queue = DispatchQueue(label: "sluice.signals")
        sources = Self.signals.map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler {
                if count.increment() == 1 { onFirst() } else { exit(130) }
            }
            source.resume()
            return source
        }
    }

    func stop() {
        for source in sources { source.cancel() }
        for number in Self.signals { signal(number, SIG_DFL) }
    }

    private final class Counter: @unchecked Sendable {
        // Only touched on the signal sources' handlers, which run one at a time on one serial queue.
        private var value = 0
        func increment() -> Int {
            value += 1
            return value
        }
    }
}

/// A pipeline as the command line names it (compiled into this executable, or a YAML file of built-in components)
/// with its run config; built afresh on every call, so each run of a trigger compares with the registry as it is.
struct PipelineRequest {
    /// The pipeline's name, a YAML file, or nil for the executable's only pipeline.
    var pipeline: String?
    /// `--config FILE` (not with a YAML pipeline, which is its own run config).
    var configPath: String?
    /// `--set KEY=VALUE`, applied in order.
    var overrides: [String]

    /// The YAML pipeline file's path, when the pipeline is one.
    var yamlFile: String? {
        guard let pipeline, pipeline.hasSuffix(".yaml") || pipeline.hasSuffix(".yml") else { return nil }
        return pipeline
    }

    /// Reads the YAML pipeline (if it is one) and the run config with every override applied.
    func load() throws -> (yaml: YAMLPipeline?, config: RunConfig) {
        let yaml = try yamlFile.map { try YAMLPipeline.load(contentsOf: URL(fileURLWithPath: $0)) }
        var runConfig = yaml?.config ?? RunConfig()
        if let configPath {
            guard yaml == nil else {
                throw CLIError(
                    problem: "--config cannot be combined with a YAML pipeline: the pipeline file is its run config.",
                    fix: "put the settings in the pipeline file, or override them with --set.")
            }
            runConfig = try RunConfig.load(contentsOf: URL(fileURLWithPath: configPath))
        }
        try runConfig.apply(overrides: overrides)
        return (yaml, runConfig)
    }

    /// Loads the request (`adjust` changes the run config before anything opens), opens the project's stack
    /// (making the project when there is none) and builds the pipeline over it; the stack is closed again when the
    /// pipeline does not build.
    func open(stack name: String?, adjusting adjust: (inout RunConfig) throws -> Void = { _ in })
        async throws -> (workspace: Workspace, pipeline: Pipeline, config: RunConfig)
    {
        var (yaml, config) = try load()
        try adjust(&config)
        let workspace = try await Workspace.open(
            create: true, stack: name, stackOverrides: config.stack, durability: config.durability)
        do {
            return (workspace, try await build(yaml, config: config, workspace: workspace), config)
        } catch {
            await workspace.stack.close()
            throw error
        }
    }

    /// The pipeline: a YAML one built over the workspace's registry, or the compiled one of that name.
    func build(_ yaml: YAMLPipeline?, config: RunConfig, workspace: Workspace) async throws -> Pipeline {
        if let yaml { return try await RunCommand.build(yaml, config: config, workspace: workspace) }
        return try Self.select(pipeline)
    }

    /// The compiled pipeline named `pipeline`, or the only one when no name is given.
    static func select(_ pipeline: String?) throws -> Pipeline {
        let pipelines = Catalog.pipelines
        if let name = pipeline {
            if let found = pipelines.first(where: { $0.name == name }) { return found }
            let names = pipelines.map(\.name)
            let guess = names.closest(to: name).map { " Did you mean '\($0)'?" } ?? ""
            throw CLIError(
                problem: "this executable has no pipeline named '\(name)'.\(guess)",
                fix: names.isEmpty
                    ? "build your own executable with `Sluice.main(pipelines: [...])`."
                    : "run one of: \(names.joined(separator: ", ")) (see `sluice pipelines list`).")
        }
        guard pipelines.count == 1 else {
            throw CLIError(
                problem: pipelines.isEmpty
                    ? "this executable has no pipelines compiled in."
                    : "this executable has several pipelines; say which one to run.",
                fix: pipelines.isEmpty
                    ? "build your own executable with `Sluice.main(pipelines: [...])`, or run an example: `swift run sluice-example run`."
                    : "run `sluice run NAME` with one of: \(pipelines.map(\.name).joined(separator: ", ")).")
        }
        return pipelines[0]
    }
}

extension RunCommand {
    /// The note for a run config asking for Slurm resources on a stack that does not run steps on Slurm (they do
    /// not apply there), or nil.
    static func resourcesNote(_ config: RunConfig, stack: Stack) -> String? {
        guard !stack.orchestrator.usesStepResources,
            let step = config.steps.filter({ $0.value.resources != nil }).keys.sorted().first
        else { return nil }
        return "note: steps.\(step).resources asks a Slurm cluster for resources, but stack '\(stack.name)' runs "
            + "steps \(stack.orchestrator.name) on this machine, which ignores them (use a stack with "
            + "`orchestrator: slurm` to apply them)."
    }
}
