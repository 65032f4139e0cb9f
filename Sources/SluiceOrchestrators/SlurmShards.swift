import Foundation
import SluiceCore

/// What the Slurm submitter leaves the planning job of a sharded step whose files its input lists: how to submit
/// the job array once the files are known, and the merge job to make wait for it.
struct ShardPlan: Codable, Sendable, Equatable {
    /// The merge job (the step's own), submitted waiting on the planning job.
    var mergeJob: String
    /// The array job's `sbatch` options, without `--array`.
    var options: [String]
    /// The array job's command.
    var command: [String]
    /// Variables set in the array job's environment.
    var environment: [String: String]
}

extension RunEngine {
    /// Where the submitter leaves the planning job its ``ShardPlan``.
    func shardPlanURL(of stepRunID: String) -> URL {
        shardFolder(of: stepRunID).appending(path: "plan.json")
    }

    /// The planning job of a sharded step whose files its input lists (on Slurm the array's size is not known when
    /// the run is submitted): reads the step's input, lists its files and saves the list for the shard and merge
    /// jobs, submits the job array (one task per file) and makes the step's merge job wait for it instead of for
    /// this job. A planning job that fails records a failed step run of the step (`STEPRUN-plan`) with the reason;
    /// Slurm then removes the merge job and its dependents.
    /// - Returns: the files and the array job's ID (`nil` when there are no files: the merge job then runs at once
    ///   and merges nothing).
    @discardableResult
    public func planShards(
        _ step: String, ofRun runID: RunID, pipeline: Pipeline, stepRunID: String, client: SlurmClient = SlurmClient()
    ) async throws -> (files: [String], arrayJob: String?) {
        let (run, resolved, index, shards) = try await shardedStep(
            step, ofRun: runID, pipeline: pipeline, option: "--plan-shards")
        let startedAt = Date()
        do {
            let planData: Data
            do {
                planData = try Data(contentsOf: shardPlanURL(of: stepRunID))
            } catch {
                throw StepRunError(
                    problem: "step run \(stepRunID) has no shard plan at \(shardPlanURL(of: stepRunID).path).",
                    fix: "submit the run again: the Slurm orchestrator writes the plan before it starts this job.")
            }
            let plan = try JSONDecoder().decode(ShardPlan.self, from: planData)
            let runner = StepRunner(engine: self, resolved: resolved, run: run, observer: nil)
            let values = try await recordedInputs(of: index, in: pipeline, run: run).map { edge, record, _ in
                try runner.load(record, edge: edge)
            }
            let files = try shards.files(reading: values)
            try saveShardFiles(files, of: stepRunID)
            guard !files.isEmpty else { return (files, nil) }
            let array = try await client.submit(
                plan.options + ["--array=0-\(files.count - 1)"], command: plan.command, environment: plan.environment)
            try await client.setDependency(of: plan.mergeJob, to: "afterok:\(array)")
            return (files, array)
        } catch {
            // The planning job's own output (what the orchestrator asked Slurm to write it to) is its log.
            let output = logDirectory.appending(path: "\(run.id)/\(step).plan.out")
            try await recordFailedJob(
                "\(stepRunID)-plan", of: index, run: run, resolved: resolved, startedAt: startedAt,
                error: "listing the shards' files failed: \(StepRunner.describe(error))",
                logPath: FileManager.default.fileExists(atPath: output.path) ? output.path : nil)
            throw error
        }
    }

    /// Leaves the planning job of step run `stepRunID` its plan.
    func saveShardPlan(_ plan: ShardPlan, of stepRunID: String) throws {
        try FileManager.default.createDirectory(at: shardFolder(of: stepRunID), withIntermediateDirectories: true)
        try JSONEncoder().encode(plan).write(to: shardPlanURL(of: stepRunID), options: .atomic)
    }
}
