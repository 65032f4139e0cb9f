import Foundation

extension ProcessOwner {
    /// The owner recorded for a run whose steps an outside scheduler starts one by one (Airflow): no process of
    /// this machine, so the run never reads as crashed when the process that registered it exits.
    public static func external(_ orchestrator: String) -> ProcessOwner {
        ProcessOwner(host: "external:\(orchestrator)", bootID: "external", pid: 0, startTicks: 0)
    }

    /// The outside scheduler that owns the run, for runs registered with ``external(_:)``.
    public var externalOrchestrator: String? {
        host.hasPrefix("external:") ? String(host.dropFirst("external:".count)) : nil
    }
}

extension RunEngine {
    /// Records a run for an outside scheduler to execute step by step (`step run --run RUN --step STEP`, in DAG
    /// order) and to end with ``finishRegistered(_:pipeline:)``; returns the recorded run.
    public func register(_ resolved: ResolvedPipeline, orchestrator: String, trigger: RunTrigger = .manual)
        async throws -> Run
    {
        let startedAt = Date()
        let run = Run(
            id: RecordID.make("run", at: startedAt), pipeline: resolved.pipeline.name, status: .running,
            config: resolved.configYAML, environment: await environment(), owner: .external(orchestrator),
            startedAt: startedAt)
        artifacts.sweepAbandonedTemporaries()
        try await metadata.registerPipeline(run.pipeline)
        try await metadata.insert(run)
        return run
    }

    /// Ends a run an outside scheduler executed: `completed` when every step has a completed or cached step run;
    /// otherwise `cancelled` (a step was cancelled, or `cancelling`: the run is being cancelled) or `failed`, naming
    /// the first step that failed. Steps that never ran are recorded `skipped` (`cancelled` in a cancelled run), and
    /// a step run still `running` (its process died without a word) is recorded `failed`, so the run's records read
    /// as an in-process run's would. With a Slurm stack, a step whose job the cluster ended (TIMEOUT,
    /// OUT_OF_MEMORY, NODE_FAIL…) is recorded `failed` with Slurm's end state, even though its process, stopped
    /// with SIGTERM, recorded itself cancelled.
    /// - Throws: ``StepRunError`` for an unknown run or one of another pipeline.
    public func finishRegistered(_ runID: RunID, pipeline: Pipeline, cancelling: Bool = false) async throws -> Run {
        guard var run = try await metadata.run(runID) else { throw StepRunError.unknownRun(runID) }
        guard run.pipeline == pipeline.name else {
            throw StepRunError(
                problem: "run \(run.id) is a run of pipeline '\(run.pipeline)', not '\(pipeline.name)'.",
                fix: "finish it with the executable (or YAML file) of pipeline '\(run.pipeline)'.")
        }
        guard run.status == .running else { return run }
        let resolved = try resolve(pipeline, config: try RunConfig(recordedIn: run))
        let execution = Execution(engine: self, resolved: resolved, run: run, observer: nil)
        let recorded = try await metadata.stepRuns(ofRun: run.id)
        var firstFailure: StepRun?
        var cancelled = cancelling
        var notRun: [String] = []
        for index in pipeline.topologicalOrder {
            let node = pipeline.nodes[index]
            guard var latest = recorded.last(where: { $0.stepName == node.name }) else {
                notRun.append(node.name)
                let reason =
                    firstFailure.map { "'\($0.stepName)' failed" }
                    ?? (cancelled ? "the run was cancelled" : "it never ran")
                let status: StepRunStatus = firstFailure == nil && cancelled ? .cancelled : .skipped
                try await metadata.insert(execution.placeholder(index, status: status, reason: reason), inputs: [])
                continue
            }
            if [.running, .cancelled, .failed].contains(latest.status),
                let corrected = await clusterEnd(of: latest)
            {
                latest = corrected
                try await metadata.finishStepRun(latest, metrics: [])
            } else if latest.status == .running {
                latest.status = .failed
                latest.endedAt = Date()
                latest.error = "its process ended without recording how the step ended"
                try await metadata.finishStepRun(latest, metrics: [])
            }
            switch latest.status {
            case .completed, .cached: continue
            case .cancelled: cancelled = true
            case .skipped: notRun.append(node.name)
            default: firstFailure = firstFailure ?? latest
            }
        }
        run.endedAt = Date()
        if let failure = firstFailure {
            run.status = .failed
            run.error = "step '\(failure.stepName)' failed: \(failure.error ?? "unknown error")"
        } else if cancelled {
            run.status = .cancelled
        } else if !notRun.isEmpty {
            run.status = .failed
            run.error = "steps that never ran: \(notRun.joined(separator: ", "))"
        } else {
            run.status = .completed
        }
        // A run ends once: when another finisher (Slurm's finishing job and a watcher, say) recorded its end
        // first, that end stands and is what this returns.
        guard try await metadata.finishRun(run.id, status: run.status, endedAt: run.endedAt!, error: run.error) else {
            return try await metadata.run(run.id) ?? run
        }
        return run
    }

    /// The step run as Slurm ended it, when the cluster ended its job (time limit, memory, node failure) or its
    /// process died without recording an end; `nil` when its record already tells the truth or nothing is known.
    func clusterEnd(of stepRun: StepRun) async -> StepRun? {
        guard let slurm, case .string(let job)? = stepRun.properties[SlurmSubmitter.jobProperty],
            let state = await slurm.client.job(job)
        else { return nil }
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
