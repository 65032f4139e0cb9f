import Foundation
import GRPCCore
import GRPCProtobuf
import NIOCore
import NIOHTTP2
import NIOPosix
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
        self.host = host == "localhost" ? "127.0.0.1" : host
        self.port = port
        self.maxMessageBytes = maxMessageBytes
        self.onListening = onListening
    }

    /// Serves until the service group shuts down (then finishes the calls in flight) or the task is cancelled.
    public func run() async throws {
        let methods = InferenceMethods(server: server)
        let maxMessageBytes = maxMessageBytes
        let connections = OpenConnections()
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                guard connections.add(channel) else { return channel.close() }
                return channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    try pipeline.addHandler(
                        NIOHTTP2Handler(
                            mode: .server,
                            initialSettings: GRPCConnectionHandler.settings(maxMessageBytes: maxMessageBytes)))
                    try pipeline.addHandler(GRPCConnectionHandler(methods: methods, maxMessageBytes: maxMessageBytes))
                }
            }
        let listener: any Channel
        do {
            listener = try await bootstrap.bind(host: host, port: port).get()
        } catch {
            // The system's reason: the port is taken, the address is not this machine's.
            throw GRPCListenError(host: host, port: port, reason: "\(error)")
        }
        await onListening(listener.localAddress?.port ?? port)
        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                try? await listener.closeFuture.get()
            } onCancel: {
                listener.close(promise: nil)
                connections.closeAll()
            }
        } onGracefulShutdown: {
            // Stop accepting, and ask every connection to finish its calls and close (GOAWAY).
            listener.close(promise: nil)
            connections.goAway()
        }
        // The connections close as their last calls are answered; those still open after 10 s are closed.
        let clock = ContinuousClock()
        let giveUp = clock.now + .seconds(10)
        while !connections.isEmpty, clock.now < giveUp, !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(5))
        }
        connections.closeAll()
    }
}

/// The front end's open connections, so that shutting down can ask each to go away.
final class OpenConnections: Sendable {
    private let state = Mutex<(channels: [ObjectIdentifier: any Channel], closing: Bool)>(([:], false))

    /// Tracks `channel` until it closes; false once the server is shutting down (the channel is then refused).
    func add(_ channel: any Channel) -> Bool {
        let key = ObjectIdentifier(channel)
        let added = state.withLock { state in
            guard !state.closing else { return false }
            state.channels[key] = channel
            return true
        }
        if added {
            channel.closeFuture.whenComplete { _ in _ = self.state.withLock { $0.channels.removeValue(forKey: key) } }
        }
        return added
    }

    var isEmpty: Bool { state.withLock { $0.channels.isEmpty } }

    /// Asks every connection to answer its calls in flight, then close.
    func goAway() {
        for channel in begin() { channel.pipeline.fireUserInboundEventTriggered(GRPCGoAway()) }
    }

    /// Closes every connection now.
    func closeAll() {
        for channel in begin() { channel.close(promise: nil) }
    }

    private func begin() -> [any Channel] {
        state.withLock { state in
            state.closing = true
            return Array(state.channels.values)
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
}
