import Foundation

/// The DAG loop of a run in this process: starts every step whose inputs are produced, up to the run's parallelism,
/// settling cache hits without a task and handing the rest to the engine's orchestrator through the
/// ``StepRunner``; a failed step skips what depends on it while independent branches finish; a cancelled run
/// records the steps it never started. Only this loop touches its state; steps run in child tasks.
struct Scheduler {
    /// Runs each step: cache reuse, inputs, the orchestrator, outputs and records.
    let runner: StepRunner

    var engine: RunEngine { runner.engine }
    var resolved: ResolvedPipeline { runner.resolved }
    var observer: (any RunObserver)? { runner.observer }

    struct Outcome {
        var status: RunStatus
        var error: String?
        var stepRuns: [StepRun]
        var outputs: [String: [String: ArtifactRecord]]
        var storeError: Error?
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
                let record = runner.placeholder(
                    next, status: status == .cancelled ? .cancelled : .skipped, reason: reason)
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
        func finish(_ result: StepRunner.StepOutcome) async {
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

        await withTaskGroup(of: StepRunner.StepOutcome.self) { group in
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
                    let startOnMiss = engine.orchestrator.runsStepsHere && pendingCached.isEmpty
                    let started: StepRun?
                    switch await runner.reuse(index, inputs: inputs, startOnMiss: startOnMiss) {
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
                    group.addTask { [runner] in await runner.execute(index, inputs: inputs, started: started) }
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
            let record = runner.placeholder(index, status: .cancelled, reason: "the run was cancelled")
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
}
