// Over 400 lines: the registry protocol with the values its requirements take and return (references, expectations, conflicts).
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

    /// Creates an error.
    public init(problem: String, fix: String) {
        self.problem = problem
        self.fix = fix
    }
}

/// What a stage move expects to find when it commits. Each store checks it in the same transaction as the move, so
/// a decision made on what was read (a person's page, a register step's comparison) never lands on a state it was
/// not made for: the move is refused with a ``StageConflict`` instead.
public struct StageExpectation: Sendable, Equatable, CustomStringConvertible {
    /// The model's production version the move expects (`.some(nil)`: none in production); `nil` checks nothing.
    public var production: Int??
    /// The stage the moved version is expected to be in; `nil` checks nothing.
    public var stage: ModelStage?

    /// Creates an expectation; the default expects nothing (the move is unconditional).
    public init(production: Int?? = nil, stage: ModelStage? = nil) {
        self.production = production
        self.stage = stage
    }

    /// Expects nothing: the move applies to whatever is there.
    public static let nothing = StageExpectation()

    /// Expects `version` in production, or no version in production when `nil`.
    public static func production(_ version: Int?) -> StageExpectation { StageExpectation(production: .some(version)) }

    /// Whether the versions as stored (all versions of one model) hold what this expects of the move of `version`.
    public func holds(in versions: [ModelVersion], moving version: Int) -> Bool {
        if let production, versions.first(where: { $0.stage == .production })?.version != production { return false }
        if let stage, let moved = versions.first(where: { $0.version == version }), moved.stage != stage {
            return false
        }
        return true
    }

    /// Reads `none`, `3` or `v3` as an expected production version (`.some(nil)` for none); nil when it is
    /// neither.
    public static func productionVersion(parsing text: String) -> Int?? {
        let trimmed = text.lowercased()
        if trimmed == "none" { return .some(nil) }
        guard let number = Int(trimmed.hasPrefix("v") ? String(trimmed.dropFirst()) : trimmed), number > 0 else {
            return nil
        }
        return .some(number)
    }

    public var description: String { describe(moving: nil) }

    /// The expectation in words, naming the moved version: "v3 in production and v5 in staging".
    public func describe(moving version: Int?) -> String {
        var parts: [String] = []
        if let production { parts.append(production.map { "v\($0) in production" } ?? "no version in production") }
        if let stage { parts.append("\(version.map { "v\($0)" } ?? "the version") in \(stage)") }
        return parts.isEmpty ? "nothing" : parts.joined(separator: " and ")
    }
}

/// A stage move refused because the registry no longer holds what the mover expected: someone else moved a
/// version first. Nothing was changed; the error says what is there now and who put it there.
public struct StageConflict: Error, Sendable, Equatable, CustomStringConvertible {
    /// The model.
    public var model: String
    /// The version that was to move.
    public var version: Int
    /// The stage it was to move to.
    public var target: ModelStage
    /// What the move expected.
    public var expected: StageExpectation
    /// The version in production now, if any.
    public var production: Int?
    /// The stage the version to move is in now.
    public var stage: ModelStage
    /// The latest recorded stage change of the model (who moved what, when and why), if any.
    public var latestChange: StageChange?

    /// Creates the error.
    public init(
        model: String, version: Int, target: ModelStage, expected: StageExpectation, production: Int?,
        stage: ModelStage, latestChange: StageChange?
    ) {
        self.model = model
        self.version = version
        self.target = target
        self.expected = expected
        self.production = production
        self.stage = stage
        self.latestChange = latestChange
    }

    /// What the registry holds now, in words: "v4 in production, v5 in staging".
    public var found: String {
        var parts = [production.map { "v\($0) in production" } ?? "no version in production"]
        if production != version { parts.append("v\(version) in \(stage)") }
        return parts.joined(separator: ", ")
    }

    public var problem: String {
        var text =
            "model '\(model)' changed before v\(version) could move to \(target): expected "
            + "\(expected.describe(moving: version)), found \(found)"
        if let change = latestChange {
            let when = ISO8601DateFormatter.string(
                from: change.at, timeZone: TimeZone(identifier: "UTC")!, formatOptions: [.withInternetDateTime])
            text +=
                " (last change: v\(change.version) \(change.from) → \(change.to) by \(change.by) at \(when)"
                + (change.reason.isEmpty ? ")" : ": \(change.reason))")
        }
        return text + ". Nothing was changed."
    }

    public var fix: String {
        "look at `sluice models show \(model)`, then move the version again if it is still what you want."
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
    /// Adds the next version of `model` unless one of its versions already holds this bundle: the same artifact
    /// record, or (in a registry that keeps artifact records) one with `contentHash`. Decided and written in one
    /// transaction, so runs that made the same bundle at the same moment register it once. Returns the version
    /// (the newest such one when it exists) and whether this call added it.
    func registerModelVersionIfNew(
        model: String, artifactID: String, contentHash: String?, runID: String?, createdBy: String,
        metrics: [String: Double], datasetVersion: String?
    ) async throws -> (version: ModelVersion, isNew: Bool)
    /// Every model with a summary of its versions, by name.
    func registeredModels() async throws -> [RegisteredModel]
    /// The versions of a model, newest first (empty for an unknown model).
    func modelVersions(_ model: String) async throws -> [ModelVersion]
    /// Moves a version to a stage, recording who and why, when the registry still holds what `expected` says (in
    /// the same transaction as the move; otherwise it throws ``StageConflict`` and changes nothing). Moving to
    /// production archives the previous production version. Returns the moved version.
    func moveModelVersion(
        _ model: String, version: Int, to stage: ModelStage, expecting expected: StageExpectation, by: String,
        reason: String
    ) async throws -> ModelVersion
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
    /// Moves a version to a stage whatever the registry holds now (``StageExpectation/nothing``). A decision made
    /// on what was read earlier belongs in ``moveModelVersion(_:version:to:expecting:by:reason:)``.
    public func moveModelVersion(_ model: String, version: Int, to stage: ModelStage, by: String, reason: String)
        async throws -> ModelVersion
    {
        try await moveModelVersion(model, version: version, to: stage, expecting: .nothing, by: by, reason: reason)
    }

    /// What the registry holds now for a move of `version`: the model's production version (or `production`, when
    /// given) and the version's stage. A person's move decided on this state expects exactly it, so a promotion
    /// that lands first makes the move a ``StageConflict`` instead of being overwritten unseen.
    public func expectation(_ model: String, moving version: Int, production: Int?? = nil) async throws
        -> StageExpectation
    {
        let versions = try await modelVersions(model)
        return StageExpectation(
            production: production ?? .some(versions.first { $0.stage == .production }?.version),
            stage: versions.first { $0.version == version }?.stage)
    }

    /// One version of a model.
    public func modelVersion(_ model: String, version: Int) async throws -> ModelVersion? {
        try await modelVersions(model).first { $0.version == version }
    }

    /// The version of a model in production, if any.
    public func productionVersion(_ model: String) async throws -> ModelVersion? {
        try await modelVersions(model).first { $0.stage == .production }
    }

    /// Puts back in production the version that was there before the current one (the current one is archived).
    /// The move expects the production version it read (or `expectedProduction`, when given, which must be in
    /// production), so a promotion made meanwhile is never rolled back unseen: that is a ``StageConflict``.
    public func rollback(_ model: String, expectedProduction: Int? = nil, by: String, reason: String) async throws
        -> ModelVersion
    {
        let versions = try await modelVersions(model)
        guard !versions.isEmpty else { throw RegistryRules.unknownModel(model, known: try await registeredModels()) }
        guard let current = versions.first(where: { $0.stage == .production }) else {
            throw RegistryError(
                problem: "model '\(model)' has no version in production to roll back",
                fix: "promote a version with `sluice models promote \(model) VERSION`.")
        }
        if let expectedProduction, expectedProduction != current.version {
            throw StageConflict(
                model: model, version: current.version, target: .archived,
                expected: .production(expectedProduction), production: current.version, stage: current.stage,
                latestChange: try await stageChanges(model).last)
        }
        let promotions = try await stageChanges(model).filter { $0.to == .production && $0.version != current.version }
        guard let previous = promotions.last else {
            throw RegistryError(
                problem: "model '\(model)' version \(current.version) is the only version that was ever in production",
                fix: "promote another version instead.")
        }
        let restored = versions.first { $0.version == previous.version }
        return try await moveModelVersion(
            model, version: previous.version, to: .production,
            expecting: StageExpectation(production: .some(current.version), stage: restored?.stage), by: by,
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
    /// `versions` are all of the model's versions as stored now, read in the transaction that writes the result;
    /// `latestChange` (the model's newest stage change) is only read for a conflict's message.
    public static func move(
        _ versions: [ModelVersion], model: String, version: Int, to stage: ModelStage,
        expecting expected: StageExpectation = .nothing, by: String, reason: String, at date: Date,
        latestChange: () throws -> StageChange? = { nil }
    ) throws -> (updated: [ModelVersion], changes: [StageChange]) {
        guard let target = versions.first(where: { $0.version == version }) else {
            throw RegistryError(
                problem: "model '\(model)' has no version \(version)",
                fix: "use one of \(versions.map { String($0.version) }.joined(separator: ", ")).")
        }
        guard expected.holds(in: versions, moving: version) else {
            throw StageConflict(
                model: model, version: version, target: stage, expected: expected,
                production: versions.first { $0.stage == .production }?.version, stage: target.stage,
                latestChange: try latestChange())
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
