// Over 400 lines: the one path a step run takes (reuse, hand-over, run here, read back), kept whole so it reads top to bottom.
import Foundation
import Logging

/// The one code path a step run takes, wherever it executes: builds its record and cache key from the inputs the
/// upstream records name, reuses an earlier step run's outputs when caching allows, hands the step to the engine's
/// orchestrator, and (in the process that runs it) reads the inputs, runs the step, writes its outputs and its
/// record. The ``Scheduler`` runs every step of a run through it; ``RunEngine/runStep(_:ofRun:pipeline:stepRunID:observer:)``
/// runs the one step of a step process through it.
package struct StepRunner {
    let engine: RunEngine
    let resolved: ResolvedPipeline
    let run: Run
    let observer: (any RunObserver)?
    /// The ID of the one step run a step process records (chosen by the orchestrator that started it).
    var stepRunID: String?

    /// A runner of `resolved`'s steps in run `run`.
    package init(engine: RunEngine, resolved: ResolvedPipeline, run: Run, observer: (any RunObserver)?) {
        self.engine = engine
        self.resolved = resolved
        self.run = run
        self.observer = observer
    }

    /// What a step's task reports back.
    package struct StepOutcome: Sendable {
        package var node: Int
        package var stepRun: StepRun
        package var outputs: [ArtifactRecord]
        var values: [any Sendable]?
        package var storeError: String?

        init(node: Int, stepRun: StepRun, outputs: [ArtifactRecord], values: [any Sendable]?, storeError: String? = nil)
        {
            self.node = node
            self.stepRun = stepRun
            self.outputs = outputs
            self.values = values
            self.storeError = storeError
        }
    }

    package func placeholder(_ index: Int, status: StepRunStatus, reason: String) -> StepRun {
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

    package typealias Inputs = [(InputEdge, ArtifactRecord, (any Sendable)?)]

    /// A new step run record for node `index` reading `inputs`, with its cache key.
    package func newStepRun(_ index: Int, inputs: Inputs) -> StepRun {
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

    package func inputEvents(_ stepRunID: String, _ inputs: Inputs) -> [Event] {
        inputs.map { Event(stepRunID: stepRunID, artifactID: $0.1.id, kind: .input, name: $0.0.name) }
    }

    /// What ``reuse(_:inputs:startOnMiss:)`` decided for a step.
    package enum Reuse {
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
    package func reuse(_ index: Int, inputs: Inputs, startOnMiss: Bool = false) async -> Reuse {
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
            // Where the original ran (its job, its image) is not where this step run did.
            stepRun.properties = hit.stepRun.properties.filter { !engine.placementProperties.contains($0.key) }
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

    /// Runs one step in this process and stores its outputs; `started` is its `running` record when
    /// ``reuse(_:inputs:startOnMiss:)`` already wrote it, `fresh` the record to write otherwise. Never throws: every
    /// outcome is a record.
    func runStep(_ index: Int, inputs: Inputs, started: StepRun? = nil, fresh: StepRun? = nil) async -> StepOutcome {
        let node = resolved.pipeline.nodes[index]
        let bound = resolved.steps[index]!  // bound: the scheduler binds every step, a single step run its own
        let materializers = resolved.materializers[index]
        var stepRun = started ?? fresh ?? newStepRun(index, inputs: inputs)
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

    /// Executes a ready step run that missed the cache through the engine's orchestrator: in this process
    /// (``runStep(_:inputs:started:fresh:)``), or elsewhere, reading back the record the step process wrote. Never
    /// throws: every outcome is a record. `started` is its `running` record when the cache lookup already wrote it.
    func execute(_ index: Int, inputs: Inputs, started: StepRun?) async -> StepOutcome {
        let node = resolved.pipeline.nodes[index]
        let orchestrator = engine.orchestrator
        let stepRun = started ?? newStepRun(index, inputs: inputs)
        let runner = self
        let ready = ReadyStep(
            launch: StepLaunch(
                runID: run.id, step: node.name, stepRunID: stepRun.id,
                outputFile: engine.logDirectory.appending(path: "\(run.id)/\(node.name).out"),
                command: engine.stepCommand),
            resources: resolved.config.steps[node.name]?.resources,
            body: { await runner.runStep(index, inputs: inputs, started: started, fresh: stepRun) })
        if !orchestrator.runsStepsHere { observer?.stepChanged(node.name, to: .running(since: stepRun.startedAt!)) }
        switch await orchestrator.execute(ready).kind {
        case .here(let outcome): return outcome
        case .elsewhere(let end):
            return await readBack(
                index, inputs: inputs, stepRun: stepRun, end: end, outputFile: ready.launch.outputFile)
        }
    }

    /// The outcome of a step run another process executed, from the record it wrote. A step process that ended
    /// without finishing its record (killed, crashed, refused to start) is recorded here: `failed` with how it ended
    /// and the last lines it printed, or `cancelled` when this run was cancelled. Never throws.
    func readBack(_ index: Int, inputs: Inputs, stepRun: StepRun, end: StepProcessEnd, outputFile: URL) async
        -> StepOutcome
    {
        let node = resolved.pipeline.nodes[index]
        var stepRun = stepRun
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

    package func load(_ record: ArtifactRecord, edge: InputEdge) throws -> any Sendable {
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

    package static func describe(_ error: Error) -> String {
        if let error = error as? LocalizedError, let text = error.errorDescription { return text }
        return String(describing: error)
    }
}
