import Foundation

/// Which artifacts of old runs may lose their content, and which must keep it.
///
/// A run is old when it started before `now - olderThan` and is not among the newest `keepLast` runs of its
/// pipeline (nor still running). An old run's artifacts are deleted unless something kept needs them: every
/// registered model version with its whole upstream lineage, and every artifact a kept run read or produced
/// (cached step runs of new runs point at old runs' outputs). Content shared with a kept artifact (the same bytes)
/// stays, and so does content packed with other small artifacts (it cannot be freed alone). A deleted artifact's
/// record stays, marked with `content_deleted`, and is never a cache hit again (its content is gone).
package struct Retention: Sendable {
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
        /// The runs the plan read (old and kept): a run not among them started after it.
        public var seenRuns: Set<RunID> = []
        /// The registered versions the plan read, as `model@version`.
        public var seenVersions: Set<String> = []
        /// The bytes deleting would free.
        public var bytes: Int64 { Dictionary(deletable.map { ($0.uri, $0.size) }) { a, _ in a }.values.reduce(0, +) }
    }

    /// Works out what the policy deletes, without deleting anything. `deletedRuns` are runs someone deleted
    /// (`sluice runs delete`) before the cutoff: they are old whatever their rank; runs deleted since stay
    /// restorable with their artifacts.
    public func plan(metadata: any MetadataStore & ModelRegistry, now: Date = Date(), deletedRuns: [RunID] = [])
        async throws -> Plan
    {
        let cutoff = now.addingTimeInterval(-olderThan)
        let runs = try await metadata.runs(RunFilter(limit: Int(Int32.max)))
        var kept: [Run] = []
        var old: [Run] = []
        for id in deletedRuns {
            if let run = try await metadata.run(id), run.status.isFinal { old.append(run) }
        }
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
        let (forModels, versions) = try await Self.modelLineage(metadata, skipping: [])
        // Everything the kept runs read or produced.
        let forRuns = try await Self.artifactsUsed(by: kept, metadata)
        var plan = Plan(oldRuns: old, deletable: [], keptForModels: [], keptForRuns: [], packed: [])
        plan.seenRuns = Set(runs.map(\.id) + old.map(\.id))
        plan.seenVersions = versions
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

    /// What ``apply(_:metadata:artifacts:now:)`` did.
    public struct Outcome: Sendable, Equatable {
        /// The bytes freed.
        public var freed: Int64
        /// The artifacts whose content was deleted.
        public var deleted: Int
        /// The plan's deletable artifacts kept because a run or a version since the plan needs them.
        public var keptSince: Int
    }

    /// Deletes the plan's deletable content and marks each record. What changed since
    /// the plan was made is read again first: an artifact that a run started since then reads or reused from the
    /// cache, or that a version registered since then needs (its bundle or its upstream lineage), keeps its content
    /// (``keptSince(_:metadata:)``).
    public func apply(
        _ plan: Plan, metadata: any MetadataStore & ModelRegistry, artifacts: any ArtifactStore, now: Date = Date()
    ) async throws -> Outcome {
        var freed: Int64 = 0
        var deleted = 0
        var removed = Set<String>()
        let stamp = ISO8601DateFormatter().string(from: now)
        let keep = try await keptSince(plan, metadata: metadata)
        var keptURIs = Set<String>()
        for artifact in plan.deletable where keep.contains(artifact.id) { keptURIs.insert(artifact.uri) }
        for artifact in plan.deletable where !keep.contains(artifact.id) && !keptURIs.contains(artifact.uri) {
            if removed.insert(artifact.uri).inserted { freed += try artifacts.remove(uri: artifact.uri) }
            var properties = artifact.properties
            properties[Self.deletedProperty] = .string("\(stamp) by sluice gc")
            try await metadata.setProperties(properties, ofArtifact: artifact.id)
            deleted += 1
        }
        return Outcome(freed: freed, deleted: deleted, keptSince: plan.deletable.count - deleted)
    }

    /// The plan's deletable artifacts that became needed after it was made: read or reused by a run it did not
    /// see or that was still running, or in the lineage of a version it did not see. A run that looks an artifact
    /// up in the cache in the moment between this check and the deletion reads a missing file: its step fails
    /// with ``ArtifactReadError`` naming the artifact, and a re-run computes it again (a deleted artifact is never
    /// a cache hit).
    public func keptSince(_ plan: Plan, metadata: any MetadataStore & ModelRegistry) async throws -> Set<String> {
        let runs = try await metadata.runs(RunFilter(limit: Int(Int32.max)))
        let newer = runs.filter { !plan.seenRuns.contains($0.id) || !$0.status.isFinal }
        let (forModels, _) = try await Self.modelLineage(metadata, skipping: plan.seenVersions)
        let needed = try await Self.artifactsUsed(by: newer, metadata).union(forModels)
        return Set(plan.deletable.map(\.id)).intersection(needed)
    }

    /// The artifacts in the upstream lineage of every registered version not in `skipping`, and the versions read.
    static func modelLineage(_ metadata: any MetadataStore & ModelRegistry, skipping: Set<String>) async throws
        -> (artifacts: Set<String>, versions: Set<String>)
    {
        var artifacts = Set<String>()
        var versions = Set<String>()
        for model in try await metadata.registeredModels() {
            for version in try await metadata.modelVersions(model.name) {
                let name = "\(version.model)@\(version.version)"
                versions.insert(name)
                guard !skipping.contains(name), let artifact = try await metadata.artifact(version.artifactID) else {
                    continue
                }
                let graph = try await Lineage.trace(artifact, .upstream, in: metadata)
                artifacts.formUnion(graph.artifacts.map(\.id))
            }
        }
        return (artifacts, versions)
    }

    /// Every artifact the runs' step runs read or produced.
    static func artifactsUsed(by runs: [Run], _ metadata: any MetadataStore) async throws -> Set<String> {
        var used = Set<String>()
        for run in runs {
            for stepRun in try await metadata.stepRuns(ofRun: run.id) {
                used.formUnion(try await metadata.events(ofStepRun: stepRun.id).map(\.artifactID))
            }
        }
        return used
    }
}
