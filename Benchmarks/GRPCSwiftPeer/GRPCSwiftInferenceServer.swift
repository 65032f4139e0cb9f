// The load benchmark's peer: the model server's V2 gRPC methods on grpc-swift 2's GRPCServer with its NIO HTTP/2
// transport (a task and a child channel per call). Benchmark- and test-only: it lives here, not in
// SluiceServerGRPC, so the products never compile grpc-swift's NIO transport or, through it, BoringSSL.
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import ServiceLifecycle
import SluiceServer
import SluiceServerGRPC
import Synchronization

/// The V2 gRPC methods of `server` on grpc-swift 2's `GRPCServer`, for comparing Sluice's own HTTP/2 handler
/// against it in the same run.
public struct GRPCSwiftInferenceServer: Service {
    let server: ModelServer
    let host: String
    let port: Int
    let maxMessageBytes: Int
    let onListening: @Sendable (Int) async -> Void

    /// Creates the peer on `host`:`port` (0: any free port, reported to `onListening`).
    public init(
        server: ModelServer, host: String = "127.0.0.1", port: Int, maxMessageBytes: Int = 4 << 20,
        onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) {
        self.server = server
        self.host = host == "localhost" ? "127.0.0.1" : host
        self.port = port
        self.maxMessageBytes = maxMessageBytes
        self.onListening = onListening
    }

    /// Serves until the service group shuts down or the task is cancelled.
    public func run() async throws {
        var config = HTTP2ServerTransport.Posix.Config.defaults
        config.rpc.maxRequestPayloadSize = maxMessageBytes
        let address: GRPCNIOTransportCore.SocketAddress =
            host.contains(":") ? .ipv6(host: host, port: port) : .ipv4(host: host, port: port)
        let transport = HTTP2ServerTransport.Posix(address: address, transportSecurity: .plaintext, config: config)
        let grpc = GRPCServer(
            transport: transport, services: [InferenceService(methods: InferenceMethods(server: server))])
        let (host, port, onListening) = (host, port, onListening)
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                let listening = Atomic<Bool>(false)
                group.addTask {
                    do {
                        try await grpc.serve()
                    } catch  where !listening.load(ordering: .relaxed) {
                        throw PeerListenError(description: "could not serve gRPC on \(host):\(port): \(error)")
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

/// The peer could not listen where it was asked to.
struct PeerListenError: Error, CustomStringConvertible {
    let description: String
}
