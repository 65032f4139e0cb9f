import HTTPTypes
import Synchronization

/// One of the server's endpoints, matched from a request's path by its components (a direct match: the server has
/// a dozen fixed paths, and a general router's trie cost more per request than decoding a V2 tensor).
enum Endpoint: Equatable {
    case live
    case ready
    case serverMetadata
    case modelMetadata(name: Substring, version: Substring?)
    case modelReady(name: Substring, version: Substring?)
    case infer(name: Substring, version: Substring?)
    case invocations
    case metrics
    /// `/ping` and `/health` (MLflow and SageMaker style): 200 once a model is loaded.
    case ping(route: String)
    /// The V2 model repository extension's index: every model with its version and state.
    case repositoryIndex
    /// The feature store's online lookup: entity keys in, feature values with a status each out.
    case featuresOnline

    /// The endpoint at `path`, or nil when there is none.
    init?(path: String) {
        let parts = path.utf8.split(separator: UInt8(ascii: "/")).map { Substring($0) }
        switch parts.count {
        case 1:
            switch parts[0] {
            case "v2": self = .serverMetadata
            case "invocations": self = .invocations
            case "metrics": self = .metrics
            case "ping": self = .ping(route: "/ping")
            case "health": self = .ping(route: "/health")
            default: return nil
            }
        case 3 where parts[0] == "v2" && parts[1] == "repository" && parts[2] == "index":
            self = .repositoryIndex
        case 3 where parts[0] == "v1" && parts[1] == "features" && parts[2] == "online":
            self = .featuresOnline
        case 3 where parts[0] == "v2" && parts[1] == "health":
            switch parts[2] {
            case "live": self = .live
            case "ready": self = .ready
            default: return nil
            }
        case 3... where parts[0] == "v2" && parts[1] == "models":
            let name = parts[2]
            var rest = parts[3...]
            var version: Substring?
            if rest.count >= 2, rest.first == "versions" {
                version = rest.dropFirst().first
                rest = rest.dropFirst(2)
            }
            switch (rest.count, rest.first) {
            case (0, _): self = .modelMetadata(name: name, version: version)
            case (1, "ready"): self = .modelReady(name: name, version: version)
            case (1, "infer"): self = .infer(name: name, version: version)
            default: return nil
            }
        default: return nil
        }
    }

    /// The method the endpoint answers.
    var method: HTTPRequest.Method {
        switch self {
        case .infer, .invocations, .repositoryIndex, .featuresOnline: .post
        default: .get
        }
    }

    /// The endpoint's route, as metrics label it (`/v2/models/{name}/infer`): constants, so labelling a request
    /// builds no string.
    var route: String {
        switch self {
        case .live: "/v2/health/live"
        case .ready: "/v2/health/ready"
        case .serverMetadata: "/v2"
        case .modelMetadata(_, nil): "/v2/models/{name}"
        case .modelMetadata: "/v2/models/{name}/versions/{version}"
        case .modelReady(_, nil): "/v2/models/{name}/ready"
        case .modelReady: "/v2/models/{name}/versions/{version}/ready"
        case .infer(_, nil): "/v2/models/{name}/infer"
        case .infer: "/v2/models/{name}/versions/{version}/infer"
        case .invocations: "/invocations"
        case .metrics: "/metrics"
        case .ping(let route): route
        case .repositoryIndex: "/v2/repository/index"
        case .featuresOnline: "/v1/features/online"
        }
    }
}

/// Request IDs for requests that bring none: a random prefix per process and a counter, so making one costs no
/// system call (a random number per request did).
enum RequestIDs {
    private static let prefix = String(UInt64.random(in: 0...UInt64.max) >> 16, radix: 36)
    private static let counter = Atomic<UInt64>(0)

    /// A new ID, unique within the process and unlikely to repeat across processes.
    static func next() -> String {
        "\(prefix)-\(String(counter.add(1, ordering: .relaxed).newValue, radix: 36))"
    }
}
