import Foundation
import SluiceCore
import SluiceData
import SluiceML

/// The serialized bundle a registered version points at.
public func bundleData(of version: ModelVersion, in store: any MetadataStore, artifacts: any ArtifactStore)
    async throws -> Data
{
    guard let record = try await store.artifact(version.artifactID) else {
        throw ComponentError(
            problem: "the bundle artifact \(version.artifactID) of \(version.model)@\(version.version) is not recorded",
            fix: "check the project's metadata store (was it replaced since the version was registered?).")
    }
    return try artifacts.data(for: record.uri)
}

/// What registering decided.
public struct Registration: Codable, Sendable, Equatable {
    /// The verdict against the thresholds and the baseline.
    public var blessing: Blessing
    /// The version the candidate is registered as (new, or the one that already holds this bundle), or nil.
    public var version: RegisteredVersion?
    /// The production version it was compared with.
    public var baseline: RegisteredVersion?
    /// Whether this run added the version (false when the bundle was registered before, or not blessed).
    public var isNew: Bool
    /// Whether this run put the version in production (the register step's `promote` policy).
    public var promoted: Bool

    /// Creates a registration record.
    public init(
        blessing: Blessing, version: RegisteredVersion?, baseline: RegisteredVersion?, isNew: Bool,
        promoted: Bool = false
    ) {
        self.blessing = blessing
        self.version = version
        self.baseline = baseline
        self.isNew = isNew
        self.promoted = promoted
    }

    private enum CodingKeys: String, CodingKey { case blessing, version, baseline, isNew, promoted }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        blessing = try container.decode(Blessing.self, forKey: .blessing)
        version = try container.decodeIfPresent(RegisteredVersion.self, forKey: .version)
        baseline = try container.decodeIfPresent(RegisteredVersion.self, forKey: .baseline)
        isNew = try container.decode(Bool.self, forKey: .isNew)
        promoted = try container.decodeIfPresent(Bool.self, forKey: .promoted) ?? false  // written before `promote`
    }
}

/// A model version as a registration artifact records it: which version, its stage and metrics, and no record IDs
/// or clock times (who registered it and when are in the registry's records, not in artifact content).
public struct RegisteredVersion: Codable, Sendable, Equatable {
    /// The model's name.
    public var model: String
    /// The version number.
    public var version: Int
    /// Its stage when the step ended.
    public var stage: ModelStage
    /// Its evaluation metrics.
    public var metrics: [String: Double]
    /// The dataset version it was trained on.
    public var datasetVersion: String?

    /// The artifact's view of a registry record.
    public init(_ record: ModelVersion) {
        model = record.model
        version = record.version
        stage = record.stage
        metrics = record.metrics
        datasetVersion = record.datasetVersion
    }
}

/// Blesses the candidate against the thresholds and the current production version (evaluated on the same rows),
/// and registers the bundle as the model's next version when blessed. It never reuses an earlier result: the
/// registry may have changed since. Registering the same bundle twice returns its existing version.
public struct RegisterModel: Step {
    /// Which model, the rules, and where the bundle comes from.
    public struct Parameters: Codable, Sendable, Equatable {
        /// The model's name in the registry.
        public var model = "model"
        /// The label column (to evaluate the baseline on the same rows).
        public var label = "label"
        /// The rules the candidate must meet.
        public var thresholds: [MetricThreshold] = []
        /// The step whose `bundle` output to register.
        public var bundleStep = "evaluate"
        /// When a registered version goes to production on its own (`never`, `first`, `when_blessed`).
        public var promote = Promotion.never
        /// Creates parameters.
        public init() {}
    }

    /// When the register step puts a version in production itself. Every automatic promotion is recorded in the
    /// stage history, by the user running the pipeline, with the run that caused it in the reason.
    public enum Promotion: String, Codable, Sendable, CaseIterable {
        /// Never: people promote (`sluice models promote`).
        case never
        /// The first blessed version, when the model has no production version yet.
        case first
        /// Every blessed version that beats or matches the production version on the same evaluation rows (on each
        /// metric the thresholds name, or every overall metric when there are none), and the first one.
        case whenBlessed = "when_blessed"
    }
    public static let name = "register"
    public static let version = 1
    /// Draws nothing from the run seed: a new seed reuses its cached output.
    public static let usesRunSeed = false
    /// `promote_first: true|false` became `promote: first|never`.
    public static let renamedParameters = [
        RenamedParameter(old: "promote_first", new: "promote") { value in
            guard case .bool(let first) = value.kind else {
                throw ConfigError(
                    problem: "\(value.location.map { "\($0): " } ?? "")promote_first is \(value.kindDescription)",
                    fix: "write `promote: first`, `promote: when_blessed` or `promote: never`.")
            }
            return ConfigValue(.string(first ? Promotion.first.rawValue : Promotion.never.rawValue))
        }
    ]
    public var parameters = Parameters()
    let store: any MetadataStore & ModelRegistry
    let baseline: Baseline?
    let artifacts: (any ArtifactStore)?

    /// Creates the step, writing to `store`'s registry and comparing with `baseline`. With `artifacts`, a version
    /// promoted while the run went on is loaded from there and compared on the same rows before a `when_blessed`
    /// promotion replaces it; without, such a candidate is not promoted (the step says why).
    public init(store: any MetadataStore & ModelRegistry, baseline: Baseline?, artifacts: (any ArtifactStore)? = nil) {
        self.store = store
        self.baseline = baseline
        self.artifacts = artifacts
    }

    /// How many times the policy decides again when another promotion lands between its reading of the registry
    /// and its move.
    static let promotionAttempts = 16

    public func run(_ input: (TableFile, ModelBundle, Evaluation), context: StepContext) async throws -> Registration {
        let (eval, bundle, evaluation) = input
        var baselineEvaluation: Evaluation?
        if let baseline {
            baselineEvaluation = try evaluateOnSameRows(baseline.bundle, eval: eval, like: evaluation)
        }
        let blessing = Blessing(
            candidate: evaluation, baseline: baselineEvaluation,
            policy: BlessingPolicy(thresholds: parameters.thresholds))
        context.setProperty("blessed", .bool(blessing.passed))
        if let baseline { context.setProperty("baseline_version", .int(baseline.version.version)) }
        guard blessing.passed else {
            context.logger.info("not registered: \(blessing.failures.joined(separator: "; "))")
            return Registration(
                blessing: blessing, version: nil, baseline: baseline.map { RegisteredVersion($0.version) }, isNew: false
            )
        }
        let stepRuns = try await store.stepRuns(ofRun: context.runID)
        guard let source = stepRuns.last(where: { $0.stepName == parameters.bundleStep }),
            let artifact = try await store.outputs(ofStepRun: source.id)["bundle"]
        else {
            throw ComponentError(
                problem: "no 'bundle' output of step '\(parameters.bundleStep)' in this run",
                fix: "set bundle_step to the step that evaluates the model.")
        }
        let user = ProcessInfo.processInfo.environment["USER"] ?? NSUserName()
        // The same bundle registered before (the same record, or the same bytes made again, by this run or one
        // running beside it) is that version: decided and written in one transaction.
        var metrics: [String: Double] = [:]
        for name in evaluation.overall.names {
            if let value = evaluation.overall.value(name) { metrics[name] = value }
        }
        let (registered, isNew) = try await store.registerModelVersionIfNew(
            model: parameters.model, artifactID: artifact.id, contentHash: artifact.contentHash,
            runID: context.runID.description, createdBy: user, metrics: metrics, datasetVersion: bundle.datasetVersion)
        var version = registered
        var promoted = false
        if parameters.promote != .never {
            var evaluations: [Int: Evaluation] = [:]
            if let baseline, let baselineEvaluation { evaluations[baseline.version.version] = baselineEvaluation }
            let outcome = try await promote(
                version, evaluation: evaluation, eval: eval, comparedWith: evaluations, user: user, context: context)
            version = outcome.version
            promoted = outcome.promoted
            context.setProperty("promotion", .string(outcome.reason))
            context.logger.info(
                promoted
                    ? "promoted \(parameters.model)@\(version.version) to production: \(outcome.reason)"
                    : "\(parameters.model)@\(version.version) not promoted: \(outcome.reason)")
        }
        context.setProperty("version", .int(version.version))
        context.setProperty("promoted", .bool(promoted))
        return Registration(
            blessing: blessing, version: RegisteredVersion(version),
            baseline: baseline.map { RegisteredVersion($0.version) }, isNew: isNew, promoted: promoted)
    }

    /// Applies the promotion policy to the blessed `version`: reads the production version now, decides, and moves
    /// expecting exactly what it decided on (one conditional transition). When another promotion lands in between,
    /// the move is refused and the policy decides again against the new production version: a `when_blessed`
    /// candidate is then evaluated against that version on the same rows (`comparedWith` holds the evaluations
    /// made so far, by production version), so it never replaces a version it was not compared with.
    func promote(
        _ version: ModelVersion, evaluation: Evaluation, eval: TableFile, comparedWith: [Int: Evaluation],
        user: String, context: StepContext
    ) async throws -> (version: ModelVersion, promoted: Bool, reason: String) {
        var evaluations = comparedWith
        var conflicts: [String] = []
        for _ in 0..<Self.promotionAttempts {
            let versions = try await store.modelVersions(parameters.model)
            guard let candidate = versions.first(where: { $0.version == version.version }) else {
                throw ComponentError(
                    problem: "\(parameters.model)@\(version.version) disappeared from the registry while registering",
                    fix: "check the project's metadata store (was it replaced during the run?), then run again.")
            }
            if candidate.stage == .production {
                return (candidate, false, "it is already in production")
            }
            let production = versions.first { $0.stage == .production }
            let reason: String
            if let production {
                // Only `when_blessed` replaces a production version (the caller never asks under `never`).
                guard parameters.promote == .whenBlessed else {
                    return (
                        candidate, false,
                        "v\(production.version) is in production and promote: first only promotes the first blessed version"
                    )
                }
                let theirs: Evaluation
                if let known = evaluations[production.version] {
                    theirs = known
                } else {
                    guard let artifacts else {
                        return (
                            candidate, false,
                            "production became v\(production.version) during the run and its bundle could not be "
                                + "read here to compare on the same rows (promote by hand after comparing)"
                        )
                    }
                    let bundle = try ModelBundle.load(
                        try await bundleData(of: production, in: store, artifacts: artifacts))
                    theirs = try evaluateOnSameRows(bundle, eval: eval, like: evaluation)
                    evaluations[production.version] = theirs
                    context.logger.info(
                        "production is v\(production.version) now; evaluated it on the same \(evaluation.overall.count) rows"
                    )
                }
                let verdict = comparison(evaluation, with: theirs, production: production.version)
                guard verdict.beats else { return (candidate, false, verdict.reason) }
                reason = verdict.reason + " (run \(context.runID))"
            } else {
                reason = "first blessed version (run \(context.runID))"
            }
            do {
                let moved = try await store.moveModelVersion(
                    parameters.model, version: candidate.version, to: .production,
                    expecting: StageExpectation(production: .some(production?.version), stage: candidate.stage),
                    by: user, reason: reason)
                return (
                    moved, true,
                    reason + (conflicts.isEmpty ? "" : "; decided again after: " + conflicts.joined(separator: "; "))
                )
            } catch let conflict as StageConflict {
                conflicts.append(
                    "expected \(conflict.expected.describe(moving: conflict.version)), found \(conflict.found)")
                context.logger.info("\(conflict.problem) Deciding again.")
            }
        }
        return (
            version, false,
            "the registry changed under each of \(Self.promotionAttempts) attempts to promote (\(conflicts.last ?? "")); "
                + "promote by hand with `sluice models promote \(parameters.model) \(version.version)`"
        )
    }

    /// Whether the candidate beats or matches production on each metric the thresholds name (every overall
    /// metric when there are none), both measured on the same rows, and the reason in words either way.
    func comparison(_ evaluation: Evaluation, with production: Evaluation, production version: Int)
        -> (beats: Bool, reason: String)
    {
        var names = parameters.thresholds.map(\.metric)
        if names.isEmpty { names = evaluation.overall.names }
        var compared: [String] = []
        for name in Set(names).sorted() {
            guard let mine = evaluation.overall.value(name), let theirs = production.overall.value(name) else {
                continue
            }
            let line = "\(name) \(String(format: "%.4f", mine)) vs \(String(format: "%.4f", theirs))"
            let better = MetricSet.higherIsBetter(name) ? mine >= theirs - 1e-12 : mine <= theirs + 1e-12
            guard better else {
                return (false, "it does not beat or match production v\(version) on the same rows (\(line))")
            }
            compared.append(line)
        }
        guard !compared.isEmpty else {
            return (false, "no metric could be compared with production v\(version) (\(names.joined(separator: ", ")))")
        }
        return (
            true,
            "blessed and beats or matches production v\(version) on the same "
                + "\(evaluation.overall.count) evaluation rows (\(compared.joined(separator: ", ")))"
        )
    }

    /// `bundle`'s evaluation on the candidate's evaluation rows, sliced as the candidate's was.
    func evaluateOnSameRows(_ bundle: ModelBundle, eval: TableFile, like evaluation: Evaluation) throws -> Evaluation {
        try EvaluateModel.evaluate(
            bundle.model, bundle.transforms, on: eval, label: parameters.label,
            slices: evaluation.slices.map(\.column).reduce(into: [String]()) {
                if !$0.contains($1) { $0.append($1) }
            })
    }
}
