import ArgumentParser
import Foundation
import ServiceLifecycle
import SluiceCLI
import SluiceComponents
import SluiceCore
import SluiceML
import SluiceServer
import SluiceServerGRPC

/// `sluice serve`: the model server over a registered model.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve registered models over HTTP (KServe V2, /invocations, /metrics) and gRPC (KServe V2).",
        discussion: """
            Serving MODEL@production (or MODEL@staging), the server follows promotions and rollbacks in the
            registry and switches versions without failing a request in flight. Several models are served side by
            side, each at /v2/models/NAME (NAME is the model's name, or the one given as NAME=REFERENCE) and each
            promoted on its own; /v2/repository/index lists them. Stops on SIGTERM or Ctrl-C after the requests in
            flight are answered. With --grpc-port the same models answer the V2 gRPC API (inference.GRPCInferenceService)
            on that port too, sharing promotions, metrics and the access log.
            Examples:
              sluice serve penguins@production
              sluice serve penguins@3 --port 9000
              sluice serve penguins@production --grpc-port 8081
              sluice serve churn@production fraud@production canary=churn@staging
              sluice serve --models models.yaml       (models: [churn@production, {name: canary, model: churn@staging}])
              curl -s localhost:8080/v2/models/penguins
            """)

    @Argument(help: "MODEL, MODEL@STAGE or MODEL@VERSION, or NAME=REFERENCE to serve it under another name.")
    var references: [String] = []
    @Option(help: "A YAML file listing the models to serve (with or instead of the arguments).") var models: String?
    @Option(help: "The address to bind (loopback by default; 0.0.0.0 to accept other machines).")
    var host = "127.0.0.1"
    @Option(help: "The port.") var port = 8080
    @Option(help: "Also answer the KServe V2 gRPC API on this port (0: any free port).") var grpcPort: Int?
    @Option(help: "The largest request body accepted, in bytes.") var maxBodyBytes = 1 << 20
    @Option(help: "How often to check the registry for a promotion, in milliseconds.") var pollMilliseconds = 500
    @Flag(inversion: .prefixedNo, help: "Write a structured access-log line per request to standard error.")
    var accessLog = true

    @OptionGroup var stackOption: StackOption

    func run() async throws {
        let served = try ServedReference.parse(references, file: models)
        let workspace = try await Workspace.open(create: false, stack: stackOption.name)
        let registry = workspace.metadata
        var fromFeatures: [String] = []
        for entry in served {
            // An unknown model or stage is refused now, with the registry's reason, not at the first request.
            let version = try await registry.resolve(entry.reference)
            let bundle = try ModelBundle.load(
                try await bundleData(of: version, in: registry, artifacts: workspace.artifacts))
            if let service = bundle.signature.features { fromFeatures.append("\(entry.name) (\(service.service))") }
        }
        var configuration = ServerConfiguration(host: host, port: port)
        if !fromFeatures.isEmpty {
            // Models trained from a feature service take entity keys: their features come from the online store.
            configuration.features = try await FeatureServing.lookup(workspace: workspace)
            printError(
                "models served from feature services: \(fromFeatures.joined(separator: ", ")); online "
                    + "lookups at /v1/features/online too")
        }
        configuration.maxBodyBytes = maxBodyBytes
        configuration.pollInterval = .milliseconds(pollMilliseconds)
        if !accessLog { configuration.accessLog = nil }
        let server = ModelServer(
            models: served.map {
                ($0.name, RegistrySource(reference: $0.reference, registry: registry, workspace: workspace))
            }, configuration: configuration)
        var services: [any Service] = []
        if let grpcPort {
            guard (0...65535).contains(grpcPort), grpcPort == 0 || grpcPort != port else {
                throw ValidationError("--grpc-port must be a free port from 0 to 65535, other than --port")
            }
            let host = host
            services.append(
                GRPCInferenceServer(
                    server: server, host: host, port: grpcPort, maxMessageBytes: maxBodyBytes
                ) { bound in
                    printError("gRPC (KServe V2 inference.GRPCInferenceService) on \(host):\(bound)")
                })
        }
        try await server.run(alongside: services) { port in
            let versions = server.names.map { name in
                let version = server.currentVersion(of: name) ?? name
                return version.hasPrefix(name + "@") ? version : "\(name) (\(version))"
            }
            printError(
                "serving \(versions.joined(separator: ", ")) on http://\(host):\(port)  (KServe V2 at /v2, /invocations, /metrics)"
            )
        }
    }
}

/// A model to serve: the name it answers under and the registry reference it follows.
struct ServedReference: Equatable {
    var name: String
    var reference: String

    /// The models named by `arguments` (`REF` or `NAME=REF`) and the YAML `file`
    /// (`models: [REF, {name: NAME, model: REF}]`), checked: at least one, no name twice.
    static func parse(_ arguments: [String], file: String?) throws -> [ServedReference] {
        var served = try arguments.map { try entry($0, source: "the command line") }
        if let file {
            let text: String
            do {
                text = try String(contentsOfFile: file, encoding: .utf8)
            } catch {
                throw CLIError(problem: "cannot read \(file): \(error.localizedDescription)", fix: "check the path.")
            }
            let yaml = try ConfigValue.parseYAML(text, source: file)
            guard let list = yaml.entries?.first(where: { $0.key == "models" })?.value,
                case .array(let items) = list.kind
            else {
                throw CLIError(
                    problem: "\(file) has no 'models' list.",
                    fix: "write `models: [churn@production, {name: canary, model: churn@staging}]`.")
            }
            for item in items {
                switch item.kind {
                case .string(let text): served.append(try entry(text, source: file))
                case .object(let members):
                    let keys = Set(members.map(\.key))
                    guard keys.isSubset(of: ["name", "model"]),
                        case .string(let reference)? = members.first(where: { $0.key == "model" })?.value.kind
                    else {
                        throw CLIError(
                            problem:
                                "\(item.location.map { "\($0): " } ?? "")a model entry takes 'model' (a reference) and an optional 'name', not \(keys.sorted().joined(separator: ", ")).",
                            fix: "write `{name: canary, model: churn@staging}` or just `churn@production`.")
                    }
                    var name = reference.split(separator: "@").first.map(String.init) ?? reference
                    if case .string(let given)? = members.first(where: { $0.key == "name" })?.value.kind {
                        name = given
                    }
                    served.append(ServedReference(name: name, reference: reference))
                default:
                    throw CLIError(
                        problem: "\(file): each model is a reference or {name, model}.",
                        fix: "write `models: [churn@production, {name: canary, model: churn@staging}]`.")
                }
            }
        }
        guard !served.isEmpty else {
            throw CLIError(
                problem: "no model to serve.",
                fix: "name one, like `sluice serve penguins@production`, or pass --models FILE.")
        }
        var seen: Set<String> = []
        for entry in served where !seen.insert(entry.name).inserted {
            throw CLIError(
                problem: "two models would be served as '\(entry.name)'.",
                fix: "give one another name: `canary=\(entry.reference)` (or `name:` in the models file).")
        }
        return served
    }

    private static func entry(_ text: String, source: String) throws -> ServedReference {
        let parts = text.split(separator: "=", maxSplits: 1).map(String.init)
        let reference = parts.last ?? text
        let name = parts.count == 2 ? parts[0] : (reference.split(separator: "@").first.map(String.init) ?? reference)
        guard !name.isEmpty, !reference.isEmpty, !name.contains("/") else {
            throw CLIError(
                problem: "'\(text)' (\(source)) is not a model reference.",
                fix: "write MODEL, MODEL@STAGE, MODEL@VERSION or NAME=REFERENCE.")
        }
        return ServedReference(name: name, reference: reference)
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
