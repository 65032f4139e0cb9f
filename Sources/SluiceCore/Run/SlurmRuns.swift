import Foundation

/// How the `slurm` orchestrator turns a run's step runs into Slurm jobs: one batch job per step run that is not
/// already a cache hit, `BINARY step run --run RUN --step STEP --step-run ID …`, each depending (`afterok`, with
/// `--kill-on-invalid-dep=yes`) on the jobs of the steps it reads from, and one last job, `BINARY runs finish RUN`,
/// that runs after all of them whatever happened (`afterany`) and ends the run's record. Every job of a run is
/// called `sluice-RUN` and carries its step's name as its comment, so `squeue --name` finds them.
public struct SlurmSubmitter: Sendable {
    /// The stack's `slurm:` settings: the account and the resources a step gets when its run config does not say.
    public var settings: SlurmSettings
    /// The executable that has the pipeline (`sluice` for YAML pipelines), as an absolute path.
    public var command: [String]
    /// Arguments after the step's own: `--file` for a YAML pipeline, `--stack`, `--set stack.KEY=VALUE`.
    public var arguments: [String]
    /// Variables set in the jobs' environment on top of the submitting process's (`SLUICE_PROJECT`).
    public var environment: [String: String]
    /// The jobs' working directory (the project's root).
    public var directory: URL
    /// Where each job's own output goes: `<logs>/<run>/<step>.out`.
    public var logDirectory: URL
    /// How often a process following a run reads its records.
    public var poll: Duration
    /// The Slurm commands.
    public var client: SlurmClient

    /// Creates a submitter.
    public init(
        settings: SlurmSettings, command: [String], arguments: [String], environment: [String: String],
        directory: URL, logDirectory: URL, poll: Duration = .milliseconds(250), client: SlurmClient = SlurmClient()
    ) {
        self.settings = settings
        self.command = command
        self.arguments = arguments
        self.environment = environment
        self.directory = directory
        self.logDirectory = logDirectory
        self.poll = poll
        self.client = client
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

/// A run handed to Slurm: its record, the job of each step that was submitted, and the steps settled from the
/// cache at submission (no job).
public struct SlurmSubmission: Sendable {
    /// The run's record.
    public var run: Run
    /// `(step, job ID)` in submission order.
    public var jobs: [(step: String, job: String)]
    /// The job that ends the run (`runs finish`), when any step was submitted.
    public var finishJob: String?
    /// The steps reused from the cache without a job.
    public var cachedSteps: [String]
}

extension RunEngine {
    /// Runs `resolved` on Slurm: submits it (``submit(_:to:trigger:observer:)``), then follows it
    /// (``follow(_:pipeline:slurm:observer:)``) until it ends. Cancelling the calling task cancels the run's jobs.
    func runOnSlurm(
        _ resolved: ResolvedPipeline, slurm: SlurmSubmitter, trigger: RunTrigger, observer: (any RunObserver)?
    ) async throws -> RunResult {
        let submission = try await submit(resolved, to: slurm, trigger: trigger, observer: observer)
        let result = try await follow(submission.run.id, pipeline: resolved.pipeline, slurm: slurm, observer: observer)
        observer?.runFinished(result)
        return result
    }

    /// Records a run and submits its steps to Slurm, then returns: the run goes on on the cluster whether or not
    /// this process stays. Steps whose inputs are all settled and whose outputs are in the cache are recorded
    /// `cached` here and never become jobs; when every step is, no job is submitted and the run ends at once.
    /// - Throws: ``SlurmClient/CommandError`` when `sbatch` refuses a job (the jobs already submitted are
    ///   cancelled and the run is recorded failed with Slurm's words), or a store error.
    public func submit(
        _ resolved: ResolvedPipeline, to slurm: SlurmSubmitter, trigger: RunTrigger = .manual,
        observer: (any RunObserver)? = nil
    ) async throws -> SlurmSubmission {
        let pipeline = resolved.pipeline
        let nodes = pipeline.nodes
        // Nothing is recorded for a run that cannot be submitted from here at all.
        if ExternalCommand.find("sbatch") == nil { _ = try await slurm.client.run("sbatch", ["--version"]) }
        let run = try await register(resolved, orchestrator: "slurm", trigger: trigger)
        observer?.runStarted(run, steps: pipeline.stepNames)
        for name in pipeline.stepNames { observer?.stepChanged(name, to: .queued) }
        let execution = Execution(engine: self, resolved: resolved, run: run, observer: observer)

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
                let inputs: Execution.Inputs = node.inputs.map { ($0, outputs[$0.node]![$0.output]!, nil) }
                if case .settled(let reused, let record) = await execution.reuse(index, inputs: inputs) {
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
            let finished = try await finishRegistered(run.id, pipeline: pipeline)
            return SlurmSubmission(run: finished, jobs: [], finishJob: nil, cachedSteps: cachedSteps)
        }

        let runLogs = slurm.logDirectory.appending(path: run.id)
        try FileManager.default.createDirectory(at: runLogs, withIntermediateDirectories: true)
        var environment = slurm.environment
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
                    slurm.command + ["step", "run", "--run", run.id, "--step", node.name, "--step-run", stepRunID]
                let sharded = resolved.steps[index]?.shards
                let arrayOptions =
                    slurm.commonOptions(
                        run: run.id, comment: node.name, output: runLogs.appending(path: "\(node.name).shard-%a.out"))
                    + resources.sbatchOptions
                let arrayCommand = base + ["--shard-array"] + slurm.arguments
                // The files its shards compute: listed now when its parameters name them, by a planning job (after
                // the steps it reads from) when its input does.
                var plan: String?
                var mergesShards = false
                if let sharded, let files = sharded.files, files.count > 1 {
                    // A job array computes the shards, then the step's own job merges them.
                    try saveShardFiles(files, of: stepRunID)
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
                        options, command: base + ["--plan-shards"] + slurm.arguments, environment: environment)
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
                var command = base + slurm.arguments
                if mergesShards { command.append("--merge-shards") }
                // A step nothing reads from may be the run's last: it ends the run when every step is done.
                if consumers[index].isEmpty { command.append("--finish-run") }
                let job = try await slurm.client.submit(options, command: command, environment: environment)
                jobs[index] = job
                submitted.append((node.name, job))
                if let plan {
                    try saveShardPlan(
                        ShardPlan(
                            mergeJob: job, options: arrayOptions, command: arrayCommand, environment: environment),
                        of: stepRunID)
                    try await slurm.client.release(plan)
                }
            }
            var options = slurm.commonOptions(
                run: run.id, comment: SlurmSubmitter.finishComment, output: runLogs.appending(path: "finish.out"))
            options += [
                "--dependency=afterany:" + submitted.map(\.job).joined(separator: ":"), "--kill-on-invalid-dep=no",
            ]
            if let partition = slurm.settings.partition { options.append("--partition=\(partition)") }
            let finishJob = try await slurm.client.submit(
                options, command: slurm.command + ["runs", "finish", run.id] + slurm.arguments,
                environment: environment)
            return SlurmSubmission(run: run, jobs: submitted, finishJob: finishJob, cachedSteps: cachedSteps)
        } catch {
            // Nothing of a half-submitted run may go on: cancel what went in and record why the run failed.
            if !submitted.isEmpty { try? await slurm.client.cancelJobs(named: SlurmSubmitter.jobName(run.id)) }
            _ = try await shielded { [metadata] in
                try await metadata.finishRun(
                    run.id, status: .failed, endedAt: Date(), error: "submitting to Slurm failed: \(error)")
            }
            throw error
        }
    }

    /// Follows a run on Slurm until it ends, reporting its steps to `observer` as their records change, and returns
    /// its records. A run whose jobs have all left the queue while its record still says running (its finishing
    /// job was killed) is finished here. Cancelling the calling task cancels the run (``cancelOnSlurm(_:pipeline:slurm:)``).
    /// `pipeline` may be `nil` (a YAML pipeline whose file is not known): the run is then only watched. With
    /// `cancelsRun` false, cancelling the calling task only stops the following (`CancellationError`): a waiter
    /// that gives up does not cancel the run.
    public func follow(
        _ runID: RunID, pipeline: Pipeline?, slurm: SlurmSubmitter?, observer: (any RunObserver)? = nil,
        cancelsRun: Bool = true
    ) async throws -> RunResult {
        var reported: [String: StepRunStatus] = [:]
        var cancelled = false
        var lastQueueCheck = ContinuousClock.now
        var emptyQueues = 0
        let metadata = self.metadata
        while true {
            if Task.isCancelled, !cancelled {
                cancelled = true
                guard cancelsRun, let slurm, let pipeline else { throw CancellationError() }
                _ = try await shielded { try await self.cancelOnSlurm(runID, pipeline: pipeline, slurm: slurm) }
            }
            guard let run = try await shielded({ try await metadata.run(runID) }) else {
                throw StepRunError.unknownRun(runID)
            }
            let stepRuns = try await shielded { try await metadata.stepRuns(ofRun: runID) }
            for stepRun in stepRuns where reported[stepRun.stepName] != stepRun.status {
                reported[stepRun.stepName] = stepRun.status
                await report(stepRun, to: observer)
            }
            if run.status != .running {
                var outputs: [String: [String: ArtifactRecord]] = [:]
                for stepRun in stepRuns where stepRun.status.producedOutputs {
                    outputs[stepRun.stepName] = try await shielded { try await metadata.outputs(ofStepRun: stepRun.id) }
                }
                return RunResult(
                    run: run, stepRuns: stepRuns, outputs: outputs, artifacts: artifacts, materializers: materializers)
            }
            if let slurm, ContinuousClock.now - lastQueueCheck > .seconds(5) {
                lastQueueCheck = .now
                let queued = try await slurm.client.queuedJobs(named: SlurmSubmitter.jobName(runID))
                emptyQueues = queued.isEmpty ? emptyQueues + 1 : 0
                // Twice in a row, so a job that recorded its end a moment ago is not raced.
                if emptyQueues >= 2, let pipeline {
                    _ = try await shielded { try await self.finishRegistered(runID, pipeline: pipeline) }
                }
            }
            await pause(slurm?.poll ?? .milliseconds(250))
        }
    }

    private func report(_ stepRun: StepRun, to observer: (any RunObserver)?) async {
        guard let observer else { return }
        switch stepRun.status {
        case .running: observer.stepChanged(stepRun.stepName, to: .running(since: stepRun.startedAt ?? Date()))
        case .completed: observer.stepChanged(stepRun.stepName, to: .completed(duration: stepRun.duration ?? 0))
        case .cached:
            let original = try? await metadata.stepRun(stepRun.cachedFrom ?? "")
            observer.stepChanged(stepRun.stepName, to: .cached(from: original?.runID ?? "?"))
        case .skipped: observer.stepChanged(stepRun.stepName, to: .skipped(reason: stepRun.error ?? ""))
        case .cancelled: observer.stepChanged(stepRun.stepName, to: .cancelled)
        case .failed, .crashed:
            observer.stepChanged(stepRun.stepName, to: .failed(reason: stepRun.error ?? "failed"))
        }
    }

    /// Cancels a run on Slurm: cancels its jobs (`scancel`; a running step records itself cancelled), waits for
    /// them to leave the queue, and ends the run's record `cancelled`, steps that never ran among it.
    public func cancelOnSlurm(_ runID: RunID, pipeline: Pipeline, slurm: SlurmSubmitter) async throws -> Run {
        let name = SlurmSubmitter.jobName(runID)
        try await slurm.client.cancelJobs(named: name)
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline, !(try await slurm.client.queuedJobs(named: name)).isEmpty {
            await pause(.milliseconds(200))
        }
        return try await finishRegistered(runID, pipeline: pipeline, cancelling: true)
    }

    /// Ends run `runID` when every step of `pipeline` has a completed or cached step run (what the job of a step
    /// nothing reads from does after its step); `nil` while a step is still to finish.
    public func finishIfComplete(_ runID: RunID, pipeline: Pipeline) async throws -> Run? {
        let recorded = try await metadata.stepRuns(ofRun: runID)
        for name in pipeline.stepNames {
            guard let latest = recorded.last(where: { $0.stepName == name }), latest.status.producedOutputs else {
                return nil
            }
        }
        return try await finishRegistered(runID, pipeline: pipeline)
    }
}

/// Sleeps even when the calling task is cancelled (a loop that must go on after cancelling its run).
func pause(_ duration: Duration) async {
    _ = try? await Task { try await Task.sleep(for: duration) }.value
}

extension Pipeline {
    /// Node indices with every producer before its consumers.
    var topologicalOrder: [Int] {
        var remaining = nodes.map { Set($0.inputs.map(\.node)).count }
        var consumers = [[Int]](repeating: [], count: nodes.count)
        for (index, node) in nodes.enumerated() {
            for producer in Set(node.inputs.map(\.node)) { consumers[producer].append(index) }
        }
        var order = nodes.indices.filter { remaining[$0] == 0 }
        var head = 0
        while head < order.count {
            for consumer in consumers[order[head]] {
                remaining[consumer] -= 1
                if remaining[consumer] == 0 { order.append(consumer) }
            }
            head += 1
        }
        return order
    }
}
