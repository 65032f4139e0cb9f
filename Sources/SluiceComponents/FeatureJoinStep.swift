import Foundation
import SluiceCore
import SluiceData
import SluiceFeatures
import SluiceML

/// Builds a training set from the feature store: each row of the input table (the service's join keys and a
/// timestamp) with the service's features as of that time, never later (``SluiceFeatures/PointInTimeJoin``, out of
/// core). The runner prepares the join before the run from the project's features.yaml (applied as written), so the
/// service's version and its sources' content versions join the cache key, and the output records them: a changed
/// definition or new source data makes a new training set, and `runs reproduce` rebuilds the same one.
public struct FeatureJoin: ExternalInputStep {
    /// Which service, and how the entity rows say when.
    public struct Parameters: Codable, Sendable, Equatable {
        /// The feature service to join (required).
        public var service = ""
        /// The input table's timestamp column.
        public var timestampColumn = "event_timestamp"
        /// Memory to hold rows in before spilling key buckets to disk, in MiB.
        public var memoryLimitMB = 768
        /// Creates parameters.
        public init(service: String = "") { self.service = service }
    }
    public static let name = "feature_join"
    public static let version = 1
    /// Draws nothing from the run seed.
    public static let usesRunSeed = false
    public var parameters = Parameters()
    let prepared: Result<PreparedJoin, ComponentError>

    /// Creates the step over a join the runner prepared (or why it could not).
    public init(prepared: Result<PreparedJoin, ComponentError>) { self.prepared = prepared }

    /// The service's version and its sources' content versions.
    public func externalFingerprint() throws -> String { try prepared.get().fingerprint }

    public func run(_ input: TableFile, context: StepContext) async throws -> TableFile {
        let prepared = try prepared.get()
        var join = prepared.join
        join.timestampColumn = parameters.timestampColumn
        join.memoryLimit = max(16, parameters.memoryLimitMB) << 20
        let output = context.scratchDirectory.appending(path: "training.arrow")
        let report = try join.run(
            entityRows: input, output: output, scratch: context.scratchDirectory.appending(path: "join"),
            progress: { context.logger.info("\($0)") })
        try? FileManager.default.removeItem(at: context.scratchDirectory.appending(path: "join"))
        context.setProperty(
            "feature_service", .string("\(prepared.service)@\(prepared.serviceVersion)"), forOutput: "output")
        context.setProperty(
            "feature_views",
            .string(
                prepared.viewVersions.sorted { $0.key < $1.key }.map { "\($0.key)@\($0.value)" }.joined(separator: ",")),
            forOutput: "output")
        context.setProperty(
            "feature_sources",
            .string(report.views.map { "\($0.source)@\($0.sourceVersion)" }.joined(separator: ",")), forOutput: "output"
        )
        context.log(metric: "rows", Double(report.entityRows))
        for view in report.views {
            context.log(metric: "\(view.view).source_rows", Double(view.featureRows))
            context.log(metric: "\(view.view).duplicate_key_times", Double(view.duplicateKeyTimes))
            context.log(metric: "\(view.view).skipped_rows", Double(view.rowsWithoutKeyOrTime))
            context.log(metric: "\(view.view).future_rows", Double(view.futureRows))
        }
        return try TableFile(contentsOf: output)
    }

    /// What a model trained from `prepared`'s rows is served with: the service's entity keys, the features a server
    /// fetches for each model input, and the service's policy for unknown entities.
    public static func servingSignature(_ prepared: PreparedJoin) -> FeatureServiceSignature {
        let definitions = prepared.join.definitions
        let service = definitions.services[prepared.service] ?? FeatureService(features: prepared.join.features)
        let keys = definitions.joinKeys(of: service).map {
            SignatureColumn(name: $0.name, type: $0.type.columnType, required: true)
        }
        var fetched: [String: String] = [:]
        for reference in prepared.join.features {
            fetched[reference.feature] = "\(reference.view):\(reference.feature)"
        }
        return FeatureServiceSignature(
            service: prepared.service, version: prepared.serviceVersion, entityKeys: keys, fetched: fetched,
            missingEntity: FeatureServiceSignature.MissingEntity(rawValue: service.missingEntity.rawValue) ?? .refuse)
    }

    /// Prepares the join of `service` from the project at `root` and the stack's stores, for the runner.
    public static func prepare(
        service: String, root: URL, cache: URL, metadata: any MetadataStore, artifacts: any ArtifactStore
    ) async -> Result<PreparedJoin, ComponentError> {
        guard !service.isEmpty else {
            return .failure(
                ComponentError(
                    problem: "a feature_join step has no `service` parameter",
                    fix: "set parameters: {service: NAME}, a service of features.yaml."))
        }
        do {
            let store = FeatureStore(root: root, cache: cache, metadata: metadata, artifacts: artifacts)
            return .success(try await store.prepareJoin(service: service))
        } catch let error as FeatureError {
            return .failure(ComponentError(problem: error.problem, fix: error.fix))
        } catch let error as ConfigError {
            return .failure(ComponentError(problem: error.problem, fix: error.fix))
        } catch {
            return .failure(
                ComponentError(problem: "cannot prepare the feature join: \(error)", fix: "run `sluice features plan`.")
            )
        }
    }
}
