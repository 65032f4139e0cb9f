import Foundation
import SluiceCore
import SluiceFeatures

extension DashboardData {
    /// The feature store as the features page shows it: the applied definitions with their history, each view's
    /// last materialization, and the training sets joined from services with the model versions trained on them.
    struct FeatureOverview: Codable, Sendable, Equatable {
        /// One applied definition.
        struct Definition: Codable, Sendable, Equatable {
            var kind: String
            var name: String
            var version: String
            /// When this version was first applied, and by whom.
            var appliedAt: Date
            var appliedBy: String
            var runID: String
            /// Versions applied over time, oldest first.
            var versions: [String]
        }
        /// A view's last materialization.
        struct Materialization: Codable, Sendable, Equatable {
            var view: String
            var watermark: String?
            var at: Date?
            var rowsWritten: Int?
            var runID: String
            var store: String?
        }
        /// A training set a `feature_join` step wrote.
        struct TrainingSet: Codable, Sendable, Equatable {
            var artifactID: String
            var runID: String
            var pipeline: String
            var createdAt: Date
            var service: String
            var views: [String]
            var sources: [String]
            /// Model versions registered by the run that joined it.
            var models: [String]
        }
        var definitions: [Definition] = []
        var materializations: [Materialization] = []
        var trainingSets: [TrainingSet] = []
    }

    /// The features page's content, from the metadata and artifact stores (applies and materializations are runs;
    /// training sets are artifacts with `feature_service` properties).
    func features(limit: Int = 5_000) async throws -> FeatureOverview {
        var overview = FeatureOverview()
        let history = try await FeatureRegistry(metadata: metadata, artifacts: artifacts).history()
        if let latest = history.first {
            for definition in latest.definitions.definitions {
                var since = latest
                for apply in history {
                    guard apply.definitions[definition.definitionName]?.version == definition.version else { break }
                    since = apply
                }
                var versions: [String] = []
                for apply in history.reversed() {
                    if let version = apply.definitions[definition.definitionName]?.version, versions.last != version {
                        versions.append(version)
                    }
                }
                overview.definitions.append(
                    .init(
                        kind: definition.kind.rawValue, name: definition.name, version: definition.version,
                        appliedAt: since.run.startedAt, appliedBy: since.run.environment.user, runID: since.run.id,
                        versions: versions))
            }
        }
        var seen = Set<String>()
        for run in try await metadata.runs(RunFilter(pipeline: FeatureMaterialization.pipeline, limit: 200)) {
            for step in try await metadata.stepRuns(ofRun: run.id) where step.status == .completed {
                guard seen.insert(step.stepName).inserted else { continue }
                var entry = FeatureOverview.Materialization(view: step.stepName, at: step.endedAt, runID: run.id)
                if case .string(let watermark)? = step.properties["watermark"] { entry.watermark = watermark }
                if case .string(let store)? = step.properties["online_store"] { entry.store = store }
                entry.rowsWritten = try await metadata.metrics(ofStepRun: step.id)
                    .first { $0.name == "rows_written" }.map { Int($0.value) }
                overview.materializations.append(entry)
            }
        }
        overview.materializations.sort { $0.view < $1.view }
        var registered: [String: [String]] = [:]
        for model in try await metadata.registeredModels() {
            for version in try await metadata.modelVersions(model.name) {
                if let run = version.runID {
                    registered[run, default: []].append("\(version.model)@\(version.version)")
                }
            }
        }
        for artifact in try await metadata.artifacts(ArtifactFilter(limit: limit)) {
            guard case .string(let service)? = artifact.properties["feature_service"],
                let producer = try await metadata.stepRun(artifact.producerStepRunID),
                let run = try await metadata.run(producer.runID)
            else { continue }
            func list(_ key: String) -> [String] {
                guard case .string(let text)? = artifact.properties[key], !text.isEmpty else { return [] }
                return text.split(separator: ",").map(String.init)
            }
            overview.trainingSets.append(
                .init(
                    artifactID: artifact.id, runID: run.id, pipeline: run.pipeline, createdAt: artifact.createdAt,
                    service: service, views: list("feature_views"), sources: list("feature_sources"),
                    models: (registered[run.id] ?? []).sorted()))
        }
        return overview
    }
}
