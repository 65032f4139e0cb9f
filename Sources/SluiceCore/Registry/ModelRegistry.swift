import Foundation

/// Where a model version is in its life: registered, being tried, serving, or retired.
public enum ModelStage: String, Codable, Sendable, CaseIterable, CustomStringConvertible {
    /// Registered, not yet staged.
    case none
    /// Being tried before production.
    case staging
    /// Serving; at most one version of a model is here.
    case production
    /// Retired.
    case archived

    public var description: String { rawValue }
}

/// One registered version of a named model: the bundle artifact it points at, the run that made it, its stage.
public struct ModelVersion: Codable, Sendable, Equatable {
    /// The model's name.
    public var model: String
    /// The version number, from 1.
    public var version: Int
    /// The model bundle artifact.
    public var artifactID: String
    /// The run that trained and registered it.
    public var runID: String?
    /// Its stage now.
    public var stage: ModelStage
    /// When it was registered.
    public var createdAt: Date
    /// Who registered it.
    public var createdBy: String
    /// Headline metrics at registration (for listings and comparisons).
    public var metrics: [String: Double]
    /// The dataset version it was trained on.
    public var datasetVersion: String?

    /// Creates a record.
    public init(
        model: String, version: Int, artifactID: String, runID: String?, stage: ModelStage, createdAt: Date,
        createdBy: String, metrics: [String: Double], datasetVersion: String?
    ) {
        self.model = model
        self.version = version
        self.artifactID = artifactID
        self.runID = runID
        self.stage = stage
        self.createdAt = createdAt
        self.createdBy = createdBy
        self.metrics = metrics
        self.datasetVersion = datasetVersion
    }
}

/// A recorded change of stage: who moved which version, when, and why.
public struct StageChange: Codable, Sendable, Equatable {
    /// The model.
    public var model: String
    /// The version moved.
    public var version: Int
    /// Its stage before.
    public var from: ModelStage
    /// Its stage after.
    public var to: ModelStage
    /// When.
    public var at: Date
    /// Who.
    public var by: String
    /// Why.
    public var reason: String

    /// Creates a record.
    public init(model: String, version: Int, from: ModelStage, to: ModelStage, at: Date, by: String, reason: String) {
        self.model = model
        self.version = version
        self.from = from
        self.to = to
        self.at = at
        self.by = by
        self.reason = reason
    }
}

/// A named model with where its versions stand.
public struct RegisteredModel: Codable, Sendable, Equatable {
    /// The name.
    public var name: String
    /// Number of versions.
    public var versions: Int
    /// The newest version number.
    public var latestVersion: Int
    /// The version in production, if any.
    public var productionVersion: Int?
    /// The newest version in staging, if any.
    public var stagingVersion: Int?
}

/// A registry request that cannot be done, with what to do instead.
public struct RegistryError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What is wrong.
    public var problem: String
    /// What to do.
    public var fix: String
    public var description: String { "\(problem)\n  To fix: \(fix)" }

    /// Creates an error.
    public init(problem: String, fix: String) {
        self.problem = problem
        self.fix = fix
    }
}

/// Named models, their versions and stages, with every stage change recorded. At most one version of a model is
/// in production: promoting one archives the one it replaces.
public protocol ModelRegistry: Sendable {
    /// Adds the next version of `model`, in stage `none`.
    func registerModelVersion(
        model: String, artifactID: String, runID: String?, createdBy: String, metrics: [String: Double],
        datasetVersion: String?
    ) async throws -> ModelVersion
    /// Every model with a summary of its versions, by name.
    func registeredModels() async throws -> [RegisteredModel]
    /// The versions of a model, newest first (empty for an unknown model).
    func modelVersions(_ model: String) async throws -> [ModelVersion]
    /// Moves a version to a stage, recording who and why; moving to production archives the previous
    /// production version. Returns the moved version.
    func moveModelVersion(_ model: String, version: Int, to stage: ModelStage, by: String, reason: String)
        async throws -> ModelVersion
    /// The stage changes of a model, oldest first.
    func stageChanges(_ model: String) async throws -> [StageChange]
    /// Attaches a measured profile (JSON, also stored at `uri` in the artifact store) to a version, replacing an
    /// earlier one.
    func attachProfile(_ model: String, version: Int, profile: Data, uri: String) async throws
    /// The profile attached to a version, if any.
    func profile(_ model: String, version: Int) async throws -> (json: Data, uri: String)?
    /// Writes a model's versions and stage history exactly as given (numbers, stages, times, authors), in one
    /// transaction: how `sluice store copy` moves a registry between stores. The model must not exist here yet.
    func importModel(_ versions: [ModelVersion], changes: [StageChange]) async throws
}

extension ModelRegistry {
    /// One version of a model.
    public func modelVersion(_ model: String, version: Int) async throws -> ModelVersion? {
        try await modelVersions(model).first { $0.version == version }
    }

    /// The version of a model in production, if any.
    public func productionVersion(_ model: String) async throws -> ModelVersion? {
        try await modelVersions(model).first { $0.stage == .production }
    }

    /// Puts back in production the version that was there before the current one (the current one is archived).
    public func rollback(_ model: String, by: String, reason: String) async throws -> ModelVersion {
        let versions = try await modelVersions(model)
        guard !versions.isEmpty else { throw RegistryRules.unknownModel(model, known: try await registeredModels()) }
        guard let current = versions.first(where: { $0.stage == .production }) else {
            throw RegistryError(
                problem: "model '\(model)' has no version in production to roll back",
                fix: "promote a version with `sluice models promote \(model) VERSION`.")
        }
        let promotions = try await stageChanges(model).filter { $0.to == .production && $0.version != current.version }
        guard let previous = promotions.last else {
            throw RegistryError(
                problem: "model '\(model)' version \(current.version) is the only version that was ever in production",
                fix: "promote another version instead.")
        }
        return try await moveModelVersion(
            model, version: previous.version, to: .production, by: by,
            reason: reason.isEmpty ? "rollback from version \(current.version)" : reason)
    }

    /// Resolves `model`, `model@production`, `model@staging` or `model@3` to a version.
    public func resolve(_ reference: String) async throws -> ModelVersion {
        let parts = reference.split(separator: "@", maxSplits: 1).map(String.init)
        let model = parts[0]
        let versions = try await modelVersions(model)
        guard !versions.isEmpty else { throw RegistryRules.unknownModel(model, known: try await registeredModels()) }
        guard parts.count == 2 else {
            if let production = versions.first(where: { $0.stage == .production }) { return production }
            return versions[0]
        }
        let selector = parts[1]
        if let number = Int(selector.hasPrefix("v") ? String(selector.dropFirst()) : selector) {
            guard let version = versions.first(where: { $0.version == number }) else {
                throw RegistryError(
                    problem: "model '\(model)' has no version \(number)",
                    fix: "use one of \(versions.map { String($0.version) }.joined(separator: ", ")).")
            }
            return version
        }
        guard let stage = ModelStage(rawValue: selector) else {
            throw RegistryError(
                problem: "'\(selector)' is neither a version number nor a stage",
                fix: "write \(model)@production, \(model)@staging or \(model)@VERSION.")
        }
        guard let version = versions.first(where: { $0.stage == stage }) else {
            throw RegistryError(
                problem: "model '\(model)' has no version in \(stage)",
                fix: "promote one with `sluice models promote \(model) VERSION --to \(stage)`.")
        }
        return version
    }
}

/// The rules every registry applies, shared by the implementations.
public enum RegistryRules {
    /// The records to write when `version` moves to `stage`: the new stages of the versions that change and the
    /// stage changes to append.
    public static func move(
        _ versions: [ModelVersion], model: String, version: Int, to stage: ModelStage, by: String, reason: String,
        at date: Date
    ) throws -> (updated: [ModelVersion], changes: [StageChange]) {
        guard let target = versions.first(where: { $0.version == version }) else {
            throw RegistryError(
                problem: "model '\(model)' has no version \(version)",
                fix: "use one of \(versions.map { String($0.version) }.joined(separator: ", ")).")
        }
        guard target.stage != stage else {
            throw RegistryError(
                problem: "model '\(model)' version \(version) is already in \(stage)", fix: "nothing to do.")
        }
        var updated: [ModelVersion] = []
        var changes: [StageChange] = []
        if stage == .production, let current = versions.first(where: { $0.stage == .production }) {
            var retired = current
            retired.stage = .archived
            updated.append(retired)
            changes.append(
                StageChange(
                    model: model, version: current.version, from: .production, to: .archived, at: date, by: by,
                    reason: "replaced by version \(version)"))
        }
        var moved = target
        moved.stage = stage
        updated.append(moved)
        changes.append(
            StageChange(model: model, version: version, from: target.stage, to: stage, at: date, by: by, reason: reason)
        )
        return (updated, changes)
    }

    /// Refuses an import of versions of a model the registry already has (or of several models at once).
    public static func checkImport(_ versions: [ModelVersion], existing: [ModelVersion]) throws {
        guard let model = versions.first?.model else { return }
        guard versions.allSatisfy({ $0.model == model }) else {
            throw RegistryError(
                problem: "an import holds versions of several models", fix: "import one model at a time.")
        }
        if existing.contains(where: { $0.model == model }) {
            throw RegistryError(
                problem: "model '\(model)' already has versions in this registry",
                fix: "copy into a registry that does not have it, or rename one of them.")
        }
    }

    /// The error for a model name nobody registered, with the closest known name.
    public static func unknownModel(_ model: String, known: [RegisteredModel]) -> RegistryError {
        let names = known.map(\.name)
        let hint = names.closest(to: model).map { " (did you mean '\($0)'?)" } ?? ""
        return RegistryError(
            problem: "there is no model '\(model)'\(hint)",
            fix: names.isEmpty
                ? "register one by running a pipeline with a register step (try `sluice demo`)."
                : "use one of: \(names.joined(separator: ", ")).")
    }

    /// Summaries of models from their versions.
    public static func summaries(_ versions: [ModelVersion]) -> [RegisteredModel] {
        Dictionary(grouping: versions, by: \.model).map { name, versions in
            RegisteredModel(
                name: name, versions: versions.count, latestVersion: versions.map(\.version).max() ?? 0,
                productionVersion: versions.first { $0.stage == .production }?.version,
                stagingVersion: versions.filter { $0.stage == .staging }.map(\.version).max())
        }.sorted { $0.name < $1.name }
    }
}
