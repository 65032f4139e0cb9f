import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdAuth
import Logging
import Mustache
import ServiceLifecycle
import SluiceCore
import SluiceML
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// How `sluice ui` serves: where it binds, and whether every request needs an access token.
public struct DashboardConfiguration: Sendable {
    /// The address to bind (`127.0.0.1` by default).
    public var host: String
    /// The port (0: any free port).
    public var port: Int
    /// Whether every page and API call needs a token. Defaults to true for any address other than loopback.
    public var requireTokens: Bool
    /// How often live pages check the store for changes.
    public var pollInterval: Duration
    /// Serve MLflow's tracking protocol only, no pages (`sluice tracking serve`).
    public var trackingOnly: Bool

    /// Creates a configuration; `requireTokens` nil means "when bound beyond loopback".
    public init(
        host: String = "127.0.0.1", port: Int = 8090, requireTokens: Bool? = nil,
        pollInterval: Duration = .milliseconds(500), trackingOnly: Bool = false
    ) {
        self.trackingOnly = trackingOnly
        self.host = host
        self.port = port
        self.requireTokens = requireTokens ?? !Self.isLoopback(host)
        self.pollInterval = pollInterval
    }

    /// Whether an address only accepts connections from this machine.
    public static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}

/// The team's window onto a stack: runs and their graphs, steps and logs, artifacts with their pictures, lineage,
/// models with promotion and rollback, run comparison and datasets, as server-rendered pages (live while runs
/// change) and the same data as JSON under `/api/`.
public struct Dashboard: Sendable {
    let data: DashboardData
    /// Where access tokens are looked up.
    let tokens: any AccessTokenStore
    /// Tracked runs and MLflow's protocol's records.
    let tracking: any TrackingStore
    let configuration: DashboardConfiguration
    let stackLabel: String
    let library: MustacheLibrary
    let logger: Logger

    /// A dashboard over `stack`'s metadata store, model registry and artifact store.
    public init(stack: Stack, configuration: DashboardConfiguration = DashboardConfiguration()) throws {
        self.init(
            metadata: stack.metadata, tokens: stack.tokens, tracking: stack.tracking, artifacts: stack.artifacts,
            logDirectory: stack.workDirectory.appending(path: "logs"),
            stackLabel: "stack \(stack.name) · \(stack.metadataLocation)", configuration: configuration)
    }

    init(
        metadata: any MetadataStore & ModelRegistry, tokens: any AccessTokenStore, tracking: any TrackingStore,
        artifacts: any ArtifactStore, logDirectory: URL, stackLabel: String, configuration: DashboardConfiguration
    ) {
        data = DashboardData(metadata: metadata, artifacts: artifacts, tracking: tracking, logDirectory: logDirectory)
        self.tokens = tokens
        self.tracking = tracking
        self.configuration = configuration
        self.stackLabel = stackLabel
        // The templates are constants checked by the tests: failing to parse one is a bug, not an input error.
        library = try! Templates.library()
        var logger = Logger(label: "sluice.ui")
        logger.logLevel = .warning
        self.logger = logger
    }

    /// The HTTP application (for embedding and tests); `onRunning` receives the bound port.
    public func application(onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
        Application(
            router: router(),
            configuration: .init(
                address: .hostname(configuration.host, port: configuration.port), serverName: "sluice-ui"),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? 0) },
            logger: logger)
    }

    /// Serves until SIGINT or SIGTERM.
    public func run(onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        try await application(onRunning: onRunning).runService()
    }
}

/// A flag one task sets and another reads.
final class Flag: Sendable {
    private let value = Mutex(false)
    var isSet: Bool { value.withLock { $0 } }
    func set() { value.withLock { $0 = true } }
}

/// Who is asking: the token's name and rights, or the local user when no token is required.
struct Viewer: Sendable, Equatable {
    var name: String
    var canWrite: Bool

    static let local = Viewer(
        name: "dashboard:" + (ProcessInfo.processInfo.environment["USER"] ?? "local"), canWrite: true)
}

/// The dashboard's request context: Hummingbird's, plus who is asking.
struct DashboardContext: AuthRequestContext, RequestContext {
    var coreContext: CoreRequestContextStorage
    var identity: Viewer?

    init(source: Source) {
        coreContext = .init(source: source)
        identity = nil
    }
}

extension HTTPField.Name {
    static let xContentTypeOptions = Self("X-Content-Type-Options")!
}
