import Foundation
import Logging

extension RunEngine {
    /// Where the shard jobs of step run `stepRunID` leave their partials for its merge job: under the artifact
    /// store's root (a path every node sees), removed once merged.
    func shardFolder(of stepRunID: String) -> URL {
        artifacts.root.appending(path: ".shards/\(stepRunID)", directoryHint: .isDirectory)
    }

    /// Where the shard jobs of step run `stepRunID` leave the files their partials name
    /// (``StepContext/shardDirectory``).
    func shardFilesFolder(of stepRunID: String) -> URL {
        shardFolder(of: stepRunID).appending(path: "files", directoryHint: .isDirectory)
    }

    /// The partials the shard jobs saved, in shard order (the folder is removed once they are merged).
    /// - Throws: when a shard's partial is missing (its job did not finish).
    func savedShards(of stepRunID: String, count: Int) throws -> [Data] {
        let folder = shardFolder(of: stepRunID)
        let partials = try (0..<count).map { index in
            do {
                return try Data(contentsOf: folder.appending(path: "\(index).json"))
            } catch {
                throw StepRunError(
                    problem: "shard \(index) of step run \(stepRunID) left no partial result in \(folder.path).",
                    fix: "run the step again: its shard jobs must all finish before the merge job.")
            }
        }
        return partials
    }

    /// Computes shard `index` of the sharded step `step` of run `runID` and saves its partial result for the merge
    /// job of step run `stepRunID` (a job of a Slurm array). A shard that fails records a failed step run of the
    /// step (`STEPRUN-shardN`), so the run's records say which file failed and why.
    /// - Throws: ``StepRunError`` when the step is not sharded or has no such shard; the shard's own error after
    ///   recording it.
    public func runShard(_ step: String, ofRun runID: RunID, pipeline: Pipeline, stepRunID: String, index: Int)
        async throws
    {
        guard let run = try await metadata.run(runID) else { throw StepRunError.unknownRun(runID) }
        let resolved = try resolve(pipeline, config: try RunConfig(recordedIn: run), binding: step)
        guard let nodeIndex = pipeline.nodes.firstIndex(where: { $0.name == step }),
            let bound = resolved.steps[nodeIndex], let shards = bound.shards
        else {
            throw StepRunError(
                problem: "step '\(step)' of pipeline '\(pipeline.name)' is not a sharded step.",
                fix: "run it with `step run` without --shard.")
        }
        guard shards.files.indices.contains(index) else {
            throw StepRunError(
                problem: "step '\(step)' has \(shards.files.count) shards; there is no shard \(index).",
                fix: "give a shard from 0 to \(shards.files.count - 1).")
        }
        let node = pipeline.nodes[nodeIndex]
        let logURL = logDirectory.appending(path: "\(run.id)/\(step).shard-\(index).log")
        let sink = StepLogHandler.Sink(url: logURL)
        var logger = Logger(label: "sluice.step.\(step)") { _ in StepLogHandler(sink: sink) }
        logger[metadataKey: "run.id"] = "\(run.id)"
        logger[metadataKey: "step.name"] = "\(step)"
        logger[metadataKey: "shard"] = "\(index)"
        let seed = SeededRandom.derive(seed: resolved.config.seed, name: step)
        let context = StepContext(
            runID: run.id, stepName: step, seed: seed, logger: logger,
            scratchDirectory: scratchDirectory.appending(
                path: "\(stepRunID)-shard\(index)", directoryHint: .isDirectory),
            observer: nil, declaresRunSeed: node.usesRunSeed, shardDirectory: shardFilesFolder(of: stepRunID))
        let startedAt = Date()
        do {
            defer { context.removeScratch() }
            let partial = try await shards.compute(index, context)
            let folder = shardFolder(of: stepRunID)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            // Written whole or not at all: the merge job never reads half a partial.
            try partial.write(to: folder.appending(path: "\(index).json"), options: .atomic)
            sink.close()
        } catch {
            logger.error("shard \(index) (\(shards.files[index])) failed: \(error)")
            sink.close()
            let failed = StepRun(
                id: "\(stepRunID)-shard\(index)", runID: run.id, stepName: step, kind: node.kind, status: .failed,
                cacheKey: nil, codeVersion: node.codeVersion, parameters: bound.parametersJSON, seed: seed,
                startedAt: startedAt, endedAt: Date(),
                error: "shard \(index) (\(shards.files[index])) failed: \(Execution.describe(error))",
                logPath: sink.wasWritten ? logURL.path : nil,
                properties: stepProperties.merging([StepRun.upstreamProperty: .string("")]) { $1 })
            try await shielded { [metadata] in try await metadata.insert(failed, inputs: []) }
            throw error
        }
    }
}
