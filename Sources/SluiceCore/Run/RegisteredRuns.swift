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
    /// as an in-process run's would. A step run the engine's orchestrator says ended otherwise than its record
    /// tells (``Orchestrator/reportedEnd(of:)``: a cluster's time limit, out of memory, a node failure) is recorded
    /// as the orchestrator says, even though its process, stopped with SIGTERM, recorded itself cancelled.
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
        let runner = StepRunner(engine: self, resolved: resolved, run: run, observer: nil)
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
                try await metadata.insert(runner.placeholder(index, status: status, reason: reason), inputs: [])
                continue
            }
            if [.running, .cancelled, .failed].contains(latest.status),
                let corrected = await orchestrator.reportedEnd(of: latest)
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
}

extension RunEngine {
    /// Follows a run until it ends, reporting its steps to `observer` as their records change, and returns its
    /// records: what a process that did not start the run (`runs wait`, a detached run) does. Every `poll` it reads
    /// the records; `check` runs every few seconds (an orchestrator's look at its queue); `cancel` runs once when
    /// the calling task is cancelled (without it, cancelling throws `CancellationError` and the run goes on).
    public func follow(
        _ runID: RunID, observer: (any RunObserver)? = nil, poll: Duration = .milliseconds(250),
        check: (@Sendable () async throws -> Void)? = nil, cancel: (@Sendable () async throws -> Void)? = nil
    ) async throws -> RunResult {
        var reported: [String: StepRunStatus] = [:]
        var cancelled = false
        var lastCheck = ContinuousClock.now
        let metadata = self.metadata
        while true {
            if Task.isCancelled, !cancelled {
                cancelled = true
                guard let cancel else { throw CancellationError() }
                try await shielded { try await cancel() }
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
            if let check, ContinuousClock.now - lastCheck > .seconds(5) {
                lastCheck = .now
                try await check()
            }
            await pause(poll)
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

    /// Ends run `runID` when every step of `pipeline` has a completed or cached step run (what the process of a
    /// step nothing reads from does after its step, on orchestrators whose runs outlive their submitter); `nil`
    /// while a step is still to finish.
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
package func pause(_ duration: Duration) async {
    _ = try? await Task { try await Task.sleep(for: duration) }.value
}

extension Pipeline {
    /// Node indices with every producer before its consumers.
    package var topologicalOrder: [Int] {
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
