import Foundation
import SluiceCore
import SluiceData

/// A project's feature store: its definition files, the sources they read, and the versions applied in a stack's
/// stores. What the CLI, the `feature_join` component and the servers share.
public struct FeatureStore: Sendable {
    /// The project's directory (where features.yaml is, and relative source paths start).
    public let root: URL
    /// Where CSV sources are kept as Arrow files by content version.
    public let cache: URL
    /// The applied versions.
    public let registry: FeatureRegistry

    /// Creates the store of the project at `root`.
    public init(root: URL, cache: URL, metadata: any MetadataStore, artifacts: any ArtifactStore) {
        self.root = root
        self.cache = cache
        registry = FeatureRegistry(metadata: metadata, artifacts: artifacts)
    }

    /// Reads sources relative to the project, and pipeline outputs from the stack's stores.
    public var reader: FeatureSourceReader {
        let registry = self.registry
        return FeatureSourceReader(
            directory: root, cache: cache,
            pipelineOutput: { try await registry.pipelineOutput(pipeline: $0, step: $1, output: $2, run: $3) })
    }

    /// The definitions in the project's files.
    /// - Throws: ``SluiceCore/ConfigError`` with file:line:column for a mistake in a file.
    public func definitions() throws -> FeatureDefinitions {
        try FeatureDefinitions.load(FeatureDefinitions.files(in: root), relativeTo: root)
    }

    /// The definitions and every problem with them: structure first, then each source's columns.
    public func check() async throws -> (FeatureDefinitions, [FeatureError]) {
        let (definitions, problems, _) = try await checkReading()
        return (definitions, problems)
    }

    /// ``check()``, with the sources it read (by name), for callers that go on to use them.
    func checkReading() async throws -> (FeatureDefinitions, [FeatureError], [String: ResolvedSource]) {
        let definitions = try definitions()
        var problems = definitions.structuralProblems()
        var resolved: [String: ResolvedSource] = [:]
        for (name, source) in definitions.sources.sorted(by: { $0.key < $1.key }) {
            do {
                resolved[name] = try await reader.read(name, source)
            } catch let error as FeatureError {
                problems.append(error)
            }
        }
        problems += definitions.dataProblems(resolved)
        return (definitions, problems, resolved)
    }

    /// What a join of the service `name` needs: the checked definitions, applied as written (so the versions a
    /// training set records are in the store), the service's features and their sources.
    /// - Throws: ``FeatureError`` for any problem with the definitions, or when the service is not applied as written.
    public func prepareJoin(service name: String) async throws -> PreparedJoin {
        let (definitions, problems, resolved) = try await checkReading()
        if let problem = problems.first { throw problem }
        let service = try definitions.requireService(name)
        let serviceName = DefinitionName(kind: .service, name: name)
        let version = definitions.version(of: serviceName)!
        let applied = try await registry.latest()?.definitions[serviceName]
        guard applied?.version == version else {
            throw FeatureError(
                problem: applied == nil
                    ? "feature service '\(name)' is not applied yet."
                    : "feature service '\(name)' differs from its applied version (\(applied!.version) applied, "
                        + "\(version) in the files).",
                fix: "run `sluice features apply` (see `sluice features diff`), so the training set's versions are "
                    + "recorded.")
        }
        let references = definitions.expandedFeatures(of: service)
        var sources: [String: ResolvedSource] = [:]
        var viewVersions: [String: String] = [:]
        for view in Set(references.map(\.view)) {
            let definition = definitions.views[view]!
            viewVersions[view] = definitions.version(of: DefinitionName(kind: .view, name: view))
            sources[definition.source] = resolved[definition.source]
        }
        return PreparedJoin(
            service: name, join: PointInTimeJoin(definitions: definitions, features: references, sources: sources),
            serviceVersion: version, viewVersions: viewVersions)
    }
}

/// A join ready to run, with the versions it reads.
public struct PreparedJoin: Sendable {
    /// The service's name.
    public var service: String
    /// The join, over the service's features and their sources.
    public var join: PointInTimeJoin
    /// The service's content version.
    public var serviceVersion: String
    /// Each view's content version.
    public var viewVersions: [String: String]

    /// Everything the join's output depends on besides the entity rows: the service's version, and each source's
    /// content version. A step's cache key holds it.
    public var fingerprint: String {
        let sources = join.sources.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.version)" }
        return "service \(service)@\(serviceVersion); sources " + sources.joined(separator: ",")
    }
}
