import Foundation

/// Copies a project's records from one metadata store and registry to another (`sluice store copy`): runs with
/// their config, environment and times, step runs with their cache keys, artifacts' records, events, metrics, and
/// every model with its versions, stage history and profiles. IDs and times are kept, so lineage, caching and
/// `runs show` answer the same on the target.
///
/// Runs the target already has are skipped (one an interrupted copy left part-way gets its missing step runs), as
/// are models it already has (also one registered there while the copy ran), so an interrupted copy can be run
/// again and the target may be in use meanwhile. Runs still running in the source are left for a later copy:
/// their records are not final yet. Artifact content is not moved: both stores must see the same artifact store
/// (URIs are relative to it).
package struct StoreCopy: Sendable {
    /// What a copy did.
    public struct Summary: Sendable, Equatable {
        /// Runs copied, and runs skipped because the target had them.
        public var runs = 0, skippedRuns = 0
        /// Runs left out because they are still running in the source (copy again once they end).
        public var runningRuns = 0
        /// Step runs and artifact records copied.
        public var stepRuns = 0, artifacts = 0
        /// Models copied (with all their versions), and models skipped because the target had them.
        public var models = 0, skippedModels = 0
    }

    let source: any MetadataStore & ModelRegistry
    let target: any MetadataStore & ModelRegistry

    /// Prepares a copy from `source` to `target`.
    public init(from source: any MetadataStore & ModelRegistry, to target: any MetadataStore & ModelRegistry) {
        self.source = source
        self.target = target
    }

    /// Copies everything; `progress` hears each run copied.
    public func run(progress: (String) -> Void = { _ in }) async throws -> Summary {
        var summary = Summary()
        for pipeline in try await source.pipelines() { try await target.registerPipeline(pipeline.name) }
        // Oldest first: a run reads artifacts and reuses step runs of runs before it.
        let runs = try await source.runs(RunFilter(limit: Int.max)).sorted {
            ($0.startedAt, $0.id) < ($1.startedAt, $1.id)
        }
        for run in runs {
            guard run.status.isFinal else {
                summary.runningRuns += 1
                continue
            }
            // The step runs the target already has: all of them when an earlier copy finished this run, some when
            // it was interrupted part-way (the run record goes first, then its step runs one by one).
            var present = Set<String>()
            if try await target.run(run.id) != nil {
                present = Set(try await target.stepRuns(ofRun: run.id).map(\.id))
            } else {
                try await target.insert(run)
            }
            let stepRuns = try await source.stepRuns(ofRun: run.id)
            if !present.isEmpty && stepRuns.allSatisfy({ present.contains($0.id) }) {
                summary.skippedRuns += 1
                continue
            }
            for stepRun in stepRuns where !present.contains(stepRun.id) {
                let events = try await source.events(ofStepRun: stepRun.id)
                let inputs = events.filter { $0.kind == .input }
                let metrics = try await source.metrics(ofStepRun: stepRun.id)
                if stepRun.cachedFrom != nil {
                    try await target.insertCachedStepRuns([CachedStepRun(stepRun: stepRun, events: events)])
                } else if stepRun.status == .completed {
                    var outputs: [ArtifactRecord] = []
                    for event in events where event.kind == .output {
                        guard let artifact = try await source.artifact(event.artifactID) else { continue }
                        outputs.append(artifact)
                    }
                    try await target.insert(stepRun, inputs: inputs)
                    try await target.completeStepRun(stepRun, outputs: outputs, metrics: metrics)
                    summary.artifacts += outputs.count
                } else {
                    try await target.insert(stepRun, inputs: inputs)
                    try await target.finishStepRun(stepRun, metrics: metrics)
                }
                summary.stepRuns += 1
            }
            summary.runs += 1
            progress(run.id)
        }
        for model in try await source.registeredModels() {
            if try await !target.modelVersions(model.name).isEmpty {
                summary.skippedModels += 1
                continue
            }
            let versions = try await source.modelVersions(model.name)
            do {
                try await target.importModel(versions.reversed(), changes: try await source.stageChanges(model.name))
            } catch let error as RegistryError {
                // Registered in the target after the check above: importing checks again in its transaction.
                guard try await !target.modelVersions(model.name).isEmpty else { throw error }
                summary.skippedModels += 1
                continue
            }
            for version in versions {
                if let profile = try await source.profile(model.name, version: version.version) {
                    try await target.attachProfile(
                        model.name, version: version.version, profile: profile.json, uri: profile.uri)
                }
            }
            summary.models += 1
        }
        return summary
    }
}
