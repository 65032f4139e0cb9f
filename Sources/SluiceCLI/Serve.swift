import ArgumentParser
import Foundation
import SluiceComponents
import SluiceCore
import SluiceML
import SluiceServer

/// `sluice serve`: the model server over a registered model.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve a registered model over HTTP (KServe V2, /invocations, /metrics).",
        discussion: """
            Serving MODEL@production (or MODEL@staging), the server follows promotions and rollbacks in the
            registry and switches versions without failing a request in flight. Stops on SIGTERM or Ctrl-C after
            the requests in flight are answered.
            Examples:
              sluice serve penguins@production
              sluice serve penguins@3 --port 9000
              curl -s localhost:8080/v2/models/penguins
            """)

    @Argument(help: "MODEL, MODEL@STAGE or MODEL@VERSION.") var reference: String
    @Option(help: "The address to bind (loopback by default; 0.0.0.0 to accept other machines).")
    var host = "127.0.0.1"
    @Option(help: "The port.") var port = 8080
    @Option(help: "The largest request body accepted, in bytes.") var maxBodyBytes = 1 << 20
    @Option(help: "How often to check the registry for a promotion, in milliseconds.") var pollMilliseconds = 500
    @Flag(inversion: .prefixedNo, help: "Write a structured access-log line per request to standard error.")
    var accessLog = true

    @OptionGroup var stackOption: StackOption

    func run() async throws {
        let workspace = try await Workspace.open(create: false, stack: stackOption.name)
        let registry = workspace.metadata
        let model = String(reference.split(separator: "@").first ?? "")
        let source = RegistrySource(reference: reference, registry: registry, workspace: workspace)
        var configuration = ServerConfiguration(host: host, port: port)
        configuration.maxBodyBytes = maxBodyBytes
        configuration.pollInterval = .milliseconds(pollMilliseconds)
        if !accessLog { configuration.accessLog = nil }
        let server = ModelServer(name: model, source: source, configuration: configuration)
        try await server.run { port in
            printError(
                "serving \(server.currentVersion ?? model) on http://\(host):\(port)  (KServe V2 at /v2, /invocations, /metrics)"
            )
        }
    }
}

/// Reads the model to serve from the registry: the reference resolves again on every poll, so a promotion or a
/// rollback of the stage is picked up.
struct RegistrySource: ModelSource {
    let reference: String
    let registry: any MetadataStore & ModelRegistry
    let workspace: Workspace

    func currentVersion() async throws -> String {
        let version = try await registry.resolve(reference)
        return "\(version.model)@\(version.version)"
    }

    func load(version label: String) async throws -> ServedModel {
        let version = try await registry.resolve(label)
        return ServedModel(
            bundle: try ModelBundle.load(
                try await bundleData(of: version, in: registry, artifacts: workspace.artifacts)),
            version: label)
    }
}
