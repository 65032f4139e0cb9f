// Over 400 lines: the server's request path and its model slots share private state; split, they would need it widened.
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import SluiceData
import SluiceErrors
import SluiceML

/// How the server listens and behaves.
public struct ServerConfiguration: Sendable {
    /// The address to bind: loopback unless told otherwise.
    public var host = "127.0.0.1"
    /// The port (0: any free port).
    public var port = 8080
    /// The largest request body accepted, in bytes.
    public var maxBodyBytes = 1 << 20
    /// How often to ask the model source whether another version should answer (hot promotion).
    public var pollInterval: Duration = .milliseconds(500)
    /// Where to write one structured line per request (nil: no access log).
    public var accessLog: AccessLog? = AccessLog()
    /// The feature store's online lookups, served at `POST /v1/features/online` (nil: not served).
    public var features: (any FeatureLookup)?

    /// Creates a configuration.
    public init(host: String = "127.0.0.1", port: Int = 8080) {
        self.host = host
        self.port = port
    }
}

/// Serves model bundles over HTTP: the KServe V2 / Open Inference Protocol REST API (with the binary tensor data
/// extension), MLflow-style `/invocations`, Prometheus `/metrics`. Raw rows go through each bundle's own
/// transforms; inputs are checked against its signature and every refusal is a 4xx with `{"error": "..."}`. Each
/// model is served at `/v2/models/{name}` and follows its own source: when the source names another version (a
/// promotion or rollback), the server switches to it without failing a request in flight; every prediction says
/// which version answered (`X-Model-Version` and `model_version`).
public struct ModelServer: Sendable {
    /// The first model's name in URLs (`/v2/models/NAME`).
    public let name: String
    /// Every model's name, in the order given.
    public var names: [String] { hosted.map(\.name) }
    let hosted: [HostedModel]
    let configuration: ServerConfiguration
    let metrics = ServerMetrics()
    package let logger: Logger

    /// Creates a server for the model `name` from `source`.
    public init(
        name: String, source: any ModelSource, configuration: ServerConfiguration = ServerConfiguration(),
        logger: Logger? = nil
    ) {
        self.init(models: [(name, source)], configuration: configuration, logger: logger)
    }

    /// Creates a server for several models, each at `/v2/models/{name}` with its own source (so each is promoted
    /// on its own). Names must be distinct and there must be at least one.
    public init(
        models: [(name: String, source: any ModelSource)], configuration: ServerConfiguration = ServerConfiguration(),
        logger: Logger? = nil
    ) {
        precondition(!models.isEmpty || configuration.features != nil, "a model server needs a model or features")
        precondition(Set(models.map(\.name)).count == models.count, "model names must be distinct")
        hosted = models.map { HostedModel(name: $0.name, source: $0.source) }
        name = models.first?.name ?? ""
        self.configuration = configuration
        var fallback = Logger(label: "sluice.serve")
        fallback.logLevel = .info
        self.logger = logger ?? fallback
    }

    /// The version of the first model answering now, if it is loaded.
    public var currentVersion: String? { hosted.first?.slot.model?.version }

    /// The version of model `name` answering now, if it is loaded.
    public func currentVersion(of name: String) -> String? {
        hosted.first { $0.name == name }?.slot.model?.version
    }

    /// Loads every model's current version (call before serving; `run` does it).
    public func loadCurrent() async throws {
        for model in hosted {
            let version = try await model.source.currentVersion()
            model.slot.replace(with: try await model.source.load(version: version))
        }
    }

    /// Checks every source once and swaps in another version where one names it; returns whether any swapped.
    /// A source that fails is logged and the others are still checked; the first failure is rethrown at the end.
    @discardableResult
    public func refresh() async throws -> Bool {
        var swapped = false
        var failure: (any Error)?
        for model in hosted {
            do {
                let version = try await model.source.currentVersion()
                guard version != model.slot.model?.version else { continue }
                let loaded = try await model.source.load(version: version)
                let previous = model.slot.model?.version
                model.slot.replace(with: loaded)
                logger.info("now serving \(loaded.version)", metadata: ["previous": .string(previous ?? "none")])
                swapped = true
            } catch {
                if hosted.count > 1 {
                    logger.warning("could not check model '\(model.name)' for a new version: \(error)")
                }
                failure = failure ?? error
            }
        }
        if let failure { throw failure }
        return swapped
    }

    /// The HTTP application (for embedding and tests); `onRunning` receives the bound port, and `services` (another
    /// front end, such as the gRPC one) run beside it and stop with it.
    public func application(
        alongside services: [any Service] = [], onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        Application(
            responder: Responder(server: self),
            configuration: .init(
                address: .hostname(configuration.host, port: configuration.port), serverName: "sluice"),
            services: services,
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? 0) },
            logger: logger)
    }

    /// Loads the model, serves until SIGTERM or SIGINT (then drains requests in flight and exits), and polls the
    /// source for promotions meanwhile; `services` (another front end, such as the gRPC one) run beside the HTTP
    /// server and stop with it.
    public func run(
        alongside services: [any Service] = [], onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) async throws {
        try await loadCurrent()
        let poller = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: configuration.pollInterval)
                do { try await refresh() } catch {
                    logger.warning("could not check for a new model version: \(error)")
                }
            }
        }
        let flusher = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(200))
                configuration.accessLog?.flush()
            }
        }
        defer {
            poller.cancel()
            flusher.cancel()
            configuration.accessLog?.flush()
        }
        try await application(alongside: services, onRunning: onRunning).runService()
    }

    // MARK: Endpoints

    /// The answer of `endpoint` to `request`; a refusal is thrown as ``RequestError``.
    fileprivate func answer(_ endpoint: Endpoint, to request: Request) async throws -> Response {
        switch endpoint {
        case .live: return json(#"{"live":true}"#)
        case .ready:
            return !allLoaded
                ? json(#"{"ready":false}"#, status: .serviceUnavailable) : json(#"{"ready":true}"#)
        case .ping:
            return !allLoaded
                ? json(#"{"status":"loading"}"#, status: .serviceUnavailable) : json(#"{"status":"ok"}"#)
        case .serverMetadata:
            return json(
                #"{"name":"sluice","version":"\#(sluiceServerVersion)","extensions":["binary_tensor_data"]}"#)
        case .modelMetadata(let requested, let version):
            let model = try self.model(requested, version: version)
            return json(Protocols.metadata(model, name: String(requested)))
        case .modelReady(let requested, let version):
            let model = try self.model(requested, version: version)
            return json(
                #"{"name":\#(Protocols.jsonString(String(requested))),"ready":true,"version":\#(model.quotedV2Version)}"#
            )
        case .repositoryIndex:
            let entries = hosted.map { hosted in
                guard let model = hosted.slot.model else {
                    return
                        #"{"name":\#(Protocols.jsonString(hosted.name)),"state":"UNAVAILABLE","reason":"not loaded yet"}"#
                }
                return
                    #"{"name":\#(Protocols.jsonString(hosted.name)),"version":\#(model.quotedV2Version),"state":"READY"}"#
            }
            return json("[" + entries.joined(separator: ",") + "]")
        case .infer(let requested, let version):
            let model = try self.model(requested, version: version)
            var headerLength: Int?
            if let given = request.headers.first(.inferenceHeaderContentLength) {
                guard let length = Self.byteCount(given) else {
                    throw RequestError.badRequest(
                        "\(BinaryTensors.headerName) must be a number of bytes, not '\(given)'")
                }
                headerLength = length
            }
            let body = try await self.body(request)
            let decoded = try body.withUnsafeReadableBytes {
                try Protocols.decodeInfer($0, headerLength: headerLength, signature: model.requestSignature)
            }
            let predictions = try self.predict(try await completed(decoded.batch, for: model), with: model)
            let (text, binary) = try Protocols.inferResponse(
                predictions, model: model, name: String(requested), request: decoded)
            guard let binary else { return json(text, version: model.version) }
            var buffer = ByteBuffer()
            buffer.reserveCapacity(text.utf8.count + binary.count)
            buffer.writeString(text)
            buffer.writeBytes(binary)
            var headers = HTTPFields()
            headers.append(HTTPField(name: .contentType, value: "application/octet-stream"))
            headers.append(HTTPField(name: .inferenceHeaderContentLength, value: String(text.utf8.count)))
            headers.append(HTTPField(name: .modelVersion, value: model.version))
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: buffer))
        case .invocations:
            let model = try invocationsModel(request)
            let body = try await self.body(request)
            let batch = try body.withUnsafeReadableBytes {
                try Protocols.decodeInvocations($0, signature: model.requestSignature)
            }
            let predictions = try self.predict(try await completed(batch, for: model), with: model)
            return json(Protocols.invocationsResponse(predictions, model: model), version: model.version)
        case .featuresOnline:
            guard let features = configuration.features else {
                throw RequestError(
                    status: 404,
                    message: "this server has no feature store; start `sluice features serve`, or `sluice serve` in "
                        + "a project with materialized features")
            }
            let body = try await self.body(request)
            let start = ContinuousClock.now
            let bytes = body.withUnsafeReadableBytes { Data($0) }
            let answer = try await features.lookup(json: bytes)
            metrics.lookedUp(entities: answer.entities, seconds: (ContinuousClock.now - start) / .seconds(1))
            return json(answer.json)
        case .metrics:
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(
                    byteBuffer: ByteBuffer(
                        string: metrics.render(models: hosted.map { ($0.name, $0.slot.model?.version) }))))
        }
    }

    /// A request's rows with every input the model reads: for a model served from a feature service, the entity
    /// keys' features fetched from the online store beside the request-time inputs; other rows as they are.
    func completed(_ batch: RawBatch, for model: ServedModel) async throws -> RawBatch {
        guard let service = model.bundle.signature.features else { return batch }
        guard let lookup = configuration.features else {
            throw RequestError(
                status: 503,
                message: "model '\(model.bundle.name)' reads its features from the feature service "
                    + "'\(service.service)', and this server has no online store open")
        }
        var keys: [String: [String]] = [:]
        for key in service.entityKeys {
            keys[key.name] = (batch.columns[key.name] ?? []).map { value in
                switch value {
                case .number(let number): number == number.rounded() ? String(Int64(number)) : String(number)
                case .text(let text): text
                case .missing: ""
                }
            }
        }
        let inputs = Array(service.fetched.keys).sorted()
        let start = ContinuousClock.now
        let fetched = try await lookup.fetch(inputs.map { service.fetched[$0]! }, keys: keys)
        metrics.lookedUp(entities: batch.rowCount, seconds: (ContinuousClock.now - start) / .seconds(1))
        if service.missingEntity == .refuse, let row = fetched.known.firstIndex(of: false) {
            let named = service.entityKeys.map { "\($0.name)=\(keys[$0.name]![row])" }.joined(separator: ", ")
            throw RequestError(
                status: 404,
                message: "row \(row + 1): the online store has no features of \(named) (feature service "
                    + "'\(service.service)'); check the key, or materialize the service's views "
                    + "(`sluice features materialize`)")
        }
        var columns = batch.columns.filter { name, _ in model.bundle.signature.inputs.contains { $0.name == name } }
        for (index, input) in inputs.enumerated() {
            // Text of a non-text input (a timestamp as ISO 8601) is read as CSV ingest read it in training.
            let type = model.bundle.signature.inputs.first { $0.name == input }?.type ?? .string
            columns[input] = fetched.columns[index].map { value in
                guard case .text(let text) = value, type != .string else { return value }
                switch FieldReading.read(text, as: type) {
                case .number(let number): return .number(number)
                case .text(let text): return .text(text)
                case .missing, .invalid: return .missing
                }
            }
        }
        return RawBatch(rowCount: batch.rowCount, columns: columns)
    }

    /// Whether every model has a version loaded.
    private var allLoaded: Bool { hosted.allSatisfy { $0.slot.model != nil } }

    /// The loaded model, checking the name (and version) in the URL.
    func model(_ requested: Substring, version: Substring?) throws -> ServedModel {
        guard let hosted = hosted.first(where: { $0.name == requested }) else {
            throw RequestError(
                status: 404,
                message:
                    "no model '\(requested)' here; this server serves \(names.map { "'\($0)'" }.joined(separator: ", "))"
            )
        }
        guard let model = hosted.slot.model else {
            throw RequestError(status: 503, message: "model '\(requested)' is not loaded yet")
        }
        if let version, version != model.version, !model.version.hasSuffix("@\(version)") {
            throw RequestError(
                status: 404, message: "version '\(version)' is not served; this server answers with \(model.version)")
        }
        return model
    }

    /// The model `/invocations` answers with: the only one, or the one `?model=NAME` names.
    private func invocationsModel(_ request: Request) throws -> ServedModel {
        // The query is parsed only when there is one: most requests have none, and this is the hot path.
        if let query = request.uri.query, !query.isEmpty, let named = request.uri.queryParameters["model"] {
            return try model(named, version: nil)
        }
        guard hosted.count == 1 else {
            throw RequestError.badRequest(
                "this server serves several models (\(names.joined(separator: ", "))): say which with "
                    + "/invocations?model=NAME, or use /v2/models/NAME/infer")
        }
        return try model(Substring(name), version: nil)
    }

    private func body(_ request: Request) async throws -> ByteBuffer {
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: configuration.maxBodyBytes)
        } catch {
            throw RequestError(
                status: 413, message: "the body is larger than the limit of \(configuration.maxBodyBytes) bytes")
        }
        return buffer
    }

    func predict(_ batch: RawBatch, with model: ServedModel) throws -> Predictions {
        do {
            var unknown: [String: Int] = [:]
            let predictions = try model.bundle.predict(batch, unknownCategories: &unknown)
            metrics.predicted(rows: batch.rowCount, unknownCategories: unknown)
            return predictions
        } catch {
            throw RequestError.badRequest("\(error)")
        }
    }
}

extension ModelServer {
    /// A header's whole number of bytes, blanks around it allowed (read byte by byte: Foundation's trimming
    /// bridges to NSString, and Character-wise trimming walks grapheme clusters; both cost microseconds here).
    static func byteCount(_ text: String) -> Int? {
        var value = 0
        var digits = 0
        var after = false  // past the digits: only blanks may follow
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: " "), UInt8(ascii: "\t"): after = digits > 0
            case UInt8(ascii: "0")...UInt8(ascii: "9") where !after && digits < 18:
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
                digits += 1
            default: return nil
            }
        }
        return digits > 0 ? value : nil
    }
}

/// One model a server answers for: its name in URLs, where its versions come from, and the version loaded now.
final class HostedModel: Sendable {
    let name: String
    let source: any ModelSource
    let slot = ModelSlot()

    init(name: String, source: any ModelSource) {
        self.name = name
        self.source = source
    }
}

extension HTTPField.Name {
    /// The version that answered a prediction.
    static let modelVersion = HTTPField.Name("X-Model-Version")!
    /// The length of the JSON part of a binary-tensor request or response.
    static let inferenceHeaderContentLength = HTTPField.Name(BinaryTensors.headerName)!
    /// The request's ID: the client's, or one the server makes up.
    static let requestID = HTTPField.Name("X-Request-Id")!
}

extension HTTPFields {
    /// The first value of the field `name`. (The subscript joins every value of the field in generic code that
    /// is not specialized, which cost more than the rest of the access log.)
    func first(_ name: HTTPField.Name) -> String? {
        for field in self where field.name == name { return field.value }
        return nil
    }
}

/// The server's version string.
let sluiceServerVersion = "0.1.0"

private func json(_ text: String, status: HTTPResponse.Status = .ok, version: String? = nil) -> Response {
    var headers = HTTPFields()
    headers.append(HTTPField(name: .contentType, value: "application/json"))
    if let version { headers.append(HTTPField(name: .modelVersion, value: version)) }
    return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
}

/// Answers every request: finds its endpoint, gives it a request ID, writes the access log line and the request
/// metrics, and turns errors into `{"error": "..."}`.
private struct Responder: HTTPResponder {
    let server: ModelServer

    func respond(to request: Request, context: BasicRequestContext) async throws -> Response {
        let start = ContinuousClock.now
        let id = request.headers.first(.requestID) ?? RequestIDs.next()
        let path = request.uri.path
        let metrics = server.metrics
        metrics.started()
        let endpoint = Endpoint(path: path)
        var response: Response
        if let endpoint, request.method == endpoint.method {
            do {
                response = try await server.answer(endpoint, to: request)
            } catch let error as any HTTPRefusal {
                response = refusal(RequestError(status: error.httpStatus, message: error.httpMessage))
            } catch {
                server.logger.error(
                    "unexpected error answering \(request.method) \(path): \(error)", metadata: ["request_id": "\(id)"])
                response = refusal(RequestError(status: 500, message: UnexpectedErrorAnswer.message(requestID: id)))
            }
        } else if let endpoint {
            response = refusal(
                RequestError(status: 405, message: "\(path) answers \(endpoint.method), not \(request.method)"))
            response.headers.append(HTTPField(name: .allow, value: endpoint.method.rawValue))
        } else {
            response = refusal(
                RequestError(
                    status: 404,
                    message:
                        "no endpoint at \(path); this server answers /v2/… (KServe V2), /invocations, /ping, /health and /metrics"
                )
            )
        }
        response.headers.append(HTTPField(name: .requestID, value: id))
        let seconds = (ContinuousClock.now - start) / .seconds(1)
        metrics.finished(route: endpoint?.route ?? "unmatched", status: response.status.code, seconds: seconds)
        server.configuration.accessLog?.record(
            id: id, method: request.method.rawValue, path: path, status: Int(response.status.code),
            seconds: seconds, version: response.headers.first(.modelVersion))
        return response
    }

    /// `{"error": "..."}` with the error's status.
    private func refusal(_ error: RequestError) -> Response {
        json(#"{"error":\#(Protocols.jsonString(error.message))}"#, status: HTTPResponse.Status(code: error.status))
    }
}
