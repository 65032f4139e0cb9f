import Foundation
import Logging

extension RunEngine {
    /// Where the shard jobs of step run `stepRunID` leave their partials for its merge job: under the artifact
    /// store's root (a path every node sees), removed once merged.
    package func shardFolder(of stepRunID: String) -> URL {
        artifacts.root.appending(path: ".shards/\(stepRunID)", directoryHint: .isDirectory)
    }

    /// Where the shard jobs of step run `stepRunID` leave the files their partials name
    /// (``StepContext/shardDirectory``).
    package func shardFilesFolder(of stepRunID: String) -> URL {
        shardFolder(of: stepRunID).appending(path: "files", directoryHint: .isDirectory)
    }

    /// The files of step run `stepRunID`'s shards as its shard jobs see them (`files.json` in its shard folder,
    /// written at submission or by its planning job), or `nil` when none was saved.
    package func savedShardFiles(of stepRunID: String) throws -> [String]? {
        let url = shardFolder(of: stepRunID).appending(path: "files.json")
        guard let data = try? Data(contentsOf: url) else { return nil }
        do {
            return try JSONDecoder().decode([String].self, from: data)
        } catch {
            throw StepRunError(
                problem: "the list of shard files \(url.path) does not read: \(error).",
                fix: "run the step again: a new step run lists its files again.")
        }
    }

    /// Saves the files of step run `stepRunID`'s shards for its shard and merge jobs: they compute and merge
    /// exactly these, whatever arrives in the folders meanwhile.
    package func saveShardFiles(_ files: [String], of stepRunID: String) throws {
        let folder = shardFolder(of: stepRunID)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try JSONEncoder().encode(files).write(to: folder.appending(path: "files.json"), options: .atomic)
    }

    /// The partials the shard jobs saved, in shard order (the folder is removed once they are merged).
    /// - Throws: when a shard's partial is missing (its job did not finish).
    package func savedShards(of stepRunID: String, count: Int) throws -> [Data] {
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
    /// job of step run `stepRunID` (a job of a cluster's job array). A shard that fails records a failed step run of the
    /// step (`STEPRUN-shardN`), so the run's records say which file failed and why.
    /// - Throws: ``StepRunError`` when the step is not sharded or has no such shard; the shard's own error after
    ///   recording it.
    public func runShard(_ step: String, ofRun runID: RunID, pipeline: Pipeline, stepRunID: String, index: Int)
        async throws
    {
        let (run, resolved, nodeIndex, shards) = try await shardedStep(
            step, ofRun: runID, pipeline: pipeline, option: "--shard")
        guard let files = try savedShardFiles(of: stepRunID) ?? shards.files else {
            throw StepRunError(
                problem: "step '\(step)' shards the files its input lists, and step run \(stepRunID) has no list "
                    + "of them yet.",
                fix: "run its planning job first (`step run … --step-run \(stepRunID) --plan-shards`).")
        }
        guard files.indices.contains(index) else {
            throw StepRunError(
                problem: "step '\(step)' has \(files.count) shards; there is no shard \(index).",
                fix: "give a shard from 0 to \(files.count - 1).")
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
            let partial = try await shards.compute(index, files, context)
            let folder = shardFolder(of: stepRunID)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            // Written whole or not at all: the merge job never reads half a partial.
            try partial.write(to: folder.appending(path: "\(index).json"), options: .atomic)
            sink.close()
        } catch {
            logger.error("shard \(index) (\(files[index])) failed: \(error)")
            sink.close()
            try await recordFailedJob(
                "\(stepRunID)-shard\(index)", of: nodeIndex, run: run, resolved: resolved, startedAt: startedAt,
                error: "shard \(index) (\(files[index])) failed: \(StepRunner.describe(error))",
                logPath: sink.wasWritten ? logURL.path : nil)
            throw error
        }
    }
}

extension RunEngine {
    /// Run `runID` resolved with only `step` bound, the step's index and its shards.
    /// - Throws: ``StepRunError`` when the run is not there or the step is not sharded (`option` was given to a
    ///   step it does not apply to).
    package func shardedStep(_ step: String, ofRun runID: RunID, pipeline: Pipeline, option: String) async throws
        -> (Run, ResolvedPipeline, Int, ShardOperations)
    {
        guard let run = try await metadata.run(runID) else { throw StepRunError.unknownRun(runID) }
        let resolved = try resolve(pipeline, config: try RunConfig(recordedIn: run, step: step), binding: step)
        guard let index = pipeline.nodes.firstIndex(where: { $0.name == step }),
            let shards = resolved.steps[index]?.shards
        else {
            throw StepRunError(
                problem: "step '\(step)' of pipeline '\(pipeline.name)' is not a sharded step.",
                fix: "run it with `step run` without \(option).")
        }
        return (run, resolved, index, shards)
    }

    /// Records a job of a sharded step run that failed (a shard, or the planning) as a failed step run of the step
    /// under `id`, so the run's records say what failed and why.
    package func recordFailedJob(
        _ id: String, of index: Int, run: Run, resolved: ResolvedPipeline, startedAt: Date, error: String,
        logPath: String?
    ) async throws {
        let node = resolved.pipeline.nodes[index]
        let failed = StepRun(
            id: id, runID: run.id, stepName: node.name, kind: node.kind, status: .failed, cacheKey: nil,
            codeVersion: node.codeVersion, parameters: resolved.steps[index]?.parametersJSON ?? "{}",
            seed: SeededRandom.derive(seed: resolved.config.seed, name: node.name), startedAt: startedAt,
            endedAt: Date(), error: error, logPath: logPath,
            properties: stepProperties.merging([StepRun.upstreamProperty: .string("")]) { $1 })
        try await shielded { [metadata] in try await metadata.insert(failed, inputs: []) }
    }
}
