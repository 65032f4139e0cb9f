// Over 400 lines: one method per V2 gRPC call, with the tensor conversions they share.
import Foundation
import Logging
import SluiceErrors
import SluiceServer
import SwiftProtobuf

/// A gRPC status code (the numbers every gRPC implementation shares), for calls answered outside grpc-swift.
package enum GRPCStatusCode: Int, Sendable {
    case ok = 0
    case invalidArgument = 3
    case deadlineExceeded = 4
    case notFound = 5
    case resourceExhausted = 8
    case unimplemented = 12
    case internalError = 13
    case unavailable = 14

    /// The gRPC status for an HTTP status of the REST API.
    package init(httpStatus status: Int) {
        switch status {
        case 404: self = .notFound
        case 413: self = .resourceExhausted
        case 503: self = .unavailable
        case 504: self = .deadlineExceeded
        case 400..<500: self = .invalidArgument
        default: self = .internalError
        }
    }

    /// The HTTP status the REST API gives for the same outcome (what metrics and the access log count).
    var httpStatus: Int {
        switch self {
        case .ok: 200
        case .invalidArgument: 400
        case .deadlineExceeded: 504
        case .notFound: 404
        case .resourceExhausted: 413
        case .unimplemented: 501
        case .internalError: 500
        case .unavailable: 503
        }
    }
}

/// How one call ended: the response message with its metadata, or a status with its reason.
package enum GRPCAnswer<Response: Sendable>: Sendable {
    case answered(Response, metadata: [(String, String)])
    case refused(GRPCStatusCode, String, metadata: [(String, String)])
}

/// The V2 gRPC methods over a ``ModelServer``, apart from any transport: each turns a request message into a
/// response message, and ``answer(_:requestID:messageID:_:)`` counts, logs and maps the outcome. The NIO front end
/// (``GRPCInferenceServer``) and grpc-swift's service (``InferenceService``) both answer through it.
package struct InferenceMethods: Sendable {
    let server: ModelServer

    package init(server: ModelServer) { self.server = server }

    func serverLive(_: Inference_ServerLiveRequest) -> Inference_ServerLiveResponse {
        var response = Inference_ServerLiveResponse()
        response.live = true
        return response
    }

    func serverReady(_: Inference_ServerReadyRequest) -> Inference_ServerReadyResponse {
        var response = Inference_ServerReadyResponse()
        response.ready = server.isReady
        return response
    }

    func modelReady(_ request: Inference_ModelReadyRequest) -> Inference_ModelReadyResponse {
        var response = Inference_ModelReadyResponse()
        response.ready = server.isReady(model: request.name, version: request.version)
        return response
    }

    func serverMetadata(_: Inference_ServerMetadataRequest) -> Inference_ServerMetadataResponse {
        let description = server.serverDescription
        var response = Inference_ServerMetadataResponse()
        response.name = description.name
        response.version = description.version
        response.extensions = description.extensions
        return response
    }

    func modelMetadata(_ request: Inference_ModelMetadataRequest) throws(InferenceRefusal)
        -> Inference_ModelMetadataResponse
    {
        let description = try server.describe(model: request.name, version: request.version)
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
        return response
    }

    func repositoryIndex(_ request: Inference_RepositoryIndexRequest) throws(InferenceRefusal)
        -> Inference_RepositoryIndexResponse
    {
        guard request.repositoryName.isEmpty else {
            throw InferenceRefusal(
                status: 404,
                message: "no repository '\(request.repositoryName)'; this server has one: leave the name empty")
        }
        var response = Inference_RepositoryIndexResponse()
        response.models = server.repositoryIndex.compactMap { entry in
            guard !request.ready || entry.state == "READY" else { return nil }
            var model = Inference_RepositoryIndexResponse.ModelIndex()
            model.name = entry.name
            model.version = entry.version
            model.state = entry.state
            model.reason = entry.reason
            return model
        }
        return response
    }

    /// One inference, and the version that answered it.
    func modelInfer(_ message: Inference_ModelInferRequest) throws(InferenceRefusal)
        -> (Inference_ModelInferResponse, String)
    {
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

    /// Runs one call of `method`: counts it as in flight, answers with `body`'s message (and the version that
    /// answered, in the `x-model-version` metadata), maps a refusal to its gRPC status, and records the call in
    /// the metrics and the access log as `grpc/METHOD` with the status the HTTP API would have given. The request
    /// ID is the `x-request-id` metadata, else the message's `id` (when ``usableAsRequestID(_:)``), else a new one.
    package func answer<Response: Sendable>(
        _ method: String, requestID: String?, messageID: String = "",
        _ body: () throws -> (Response, String?)
    ) -> GRPCAnswer<Response> {
        let start = ContinuousClock.now
        server.callStarted()
        let id = requestID ?? (Self.usableAsRequestID(messageID) ? messageID : server.nextRequestID())
        let outcome: GRPCAnswer<Response>
        var version: String?
        do {
            let (message, answeredBy) = try body()
            version = answeredBy
            var metadata = [("x-request-id", id)]
            if let answeredBy { metadata.append(("x-model-version", answeredBy)) }
            outcome = .answered(message, metadata: metadata)
        } catch let refusal as any HTTPRefusal {
            outcome = .refused(
                GRPCStatusCode(httpStatus: refusal.httpStatus), refusal.httpMessage, metadata: [("x-request-id", id)])
        } catch {
            server.logger.error(
                "unexpected error answering \(method): \(error)", metadata: ["request_id": "\(id)"])
            outcome = .refused(
                .internalError, UnexpectedErrorAnswer.message(requestID: id), metadata: [("x-request-id", id)])
        }
        record(method, id: id, outcome: outcome, version: version, since: start)
        return outcome
    }

    /// Whether a message's `id` can be the call's request ID, which goes back in metadata and into the access log:
    /// 1 to 128 printable ASCII characters.
    static func usableAsRequestID(_ id: String) -> Bool {
        (1...128).contains(id.utf8.count) && id.utf8.allSatisfy { (0x21...0x7E).contains($0) }
    }

    /// Counts and logs a call refused before it reached a method (unknown method, unreadable message…).
    package func refuse(_ method: String, requestID: String?, code: GRPCStatusCode, message: String)
        -> GRPCAnswer<Never>
    {
        let start = ContinuousClock.now
        server.callStarted()
        let id = requestID ?? server.nextRequestID()
        let outcome = GRPCAnswer<Never>.refused(code, message, metadata: [("x-request-id", id)])
        record(method, id: id, outcome: outcome, version: nil, since: start)
        return outcome
    }

    private func record<Response>(
        _ method: String, id: String, outcome: GRPCAnswer<Response>, version: String?,
        since start: ContinuousClock.Instant
    ) {
        let status: Int
        switch outcome {
        case .answered: status = 200
        case .refused(let code, _, _): status = code.httpStatus
        }
        let seconds = (ContinuousClock.now - start) / .seconds(1)
        server.record(
            CallRecord(
                id: id, method: "GRPC", route: "grpc/\(method)", status: status, seconds: seconds, version: version))
    }

    // MARK: Calls as bytes

    /// gRPC's standard health check (`grpc.health.v1.Health/Check`, what Kubernetes' gRPC probes and load
    /// balancers call): `SERVING` when the service named is ready to answer (`""` or
    /// `inference.GRPCInferenceService`: every model loaded; a model's name: that model), `NOT_SERVING` when it is
    /// not yet, `NOT_FOUND` for another name. The messages are small enough to read and write here: the request's
    /// field 1 is the service's name, the response's field 1 the status (1 SERVING, 2 NOT_SERVING).
    func healthCheck(_ bytes: [UInt8], requestID: String?) -> GRPCAnswer<[UInt8]> {
        guard let service = Self.healthCheckService(bytes) else {
            return refuse(
                Self.healthCheck, requestID: requestID, code: .invalidArgument,
                message: "the message is not a valid grpc.health.v1.HealthCheckRequest"
            ).map()
        }
        return answer(Self.healthCheck, requestID: requestID) {
            let ready: Bool
            if service.isEmpty || service == "inference.GRPCInferenceService" {
                ready = server.isReady
            } else if server.names.contains(service) {
                ready = server.isReady(model: service, version: "")
            } else {
                throw InferenceRefusal(
                    status: 404,
                    message: "no service '\(service)': ask about \"\", inference.GRPCInferenceService or a model "
                        + "this server serves (\(server.names.joined(separator: ", ")))")
            }
            return ([0x08, ready ? 1 : 2], nil)
        }
    }

    /// The route the health check is counted under.
    static let healthCheck = "Health/Check"

    /// The `service` field of a `HealthCheckRequest`; nil when the bytes are not a protobuf message.
    static func healthCheckService(_ bytes: [UInt8]) -> String? {
        var at = 0
        func varint() -> UInt64? {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while at < bytes.count, shift < 64 {
                let byte = bytes[at]
                at += 1
                value |= UInt64(byte & 0x7F) << shift
                if byte & 0x80 == 0 { return value }
                shift += 7
            }
            return nil
        }
        var service = ""
        while at < bytes.count {
            guard let tag = varint(), tag >> 3 > 0 else { return nil }
            switch tag & 7 {
            case 0: guard varint() != nil else { return nil }
            case 1: at += 8
            case 5: at += 4
            case 2:
                guard let length = varint(), length <= UInt64(bytes.count - at) else { return nil }
                if tag >> 3 == 1 {
                    guard let text = String(validating: bytes[at..<at + Int(length)], as: UTF8.self) else {
                        return nil
                    }
                    service = text
                }
                at += Int(length)
            default: return nil
            }
            guard at <= bytes.count else { return nil }
        }
        return service
    }

    /// A method answering a serialized request with a serialized response.
    typealias WireCall = @Sendable (InferenceMethods, [UInt8], String?) -> GRPCAnswer<[UInt8]>

    /// The V2 service's methods, in the order the UNIMPLEMENTED refusal lists them.
    static let inferenceMethods: [(name: String, call: WireCall)] = [
        wire(
            "ModelInfer", messageID: { $0.id },
            { (methods, request: Inference_ModelInferRequest) in
                let (response, version) = try methods.modelInfer(request)
                return (response, version)
            }),
        wire("ModelMetadata") { (methods, request: Inference_ModelMetadataRequest) in
            (try methods.modelMetadata(request), nil)
        },
        wire("ModelReady") { (methods, request: Inference_ModelReadyRequest) in (methods.modelReady(request), nil) },
        wire("RepositoryIndex") { (methods, request: Inference_RepositoryIndexRequest) in
            (try methods.repositoryIndex(request), nil)
        },
        wire("ServerLive") { (methods, request: Inference_ServerLiveRequest) in (methods.serverLive(request), nil) },
        wire("ServerMetadata") { (methods, request: Inference_ServerMetadataRequest) in
            (methods.serverMetadata(request), nil)
        },
        wire("ServerReady") { (methods, request: Inference_ServerReadyRequest) in
            (methods.serverReady(request), nil)
        },
    ]

    /// The methods this front end answers by path, with the route each is counted under.
    static let methodsByPath: [String: (route: String, call: WireCall)] = {
        var table = Dictionary(
            uniqueKeysWithValues: inferenceMethods.map {
                ("/inference.GRPCInferenceService/\($0.name)", (route: $0.name, call: $0.call))
            })
        table["/grpc.health.v1.Health/Check"] = (healthCheck, { $0.healthCheck($1, requestID: $2) })
        return table
    }()

    /// Method `name` over its protobuf messages: decodes the request (refused with `INVALID_ARGUMENT` and the
    /// decoder's reason when the bytes are not one), answers it and serializes the response.
    private static func wire<Request: Message, Response: Message>(
        _ name: String, messageID: (@Sendable (Request) -> String)? = nil,
        _ body: @escaping @Sendable (InferenceMethods, Request) throws -> (Response, String?)
    ) -> (name: String, call: WireCall) {
        (name, { methods, bytes, requestID in methods.wire(name, bytes, requestID, messageID: messageID, body) })
    }

    /// Decodes `bytes` as the method's request (refused with `INVALID_ARGUMENT` and the decoder's reason when they
    /// are not one), answers it and serializes the response.
    private func wire<Request: Message, Response: Message>(
        _ method: String, _ bytes: [UInt8], _ requestID: String?, messageID: ((Request) -> String)?,
        _ body: (InferenceMethods, Request) throws -> (Response, String?)
    ) -> GRPCAnswer<[UInt8]> {
        let request: Request
        do {
            request = try Request(serializedBytes: bytes)
        } catch {
            return refuse(
                method, requestID: requestID, code: .invalidArgument,
                message: "the message is not a valid \(Request.protoMessageName): \(error)"
            ).map()
        }
        let outcome = answer(method, requestID: requestID, messageID: messageID?(request) ?? "") {
            try body(self, request)
        }
        switch outcome {
        case .answered(let response, let metadata):
            do {
                return .answered(try response.serializedBytes(), metadata: metadata)
            } catch {
                let id = metadata.first { $0.0 == "x-request-id" }?.1 ?? "-"
                server.logger.error(
                    "the response to \(method) does not serialize: \(error)", metadata: ["request_id": "\(id)"])
                return .refused(.internalError, UnexpectedErrorAnswer.message(requestID: id), metadata: metadata)
            }
        case .refused(let code, let message, let metadata): return .refused(code, message, metadata: metadata)
        }
    }
}

extension GRPCAnswer where Response == Never {
    /// The same refusal as an answer of any type.
    func map<Other>() -> GRPCAnswer<Other> {
        switch self {
        case .refused(let code, let message, let metadata): .refused(code, message, metadata: metadata)
        }
    }
}
