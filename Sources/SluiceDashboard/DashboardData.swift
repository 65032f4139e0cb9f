// Over 400 lines: every query the pages make, each beside the view model it fills.
import Foundation
import SluiceCore
import SluiceData
import SluiceML

/// What the dashboard's pages and its JSON API show, read from a stack's stores: one query per page, shared by the
/// HTML and the `/api/` form so the two never disagree.
struct DashboardData: Sendable {
    let metadata: any MetadataStore & ModelRegistry
    let artifacts: any ArtifactStore
    /// Tracked runs, tags, notes, params and metric series of every run, and search.
    let tracking: any TrackingStore
    /// Where step logs are (`<run>/<step>.log`): a log is read only from below this folder.
    let logDirectory: URL

    // MARK: Runs

    /// Which runs the runs page lists.
    struct RunQuery: Sendable, Equatable {
        var pipeline: String?
        var status: RunStatus?
        var user: String?
        var parameter: RunParameters.Condition?
        var page = 1
        var perPage = 25
    }

    /// One row of the runs page.
    struct RunSummary: Codable, Sendable, Equatable {
        var id: String
        var pipeline: String
        var status: RunStatus
        var trigger: String
        var triggerKind: RunTrigger.Kind
        var startedAt: Date
        var endedAt: Date?
        var durationSeconds: Double
        var user: String
        var host: String
        var gitCommit: String?
        var gitDirty: Bool?
        var error: String?

        init(_ run: Run) {
            id = run.id
            pipeline = run.pipeline
            status = run.status
            trigger = run.trigger.summary
            triggerKind = run.trigger.kind
            startedAt = run.startedAt
            endedAt = run.endedAt
            durationSeconds = run.duration
            user = run.environment.user
            host = run.environment.host
            gitCommit = run.environment.gitCommit
            gitDirty = run.environment.gitDirty
            error = run.error
        }
    }

    /// A page of runs.
    struct RunPage: Codable, Sendable, Equatable {
        var runs: [RunSummary]
        var page: Int
        var perPage: Int
        var hasMore: Bool
        /// The pipelines and users there are, for the filter menus.
        var pipelines: [String]
    }

    func runs(_ query: RunQuery) async throws -> RunPage {
        let wanted = query.page * query.perPage + 1
        let filtered = query.user != nil || query.parameter != nil
        // Users and parameters are not indexed: read further back when filtering on them.
        let candidates = try await metadata.runs(
            RunFilter(
                pipeline: query.pipeline, status: query.status, limit: filtered ? max(wanted * 20, 2_000) : wanted))
        var kept: [Run] = []
        for run in candidates where kept.count < wanted {
            if let user = query.user, run.environment.user != user { continue }
            if let condition = query.parameter {
                let values = try await RunParameters.values(of: run.id, in: metadata)
                if !condition.matches(values) { continue }
            }
            kept.append(run)
        }
        let start = (query.page - 1) * query.perPage
        let pageRuns = kept.count > start ? Array(kept[start..<min(kept.count, start + query.perPage)]) : []
        return RunPage(
            runs: pageRuns.map(RunSummary.init), page: query.page, perPage: query.perPage,
            hasMore: kept.count > start + query.perPage,
            pipelines: try await metadata.pipelines().map(\.name))
    }

    /// An artifact as a step run read or wrote it.
    struct ArtifactLink: Codable, Sendable, Equatable {
        /// The input or output name on the step.
        var slot: String
        var id: String
        var typeName: String
        var size: Int64
        var contentHash: String
    }

    /// One step of a run, with its artifacts and metrics.
    struct StepSummary: Codable, Sendable, Equatable {
        var id: String
        var name: String
        var kind: String
        var status: StepRunStatus
        var startedAt: Date?
        var endedAt: Date?
        var durationSeconds: Double?
        var cacheKey: String?
        var cachedFrom: String?
        /// The run of the step run a cached step reused.
        var cachedFromRun: String?
        /// The steps it reads from (nil: recorded before Sluice kept them; then taken from its input events).
        var upstream: [String]
        var parameters: String
        var seed: UInt64
        var error: String?
        var hasLog: Bool
        var properties: [String: PropertyValue]
        var inputs: [ArtifactLink]
        var outputs: [ArtifactLink]
        var metrics: [MetricRecord]
    }

    /// A run with its steps, config and environment.
    struct RunDetails: Codable, Sendable, Equatable {
        var run: RunSummary
        var config: String
        var environment: RunEnvironment
        var steps: [StepSummary]
        /// Its name, kind, tags, note, params and latest metrics, as the tracking store has them.
        var tracking: TrackedRun?
        /// Series of more than one point, by metric key.
        var series: [String: [MetricPoint]]
    }

    func run(_ idOrPrefix: String) async throws -> RunDetails? {
        guard let run = try await metadata.run(idOrPrefix) else { return nil }
        let stepRuns = try await metadata.stepRuns(ofRun: run.id)
        var producers: [String: String] = [:]  // artifact ID → step name, within this run
        var summaries: [StepSummary] = []
        for stepRun in stepRuns {
            let events = try await metadata.events(ofStepRun: stepRun.id)
            var inputs: [ArtifactLink] = []
            var outputs: [ArtifactLink] = []
            for event in events {
                guard let artifact = try await metadata.artifact(event.artifactID) else { continue }
                let link = ArtifactLink(
                    slot: event.name, id: artifact.id, typeName: artifact.typeName, size: artifact.size,
                    contentHash: artifact.contentHash)
                if event.kind == .input { inputs.append(link) } else { outputs.append(link) }
                if event.kind == .output { producers[artifact.id] = stepRun.stepName }
            }
            let cachedFromRun: String?
            if let source = stepRun.cachedFrom {
                cachedFromRun = try await metadata.stepRun(source)?.runID
            } else {
                cachedFromRun = nil
            }
            summaries.append(
                StepSummary(
                    id: stepRun.id, name: stepRun.stepName, kind: stepRun.kind, status: stepRun.status,
                    startedAt: stepRun.startedAt, endedAt: stepRun.endedAt, durationSeconds: stepRun.duration,
                    cacheKey: stepRun.cacheKey?.description, cachedFrom: stepRun.cachedFrom,
                    cachedFromRun: cachedFromRun, upstream: stepRun.upstream ?? [], parameters: stepRun.parameters,
                    seed: stepRun.seed, error: stepRun.error, hasLog: logURL(stepRun) != nil,
                    properties: stepRun.stepProperties, inputs: inputs.sorted { $0.slot < $1.slot },
                    outputs: outputs.sorted { $0.slot < $1.slot },
                    metrics: try await metadata.metrics(ofStepRun: stepRun.cachedFrom ?? stepRun.id)))
        }
        // Step runs recorded before upstream steps were kept: their graph comes from what they read.
        for index in summaries.indices
        where stepRuns[index].upstream == nil {
            summaries[index].upstream = Set(summaries[index].inputs.compactMap { producers[$0.id] }).sorted()
        }
        let tracked = try await tracking.trackedRun(run.id)
        var series: [String: [MetricPoint]] = [:]
        for metric in tracked?.metrics ?? [] {
            let points = try await tracking.metricHistory(ofRun: run.id, key: metric.key)
            if points.count > 1 { series[metric.key] = points }
        }
        return RunDetails(
            run: RunSummary(run), config: run.config, environment: run.environment, steps: summaries,
            tracking: tracked, series: series)
    }

    /// A step's log, when it has one inside the stack's log folder.
    func logURL(_ stepRun: StepRun) -> URL? {
        guard let path = stepRun.logPath else { return nil }
        let url = URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath()
        let root = logDirectory.standardizedFileURL.resolvingSymlinksInPath().path + "/"
        guard url.path.hasPrefix(root), FileManager.default.isReadableFile(atPath: url.path) else { return nil }
        return url
    }

    /// The last `limit` bytes of a step's log (from the start of a line), and the log's whole size.
    func logTail(_ stepRun: StepRun, limit: Int = 64 * 1024) -> (text: String, size: Int)? {
        guard let url = logURL(stepRun), let handle = try? FileHandle(forReadingFrom: url) else { return nil }
        defer { try? handle.close() }
        let size = Int((try? handle.seekToEnd()) ?? 0)
        let start = max(0, size - limit)
        try? handle.seek(toOffset: UInt64(start))
        var data = (try? handle.readToEnd()) ?? Data()
        if start > 0, let newline = data.firstIndex(of: UInt8(ascii: "\n")) { data = data[(newline + 1)...] }
        return (String(decoding: data, as: UTF8.self), size)
    }

    // MARK: Artifacts

    /// What the artifact page shows inline.
    enum Visualization: String, Codable, Sendable {
        /// An HTML report (statistics, evaluation): shown sandboxed.
        case report
        /// A model bundle: its model card, rendered from Markdown, sandboxed.
        case modelCard = "model_card"
        /// A table: its schema and first rows.
        case table
        /// A validation result: its anomalies and drift.
        case anomalies
        /// Other JSON: shown as text.
        case json
    }

    /// An artifact with where it came from and where it went.
    struct ArtifactDetails: Codable, Sendable, Equatable {
        var artifact: ArtifactRecord
        var producer: StepRun?
        var consumers: [StepRun]
        var visualization: Visualization?
        var modelVersions: [String]
    }

    func artifact(_ idOrPrefix: String) async throws -> ArtifactDetails? {
        guard let artifact = try await metadata.artifact(idOrPrefix) else { return nil }
        var consumers: [StepRun] = []
        for event in try await metadata.events(ofArtifact: artifact.id) where event.kind == .input {
            if let stepRun = try await metadata.stepRun(event.stepRunID) { consumers.append(stepRun) }
        }
        var versions: [String] = []
        if Self.shortType(artifact.typeName) == "ModelBundle" {
            for model in try await metadata.registeredModels() {
                for version in try await metadata.modelVersions(model.name) where version.artifactID == artifact.id {
                    versions.append("\(version.model)@\(version.version)")
                }
            }
        }
        return ArtifactDetails(
            artifact: artifact, producer: try await metadata.stepRun(artifact.producerStepRunID),
            consumers: consumers, visualization: visualization(of: artifact), modelVersions: versions)
    }

    func visualization(of artifact: ArtifactRecord) -> Visualization? {
        switch Self.shortType(artifact.typeName) {
        case "ModelBundle": return .modelCard
        case "Table", "TableFile": return .table
        case "Validation": return .anomalies
        case "FileArtifact":
            guard let url = artifacts.url(for: artifact.uri) else { return nil }
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue
            else { return nil }
            let head = (try? FileHandle(forReadingFrom: url).read(upToCount: 512)) ?? nil
            let text = head.map { String(decoding: $0, as: UTF8.self).lowercased() } ?? ""
            return text.contains("<!doctype html") || text.contains("<html") ? .report : nil
        default:
            return artifact.materializer.hasPrefix("codable") || artifact.materializer == "json" ? .json : nil
        }
    }

    /// The artifact's stored bytes (a file artifact's file; a directory is refused).
    func content(_ artifact: ArtifactRecord) throws -> Data {
        try artifacts.data(for: artifact.uri)
    }

    /// A table's columns and first rows, as text.
    struct TablePreview: Codable, Sendable, Equatable {
        var columns: [String]
        var types: [String]
        var rows: [[String]]
        var totalRows: Int
    }

    func tablePreview(_ artifact: ArtifactRecord, rows limit: Int = 20) throws -> TablePreview {
        guard let url = artifacts.url(for: artifact.uri) else {
            throw DashboardError.notFound("artifact \(artifact.id) has no file in the artifact store")
        }
        let reader = try ArrowFileReader(contentsOf: url)
        var rows: [[String]] = []
        // Only the batches the preview shows are read; the row count comes from the batches' metadata.
        for index in 0..<reader.batchCount where rows.count < limit {
            let batch = try reader.batch(index)
            for row in 0..<batch.rowCount where rows.count < limit {
                rows.append(batch.columns.map { $0.string(row) ?? "" })
            }
        }
        return TablePreview(
            columns: reader.columnNames, types: reader.columnTypes.map(\.rawValue), rows: rows,
            totalRows: try reader.batchRowCounts().reduce(0, +))
    }

    // MARK: Lineage

    /// An artifact's or a model version's ancestors and descendants, across runs.
    struct LineageGraph: Codable, Sendable, Equatable {
        struct Node: Codable, Sendable, Equatable {
            /// `artifact`, `step` or `model` (a registered version of a bundle).
            var kind: String
            var id: String
            var label: String
            var detail: String
            var runID: String?
            var status: String?
        }
        struct Edge: Codable, Sendable, Equatable, Hashable {
            var from: String
            var to: String
        }
        var root: String
        var nodes: [Node]
        var edges: [Edge]
    }

    func lineage(of artifact: ArtifactRecord, depth: Int? = nil) async throws -> LineageGraph {
        var nodes: [LineageGraph.Node] = []
        var seen: Set<String> = []
        var edges: [LineageGraph.Edge] = []
        var seenEdges: Set<LineageGraph.Edge> = []
        for direction in [Lineage.Direction.upstream, .downstream] {
            let graph = try await Lineage.trace(artifact, direction, in: metadata, depth: depth)
            for record in graph.artifacts where seen.insert(record.id).inserted {
                nodes.append(
                    .init(
                        kind: "artifact", id: record.id, label: record.name,
                        detail: "\(Self.shortType(record.typeName)) · \(Self.bytes(record.size))", runID: nil,
                        status: nil))
            }
            for stepRun in graph.stepRuns where seen.insert(stepRun.id).inserted {
                nodes.append(
                    .init(
                        kind: "step", id: stepRun.id, label: stepRun.stepName, detail: stepRun.runID,
                        runID: stepRun.runID, status: stepRun.status.rawValue))
            }
            for event in graph.events {
                let edge =
                    event.kind == .input
                    ? LineageGraph.Edge(from: event.artifactID, to: event.stepRunID)
                    : LineageGraph.Edge(from: event.stepRunID, to: event.artifactID)
                if seenEdges.insert(edge).inserted { edges.append(edge) }
            }
        }
        // A registered bundle leads on to its model versions.
        let bundles = Set(
            nodes.filter { $0.kind == "artifact" && $0.detail.hasPrefix("ModelBundle") }.map(\.id))
        if !bundles.isEmpty {
            for model in try await metadata.registeredModels() {
                for version in try await metadata.modelVersions(model.name) where bundles.contains(version.artifactID) {
                    let id = "model:\(version.model)@\(version.version)"
                    nodes.append(
                        .init(
                            kind: "model", id: id, label: "\(version.model)@\(version.version)",
                            detail: version.stage.rawValue, runID: version.runID, status: nil))
                    edges.append(.init(from: version.artifactID, to: id))
                }
            }
        }
        return LineageGraph(root: artifact.id, nodes: nodes, edges: edges)
    }

    // MARK: Models

    /// A registered model's versions (with profiles) and stage history.
    struct ModelDetails: Codable, Sendable, Equatable {
        struct Version: Codable, Sendable, Equatable {
            var version: ModelVersion
            /// The measured profile's headline numbers, when one is attached.
            var profile: [String: Double]?
        }
        var name: String
        var versions: [Version]
        var stageChanges: [StageChange]
        var metricNames: [String]
    }

    func model(_ name: String) async throws -> ModelDetails? {
        let versions = try await metadata.modelVersions(name)
        guard !versions.isEmpty else { return nil }
        var entries: [ModelDetails.Version] = []
        for version in versions {
            let profile = try await metadata.profile(name, version: version.version).map {
                Self.profileFigures($0.json)
            }
            entries.append(.init(version: version, profile: profile))
        }
        return ModelDetails(
            name: name, versions: entries, stageChanges: try await metadata.stageChanges(name),
            metricNames: Set(versions.flatMap(\.metrics.keys)).sorted())
    }

    /// The headline numbers of a profile's JSON: bundle size, load time, memory, latency percentiles, throughput.
    static func profileFigures(_ json: Data) -> [String: Double] {
        guard let object = try? JSONSerialization.jsonObject(with: json) as? [String: Any] else { return [:] }
        var figures: [String: Double] = [:]
        for key in ["bundleBytes", "loadMilliseconds", "residentBytes", "cores"] {
            if let value = object[key] as? NSNumber { figures[key] = value.doubleValue }
        }
        for section in ["inProcess", "http"] {
            guard let latency = object[section] as? [String: Any] else { continue }
            for key in ["p50", "p99"] {
                if let value = latency[key] as? NSNumber { figures["\(section).\(key)"] = value.doubleValue }
            }
        }
        if let throughput = object["rowsPerSecond"] as? [String: Any] {
            for (key, value) in throughput {
                if let number = value as? NSNumber { figures["rowsPerSecond.\(key)"] = number.doubleValue }
            }
        }
        return figures
    }

    // MARK: Compare

    /// Runs side by side: parameters, metrics and per-iteration series.
    struct Comparison: Codable, Sendable, Equatable {
        struct Column: Codable, Sendable, Equatable {
            var run: RunSummary
            var parameters: [String: String]
            var metrics: [String: Double]
        }
        struct Point: Codable, Sendable, Equatable {
            var step: Int
            var value: Double
        }
        var columns: [Column]
        /// Parameter and metric keys whose values differ between the runs.
        var differing: [String]
        /// `step.metric` → run ID → its values by iteration, for metrics logged with an iteration.
        var series: [String: [String: [Point]]]
    }

    func compare(_ references: [String]) async throws -> Comparison {
        var columns: [Comparison.Column] = []
        var series: [String: [String: [Comparison.Point]]] = [:]
        for reference in references {
            guard let run = try await metadata.run(reference) else {
                throw DashboardError.notFound("no run matches '\(reference)'")
            }
            if run.kind == .tracked, let tracked = try await tracking.trackedRun(run.id) {
                // A tracked run's params, latest metrics and series are the tracking store's.
                for metric in tracked.metrics {
                    let points = try await tracking.metricHistory(ofRun: run.id, key: metric.key)
                    if points.count > 1 {
                        series[metric.key, default: [:]][run.id] = points.map {
                            .init(step: Int($0.step), value: $0.value)
                        }
                    }
                }
                columns.append(
                    .init(
                        run: RunSummary(run), parameters: tracked.params,
                        metrics: Dictionary(tracked.metrics.map { ($0.key, $0.value) }) { _, last in last }))
                continue
            }
            let stepRuns = try await metadata.stepRuns(ofRun: run.id)
            var metrics: [String: Double] = [:]
            for stepRun in stepRuns {
                for metric in try await metadata.metrics(ofStepRun: stepRun.cachedFrom ?? stepRun.id) {
                    let key = "\(stepRun.stepName).\(metric.name)"
                    metrics[key] = metric.value
                    if let step = metric.step {
                        series[key, default: [:]][run.id, default: []].append(.init(step: step, value: metric.value))
                    }
                }
            }
            columns.append(
                .init(run: RunSummary(run), parameters: RunParameters.values(of: stepRuns), metrics: metrics))
        }
        var differing: [String] = []
        for key in Set(columns.flatMap(\.parameters.keys)).sorted()
        where Set(columns.map { $0.parameters[key] ?? "–" }).count > 1 {
            differing.append(key)
        }
        for key in Set(columns.flatMap(\.metrics.keys)).sorted()
        where Set(columns.map { $0.metrics[key].map { String($0) } ?? "–" }).count > 1 {
            differing.append(key)
        }
        return Comparison(columns: columns, differing: differing, series: series.filter { $0.value.count > 0 })
    }

    // MARK: Datasets

    /// A dataset version an ingest step saw: the table it made, and the runs and models that used it.
    struct DatasetVersion: Codable, Sendable, Equatable {
        var version: String
        var firstSeen: Date
        var artifactID: String
        var rows: Int?
        var schema: String?
        /// The runs whose steps produced or reused a table of this version, newest first.
        var runs: [String]
        /// `model@version` of every registered version trained on it.
        var models: [String]
        /// The statistics artifact computed from it, when a run made one.
        var statisticsArtifact: String?
    }

    func datasets(limit: Int = 5_000) async throws -> [DatasetVersion] {
        var byVersion: [String: DatasetVersion] = [:]
        for artifact in try await metadata.artifacts(ArtifactFilter(limit: limit)) {
            guard case .string(let version)? = artifact.properties["dataset_version"] else { continue }
            var entry =
                byVersion[version]
                ?? DatasetVersion(
                    version: version, firstSeen: artifact.createdAt, artifactID: artifact.id, rows: nil, schema: nil,
                    runs: [], models: [], statisticsArtifact: nil)
            if artifact.createdAt <= entry.firstSeen {
                entry.firstSeen = artifact.createdAt
                entry.artifactID = artifact.id
            }
            if case .int(let rows)? = artifact.properties["rows"] { entry.rows = rows }
            if case .string(let schema)? = artifact.properties["schema"] { entry.schema = schema }
            for event in try await metadata.events(ofArtifact: artifact.id) {
                guard let stepRun = try await metadata.stepRun(event.stepRunID) else { continue }
                if !entry.runs.contains(stepRun.runID) { entry.runs.append(stepRun.runID) }
                if event.kind == .input, entry.statisticsArtifact == nil {
                    for output in try await metadata.events(ofStepRun: stepRun.id) where output.kind == .output {
                        if let record = try await metadata.artifact(output.artifactID),
                            Self.shortType(record.typeName) == "DatasetStatistics"
                        {
                            entry.statisticsArtifact = record.id
                        }
                    }
                }
            }
            byVersion[version] = entry
        }
        for model in try await metadata.registeredModels() {
            for version in try await metadata.modelVersions(model.name) {
                guard let dataset = version.datasetVersion, byVersion[dataset] != nil else { continue }
                byVersion[dataset]!.models.append("\(version.model)@\(version.version)")
            }
        }
        return byVersion.values.map { entry in
            var entry = entry
            entry.runs.sort(by: >)
            entry.models.sort()
            return entry
        }.sorted { $0.firstSeen > $1.firstSeen }
    }

    // MARK: Formatting

    /// A type name without its module: `SluiceData.Table` → `Table`.
    static func shortType(_ name: String) -> String {
        name.split(separator: ".").last.map(String.init) ?? name
    }

    static func bytes(_ count: Int64) -> String {
        let units = ["B", "KB", "MB", "GB", "TB"]
        var value = Double(count)
        var unit = 0
        while value >= 1000 && unit < units.count - 1 {
            value /= 1000
            unit += 1
        }
        return unit == 0 ? "\(count) B" : String(format: value < 10 ? "%.1f %@" : "%.0f %@", value, units[unit])
    }
}

/// A dashboard request that cannot be answered, with its HTTP status.
enum DashboardError: HTTPRefusal, Sendable {
    case notFound(String)
    case badRequest(String)
    case forbidden(String)
    case conflict(String)
    case unauthorized

    var httpStatus: Int {
        switch self {
        case .notFound: 404
        case .badRequest: 400
        case .forbidden: 403
        case .conflict: 409
        case .unauthorized: 401
        }
    }

    var httpMessage: String {
        switch self {
        case .notFound(let message), .badRequest(let message), .forbidden(let message), .conflict(let message):
            message
        case .unauthorized: "this dashboard needs an access token: send `Authorization: Bearer TOKEN`"
        }
    }
}
