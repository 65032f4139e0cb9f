import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Decides where and when a ready step run executes: in this process, in a child process, in a container, as a
/// cluster's job. The run engine owns everything else (resolving, caching, inputs, outputs, records); an
/// orchestrator only starts a step run, observes it end, and stops it when asked.
///
/// Most orchestrators implement ``execute(_:)`` alone: the engine's scheduler hands them each ready step run that
/// is not a cache hit, up to the run's parallelism. One that hands a whole run to a scheduler of its own (a
/// cluster's queue, whose jobs wait on each other) implements ``run(_:engine:trigger:observer:)`` and
/// ``submit(_:engine:trigger:observer:)`` instead; the rest of the protocol has defaults that fit orchestrators
/// whose runs end with the process that started them. The in-process one is ``InProcessOrchestrator``; the
/// others live in the `SluiceOrchestrators` module, built by `Stack.open` from the stack file.
public protocol Orchestrator: Sendable {
    /// Its name as a stack file's `orchestrator:` writes it; a run it owns beyond this process records it.
    var name: String { get }

    /// Whether ready step runs execute as tasks of this process (their values then pass to the steps downstream in
    /// memory, and the engine records a step run started in the same store call that missed the cache).
    var runsStepsHere: Bool { get }

    /// Whether it places steps by what their run config asks (`steps.STEP.resources`); others run them on this
    /// machine, which ignores that.
    var usesStepResources: Bool { get }

    /// Checks it can start steps (a container's image, a cluster's commands), before a run is recorded.
    func prepare() async throws

    /// Executes one ready step run that is not a cache hit, and returns once it has ended. In this process:
    /// `step.runHere()`. Elsewhere: start ``ReadyStep/launch`` (`COMMAND step run --run … --step … --step-run …`)
    /// and wait for it; the engine then reads the record the step process wrote. Cancelling the calling task
    /// stops the step.
    func execute(_ step: ReadyStep) async -> StepExecution

    /// Takes a whole run instead of its steps one by one, and returns its records when it has ended; `nil` (the
    /// default): the engine's scheduler runs it here through ``execute(_:)``.
    func run(_ resolved: ResolvedPipeline, engine: RunEngine, trigger: RunTrigger, observer: (any RunObserver)?)
        async throws -> RunResult?

    /// Hands a run over and returns without waiting for it (`sluice run --detach`); `nil` (the default) when runs
    /// end with the process that started them.
    func submit(_ resolved: ResolvedPipeline, engine: RunEngine, trigger: RunTrigger, observer: (any RunObserver)?)
        async throws -> RunSubmission?

    /// Follows a run it was handed until it ends, reporting its steps to `observer`. With `cancelsRun`, cancelling
    /// the calling task cancels the run. The default only reads the run's records until the run ends: cancelling
    /// the calling task stops the following and leaves the run to the process that runs it.
    func follow(
        _ runID: RunID, pipeline: Pipeline?, engine: RunEngine, observer: (any RunObserver)?, cancelsRun: Bool
    ) async throws -> RunResult

    /// Cancels a run it was handed and ends its record; `nil` (the default) when its runs are stopped through the
    /// process that started them.
    func cancel(_ runID: RunID, pipeline: Pipeline, engine: RunEngine) async throws -> Run?

    /// The jobs of a run it was handed that are still waiting or running, as its scheduler reports them (for
    /// `runs show`); none by default.
    func jobs(of runID: RunID) async throws -> [OrchestratorJob]

    /// One line saying where a run it was handed executes (`Slurm jobs named …`), for `runs show`.
    func placementSummary(of runID: RunID) -> String?

    /// The step run as the orchestrator ended it, when its record does not tell (a cluster killed its job at the
    /// time limit, its process died without a word); `nil` by default and when the record is right.
    func reportedEnd(of stepRun: StepRun) async -> StepRun?

    /// Step properties saying where a step ran (a job, an image): never carried over to a cache hit's record, and
    /// the first one is shown as its job by `runs show`.
    var placementProperties: [String] { get }

    /// What a step process records about where it runs, read from its environment (a job ID, an image).
    func placement(environment: [String: String]) -> [String: PropertyValue]
}

extension Orchestrator {
    public var runsStepsHere: Bool { false }
    public var usesStepResources: Bool { false }
    public func prepare() async throws {}
    public func run(
        _ resolved: ResolvedPipeline, engine: RunEngine, trigger: RunTrigger, observer: (any RunObserver)?
    ) async throws -> RunResult? { nil }
    public func submit(
        _ resolved: ResolvedPipeline, engine: RunEngine, trigger: RunTrigger, observer: (any RunObserver)?
    ) async throws -> RunSubmission? { nil }
    public func follow(
        _ runID: RunID, pipeline: Pipeline?, engine: RunEngine, observer: (any RunObserver)?, cancelsRun: Bool
    ) async throws -> RunResult {
        try await engine.follow(runID, observer: observer)
    }
    public func cancel(_ runID: RunID, pipeline: Pipeline, engine: RunEngine) async throws -> Run? { nil }
    public func jobs(of runID: RunID) async throws -> [OrchestratorJob] { [] }
    public func placementSummary(of runID: RunID) -> String? { nil }
    public func reportedEnd(of stepRun: StepRun) async -> StepRun? { nil }
    public var placementProperties: [String] { [] }
    public func placement(environment: [String: String]) -> [String: PropertyValue] { [:] }
}

/// Steps run as tasks of the process that started the run, concurrently up to the run's parallelism.
public struct InProcessOrchestrator: Orchestrator {
    /// Creates it.
    public init() {}
    public var name: String { "in_process" }
    public var runsStepsHere: Bool { true }
    public func execute(_ step: ReadyStep) async -> StepExecution { await step.runHere() }
}

/// A step run the scheduler found ready (its inputs are recorded) and not in the cache.
public struct ReadyStep: Sendable {
    /// How to start it in another process: the run, the step, the ID its record goes under, where its output goes,
    /// and the command line.
    public let launch: StepLaunch
    /// What the run config asks for it (`steps.STEP.resources`), for orchestrators that place steps by it.
    public let resources: StepResources?
    let body: @Sendable () async -> StepRunner.StepOutcome

    /// Runs the step in this process: inputs, the step's body, outputs and record, as ``InProcessOrchestrator``
    /// does.
    public func runHere() async -> StepExecution { StepExecution(.here(await body())) }
}

/// How an orchestrator's execution of a ready step run ended.
public struct StepExecution: Sendable {
    enum Kind: Sendable {
        case here(StepRunner.StepOutcome)
        case elsewhere(StepProcessEnd)
    }
    let kind: Kind

    init(_ kind: Kind) { self.kind = kind }

    /// It ran in another process, which ended like this; its record is read back from the metadata store.
    public static func elsewhere(_ end: StepProcessEnd) -> StepExecution { StepExecution(.elsewhere(end)) }
}

/// One step run to start in another process: `COMMAND… step run --run RUN --step STEP --step-run ID ARGUMENTS…`.
public struct StepLaunch: Sendable, Equatable {
    /// The recorded run the step belongs to.
    public var runID: RunID
    /// The step's name in the pipeline.
    public var step: String
    /// The ID the step run's record is written under.
    public var stepRunID: String
    /// Where the step process's own standard output and error go.
    public var outputFile: URL
    /// The executable that has the pipeline and the arguments before `step run`, and the arguments after the
    /// step's own (`--file`, `--stack`, `--set stack.KEY=VALUE`), and variables for its environment.
    public var command: StepCommandLine

    /// Creates a request.
    public init(
        runID: RunID, step: String, stepRunID: String, outputFile: URL,
        command: StepCommandLine = StepCommandLine()
    ) {
        self.runID = runID
        self.step = step
        self.stepRunID = stepRunID
        self.outputFile = outputFile
        self.command = command
    }

    /// The whole command line: `EXECUTABLE… step run --run RUN --step STEP --step-run ID ARGUMENTS…`.
    public var arguments: [String] {
        command.executable + ["step", "run", "--run", runID, "--step", step, "--step-run", stepRunID]
            + command.arguments
    }
}

/// How a process that runs one step run of this engine's runs is started: the executable that has the pipeline
/// (`sluice` for YAML pipelines) and its leading arguments, the arguments that select the pipeline file and the
/// stack, and the environment that finds the project.
public struct StepCommandLine: Sendable, Equatable {
    /// The executable as an absolute path, and any arguments before its `step run` command.
    public var executable: [String]
    /// Arguments after the step's own: `--file` for a YAML pipeline, `--stack`, `--set stack.KEY=VALUE`.
    public var arguments: [String]
    /// Variables set in the step process's environment on top of this process's (`SLUICE_PROJECT`).
    public var environment: [String: String]

    /// Creates a command line; the running executable by default.
    public init(
        executable: [String] = [StepCommandLine.currentExecutable], arguments: [String] = [],
        environment: [String: String] = [:]
    ) {
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
    }

    /// The absolute path of the running executable.
    public static var currentExecutable: String {
        RunEnvironment.executablePath() ?? URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.path
    }

    /// The YAML pipeline file the arguments name (`--file PATH`), if any.
    public var pipelineFile: String? {
        zip(arguments, arguments.dropFirst()).first { $0.0 == "--file" }?.1
    }
}

/// How a step's process ended.
public enum StepProcessEnd: Sendable, Equatable, CustomStringConvertible {
    /// It exited with this status (0 done or cached, 1 failed, 2 could not start the step, 130 cancelled).
    case exited(Int32)
    /// A signal ended it.
    case signalled(Int32)
    /// It could not be started at all.
    case notStarted(String)

    public var description: String {
        switch self {
        case .exited(let status): "exited with status \(status)"
        case .signalled(let signal): "was killed by signal \(signal) (\(Self.signalName(signal)))"
        case .notStarted(let reason): "could not be started: \(reason)"
        }
    }

    static func signalName(_ signal: Int32) -> String {
        let names: [Int32: String] = [
            SIGKILL: "SIGKILL", SIGTERM: "SIGTERM", SIGINT: "SIGINT", SIGSEGV: "SIGSEGV", SIGABRT: "SIGABRT",
            SIGBUS: "SIGBUS", SIGILL: "SIGILL", SIGTRAP: "SIGTRAP", SIGFPE: "SIGFPE", SIGHUP: "SIGHUP",
            SIGPIPE: "SIGPIPE", SIGQUIT: "SIGQUIT",
        ]
        return names[signal] ?? "signal \(signal)"
    }
}

/// A run handed to an orchestrator's own scheduler: its record, the job of each step that was submitted, and the
/// steps settled from the cache at submission (no job).
public struct RunSubmission: Sendable {
    /// The run's record.
    public var run: Run
    /// `(step, job ID)` in submission order.
    public var jobs: [(step: String, job: String)]
    /// The job that ends the run, when any step was submitted.
    public var finishJob: String?
    /// The steps reused from the cache without a job.
    public var cachedSteps: [String]

    /// Creates a submission.
    public init(run: Run, jobs: [(step: String, job: String)], finishJob: String?, cachedSteps: [String]) {
        self.run = run
        self.jobs = jobs
        self.finishJob = finishJob
        self.cachedSteps = cachedSteps
    }
}

/// A job of a run as an orchestrator's scheduler reports it: waiting or running.
public struct OrchestratorJob: Sendable, Equatable {
    /// The job's ID.
    public var id: String
    /// The step it runs (or what else it does: ending the run).
    public var step: String
    /// Its state as the scheduler writes it (`PENDING`, `RUNNING`).
    public var state: String
    /// Why it waits, when it does.
    public var reason: String?
    /// Whether it is the job that ends the run rather than a step's.
    public var endsRun: Bool

    /// Creates a job.
    public init(id: String, step: String, state: String, reason: String? = nil, endsRun: Bool = false) {
        self.id = id
        self.step = step
        self.state = state
        self.reason = reason
        self.endsRun = endsRun
    }
}
