import Foundation
import SluiceCore
import Synchronization

/// Every step run that is not a cache hit at submission is a Slurm batch job, with dependencies mirroring the
/// pipeline's; the run goes on on the cluster without the process that submitted it.
///
/// One batch job per step run, `BINARY step run --run RUN --step STEP --step-run ID …`, each depending (`afterok`,
/// with `--kill-on-invalid-dep=yes`) on the jobs of the steps it reads from, and one last job, `BINARY runs finish
/// RUN`, that runs after all of them whatever happened (`afterany`) and ends the run's record. Every job of a run
/// is called `sluice-RUN` and carries its step's name as its comment, so `squeue --name` finds them. A sharded step
/// becomes a job array (one task per file) and a merge job.
public struct SlurmOrchestrator: Orchestrator {
    /// The stack's `slurm:` settings: the account and the resources a step gets when its run config does not say.
    public var settings: SlurmSettings
    /// The jobs' working directory (the project's root).
    public var directory: URL
    /// Where each job's own output goes: `<logs>/<run>/<step>.out`.
    public var logDirectory: URL
    /// How often a process following a run reads its records.
    public var poll: Duration
    /// The Slurm commands.
    public var client: SlurmClient

    /// Creates the orchestrator.
    public init(
        settings: SlurmSettings, directory: URL, logDirectory: URL, poll: Duration = .milliseconds(250),
        client: SlurmClient = SlurmClient()
    ) {
        self.settings = settings
        self.directory = directory
        self.logDirectory = logDirectory
        self.poll = poll
        self.client = client
    }

    public var name: String { "slurm" }
    public var usesStepResources: Bool { true }

    /// Never called: ``run(_:engine:trigger:observer:)`` hands the whole run to Slurm.
    public func execute(_ step: ReadyStep) async -> StepExecution {
        .elsewhere(.notStarted("the slurm orchestrator submits whole runs, not single steps"))
    }

    public var placementProperties: [String] { [Self.jobProperty] }

    /// Inside a Slurm job the step run records its job, which `runs show` and `runs finish` read.
    public func placement(environment: [String: String]) -> [String: PropertyValue] {
        guard let job = environment["SLURM_JOB_ID"], !job.isEmpty else { return [:] }
        return [Self.jobProperty: .string(job)]
    }

    public func placementSummary(of runID: RunID) -> String? {
        "Slurm jobs named \(Self.jobName(runID)) (`squeue --name` lists them)"
    }

    public func jobs(of runID: RunID) async throws -> [OrchestratorJob] {
        try await client.queuedJobs(named: Self.jobName(runID)).map {
            OrchestratorJob(
                id: $0.id, step: $0.step, state: $0.state, reason: $0.reason, endsRun: $0.step == Self.finishComment)
        }
    }

    /// The name of every job of run `run`.
    public static func jobName(_ run: RunID) -> String { "sluice-\(run)" }

    /// The comment of the job that ends a run.
    public static let finishComment = "runs finish"

    /// The step property holding the Slurm job a step run ran in (from `SLURM_JOB_ID`).
    public static let jobProperty = "slurm.job_id"

    /// The options every job of run `run` gets: its name, working directory, output file and account.
    func commonOptions(run: RunID, comment: String, output: URL) -> [String] {
        var options = [
            "--job-name=\(Self.jobName(run))", "--comment=\(comment)", "--chdir=\(directory.path)",
            "--output=\(output.path)", "--open-mode=append",
        ]
        if let account = settings.account { options.append("--account=\(account)") }
        return options
    }
}

extension SlurmOrchestrator {
    /// Runs `resolved` on Slurm: submits it, then follows it until it ends. Cancelling the calling task cancels
    /// the run's jobs.
    public func run(
        _ resolved: ResolvedPipeline, engine: RunEngine, trigger: RunTrigger, observer: (any RunObserver)?
    ) async throws -> RunResult? {
        let submission = try await submit(resolved, engine: engine, trigger: trigger, observer: observer)!
        let result = try await follow(
            submission.run.id, pipeline: resolved.pipeline, engine: engine, observer: observer, cancelsRun: true)
        observer?.runFinished(result)
        return result
    }

    /// Records a run and submits its steps to Slurm, then returns: the run goes on on the cluster whether or not
    /// this process stays. Steps whose inputs are all settled and whose outputs are in the cache are recorded
    /// `cached` here and never become jobs; when every step is, no job is submitted and the run ends at once.
    /// - Throws: ``SlurmClient/CommandError`` when `sbatch` refuses a job (the jobs already submitted are
    ///   cancelled and the run is recorded failed with Slurm's words), or a store error.
    public func submit(
        _ resolved: ResolvedPipeline, engine: RunEngine, trigger: RunTrigger, observer: (any RunObserver)?
    ) async throws -> RunSubmission? {
        let slurm = self
        let metadata = engine.metadata
        let stepCommand = engine.stepCommand
        let pipeline = resolved.pipeline
        let nodes = pipeline.nodes
        // Nothing is recorded for a run that cannot be submitted from here at all.
        if ExternalCommand.find("sbatch") == nil { _ = try await slurm.client.run("sbatch", ["--version"]) }
        let run = try await engine.register(resolved, orchestrator: name, trigger: trigger)
        observer?.runStarted(run, steps: pipeline.stepNames)
        for name in pipeline.stepNames { observer?.stepChanged(name, to: .queued) }
        let runner = StepRunner(engine: engine, resolved: resolved, run: run, observer: observer)

        // Settle cache hits in DAG order; a step downstream of one that must run is submitted.
        var outputs = [[String: ArtifactRecord]?](repeating: nil, count: nodes.count)
        var consumers = [[Int]](repeating: [], count: nodes.count)
        for (index, node) in nodes.enumerated() {
            for producer in Set(node.inputs.map(\.node)) { consumers[producer].append(index) }
        }
        var cached: [CachedStepRun] = []
        var cachedSteps: [String] = []
        var toSubmit: [Int] = []
        for index in pipeline.topologicalOrder {
            let node = nodes[index]
            if node.inputs.allSatisfy({ outputs[$0.node] != nil }) {
                let inputs: StepRunner.Inputs = node.inputs.map { ($0, outputs[$0.node]![$0.output]!, nil) }
                if case .settled(let reused, let record) = await runner.reuse(index, inputs: inputs) {
                    if let error = reused.storeError { throw StoreFailure(message: error) }
                    if let record { cached.append(record) }
                    outputs[index] = Dictionary(uniqueKeysWithValues: reused.outputs.map { ($0.name, $0) })
                    cachedSteps.append(node.name)
                    continue
                }
            }
            toSubmit.append(index)
        }
        try await metadata.insertCachedStepRuns(cached)
        guard !toSubmit.isEmpty else {
            let finished = try await engine.finishRegistered(run.id, pipeline: pipeline)
            return RunSubmission(run: finished, jobs: [], finishJob: nil, cachedSteps: cachedSteps)
        }

        let runLogs = slurm.logDirectory.appending(path: run.id)
        try FileManager.default.createDirectory(at: runLogs, withIntermediateDirectories: true)
        var environment = stepCommand.environment
        environment["NO_COLOR"] = "1"
        var jobs: [Int: String] = [:]
        var submitted: [(step: String, job: String)] = []
        do {
            for index in toSubmit {
                let node = nodes[index]
                var upstream = Set(node.inputs.map(\.node)).compactMap { jobs[$0] }.sorted()
                let resources = slurm.settings.resources.overlaid(
                    with: resolved.config.steps[node.name]?.resources ?? StepResources())
                let stepRunID = RecordID.make("step")
                let base =
                    stepCommand.executable + [
                        "step", "run", "--run", run.id, "--step", node.name, "--step-run", stepRunID,
                    ]
                let sharded = resolved.steps[index]?.shards
                let arrayOptions =
                    slurm.commonOptions(
                        run: run.id, comment: node.name, output: runLogs.appending(path: "\(node.name).shard-%a.out"))
                    + resources.sbatchOptions
                let arrayCommand = base + ["--shard-array"] + stepCommand.arguments
                // The files its shards compute: listed now when its parameters name them, by a planning job (after
                // the steps it reads from) when its input does.
                var plan: String?
                var mergesShards = false
                if let sharded, let files = sharded.files, files.count > 1 {
                    // A job array computes the shards, then the step's own job merges them.
                    try engine.saveShardFiles(files, of: stepRunID)
                    var options = arrayOptions + ["--array=0-\(files.count - 1)"]
                    if !upstream.isEmpty {
                        options += [
                            "--dependency=afterok:" + upstream.joined(separator: ":"), "--kill-on-invalid-dep=yes",
                        ]
                    }
                    let array = try await slurm.client.submit(options, command: arrayCommand, environment: environment)
                    submitted.append(("\(node.name) (\(files.count) shards)", array))
                    upstream = [array]
                    mergesShards = true
                } else if let sharded, sharded.files == nil {
                    // Held until its plan (naming the merge job) is written.
                    var options =
                        slurm.commonOptions(
                            run: run.id, comment: node.name, output: runLogs.appending(path: "\(node.name).plan.out"))
                        + ["--hold"]
                    if !upstream.isEmpty {
                        options += [
                            "--dependency=afterok:" + upstream.joined(separator: ":"), "--kill-on-invalid-dep=yes",
                        ]
                    }
                    options += resources.sbatchOptions
                    let planJob = try await slurm.client.submit(
                        options, command: base + ["--plan-shards"] + stepCommand.arguments, environment: environment)
                    submitted.append(("\(node.name) (plan)", planJob))
                    upstream = [planJob]
                    plan = planJob
                    mergesShards = true
                }
                var options = slurm.commonOptions(
                    run: run.id, comment: node.name, output: runLogs.appending(path: "\(node.name).out"))
                if !upstream.isEmpty {
                    options += ["--dependency=afterok:" + upstream.joined(separator: ":"), "--kill-on-invalid-dep=yes"]
                }
                options += resources.sbatchOptions
                var command = base + stepCommand.arguments
                if mergesShards { command.append("--merge-shards") }
                // A step nothing reads from may be the run's last: it ends the run when every step is done.
                if consumers[index].isEmpty { command.append("--finish-run") }
                let job = try await slurm.client.submit(options, command: command, environment: environment)
                jobs[index] = job
                submitted.append((node.name, job))
                if let plan {
                    try engine.saveShardPlan(
                        ShardPlan(
                            mergeJob: job, options: arrayOptions, command: arrayCommand, environment: environment),
                        of: stepRunID)
                    try await slurm.client.release(plan)
                }
            }
            var options = slurm.commonOptions(
                run: run.id, comment: Self.finishComment, output: runLogs.appending(path: "finish.out"))
            options += [
                "--dependency=afterany:" + submitted.map(\.job).joined(separator: ":"), "--kill-on-invalid-dep=no",
            ]
            if let partition = slurm.settings.partition { options.append("--partition=\(partition)") }
            let finishJob = try await slurm.client.submit(
                options, command: stepCommand.executable + ["runs", "finish", run.id] + stepCommand.arguments,
                environment: environment)
            return RunSubmission(run: run, jobs: submitted, finishJob: finishJob, cachedSteps: cachedSteps)
        } catch {
            // Nothing of a half-submitted run may go on: cancel what went in and record why the run failed.
            if !submitted.isEmpty { try? await slurm.client.cancelJobs(named: Self.jobName(run.id)) }
            _ = try await shielded { [metadata] in
                try await metadata.finishRun(
                    run.id, status: .failed, endedAt: Date(), error: "submitting to Slurm failed: \(error)")
            }
            throw error
        }
    }

    /// Follows a run on Slurm until it ends, reporting its steps to `observer` as their records change. A run whose
    /// jobs have all left the queue while its record still says running (its finishing job was killed) is finished
    /// here. `pipeline` may be `nil` (a YAML pipeline whose file is not known): the run is then only watched. With
    /// `cancelsRun`, cancelling the calling task cancels the run's jobs; without, it only stops the following.
    public func follow(
        _ runID: RunID, pipeline: Pipeline?, engine: RunEngine, observer: (any RunObserver)?, cancelsRun: Bool
    ) async throws -> RunResult {
        let emptyQueues = Mutex(0)
        let client = client
        let name = Self.jobName(runID)
        let check: @Sendable () async throws -> Void = {
            let queued = try await client.queuedJobs(named: name)
            // Twice in a row, so a job that recorded its end a moment ago is not raced.
            let inARow = emptyQueues.withLock { count in
                count = queued.isEmpty ? count + 1 : 0
                return count
            }
            guard inARow >= 2, let pipeline else { return }
            _ = try await shielded { try await engine.finishRegistered(runID, pipeline: pipeline) }
        }
        var cancel: (@Sendable () async throws -> Void)?
        if cancelsRun, let pipeline {
            cancel = { _ = try await self.cancel(runID, pipeline: pipeline, engine: engine) }
        }
        return try await engine.follow(runID, observer: observer, poll: poll, check: check, cancel: cancel)
    }

    /// Cancels a run on Slurm: cancels its jobs (`scancel`; a running step records itself cancelled), waits for
    /// them to leave the queue, and ends the run's record `cancelled`, steps that never ran among it.
    public func cancel(_ runID: RunID, pipeline: Pipeline, engine: RunEngine) async throws -> Run? {
        let name = Self.jobName(runID)
        try await client.cancelJobs(named: name)
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline, !(try await client.queuedJobs(named: name)).isEmpty {
            await pause(.milliseconds(200))
        }
        return try await engine.finishRegistered(runID, pipeline: pipeline, cancelling: true)
    }
}

extension SlurmOrchestrator {
    /// The step run as Slurm ended it, when the cluster ended its job (time limit, memory, node failure) or its
    /// process died without recording an end; `nil` when its record already tells the truth or nothing is known.
    public func reportedEnd(of stepRun: StepRun) async -> StepRun? {
        guard case .string(let job)? = stepRun.properties[Self.jobProperty], let state = await client.job(job) else {
            return nil
        }
        var corrected = stepRun
        corrected.endedAt = stepRun.endedAt ?? Date()
        let because = state.reason.map { " (\($0))" } ?? ""
        if SlurmJob.clusterFailures.contains(state.state) {
            corrected.status = .failed
            corrected.error = "Slurm ended job \(job): \(state.state)\(because)"
            return corrected
        }
        if stepRun.status == .running && state.hasEnded {
            corrected.status = state.state == "CANCELLED" ? .cancelled : .failed
            corrected.error =
                state.state == "CANCELLED"
                ? "its job \(job) was cancelled on the cluster"
                : "its process ended without recording how the step ended; Slurm says job \(job) \(state.state)\(because)"
            return corrected
        }
        return nil
    }
}
