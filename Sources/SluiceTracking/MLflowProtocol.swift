import Foundation
import HTTPTypes
import Hummingbird
import SluiceCore
import SluiceData
import SluiceErrors

/// MLflow's tracking REST protocol (`/api/2.0/mlflow/…` and the artifact proxy `/api/2.0/mlflow-artifacts/…`)
/// over a ``TrackingStore`` and an ``ArtifactStore``, so the `mlflow` Python client, pointed here with
/// `MLFLOW_TRACKING_URI`, records into Sluice unchanged.
///
/// Answers keep MLflow's shapes: `{"error_code": …, "message": …}` with its HTTP status for errors, and
/// `ENDPOINT_NOT_FOUND` naming the method and path for what the protocol has and Sluice does not implement.
public struct MLflowProtocol<Context: RequestContext>: Sendable {
    let store: any TrackingStore
    let artifacts: any ArtifactStore
    /// Whether the request may change anything (a read-only token may not).
    let canWrite: @Sendable (Request, Context) -> Bool
    /// The largest artifact one request uploads.
    let maximumUpload: Int

    /// Creates the protocol's handlers.
    public init(
        store: any TrackingStore, artifacts: any ArtifactStore, maximumUpload: Int = 2 << 30,
        canWrite: @escaping @Sendable (Request, Context) -> Bool = { _, _ in true }
    ) {
        self.store = store
        self.artifacts = artifacts
        self.maximumUpload = maximumUpload
        self.canWrite = canWrite
    }

    static var api: String { "/api/2.0/mlflow" }
    static var artifactAPI: String { "/api/2.0/mlflow-artifacts/artifacts" }

    /// Adds every endpoint to `router`.
    public func register(on router: Router<Context>) {
        typealias Handler = @Sendable (Request, Context, [String: JSONValue]) async throws -> String
        func post(_ path: String, write: Bool = true, _ handler: @escaping Handler) {
            router.post(RouterPath(Self.api + path)) { request, context in
                try await answer(request, context, write: write) {
                    let body = try JSONValue.parse(Data(buffer: try await request.body.collect(upTo: 64 << 20)))
                    return try await handler(request, context, body)
                }
            }
        }
        func get(_ path: String, _ handler: @escaping Handler) {
            router.get(RouterPath(Self.api + path)) { request, context in
                try await answer(request, context, write: false) {
                    try await handler(request, context, Self.query(request))
                }
            }
        }
        // Experiments
        post("/experiments/create") { _, _, body in try await createExperiment(body) }
        get("/experiments/get") { _, _, query in
            let id = try Self.required(query, "experiment_id")
            guard let experiment = try await store.experiment(id: id) else { throw TrackingError.noExperiment(id) }
            return Self.object(["experiment": Self.experiment(experiment)])
        }
        get("/experiments/get-by-name") { _, _, query in
            let name = try Self.required(query, "experiment_name")
            guard let experiment = try await store.experiment(named: name) else {
                throw TrackingError(.resourceDoesNotExist, "Could not find experiment with name '\(name)'")
            }
            return Self.object(["experiment": Self.experiment(experiment)])
        }
        get("/experiments/search") { _, _, query in try await searchExperiments(query) }
        post("/experiments/search", write: false) { _, _, body in try await searchExperiments(body) }
        post("/experiments/update") { _, _, body in
            try await store.renameExperiment(
                id: try Self.required(body, "experiment_id"), to: try Self.required(body, "new_name"))
            return "{}"
        }
        post("/experiments/delete") { _, _, body in
            try await store.setExperimentDeleted(id: try Self.required(body, "experiment_id"), true)
            return "{}"
        }
        post("/experiments/restore") { _, _, body in
            try await store.setExperimentDeleted(id: try Self.required(body, "experiment_id"), false)
            return "{}"
        }
        post("/experiments/set-experiment-tag") { _, _, body in
            try await store.setExperimentTag(
                id: try Self.required(body, "experiment_id"), key: try Self.required(body, "key"),
                value: body["value"]?.text ?? "")
            return "{}"
        }
        // Runs
        post("/runs/create") { _, _, body in try await createRun(body) }
        get("/runs/get") { _, _, query in
            let id = try Self.runID(query)
            return Self.object(["run": try await run(id)])
        }
        post("/runs/update") { _, _, body in
            let id = try Self.runID(body)
            let status = try body["status"]?.text.map(Self.status)
            let end = body["end_time"]?.int64.map { Date(timeIntervalSince1970: Double($0) / 1000) }
            let updated = try await store.updateTrackedRun(
                id, status: status, endedAt: end, name: body["run_name"]?.text)
            return Self.object(["run_info": Self.info(updated)])
        }
        post("/runs/delete") { _, _, body in
            try await store.setRunDeleted(try Self.runID(body), true)
            return "{}"
        }
        post("/runs/restore") { _, _, body in
            try await store.setRunDeleted(try Self.runID(body), false)
            return "{}"
        }
        post("/runs/search", write: false) { _, _, body in try await searchRuns(body) }
        post("/runs/log-metric") { _, _, body in
            try await store.log(RunLogBatch(metrics: [try Self.metric(body)]), to: try Self.runID(body))
            return "{}"
        }
        post("/runs/log-parameter") { _, _, body in
            let param = KeyValue(try Self.required(body, "key"), body["value"]?.text ?? "")
            try await store.log(RunLogBatch(params: [param]), to: try Self.runID(body))
            return "{}"
        }
        post("/runs/set-tag") { _, _, body in
            let tag = KeyValue(try Self.required(body, "key"), body["value"]?.text ?? "")
            try await store.log(RunLogBatch(tags: [tag]), to: try Self.runID(body))
            return "{}"
        }
        post("/runs/delete-tag") { _, _, body in
            try await store.deleteTag(try Self.required(body, "key"), ofRun: try Self.runID(body))
            return "{}"
        }
        post("/runs/log-batch") { _, _, body in
            let batch = RunLogBatch(
                metrics: try (body["metrics"]?.array ?? []).map { try Self.metric($0.object ?? [:]) },
                params: try (body["params"]?.array ?? []).map { try Self.pair($0, "param") },
                tags: try (body["tags"]?.array ?? []).map { try Self.pair($0, "tag") })
            try await store.log(batch, to: try Self.runID(body))
            return "{}"
        }
        post("/runs/log-inputs") { _, _, body in
            let inputs = try (body["datasets"]?.array ?? []).map { try Self.datasetInput($0) }
            try await store.logInputs(inputs, to: try Self.runID(body))
            return "{}"
        }
        post("/runs/outputs") { _, _, body in
            let id = try Self.runID(body)
            guard try await store.trackedRun(id) != nil else { throw TrackingError.noRun(id) }
            var outputs = try await modelOutputs(id)
            for model in body["models"]?.array ?? [] {
                guard let modelID = model.object?["model_id"]?.text else { continue }
                outputs.append((modelID, model.object?["step"]?.int64 ?? 0))
            }
            let text = outputs.map { "{\"model_id\": \(JSONText.quoted($0.0)), \"step\": \($0.1)}" }
            try await store.putDocument(
                TrackingDocument(
                    kind: "run-outputs", id: id, runID: id, body: "[" + text.joined(separator: ", ") + "]"))
            return "{}"
        }
        post("/runs/log-model") { _, _, body in
            let id = try Self.runID(body)
            guard let model = body["model_json"]?.text else {
                throw TrackingError(.invalidParameterValue, "Missing value for required parameter 'model_json'.")
            }
            let history = try await store.trackedRun(id)?.tags["mlflow.log-model.history"]
            let entries = history.map { String($0.dropFirst().dropLast()) }.flatMap { $0.isEmpty ? nil : $0 }
            let combined = "[" + (entries.map { $0 + ", " } ?? "") + model + "]"
            try await store.log(RunLogBatch(tags: [KeyValue("mlflow.log-model.history", combined)]), to: id)
            return "{}"
        }
        get("/metrics/get-history") { _, _, query in
            let id = try Self.runID(query)
            let key = try Self.required(query, "metric_key")
            var points = try await store.metricHistory(ofRun: id, key: key)
            if let max = query["max_results"]?.int64, max > 0 {
                let offset = try PageToken.offset(query["page_token"]?.text)
                let page = Array(points.dropFirst(offset).prefix(Int(max)))
                let next = offset + page.count < points.count ? PageToken.make(offset: offset + page.count) : nil
                points = page
                var object = JSONObject()
                object.set("metrics", points.map(Self.metric))
                object.set("next_page_token", next)
                return object.text
            }
            var object = JSONObject()
            object.set("metrics", points.map(Self.metric))
            return object.text
        }
        // Logged models (MLflow 3): kept whole as documents.
        post("/logged-models") { _, _, body in try await createLoggedModel(body) }
        post("/logged-models/search", write: false) { _, _, body in try await searchLoggedModels(body) }
        router.get(RouterPath(Self.api + "/logged-models/{model}")) { request, context in
            try await answer(request, context, write: false) {
                Self.object(["model": try await loggedModel(try context.parameters.require("model"))])
            }
        }
        router.patch(RouterPath(Self.api + "/logged-models/{model}")) { request, context in
            try await answer(request, context, write: true) {
                let body = try JSONValue.parse(Data(buffer: try await request.body.collect(upTo: 1 << 20)))
                return try await finalizeLoggedModel(try context.parameters.require("model"), body)
            }
        }
        router.patch(RouterPath(Self.api + "/logged-models/{model}/tags")) { request, context in
            try await answer(request, context, write: true) {
                let body = try JSONValue.parse(Data(buffer: try await request.body.collect(upTo: 1 << 20)))
                return try await tagLoggedModel(try context.parameters.require("model"), body)
            }
        }
        router.get("/api/3.0/mlflow/server-info") { request, context in
            try await answer(request, context, write: false) {
                """
                {"store_type": "SqlStore", "artifact_serving_enabled": true, "multipart_uploads_enabled": false, \
                "multipart_downloads_enabled": false, "workspaces_enabled": false, "tracking_auth": ""}
                """
            }
        }
        // Artifacts
        router.put(RouterPath(Self.artifactAPI + "/**")) { request, context in
            try await answer(request, context, write: true) { try await upload(request) }
        }
        router.get(RouterPath(Self.artifactAPI + "/**")) { request, context in
            do {
                try Self.refuseUnlessAllowed(write: false, request, context, canWrite)
                return try await download(request)
            } catch {
                return Self.errorResponse(error, request, context)
            }
        }
        router.delete(RouterPath(Self.artifactAPI + "/**")) { request, context in
            try await answer(request, context, write: true) {
                let path = try Self.artifactPath(request)
                guard try await store.deleteDocument(kind: TrackedFile.kind, id: path) else {
                    throw TrackingError(.resourceDoesNotExist, "No such file or directory: '\(path)'")
                }
                return "{}"
            }
        }
        router.get(RouterPath(Self.artifactAPI)) { request, context in
            try await answer(request, context, write: false) {
                try await listArtifacts(request.uri.queryParameters.get("path") ?? "")
            }
        }
        router.get(RouterPath(Self.api + "/artifacts/list")) { request, context in
            try await answer(request, context, write: false) {
                let query = Self.query(request)
                let run = try await trackedRun(try Self.runID(query))
                // A run whose artifact URI a client set to a non-proxied place has no files here.
                guard let location = Self.proxiedLocation(run) else { return "{}" }
                let path = query["path"]?.text ?? ""
                return try await listArtifacts(
                    path.isEmpty ? location : location + "/" + path, shownUnder: path, rootURI: run.artifactURI)
            }
        }
    }

    /// Whether a path belongs to the protocol (so a request the router has no route for is answered in its shape).
    public static func handles(_ path: String) -> Bool {
        path.hasPrefix(api + "/") || path.hasPrefix("/api/2.0/mlflow-artifacts/") || path.hasPrefix("/api/3.0/mlflow/")
    }

    /// The answer to a request for an endpoint of the protocol that Sluice does not implement: never a silent
    /// success.
    public static func notImplemented(_ request: Request) -> Response {
        errorResponse(
            TrackingError(
                .endpointNotFound,
                "Sluice's tracking server does not implement \(request.method) \(request.uri.path) "
                    + "(docs/tracking.md lists the endpoints it answers)"), request)
    }

    // MARK: Answers

    func answer(
        _ request: Request, _ context: Context, write: Bool, _ body: () async throws -> String
    ) async throws -> Response {
        do {
            try Self.refuseUnlessAllowed(write: write, request, context, canWrite)
            let text = try await body()
            var headers = HTTPFields()
            headers[.contentType] = "application/json"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
        } catch {
            return Self.errorResponse(error, request, context)
        }
    }

    static func refuseUnlessAllowed(
        write: Bool, _ request: Request, _ context: Context, _ canWrite: (Request, Context) -> Bool
    ) throws {
        if write, !canWrite(request, context) {
            throw Refusal(status: 403, code: "PERMISSION_DENIED", message: "this token may read but not write")
        }
    }

    struct Refusal: Error {
        var status: Int
        var code: String
        var message: String
    }

    static func errorResponse(_ error: any Error, _ request: Request, _ context: Context? = nil) -> Response {
        let status: Int
        let code: String
        let message: String
        switch error {
        case let error as TrackingError:
            (status, code, message) = (error.code.httpStatus, error.code.rawValue, error.message)
        case let error as Refusal:
            (status, code, message) = (error.status, error.code, error.message)
        case let error as AmbiguousIDError:
            (status, code, message) = (400, "INVALID_PARAMETER_VALUE", "'\(error.prefix)' matches several runs")
        case let error as any HTTPRefusal:
            (status, code, message) = (error.httpStatus, "BAD_REQUEST", error.httpMessage)
        default:
            // The error's own words may hold paths or SQL: they go to the log under the request's ID.
            let id = context?.id ?? "unknown"
            context?.logger.error("unexpected error answering \(request.method) \(request.uri.path): \(error)")
            (status, code, message) = (500, "INTERNAL_ERROR", UnexpectedErrorAnswer.message(requestID: id))
        }
        var object = JSONObject()
        object.set("error_code", code)
        object.set("message", message)
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(
            status: HTTPResponse.Status(code: status), headers: headers,
            body: .init(byteBuffer: ByteBuffer(string: object.text)))
    }

    static func object(_ fields: KeyValuePairs<String, JSONObject>) -> String {
        var object = JSONObject()
        for (key, value) in fields { object.set(key, value) }
        return object.text
    }

    static func query(_ request: Request) -> [String: JSONValue] {
        var values: [String: JSONValue] = [:]
        for (key, value) in request.uri.queryParameters {
            let k = String(key)
            let v = String(value).removingPercentEncoding ?? String(value)
            // Repeated keys (order_by, experiment_ids) make an array.
            if let existing = values[k] {
                values[k] = .array((existing.array ?? [existing]) + [.string(v)])
            } else {
                values[k] = .string(v)
            }
        }
        return values
    }

    static func required(_ fields: [String: JSONValue], _ key: String) throws -> String {
        guard let value = fields[key]?.text, !value.isEmpty else {
            throw TrackingError(.invalidParameterValue, "Missing value for required parameter '\(key)'.")
        }
        return value
    }

    static func runID(_ fields: [String: JSONValue]) throws -> String {
        guard let id = fields["run_id"]?.text ?? fields["run_uuid"]?.text, !id.isEmpty else {
            throw TrackingError(.invalidParameterValue, "Missing value for required parameter 'run_id'.")
        }
        return id
    }

    static func pair(_ value: JSONValue, _ kind: String) throws -> KeyValue {
        guard let object = value.object, let key = object["key"]?.text else {
            throw TrackingError(.invalidParameterValue, "Missing value for required parameter '\(kind)s.key'.")
        }
        return KeyValue(key, object["value"]?.text ?? "")
    }

    static func metric(_ fields: [String: JSONValue]) throws -> MetricPoint {
        let key = try required(fields, "key")
        guard let raw = fields["value"] else {
            throw TrackingError(.invalidParameterValue, "Missing value for required parameter 'value'.")
        }
        guard let value = raw.double else {
            throw TrackingError(
                .invalidParameterValue,
                "Got invalid value \(raw.text ?? "") for metric '\(key)'. Please specify value as a valid double (64-bit floating point)"
            )
        }
        guard let timestamp = fields["timestamp"]?.int64 else {
            throw TrackingError(.invalidParameterValue, "Missing value for required parameter 'timestamp'.")
        }
        return MetricPoint(key: key, value: value, timestamp: timestamp, step: fields["step"]?.int64 ?? 0)
    }

    static func status(_ text: String) throws -> RunStatus {
        switch text.uppercased() {
        case "RUNNING", "SCHEDULED": return .running
        case "FINISHED": return .completed
        case "FAILED": return .failed
        case "KILLED": return .cancelled
        default:
            throw TrackingError(
                .invalidParameterValue,
                "Invalid value \(text) for parameter 'status' supplied: one of RUNNING, SCHEDULED, FINISHED, FAILED, KILLED"
            )
        }
    }

    static func mlflowStatus(_ status: RunStatus) -> String {
        switch status {
        case .running: "RUNNING"
        case .completed: "FINISHED"
        case .failed, .crashed: "FAILED"
        case .cancelled: "KILLED"
        }
    }

    static func lifecycle(_ text: String?) throws -> LifecycleView {
        switch text?.uppercased() ?? "ACTIVE_ONLY" {
        case "ACTIVE_ONLY", "1": return .active
        case "DELETED_ONLY", "2": return .deleted
        case "ALL", "3": return .all
        default:
            throw TrackingError(
                .invalidParameterValue, "Invalid view type \(text ?? ""): one of ACTIVE_ONLY, DELETED_ONLY, ALL")
        }
    }

    static func datasetInput(_ value: JSONValue) throws -> DatasetInput {
        guard let object = value.object, let dataset = object["dataset"]?.object,
            let name = dataset["name"]?.text, let digest = dataset["digest"]?.text
        else {
            throw TrackingError(.invalidParameterValue, "Missing value for required parameter 'datasets.dataset'.")
        }
        return DatasetInput(
            name: name, digest: digest, sourceType: dataset["source_type"]?.text ?? "",
            source: dataset["source"]?.text ?? "", schema: dataset["schema"]?.text,
            profile: dataset["profile"]?.text,
            tags: try (object["tags"]?.array ?? []).map { try pair($0, "tag") })
    }

    // MARK: Records as MLflow writes them

    static func experiment(_ e: Experiment) -> JSONObject {
        var object = JSONObject()
        object.set("experiment_id", e.id)
        object.set("name", e.name)
        object.set("artifact_location", e.artifactLocation)
        object.set("lifecycle_stage", e.deleted ? "deleted" : "active")
        object.set("last_update_time", Int64((e.updatedAt.timeIntervalSince1970 * 1000).rounded()))
        object.set("creation_time", Int64((e.createdAt.timeIntervalSince1970 * 1000).rounded()))
        object.set("tags", e.tags.sorted { $0.key < $1.key }.map(pair))
        return object
    }

    static func pair(_ item: (key: String, value: String)) -> JSONObject {
        var object = JSONObject()
        object.set("key", item.key)
        object.set("value", item.value)
        return object
    }

    static func metric(_ point: MetricPoint) -> JSONObject {
        var object = JSONObject()
        object.set("key", point.key)
        object.set("value", double: point.value)
        object.set("timestamp", point.timestamp)
        object.set("step", point.step)
        return object
    }

    static func info(_ run: TrackedRun) -> JSONObject {
        var object = JSONObject()
        object.set("run_uuid", run.id)
        object.set("experiment_id", run.experimentID)
        object.set("run_name", run.name)
        object.set("user_id", run.user)
        object.set("status", mlflowStatus(run.status))
        object.set("start_time", Int64((run.startedAt.timeIntervalSince1970 * 1000).rounded()))
        object.set("end_time", run.endedAt.map { Int64(($0.timeIntervalSince1970 * 1000).rounded()) })
        object.set("artifact_uri", run.artifactURI)
        object.set("lifecycle_stage", run.deleted ? "deleted" : "active")
        object.set("run_id", run.id)
        return object
    }

    static func run(_ run: TrackedRun, outputs: [(String, Int64)]) -> JSONObject {
        var data = JSONObject()
        data.set("metrics", run.metrics.map(metric))
        data.set("params", run.params.sorted { $0.key < $1.key }.map(pair))
        data.set("tags", run.tags.sorted { $0.key < $1.key }.map(pair))
        var inputs = JSONObject()
        inputs.set(
            "dataset_inputs",
            run.inputs.map { input in
                var dataset = JSONObject()
                dataset.set("name", input.name)
                dataset.set("digest", input.digest)
                dataset.set("source_type", input.sourceType)
                dataset.set("source", input.source)
                dataset.set("schema", input.schema)
                dataset.set("profile", input.profile)
                var entry = JSONObject()
                entry.set("tags", input.tags.map { pair($0.tuple) })
                entry.set("dataset", dataset)
                return entry
            })
        var object = JSONObject()
        object.set("info", info(run))
        object.set("data", data)
        object.set("inputs", inputs)
        var outputObject = JSONObject()
        outputObject.set(
            "model_outputs",
            outputs.map { output in
                var entry = JSONObject()
                entry.set("model_id", output.0)
                entry.set("step", output.1)
                return entry
            })
        object.set("outputs", outputObject)
        return object
    }

    // MARK: Handlers

    func createExperiment(_ body: [String: JSONValue]) async throws -> String {
        let name = try Self.required(body, "name")
        var tags: [String: String] = [:]
        for tag in body["tags"]?.array ?? [] {
            let pair = try Self.pair(tag, "tag")
            tags[pair.key] = pair.value
        }
        let location = body["artifact_location"]?.text.flatMap { $0.isEmpty ? nil : $0 }
        let experiment = try await store.createExperiment(name: name, artifactLocation: location, tags: tags)
        var object = JSONObject()
        object.set("experiment_id", experiment.id)
        return object.text
    }

    func searchExperiments(_ fields: [String: JSONValue]) async throws -> String {
        let filter = try fields["filter"]?.text.map { try RunSearchFilter(parsing: $0) } ?? RunSearchFilter()
        let orderBy = try Self.strings(fields["order_by"]).map { try RunOrder(parsing: Self.experimentOrder($0)) }
        let search = ExperimentSearch(
            filter: filter, orderBy: orderBy, lifecycle: try Self.lifecycle(fields["view_type"]?.text),
            maxResults: Int(fields["max_results"]?.int64 ?? 1000), pageToken: fields["page_token"]?.text)
        let page = try await store.experiments(search)
        var object = JSONObject()
        object.set("experiments", page.items.map(Self.experiment))
        object.set("next_page_token", page.nextPageToken)
        return object.text
    }

    /// Experiment orders name `name`, `creation_time`, `last_update_time`, `experiment_id`: as the run attributes
    /// the shared parser knows.
    static func experimentOrder(_ text: String) -> String {
        text.replacingOccurrences(of: "creation_time", with: "start_time")
            .replacingOccurrences(of: "last_update_time", with: "end_time")
            .replacingOccurrences(of: "experiment_id", with: "run_id")
            .replacingOccurrences(of: "attributes.name", with: "run_name")
    }

    static func strings(_ value: JSONValue?) -> [String] {
        guard let value else { return [] }
        if let array = value.array { return array.compactMap(\.text) }
        return value.text.map { [$0] } ?? []
    }

    func createRun(_ body: [String: JSONValue]) async throws -> String {
        let experimentID = body["experiment_id"]?.text.flatMap { $0.isEmpty ? nil : $0 } ?? Experiment.defaultID
        let tags = try (body["tags"]?.array ?? []).map { try Self.pair($0, "tag") }
        let user =
            body["user_id"]?.text ?? tags.last(where: { $0.key == "mlflow.user" })?.value ?? "unknown"
        let start = body["start_time"]?.int64.map { Date(timeIntervalSince1970: Double($0) / 1000) } ?? Date()
        let run = try await store.createTrackedRun(
            TrackedRunStart(
                experimentID: experimentID, name: body["run_name"]?.text, user: user, startedAt: start, tags: tags))
        return Self.object(["run": Self.run(run, outputs: [])])
    }

    func trackedRun(_ id: String) async throws -> TrackedRun {
        guard let run = try await store.trackedRun(id) else { throw TrackingError.noRun(id) }
        return run
    }

    func run(_ id: String) async throws -> JSONObject {
        let found = try await trackedRun(id)
        return Self.run(found, outputs: try await modelOutputs(found.id))
    }

    func modelOutputs(_ run: RunID) async throws -> [(String, Int64)] {
        guard let document = try await store.document(kind: "run-outputs", id: run) else { return [] }
        let values = try JSONValue.parse(Data("{\"o\": \(document.body)}".utf8))["o"]?.array ?? []
        return values.compactMap { value in
            guard let object = value.object, let id = object["model_id"]?.text else { return nil }
            return (id, object["step"]?.int64 ?? 0)
        }
    }

    func searchRuns(_ body: [String: JSONValue]) async throws -> String {
        let filter = try RunSearchFilter(parsing: body["filter"]?.text ?? "")
        let orderBy = try Self.strings(body["order_by"]).map { try RunOrder(parsing: $0) }
        let search = RunSearch(
            experimentIDs: Self.strings(body["experiment_ids"]), filter: filter, orderBy: orderBy,
            lifecycle: try Self.lifecycle(body["run_view_type"]?.text),
            maxResults: Int(body["max_results"]?.int64 ?? 1000), pageToken: body["page_token"]?.text)
        let page = try await store.searchRuns(search)
        var runs: [JSONObject] = []
        for run in page.items { runs.append(Self.run(run, outputs: try await modelOutputs(run.id))) }
        var object = JSONObject()
        object.set("runs", runs)
        object.set("next_page_token", page.nextPageToken)
        return object.text
    }

    // MARK: Logged models

    func createLoggedModel(_ body: [String: JSONValue]) async throws -> String {
        let experimentID = try Self.required(body, "experiment_id")
        guard let experiment = try await store.experiment(id: experimentID) else {
            throw TrackingError.noExperiment(experimentID)
        }
        let id = "m-" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        let now = Int64((Date().timeIntervalSince1970 * 1000).rounded())
        var info = JSONObject()
        info.set("model_id", id)
        info.set("experiment_id", experimentID)
        info.set("name", body["name"]?.text ?? RunNames.generate())
        info.set("creation_timestamp_ms", now)
        info.set("last_updated_timestamp_ms", now)
        info.set("artifact_uri", "\(experiment.artifactLocation)/models/\(id)/artifacts")
        info.set("status", "LOGGED_MODEL_PENDING")
        info.set("model_type", body["model_type"]?.text ?? "")
        info.set("source_run_id", body["source_run_id"]?.text)
        info.set("tags", try (body["tags"]?.array ?? []).map { Self.pair(try Self.pair($0, "tag").tuple) })
        var data = JSONObject()
        data.set("params", try (body["params"]?.array ?? []).map { Self.pair(try Self.pair($0, "param").tuple) })
        var model = JSONObject()
        model.set("info", info)
        model.set("data", data)
        try await store.putDocument(
            TrackingDocument(kind: "logged-model", id: id, runID: body["source_run_id"]?.text, body: model.text))
        return Self.object(["model": model])
    }

    func loggedModelFields(_ id: String) async throws -> (TrackingDocument, [String: JSONValue]) {
        guard let document = try await store.document(kind: "logged-model", id: id) else {
            throw TrackingError(.resourceDoesNotExist, "Logged model with ID '\(id)' not found.")
        }
        return (document, try JSONValue.parse(Data(document.body.utf8)))
    }

    func loggedModel(_ id: String) async throws -> JSONObject {
        let (_, fields) = try await loggedModelFields(id)
        return Self.rewrite(.object(fields))
    }

    func finalizeLoggedModel(_ id: String, _ body: [String: JSONValue]) async throws -> String {
        let (document, fields) = try await loggedModelFields(id)
        var info = fields["info"]?.object ?? [:]
        if let status = body["status"]?.text {
            info["status"] = .string(
                status == "1" ? "LOGGED_MODEL_READY" : status == "2" ? "LOGGED_MODEL_UPLOAD_FAILED" : status)
        }
        info["last_updated_timestamp_ms"] = .integer(Int64((Date().timeIntervalSince1970 * 1000).rounded()))
        var updated = fields
        updated["info"] = .object(info)
        let model = Self.rewrite(.object(updated))
        try await store.putDocument(
            TrackingDocument(kind: "logged-model", id: id, runID: document.runID, body: model.text))
        return Self.object(["model": model])
    }

    func tagLoggedModel(_ id: String, _ body: [String: JSONValue]) async throws -> String {
        let (document, fields) = try await loggedModelFields(id)
        var info = fields["info"]?.object ?? [:]
        var tags: [String: String] = [:]
        for tag in info["tags"]?.array ?? [] {
            if let pair = try? Self.pair(tag, "tag") { tags[pair.key] = pair.value }
        }
        for tag in body["tags"]?.array ?? [] {
            let pair = try Self.pair(tag, "tag")
            try TrackingValidation.tag(pair)
            tags[pair.key] = pair.value
        }
        info["tags"] = .array(
            tags.sorted { $0.key < $1.key }.map { .object(["key": .string($0.key), "value": .string($0.value)]) })
        var updated = fields
        updated["info"] = .object(info)
        let model = Self.rewrite(.object(updated))
        try await store.putDocument(
            TrackingDocument(kind: "logged-model", id: id, runID: document.runID, body: model.text))
        return Self.object(["model": model])
    }

    func searchLoggedModels(_ body: [String: JSONValue]) async throws -> String {
        let experiments = Set(Self.strings(body["experiment_ids"]))
        let filter = try RunSearchFilter(parsing: body["filter"]?.text ?? "")
        var models: [(created: Int64, id: String, fields: [String: JSONValue])] = []
        for document in try await store.documents(kind: "logged-model", idPrefix: "") {
            let fields = try JSONValue.parse(Data(document.body.utf8))
            let info = fields["info"]?.object ?? [:]
            guard experiments.isEmpty || experiments.contains(info["experiment_id"]?.text ?? "") else { continue }
            guard try filter.clauses.allSatisfy({ try Self.loggedModel(fields, meets: $0) }) else { continue }
            models.append((info["creation_timestamp_ms"]?.int64 ?? 0, document.id, fields))
        }
        models.sort { ($0.created, $1.id) > ($1.created, $0.id) }
        let offset = try PageToken.offset(body["page_token"]?.text)
        let size = Int(body["max_results"]?.int64 ?? 100)
        let page = models.dropFirst(offset).prefix(size)
        var object = JSONObject()
        object.set("models", page.map { Self.rewrite(.object($0.fields)) })
        object.set(
            "next_page_token", offset + page.count < models.count ? PageToken.make(offset: offset + page.count) : nil)
        return object.text
    }

    /// Whether a logged model meets one comparison: `name`, `source_run_id` (as `attributes.run_id`), `status`,
    /// `params.<key>`, `tags.<key>`.
    static func loggedModel(_ fields: [String: JSONValue], meets clause: RunSearchFilter.Clause) throws -> Bool {
        let info = fields["info"]?.object ?? [:]
        func pairs(_ list: JSONValue?) -> [String: String] {
            var values: [String: String] = [:]
            for item in list?.array ?? [] {
                if let key = item.object?["key"]?.text { values[key] = item.object?["value"]?.text ?? "" }
            }
            return values
        }
        let value: String?
        switch clause.entity {
        case .attribute(.runName): value = info["name"]?.text
        case .attribute(.runID): value = info["source_run_id"]?.text
        case .attribute(.status): value = info["status"]?.text
        case .param(let key): value = pairs(fields["data"]?.object?["params"])[key]
        case .tag(let key): value = pairs(info["tags"])[key]
        default:
            throw TrackingError(
                .invalidParameterValue,
                "Sluice searches logged models by name, attributes.run_id (the source run), status, params. and tags.")
        }
        return SearchMatch.matches(value, clause)
    }

    /// A parsed document written back (keys sorted).
    static func rewrite(_ value: JSONValue) -> JSONObject {
        var object = JSONObject()
        for (key, field) in (value.object ?? [:]).sorted(by: { $0.key < $1.key }) {
            object.fields.append((key, text(field)))
        }
        return object
    }

    static func text(_ value: JSONValue) -> String {
        switch value {
        case .null: "null"
        case .bool(let b): b ? "true" : "false"
        case .integer(let i): String(i)
        case .number(let d): JSONWriter.number(d)
        case .string(let s): JSONText.quoted(s)
        case .array(let items): "[" + items.map(text).joined(separator: ", ") + "]"
        case .object: rewrite(value).text
        }
    }

    // MARK: Artifacts

    /// Where a run's files are kept through the artifact proxy: `<experiment>/<run>/artifacts` for runs whose URI
    /// is a proxied (`mlflow-artifacts:/`) one.
    static func proxiedLocation(_ run: TrackedRun) -> String? {
        guard run.artifactURI.hasPrefix("mlflow-artifacts:") else { return nil }
        var path = String(run.artifactURI.dropFirst("mlflow-artifacts:".count))
        while path.hasPrefix("/") { path.removeFirst() }
        return path
    }

    static func artifactPath(_ request: Request) throws -> String {
        let raw = String(request.uri.path.dropFirst(artifactAPI.count + 1))
        let path = raw.removingPercentEncoding ?? raw
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        guard !path.isEmpty, !parts.contains(".."), !parts.contains(""), !path.hasPrefix("/") else {
            throw TrackingError(.invalidParameterValue, "Invalid path: '\(path)'")
        }
        return path
    }

    func upload(_ request: Request) async throws -> String {
        let path = try Self.artifactPath(request)
        let parts = path.split(separator: "/").map(String.init)
        // `<experiment>/<run>/artifacts/…`: the run must exist and be active; `<experiment>/models/<id>/…`: a logged
        // model's files.
        var runID: String?
        if parts.count >= 3, parts[2] == "artifacts", parts[1] != "models" {
            guard let run = try await store.trackedRun(parts[1]), run.id == parts[1] else {
                throw TrackingError.noRun(parts[1])
            }
            guard !run.deleted else {
                throw TrackingError(
                    .invalidState, "The run \(run.id) must be in the 'active' state. Current state is deleted.")
            }
            runID = run.id
        }
        let data = Data(buffer: try await request.body.collect(upTo: maximumUpload))
        let stored = try artifacts.store(data: data)
        try await store.putDocument(try TrackedFile(stored).document(path: path, runID: runID))
        return "{}"
    }

    func download(_ request: Request) async throws -> Response {
        let path = try Self.artifactPath(request)
        guard let document = try await store.document(kind: TrackedFile.kind, id: path) else {
            throw TrackingError(.resourceDoesNotExist, "No such file or directory: '\(path)'")
        }
        let data = try artifacts.data(for: try TrackedFile(document).uri)
        var headers = HTTPFields()
        headers[.contentType] = "application/octet-stream"
        headers[.contentDisposition] = "attachment; filename=\"\((path as NSString).lastPathComponent)\""
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(data: data)))
    }

    /// The files and folders directly in `directory`, named relative to it (under `shown` for the run-relative
    /// listing of `/api/2.0/mlflow/artifacts/list`, which also names the run's `rootURI`).
    func listArtifacts(_ directory: String, shownUnder shown: String = "", rootURI: String? = nil) async throws
        -> String
    {
        var directory = directory
        while directory.hasSuffix("/") { directory.removeLast() }
        let prefix = directory.isEmpty ? "" : directory + "/"
        var files: [String: Int64?] = [:]
        for document in try await store.documents(kind: TrackedFile.kind, idPrefix: prefix) {
            let rest = String(document.id.dropFirst(prefix.count))
            if let slash = rest.firstIndex(of: "/") {
                files[String(rest[..<slash])] = .some(nil)
            } else {
                files[rest] = .some(try TrackedFile(document).size)
            }
        }
        let shownPrefix = shown.isEmpty ? "" : (shown.hasSuffix("/") ? shown : shown + "/")
        var object = JSONObject()
        object.set("root_uri", rootURI)
        object.set(
            "files",
            files.sorted { $0.key < $1.key }.map { name, size in
                var entry = JSONObject()
                entry.set("path", shownPrefix + name)
                entry.set("is_dir", size == nil)
                if let size { entry.set("file_size", size) }
                return entry
            })
        return object.text
    }
}

extension KeyValue {
    var tuple: (key: String, value: String) { (key, value) }
}

/// A comparison evaluated on one value in memory (for records searched without SQL).
enum SearchMatch {
    static func matches(_ value: String?, _ clause: RunSearchFilter.Clause) -> Bool {
        switch clause.op {
        case .isNull: return value == nil
        case .isNotNull: return value != nil
        default: break
        }
        guard let value else { return false }
        switch clause.value {
        case .string(let s):
            switch clause.op {
            case .equal: return value == s
            case .notEqual: return value != s
            case .like: return like(value, s, caseSensitive: true)
            case .iLike: return like(value, s, caseSensitive: false)
            default: return false
            }
        case .list(let items): return clause.op == .isIn ? items.contains(value) : !items.contains(value)
        case .number(let n):
            guard let v = Double(value) else { return false }
            switch clause.op {
            case .equal: return v == n
            case .notEqual: return v != n
            case .greater: return v > n
            case .greaterOrEqual: return v >= n
            case .less: return v < n
            case .lessOrEqual: return v <= n
            default: return false
            }
        case .none: return false
        }
    }

    /// SQL's LIKE: `%` any run of characters, `_` one character.
    static func like(_ value: String, _ pattern: String, caseSensitive: Bool) -> Bool {
        let v = Array(caseSensitive ? value : value.lowercased())
        let p = Array(caseSensitive ? pattern : pattern.lowercased())
        var memo: [Int: Bool] = [:]
        func match(_ i: Int, _ j: Int) -> Bool {
            let key = i * (p.count + 1) + j
            if let known = memo[key] { return known }
            let result: Bool
            if j == p.count {
                result = i == v.count
            } else if p[j] == "%" {
                result = match(i, j + 1) || (i < v.count && match(i + 1, j))
            } else {
                result = i < v.count && (p[j] == "_" || p[j] == v[i]) && match(i + 1, j + 1)
            }
            memo[key] = result
            return result
        }
        return match(0, 0)
    }
}
