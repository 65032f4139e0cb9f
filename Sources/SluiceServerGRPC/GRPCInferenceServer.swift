import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import GRPCProtobuf
import Logging
import ServiceLifecycle
import SluiceErrors
import SluiceServer
import Synchronization

/// The model server's gRPC front end: the Open Inference Protocol's `inference.GRPCInferenceService` (ServerLive,
/// ServerReady, ModelReady, ServerMetadata, ModelMetadata, ModelInfer and Triton's RepositoryIndex) on its own port,
/// answering from the same models, promotions, metrics and access log as the HTTP API. Run it beside the HTTP
/// server with `ModelServer.run(alongside:)`; it stops with it.
public struct GRPCInferenceServer: Service {
    let server: ModelServer
    let host: String
    let port: Int
    let maxMessageBytes: Int
    let onListening: @Sendable (Int) async -> Void

    /// Creates the gRPC front end of `server` on `host`:`port` (0: any free port, reported to `onListening`),
    /// refusing messages larger than `maxMessageBytes`.
    public init(
        server: ModelServer, host: String = "127.0.0.1", port: Int, maxMessageBytes: Int = 4 << 20,
        onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) {
        self.server = server
        self.host = host
        self.port = port
        self.maxMessageBytes = maxMessageBytes
        self.onListening = onListening
    }

    /// Serves until the service group shuts down (then finishes the calls in flight) or the task is cancelled.
    public func run() async throws {
        var config = HTTP2ServerTransport.Posix.Config.defaults
        config.rpc.maxRequestPayloadSize = maxMessageBytes
        let address: GRPCNIOTransportCore.SocketAddress =
            host.contains(":")
            ? .ipv6(host: host, port: port) : .ipv4(host: host == "localhost" ? "127.0.0.1" : host, port: port)
        let transport = HTTP2ServerTransport.Posix(
            address: address, transportSecurity: .plaintext, config: config)
        let grpc = GRPCServer(transport: transport, services: [InferenceService(server: server)])
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                let listening = Atomic<Bool>(false)
                group.addTask {
                    do {
                        try await grpc.serve()
                    } catch  where !listening.load(ordering: .relaxed) {
                        // The transport's own error says why it could not bind (the port is taken, the address
                        // is not this machine's).
                        throw GRPCListenError(host: host, port: port, reason: "\(error)")
                    }
                }
                // When binding fails, serve() above throws the reason; this only reports the port when it worked.
                guard let bound = try? await transport.listeningAddress else { return }
                listening.store(true, ordering: .relaxed)
                await onListening(bound.ipv4?.port ?? bound.ipv6?.port ?? port)
            }
        } onGracefulShutdown: {
            grpc.beginGracefulShutdown()
        }
    }
}

/// The gRPC front end could not listen where it was asked to.
struct GRPCListenError: SluiceError {
    let host: String
    let port: Int
    let reason: String

    var problem: String { "could not serve gRPC on \(host):\(port): \(reason)" }
    var fix: String { "choose another --grpc-port (0 picks a free one), or stop what listens on \(port)" }
    var exitStatus: ExitStatus { .failed }
    var description: String { "\(problem)\n  To fix: \(fix)" }
}

/// The V2 gRPC methods over a ``ModelServer``.
struct InferenceService: Inference_GRPCInferenceService.ServiceProtocol {
    let server: ModelServer

    func serverLive(
        request: ServerRequest<Inference_ServerLiveRequest>, context: ServerContext
    ) async throws -> ServerResponse<Inference_ServerLiveResponse> {
        try answer("ServerLive", request.metadata) { _ in
            var response = Inference_ServerLiveResponse()
            response.live = true
            return (response, nil)
        }
    }

    func serverReady(
        request: ServerRequest<Inference_ServerReadyRequest>, context: ServerContext
    ) async throws -> ServerResponse<Inference_ServerReadyResponse> {
        try answer("ServerReady", request.metadata) { _ in
            var response = Inference_ServerReadyResponse()
            response.ready = server.isReady
            return (response, nil)
        }
    }

    func modelReady(
        request: ServerRequest<Inference_ModelReadyRequest>, context: ServerContext
    ) async throws -> ServerResponse<Inference_ModelReadyResponse> {
        try answer("ModelReady", request.metadata) { _ in
            var response = Inference_ModelReadyResponse()
            response.ready = server.isReady(model: request.message.name, version: request.message.version)
            return (response, nil)
        }
    }

    func serverMetadata(
        request: ServerRequest<Inference_ServerMetadataRequest>, context: ServerContext
    ) async throws -> ServerResponse<Inference_ServerMetadataResponse> {
        try answer("ServerMetadata", request.metadata) { _ in
            let description = server.serverDescription
            var response = Inference_ServerMetadataResponse()
            response.name = description.name
            response.version = description.version
            response.extensions = description.extensions
            return (response, nil)
        }
    }

    func modelMetadata(
        request: ServerRequest<Inference_ModelMetadataRequest>, context: ServerContext
    ) async throws -> ServerResponse<Inference_ModelMetadataResponse> {
        try answer("ModelMetadata", request.metadata) { _ in
            let description = try server.describe(model: request.message.name, version: request.message.version)
            func tensors(_ list: [(name: String, datatype: String, shape: [Int64])])
                -> [Inference_ModelMetadataResponse.TensorMetadata]
            {
                list.map { entry in
                    var tensor = Inference_ModelMetadataResponse.TensorMetadata()
                    tensor.name = entry.name
                    tensor.datatype = entry.datatype
                    tensor.shape = entry.shape
                    return tensor
                }
            }
            var response = Inference_ModelMetadataResponse()
            response.name = description.name
            response.versions = description.versions
            response.platform = description.platform
            response.inputs = tensors(description.inputs)
            response.outputs = tensors(description.outputs)
            return (response, nil)
        }
    }

    func repositoryIndex(
        request: ServerRequest<Inference_RepositoryIndexRequest>, context: ServerContext
    ) async throws -> ServerResponse<Inference_RepositoryIndexResponse> {
        try answer("RepositoryIndex", request.metadata) { _ in
            guard request.message.repositoryName.isEmpty else {
                throw InferenceRefusal(
                    status: 404,
                    message:
                        "no repository '\(request.message.repositoryName)'; this server has one: leave the name empty")
            }
            var response = Inference_RepositoryIndexResponse()
            response.models = server.repositoryIndex.compactMap { entry in
                guard !request.message.ready || entry.state == "READY" else { return nil }
                var model = Inference_RepositoryIndexResponse.ModelIndex()
                model.name = entry.name
                model.version = entry.version
                model.state = entry.state
                model.reason = entry.reason
                return model
            }
            return (response, nil)
        }
    }

    func modelInfer(
        request: ServerRequest<Inference_ModelInferRequest>, context: ServerContext
    ) async throws -> ServerResponse<Inference_ModelInferResponse> {
        try answer("ModelInfer", request.metadata, id: request.message.id) { _ in
            let message = request.message
            let inputs = try Self.inputs(of: message)
            let outputs = try Self.requestedOutputs(of: message)
            let answer = try server.infer(
                model: message.modelName, version: message.modelVersion, inputs: inputs, outputs: outputs)
            var response = Inference_ModelInferResponse()
            response.modelName = message.modelName
            response.modelVersion = answer.v2Version
            response.id = message.id
            response.parameters = message.parameters
            // Answered the way the request was sent: raw bytes for raw inputs, typed contents otherwise.
            let raw = !message.rawInputContents.isEmpty
            response.outputs = answer.outputs.map { output in
                var tensor = Inference_ModelInferResponse.InferOutputTensor()
                tensor.name = output.name
                tensor.datatype = output.datatype
                tensor.shape = output.shape
                if !raw {
                    switch output.values {
                    case .fp64(let values): tensor.contents.fp64Contents = values
                    case .bytes(let labels): tensor.contents.bytesContents = labels.map { Data($0.utf8) }
                    case .int64(let labels): tensor.contents.int64Contents = labels
                    case .bool(let labels): tensor.contents.boolContents = labels
                    }
                }
                return tensor
            }
            if raw { response.rawOutputContents = answer.outputs.map { Data($0.rawBytes) } }
            return (response, answer.version)
        }
    }

    // MARK: Reading requests

    /// The request's input tensors: from `raw_input_contents` (one per input, in order) or each input's typed
    /// contents; never both.
    static func inputs(of message: Inference_ModelInferRequest) throws(InferenceRefusal) -> [InputTensor] {
        let raw = message.rawInputContents
        if !raw.isEmpty, raw.count != message.inputs.count {
            throw InferenceRefusal(
                status: 400,
                message:
                    "the request has \(message.inputs.count) inputs but \(raw.count) raw_input_contents; send one "
                    + "raw_input_contents per input, in the order of 'inputs', or none and typed contents")
        }
        var tensors: [InputTensor] = []
        tensors.reserveCapacity(message.inputs.count)
        for (index, input) in message.inputs.enumerated() {
            let values: InputTensor.Values
            if !raw.isEmpty {
                if input.hasContents, input.contents != Inference_InferTensorContents() {
                    throw InferenceRefusal(
                        status: 400,
                        message:
                            "input '\(input.name)' has typed contents but the request uses raw_input_contents: "
                            + "send every input one way")
                }
                values = .raw(raw[index])
            } else {
                values = try typedValues(input)
            }
            tensors.append(InputTensor(name: input.name, datatype: input.datatype, shape: input.shape, values: values))
        }
        return tensors
    }

    /// An input's typed contents: exactly one of the contents fields holds values.
    private static func typedValues(_ input: Inference_ModelInferRequest.InferInputTensor) throws(InferenceRefusal)
        -> InputTensor.Values
    {
        let contents = input.contents
        var found: [(String, InputTensor.Values)] = []
        if !contents.fp64Contents.isEmpty { found.append(("fp64_contents", .fp64(contents.fp64Contents))) }
        if !contents.fp32Contents.isEmpty { found.append(("fp32_contents", .fp32(contents.fp32Contents))) }
        if !contents.int64Contents.isEmpty { found.append(("int64_contents", .int64(contents.int64Contents))) }
        if !contents.intContents.isEmpty { found.append(("int_contents", .int32(contents.intContents))) }
        if !contents.uint64Contents.isEmpty { found.append(("uint64_contents", .uint64(contents.uint64Contents))) }
        if !contents.uintContents.isEmpty { found.append(("uint_contents", .uint32(contents.uintContents))) }
        if !contents.boolContents.isEmpty { found.append(("bool_contents", .bool(contents.boolContents))) }
        if !contents.bytesContents.isEmpty { found.append(("bytes_contents", .bytes(contents.bytesContents))) }
        guard found.count <= 1 else {
            throw InferenceRefusal(
                status: 400,
                message:
                    "input '\(input.name)' has values in \(found.map(\.0).joined(separator: " and ")); one contents "
                    + "field per input, the one for its datatype")
        }
        guard let (_, values) = found.first else {
            throw InferenceRefusal(
                status: 400,
                message:
                    "input '\(input.name)' has no values: put them in its contents (fp64_contents, bytes_contents, …) "
                    + "or in raw_input_contents")
        }
        return values
    }

    /// The outputs asked for by name (nil: all); the classification extension is refused as over HTTP.
    private static func requestedOutputs(of message: Inference_ModelInferRequest) throws(InferenceRefusal)
        -> [String]?
    {
        guard !message.outputs.isEmpty else { return nil }
        return try message.outputs.map { output throws(InferenceRefusal) in
            if output.parameters["classification"] != nil {
                throw InferenceRefusal(
                    status: 400,
                    message:
                        "output '\(output.name)': the classification extension is not supported; ask for 'probabilities'"
                )
            }
            return output.name
        }
    }

    // MARK: Answering

    /// Runs one call: counts it as in flight, answers with `body`'s message (and the version that answered, in
    /// the `x-model-version` metadata), maps a refusal to its gRPC status, and records it in the metrics and the
    /// access log as `grpc/METHOD` with the status the HTTP API would have given.
    private func answer<Response: Sendable>(
        _ method: String, _ metadata: Metadata, id messageID: String = "",
        _ body: (Metadata) throws -> (Response, String?)
    ) throws -> ServerResponse<Response> {
        let start = ContinuousClock.now
        server.callStarted()
        let id =
            metadata[stringValues: "x-request-id"].first(where: { _ in true })
            ?? (messageID.isEmpty ? server.nextRequestID() : messageID)
        var status = 200
        var version: String?
        defer {
            let seconds = (ContinuousClock.now - start) / .seconds(1)
            server.record(
                CallRecord(
                    id: id, method: "GRPC", route: "grpc/\(method)", status: status, seconds: seconds,
                    version: version))
        }
        do {
            let (message, answeredBy) = try body(metadata)
            version = answeredBy
            var headers: Metadata = ["x-request-id": .string(id)]
            if let answeredBy { headers.addString(answeredBy, forKey: "x-model-version") }
            return ServerResponse(message: message, metadata: headers)
        } catch let refusal as InferenceRefusal {
            status = refusal.status
            throw RPCError(code: Self.code(refusal.status), message: refusal.message)
        } catch {
            status = 500
            throw RPCError(code: .internalError, message: "internal error: \(error)")
        }
    }

    /// The gRPC status for an HTTP status of the REST API.
    static func code(_ status: Int) -> RPCError.Code {
        switch status {
        case 404: .notFound
        case 413: .resourceExhausted
        case 503: .unavailable
        case 400..<500: .invalidArgument
        default: .internalError
        }
    }
}
