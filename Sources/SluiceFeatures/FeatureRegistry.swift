import Foundation
import SluiceCore
import SluiceData

/// One definition as applied: its kind, name, content version and canonical content.
public struct AppliedDefinition: Sendable, Equatable, Codable {
    public var kind: DefinitionName.Kind
    public var name: String
    public var version: String
    /// Canonical JSON of the definition.
    public var content: String

    /// Creates a record.
    public init(kind: DefinitionName.Kind, name: String, version: String, content: String) {
        self.kind = kind
        self.name = name
        self.version = version
        self.content = content
    }

    /// Its kind and name.
    public var definitionName: DefinitionName { DefinitionName(kind: kind, name: name) }
}

/// Every definition of one `sluice features apply`, stored as an artifact of a run of ``FeatureRegistry/pipeline``
/// (so who applied it and when are the run's, and the dashboard lists applies with the other runs).
public struct AppliedDefinitions: Sendable, Equatable, Codable {
    /// The definitions, sorted by kind and name.
    public var definitions: [AppliedDefinition]

    /// Creates the set.
    public init(definitions: [AppliedDefinition]) {
        self.definitions = definitions.sorted { $0.definitionName < $1.definitionName }
    }

    /// The definitions of `definitions`, with their versions.
    public init(_ definitions: FeatureDefinitions) {
        self.init(
            definitions: definitions.names.map {
                AppliedDefinition(
                    kind: $0.kind, name: $0.name, version: definitions.version(of: $0)!,
                    content: definitions.content(of: $0)!)
            })
    }

    /// The definition `name`, if applied.
    public subscript(name: DefinitionName) -> AppliedDefinition? { definitions.first { $0.definitionName == name } }
}

/// How a definition differs between what is applied and what the files say.
public struct DefinitionChange: Sendable, Equatable {
    /// The kinds of change.
    public enum Kind: String, Sendable { case added, changed, removed, unchanged }
    public var kind: Kind
    public var name: DefinitionName
    /// The applied version (nil when added).
    public var from: String?
    /// The version in the files (nil when removed).
    public var to: String?

    /// Compares applied definitions with new ones.
    public static func between(_ old: AppliedDefinitions?, _ new: AppliedDefinitions) -> [DefinitionChange] {
        var changes: [DefinitionChange] = []
        let names = Set((old?.definitions ?? []).map(\.definitionName) + new.definitions.map(\.definitionName)).sorted()
        for name in names {
            let before = old?[name]
            let after = new[name]
            let kind: Kind =
                before == nil
                ? .added : after == nil ? .removed : before!.version == after!.version ? .unchanged : .changed
            changes.append(DefinitionChange(kind: kind, name: name, from: before?.version, to: after?.version))
        }
        return changes
    }
}

/// One `apply`: the run that recorded it and what it applied.
public struct FeatureApply: Sendable {
    /// The run (who, when, where).
    public var run: Run
    /// The definitions as applied.
    public var definitions: AppliedDefinitions
}

/// Feature definitions' versions in a stack's metadata and artifact stores: each `apply` is a run of the pipeline
/// ``pipeline`` with one step, `apply`, whose output is the applied definitions.
public struct FeatureRegistry: Sendable {
    /// The pipeline name applies are recorded under.
    public static let pipeline = "sluice.features"
    /// The artifact type name of applied definitions.
    public static let typeName = "FeatureDefinitions"

    public let metadata: any MetadataStore
    public let artifacts: any ArtifactStore

    /// Creates a registry over a stack's stores.
    public init(metadata: any MetadataStore, artifacts: any ArtifactStore) {
        self.metadata = metadata
        self.artifacts = artifacts
    }

    /// Every apply, newest first.
    public func history(limit: Int = 1000) async throws -> [FeatureApply] {
        var applies: [FeatureApply] = []
        for run in try await metadata.runs(RunFilter(pipeline: Self.pipeline, status: .completed, limit: limit)) {
            guard let step = try await metadata.stepRuns(ofRun: run.id).first,
                let record = try await metadata.outputs(ofStepRun: step.id)["definitions"]
            else { continue }
            let data = try artifacts.data(for: record.uri)
            applies.append(
                FeatureApply(run: run, definitions: try JSONDecoder().decode(AppliedDefinitions.self, from: data)))
        }
        return applies
    }

    /// The newest apply, if any.
    public func latest() async throws -> FeatureApply? { try await history(limit: 1).first }

    /// Records `definitions` as applied now, by the user `environment` names, unless nothing changed.
    /// - Returns: the changes, and the run that recorded them (nil when nothing changed).
    public func apply(_ definitions: FeatureDefinitions, environment: RunEnvironment) async throws -> (
        [DefinitionChange], Run?
    ) {
        let applied = AppliedDefinitions(definitions)
        let previous = try await latest()
        let changes = DefinitionChange.between(previous?.definitions, applied)
        guard changes.contains(where: { $0.kind != .unchanged }) else { return (changes, nil) }
        let now = Date()
        let runID = RecordID.make("run", at: now)
        let config = applied.definitions.map { "\($0.kind.rawValue) \($0.name): \($0.version)" }.joined(separator: "\n")
        var run = Run(
            id: runID, pipeline: Self.pipeline, status: .running,
            config: "# feature definitions applied\n" + config + "\n",
            environment: environment, owner: ProcessOwner.current, startedAt: now)
        try await metadata.registerPipeline(Self.pipeline)
        try await metadata.insert(run)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        let stored = try artifacts.store(data: try encoder.encode(applied))
        var step = StepRun(
            id: RecordID.make("step", at: now), runID: runID, stepName: "apply", kind: "FeatureApply", status: .running,
            cacheKey: nil, codeVersion: 1, parameters: "{}", seed: 0, startedAt: now,
            properties: [
                StepRun.upstreamProperty: .string(""),
                "changed": .int(changes.filter { $0.kind != .unchanged }.count),
            ])
        try await metadata.insert(step, inputs: [])
        let record = ArtifactRecord(
            id: RecordID.make("art", at: now), name: "definitions", typeName: Self.typeName, uri: stored.uri,
            contentHash: stored.contentHash, size: stored.size, materializer: "json", materializerVersion: 1,
            properties: ["definitions": .int(applied.definitions.count)], producerStepRunID: step.id, createdAt: now)
        step.status = .completed
        step.endedAt = Date()
        try await metadata.completeStepRun(step, outputs: [record], metrics: [])
        try await metadata.finishRun(runID, status: .completed, endedAt: Date(), error: nil)
        run.status = .completed
        run.endedAt = step.endedAt
        return (changes, run)
    }

    /// The table a pipeline step wrote, for a source that reads one: in the newest completed run of `pipeline` (or
    /// the run `run` names) → its file and content hash.
    public func pipelineOutput(pipeline: String, step: String, output: String, run: String?) async throws -> (
        URL, String
    ) {
        let record: Run?
        if let run {
            record = try await metadata.run(run)
        } else {
            record = try await metadata.runs(RunFilter(pipeline: pipeline, status: .completed, limit: 1)).first
        }
        guard let record, record.pipeline == pipeline else {
            throw FeatureError(
                problem: run.map { "no run '\($0)' of pipeline '\(pipeline)'." }
                    ?? "pipeline '\(pipeline)' has no completed run to read step '\(step)' from.",
                fix: "run the pipeline first (`sluice run`), or pin a run with `run:`.")
        }
        guard let stepRun = try await metadata.stepRuns(ofRun: record.id, steps: [step]).last else {
            throw FeatureError(
                problem: "run \(record.id) of '\(pipeline)' has no step '\(step)'.", fix: "check `step:` in the source."
            )
        }
        let outputs = try await metadata.outputs(ofStepRun: stepRun.id)
        guard let artifact = outputs[output] else {
            throw FeatureError(
                problem: "step '\(step)' of run \(record.id) has no output '\(output)' (it has: "
                    + "\(outputs.keys.sorted().joined(separator: ", "))).",
                fix: "set `output:` to the step's table output.")
        }
        guard let url = artifacts.url(for: artifact.uri), FileManager.default.fileExists(atPath: url.path) else {
            throw FeatureError(
                problem:
                    "the table of \(pipeline)/\(step).\(output) (run \(record.id)) is no longer in the artifact store.",
                fix: "run the pipeline again, or pin a run whose outputs are kept.")
        }
        return (url, artifact.contentHash)
    }
}
