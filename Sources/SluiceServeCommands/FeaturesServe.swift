import ArgumentParser
import Foundation
import SluiceCLI
import SluiceCore
import SluiceFeatures
import SluiceML
import SluiceServer
import SluiceStack

/// `sluice features serve`: online feature lookups over HTTP, from the stack's online store.
struct FeaturesServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve online feature lookups over HTTP (POST /v1/features/online, /metrics) from the online store.",
        discussion: """
            Answers lookups of materialized features (`sluice features materialize`) by entity key, each value
            with its status: present, missing, or expired (older than the view's TTL now). Uses the applied
            definitions as written in features.yaml. Stops on SIGTERM or Ctrl-C.
            Example:
              sluice features serve --port 6566
              curl -s localhost:6566/v1/features/online \\
                -d '{"feature_service": "churn", "entities": {"customer_id": [17, 42]}}'
            """)
    @Option(help: "The address to bind (loopback by default; 0.0.0.0 to accept other machines).")
    var host = "127.0.0.1"
    @Option(help: "The port.") var port = 6566
    @Flag(inversion: .prefixedNo, help: "Write a structured access-log line per request to standard error.")
    var accessLog = true
    @OptionGroup var stackOption: StackOption

    func run() async throws {
        let workspace = try await Workspace.open(create: false, stack: stackOption.name)
        let lookup = try await FeatureServing.lookup(workspace: workspace)
        var configuration = ServerConfiguration(host: host, port: port)
        if !accessLog { configuration.accessLog = nil }
        configuration.features = lookup
        let server = ModelServer(models: [], configuration: configuration)
        try await server.run { port in
            printError(
                "serving online features from \(lookup.online.online.location) on http://\(self.host):\(port)/v1/features/online"
            )
        }
    }
}

/// The project's online features as the server's ``SluiceServer/FeatureLookup``.
struct FeatureServing: FeatureLookup {
    let online: OnlineFeatures

    func lookup(json: Data) async throws -> FeatureLookupAnswer {
        let (text, entities) = try await online.answer(json: json)
        return FeatureLookupAnswer(json: text, entities: entities)
    }

    func fetch(_ features: [String], keys: [String: [String]]) async throws -> FetchedFeatures {
        let references = features.map { text -> FeatureService.Reference in
            let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
            return FeatureService.Reference(view: parts[0], feature: parts.count > 1 ? parts[1] : "")
        }
        let found = try await online.lookup(references, keys: keys)
        let count = keys.values.first?.count ?? 0
        var columns = [[RawValue]](repeating: [RawValue](repeating: .missing, count: count), count: features.count)
        for (row, results) in found.results.enumerated() {
            for (column, result) in results.enumerated() {
                guard let value = result.value else { continue }
                switch value {
                case .text(let text): columns[column][row] = .text(text)
                default: columns[column][row] = value.double.map(RawValue.number) ?? .missing
                }
            }
        }
        return FetchedFeatures(columns: columns, known: found.known)
    }

    /// The lookups of `workspace`'s project: its definitions (applied as written) over the stack's online store.
    static func lookup(workspace: Workspace) async throws -> FeatureServing {
        let store = FeatureStore(
            root: workspace.project.root, cache: workspace.project.directory.appending(path: "features"),
            metadata: workspace.metadata, artifacts: workspace.artifacts)
        let definitions = try store.definitions()
        let applied = try await store.registry.latest()?.definitions
        let files = AppliedDefinitions(definitions)
        guard let applied, files.definitions.allSatisfy({ applied[$0.definitionName]?.version == $0.version }) else {
            throw FeatureError(
                problem: "the feature definitions in features.yaml are not all applied.",
                fix: "run `sluice features apply` (and `sluice features materialize`), then serve.")
        }
        return FeatureServing(
            online: OnlineFeatures(definitions: definitions, online: try await workspace.stack.openOnlineStore()))
    }
}
