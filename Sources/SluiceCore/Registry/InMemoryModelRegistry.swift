import Foundation

/// A model registry in memory, for tests and previews.
public actor InMemoryModelRegistry: ModelRegistry {
    private var versions: [ModelVersion] = []
    private var changes: [StageChange] = []
    private var profiles: [String: (json: Data, uri: String)] = [:]

    /// Creates an empty registry.
    public init() {}

    public func registerModelVersion(
        model: String, artifactID: String, runID: String?, createdBy: String, metrics: [String: Double],
        datasetVersion: String?
    ) -> ModelVersion {
        let next = (versions.filter { $0.model == model }.map(\.version).max() ?? 0) + 1
        let version = ModelVersion(
            model: model, version: next, artifactID: artifactID, runID: runID, stage: .none, createdAt: Date(),
            createdBy: createdBy, metrics: metrics, datasetVersion: datasetVersion)
        versions.append(version)
        return version
    }

    /// Keeps no artifact records: only the same artifact record counts as the same bundle here.
    public func registerModelVersionIfNew(
        model: String, artifactID: String, contentHash: String?, runID: String?, createdBy: String,
        metrics: [String: Double], datasetVersion: String?
    ) -> (version: ModelVersion, isNew: Bool) {
        if let existing = modelVersions(model).first(where: { $0.artifactID == artifactID }) {
            return (existing, false)
        }
        return (
            registerModelVersion(
                model: model, artifactID: artifactID, runID: runID, createdBy: createdBy, metrics: metrics,
                datasetVersion: datasetVersion), true
        )
    }

    public func registeredModels() -> [RegisteredModel] { RegistryRules.summaries(versions) }

    public func modelVersions(_ model: String) -> [ModelVersion] {
        versions.filter { $0.model == model }.sorted { $0.version > $1.version }
    }

    public func moveModelVersion(
        _ model: String, version: Int, to stage: ModelStage, expecting expected: StageExpectation, by: String,
        reason: String
    ) throws -> ModelVersion {
        // Synchronous on the actor: nothing runs between the check and the write.
        let current = modelVersions(model)
        guard !current.isEmpty else { throw RegistryRules.unknownModel(model, known: registeredModels()) }
        let (updated, newChanges) = try RegistryRules.move(
            current, model: model, version: version, to: stage, expecting: expected, by: by, reason: reason,
            at: Date(), latestChange: { self.changes.last { $0.model == model } })
        for record in updated {
            if let index = versions.firstIndex(where: { $0.model == model && $0.version == record.version }) {
                versions[index] = record
            }
        }
        changes += newChanges
        return updated.last!
    }

    public func stageChanges(_ model: String) -> [StageChange] { changes.filter { $0.model == model } }

    public func attachProfile(_ model: String, version: Int, profile: Data, uri: String) throws {
        guard versions.contains(where: { $0.model == model && $0.version == version }) else {
            throw RegistryError(
                problem: "model '\(model)' has no version \(version)", fix: "profile a registered version.")
        }
        profiles["\(model)@\(version)"] = (profile, uri)
    }

    public func profile(_ model: String, version: Int) -> (json: Data, uri: String)? { profiles["\(model)@\(version)"] }

    public func importModel(_ versions: [ModelVersion], changes: [StageChange]) throws {
        try RegistryRules.checkImport(versions, existing: self.versions)
        self.versions += versions
        self.changes += changes
    }
}
