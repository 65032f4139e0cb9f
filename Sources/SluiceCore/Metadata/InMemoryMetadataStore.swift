import Foundation

/// A metadata store that lives in memory, for tests, previews and throwaway runs.
public actor InMemoryMetadataStore: MetadataStore, AccessTokenStore {
    private var pipelineRecords: [String: Date] = [:]
    private var runRecords: [RunID: Run] = [:]
    private var stepRunRecords: [String: StepRun] = [:]
    private var stepRunOrder: [String] = []
    private var artifactRecords: [String: ArtifactRecord] = [:]
    private var artifactOrder: [String] = []
    private var eventRecords: [Event] = []
    private var metricRecords: [String: [MetricRecord]] = [:]
    private var tokenRecords: [AccessToken] = []

    /// Creates an empty store.
    public init() {}

    public func registerPipeline(_ name: String) {
        if pipelineRecords[name] == nil { pipelineRecords[name] = Date() }
    }

    public func insert(_ run: Run) { runRecords[run.id] = run }

    @discardableResult
    public func finishRun(_ id: RunID, status: RunStatus, endedAt: Date, error: String?) -> Bool {
        guard runRecords[id]?.status == .running else { return false }
        runRecords[id]?.status = status
        runRecords[id]?.endedAt = endedAt
        runRecords[id]?.error = error
        return true
    }

    public func setProperties(_ properties: [String: PropertyValue], ofArtifact id: String) {
        artifactRecords[id]?.properties = properties
    }

    public func updateEnvironment(_ id: RunID, _ environment: RunEnvironment) {
        runRecords[id]?.environment = environment
    }

    public func insert(_ stepRun: StepRun, inputs: [Event]) {
        if stepRunRecords[stepRun.id] == nil { stepRunOrder.append(stepRun.id) }
        stepRunRecords[stepRun.id] = stepRun
        eventRecords += inputs
    }

    public func finishStepRun(_ stepRun: StepRun, metrics: [MetricRecord]) {
        stepRunRecords[stepRun.id] = stepRun
        metricRecords[stepRun.id, default: []] += metrics
    }

    public func completeStepRun(_ stepRun: StepRun, outputs: [ArtifactRecord], metrics: [MetricRecord]) {
        for artifact in outputs {
            artifactRecords[artifact.id] = artifact
            artifactOrder.append(artifact.id)
            eventRecords.append(
                Event(stepRunID: stepRun.id, artifactID: artifact.id, kind: .output, name: artifact.name))
        }
        finishStepRun(stepRun, metrics: metrics)
    }

    public func insertCachedStepRuns(_ records: [CachedStepRun]) {
        for record in records { insert(record.stepRun, inputs: record.events) }
    }

    public func cacheHit(for cacheKey: CacheKey) -> CacheHit? {
        guard
            let stepRun = stepRunOrder.reversed().lazy.compactMap({ self.stepRunRecords[$0] })
                .first(where: { $0.cacheKey == cacheKey && $0.status == .completed })
        else { return nil }
        return CacheHit(stepRun: stepRun, outputs: outputs(ofStepRun: stepRun.id))
    }

    public func outputs(ofStepRun id: String) -> [String: ArtifactRecord] {
        var result: [String: ArtifactRecord] = [:]
        for event in eventRecords where event.stepRunID == id && event.kind == .output {
            result[event.name] = artifactRecords[event.artifactID]
        }
        return result
    }

    public func pipelines() -> [PipelineRecord] {
        reconcileCrashedRuns()
        return pipelineRecords.map { name, firstSeen in
            let runs = runRecords.values.filter { $0.pipeline == name }
            return PipelineRecord(
                name: name, firstSeen: firstSeen, runCount: runs.count, lastRunAt: runs.map(\.startedAt).max())
        }.sorted { $0.name < $1.name }
    }

    public func runs(_ filter: RunFilter) -> [Run] {
        reconcileCrashedRuns()
        return runRecords.values
            .filter { filter.pipeline == nil || $0.pipeline == filter.pipeline }
            .filter { filter.status == nil || $0.status == filter.status }
            .sorted { ($0.startedAt, $0.id) > ($1.startedAt, $1.id) }
            .prefix(filter.limit).map { $0 }
    }

    public func run(_ idOrPrefix: String) throws -> Run? {
        reconcileCrashedRuns()
        return try unique(idOrPrefix, in: Array(runRecords.keys)).flatMap { runRecords[$0] }
    }

    public func stepRuns(ofRun id: RunID) -> [StepRun] {
        reconcileCrashedRuns()
        return stepRunOrder.compactMap { stepRunRecords[$0] }.filter { $0.runID == id }
    }

    public func stepRun(_ id: String) -> StepRun? {
        reconcileCrashedRuns()
        return stepRunRecords[id]
    }

    public func metrics(ofStepRun id: String) -> [MetricRecord] { metricRecords[id] ?? [] }

    public func artifacts(_ filter: ArtifactFilter) -> [ArtifactRecord] {
        let inRun: Set<String>? = filter.runID.map { runID in
            Set(
                eventRecords.filter { event in
                    event.kind == .output && stepRunRecords[event.stepRunID]?.runID == runID
                }.map(\.artifactID))
        }
        return artifactOrder.reversed().compactMap { artifactRecords[$0] }
            .filter { inRun == nil || inRun!.contains($0.id) }
            .filter { filter.name == nil || $0.name == filter.name }
            .prefix(filter.limit).map { $0 }
    }

    public func artifact(_ idOrPrefix: String) throws -> ArtifactRecord? {
        try unique(idOrPrefix, in: Array(artifactRecords.keys)).flatMap { artifactRecords[$0] }
    }

    public func events(ofArtifact id: String) -> [Event] { eventRecords.filter { $0.artifactID == id } }

    public func events(ofStepRun id: String) -> [Event] { eventRecords.filter { $0.stepRunID == id } }

    public func insertToken(_ token: AccessToken) throws {
        if tokenRecords.contains(where: { $0.name == token.name && $0.revokedAt == nil }) {
            throw AccessTokenError.nameTaken(token.name)
        }
        tokenRecords.append(token)
    }

    public func tokens() -> [AccessToken] { tokenRecords }

    public func token(hash: String) -> AccessToken? { tokenRecords.first { $0.hash == hash } }

    public func revokeToken(_ idOrName: String, at date: Date) -> AccessToken? {
        guard
            let index = tokenRecords.firstIndex(where: {
                ($0.id == idOrName || $0.name == idOrName) && $0.revokedAt == nil
            })
        else { return nil }
        tokenRecords[index].revokedAt = date
        return tokenRecords[index]
    }

    private func unique(_ prefix: String, in ids: [String]) throws -> String? {
        if ids.contains(prefix) { return prefix }
        let matches = ids.filter { $0.hasPrefix(prefix) }.sorted()
        if matches.count > 1 { throw AmbiguousIDError(prefix: prefix, matches: matches) }
        return matches.first
    }

    private func reconcileCrashedRuns() {
        for (id, run) in runRecords where run.status == .running && run.owner.isKnownDead {
            var crashed = run
            crashed.status = .crashed
            crashed.endedAt = run.endedAt ?? Date()
            runRecords[id] = crashed
            for (stepID, step) in stepRunRecords where step.runID == id && step.status == .running {
                stepRunRecords[stepID]?.status = .crashed
            }
        }
    }
}
