import Foundation

/// Which artifacts of old runs may lose their content, and which must keep it.
///
/// A run is old when it started before `now - olderThan` and is not among the newest `keepLast` runs of its
/// pipeline (nor still running). An old run's artifacts are deleted unless something kept needs them: every
/// registered model version with its whole upstream lineage, and every artifact a kept run read or produced
/// (cached step runs of new runs point at old runs' outputs). Content shared with a kept artifact (the same bytes)
/// stays, and so does content packed with other small artifacts (it cannot be freed alone). A deleted artifact's
/// record stays, marked with `content_deleted`, and is never a cache hit again (its content is gone).
public struct Retention: Sendable {
    /// Runs younger than this keep everything.
    public var olderThan: TimeInterval
    /// The newest runs of each pipeline kept whatever their age.
    public var keepLast: Int

    /// Creates a policy.
    public init(olderThan: TimeInterval, keepLast: Int) {
        self.olderThan = olderThan
        self.keepLast = keepLast
    }

    /// The property a deleted artifact's record carries: when, and by what.
    public static let deletedProperty = "content_deleted"

    /// What a policy would delete and why the rest stays.
    public struct Plan: Sendable {
        /// The old runs.
        public var oldRuns: [Run]
        /// Their artifacts whose content goes.
        public var deletable: [ArtifactRecord]
        /// Their artifacts kept for a registered model version's lineage.
        public var keptForModels: [ArtifactRecord]
        /// Their artifacts kept because a kept run reads or produced them, or shares their content.
        public var keptForRuns: [ArtifactRecord]
        /// Their artifacts packed with others, which stay.
        public var packed: [ArtifactRecord]
        /// The bytes deleting would free.
        public var bytes: Int64 { Dictionary(deletable.map { ($0.uri, $0.size) }) { a, _ in a }.values.reduce(0, +) }
    }

    /// Works out what the policy deletes, without deleting anything.
    public func plan(metadata: any MetadataStore & ModelRegistry, now: Date = Date()) async throws -> Plan {
        let cutoff = now.addingTimeInterval(-olderThan)
        let runs = try await metadata.runs(RunFilter(limit: Int(Int32.max)))
        var kept: [Run] = []
        var old: [Run] = []
        for (_, ofPipeline) in Dictionary(grouping: runs, by: \.pipeline) {
            for (rank, run) in ofPipeline.sorted(by: { $0.startedAt > $1.startedAt }).enumerated() {
                if rank < keepLast || run.startedAt >= cutoff || !run.status.isFinal {
                    kept.append(run)
                } else {
                    old.append(run)
                }
            }
        }
        // Everything a registered model version needs.
        var forModels = Set<String>()
        for model in try await metadata.registeredModels() {
            for version in try await metadata.modelVersions(model.name) {
                guard let artifact = try await metadata.artifact(version.artifactID) else { continue }
                let graph = try await Lineage.trace(artifact, .upstream, in: metadata)
                forModels.formUnion(graph.artifacts.map(\.id))
            }
        }
        // Everything the kept runs read or produced.
        var forRuns = Set<String>()
        for run in kept {
            for stepRun in try await metadata.stepRuns(ofRun: run.id) {
                forRuns.formUnion(try await metadata.events(ofStepRun: stepRun.id).map(\.artifactID))
            }
        }
        var plan = Plan(oldRuns: old, deletable: [], keptForModels: [], keptForRuns: [], packed: [])
        var candidates: [ArtifactRecord] = []
        var seen = Set<String>()
        for run in old.sorted(by: { $0.startedAt < $1.startedAt }) {
            for stepRun in try await metadata.stepRuns(ofRun: run.id) where stepRun.status == .completed {
                for artifact in try await metadata.outputs(ofStepRun: stepRun.id).values
                where seen.insert(artifact.id).inserted && artifact.properties[Self.deletedProperty] == nil {
                    candidates.append(artifact)
                }
            }
        }
        var keptURIs = Set<String>()
        for artifact in candidates where forModels.contains(artifact.id) || forRuns.contains(artifact.id) {
            keptURIs.insert(artifact.uri)
        }
        for id in forModels.union(forRuns) where !seen.contains(id) {
            if let artifact = try await metadata.artifact(id) { keptURIs.insert(artifact.uri) }
        }
        for artifact in candidates {
            if forModels.contains(artifact.id) {
                plan.keptForModels.append(artifact)
            } else if forRuns.contains(artifact.id) || keptURIs.contains(artifact.uri) {
                plan.keptForRuns.append(artifact)
            } else if artifact.uri.contains("#") {
                plan.packed.append(artifact)
            } else {
                plan.deletable.append(artifact)
            }
        }
        return plan
    }

    /// Deletes the plan's deletable content and marks each record; returns the bytes freed.
    public func apply(
        _ plan: Plan, metadata: any MetadataStore, artifacts: any ArtifactStore, now: Date = Date()
    ) async throws -> Int64 {
        var freed: Int64 = 0
        var removed = Set<String>()
        let stamp = ISO8601DateFormatter().string(from: now)
        for artifact in plan.deletable {
            if removed.insert(artifact.uri).inserted { freed += try artifacts.remove(uri: artifact.uri) }
            var properties = artifact.properties
            properties[Self.deletedProperty] = .string("\(stamp) by sluice gc")
            try await metadata.setProperties(properties, ofArtifact: artifact.id)
        }
        return freed
    }
}
