import GRPCCore
import SluiceServer

/// The V2 gRPC methods as a grpc-swift 2 service, answering through ``InferenceMethods``: what the load benchmark's
/// peer (`Benchmarks/GRPCSwiftPeer`, grpc-swift 2's `GRPCServer`) serves.
package struct InferenceService: Inference_GRPCInferenceService.ServiceProtocol {
    let methods: InferenceMethods

    /// Answers through `methods`.
    package init(methods: InferenceMethods) { self.methods = methods }

    package func serverLive(
        request: ServerRequest<Inference_ServerLiveRequest>, context: ServerContext
    ) async throws -> ServerResponse<Inference_ServerLiveResponse> {
        try respond("ServerLive", request) { (methods.serverLive($0), nil) }
    }

    package func serverReady(
        request: ServerRequest<Inference_ServerReadyRequest>, context: ServerContext
    ) async throws -> ServerResponse<Inference_ServerReadyResponse> {
        try respond("ServerReady", request) { (methods.serverReady($0), nil) }
    }

    package func modelReady(
        request: ServerRequest<Inference_ModelReadyRequest>, context: ServerContext
    ) async throws -> ServerResponse<Inference_ModelReadyResponse> {
        try respond("ModelReady", request) { (methods.modelReady($0), nil) }
    }

    package func serverMetadata(
        request: ServerRequest<Inference_ServerMetadataRequest>, context: ServerContext
    ) async throws -> ServerResponse<Inference_ServerMetadataResponse> {
        try respond("ServerMetadata", request) { (methods.serverMetadata($0), nil) }
    }

    package func modelMetadata(
        request: ServerRequest<Inference_ModelMetadataRequest>, context: ServerContext
    ) async throws -> ServerResponse<Inference_ModelMetadataResponse> {
        try respond("ModelMetadata", request) { (try methods.modelMetadata($0), nil) }
    }

    package func repositoryIndex(
        request: ServerRequest<Inference_RepositoryIndexRequest>, context: ServerContext
    ) async throws -> ServerResponse<Inference_RepositoryIndexResponse> {
        try respond("RepositoryIndex", request) { (try methods.repositoryIndex($0), nil) }
    }

    package func modelInfer(
        request: ServerRequest<Inference_ModelInferRequest>, context: ServerContext
    ) async throws -> ServerResponse<Inference_ModelInferResponse> {
        try respond("ModelInfer", request, messageID: request.message.id) {
            let (response, version) = try methods.modelInfer($0)
            return (response, version)
        }
    }

    /// Answers through ``InferenceMethods/answer(_:requestID:messageID:_:)``, as grpc-swift wants the outcome: a
    /// response with metadata, or a thrown `RPCError`.
    private func respond<Request: Sendable, Response: Sendable>(
        _ method: String, _ request: ServerRequest<Request>, messageID: String = "",
        _ body: (Request) throws -> (Response, String?)
    ) throws -> ServerResponse<Response> {
        let requestID = request.metadata[stringValues: "x-request-id"].first(where: { _ in true })
        switch methods.answer(method, requestID: requestID, messageID: messageID, { try body(request.message) }) {
        case .answered(let message, let pairs):
            var metadata: Metadata = [:]
            for (key, value) in pairs { metadata.addString(value, forKey: key) }
            return ServerResponse(message: message, metadata: metadata)
        case .refused(let code, let message, _):
            let rpcCode = Status.Code(rawValue: code.rawValue).flatMap(RPCError.Code.init) ?? .internalError
            throw RPCError(code: rpcCode, message: message)
        }
    }
}
