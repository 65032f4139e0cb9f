import Foundation

/// A run configuration: per-step parameters and caching, parallelism, seed, durability and the stack.
/// Loaded from YAML, overridden with `--set`, resolved against a pipeline, and stored with the run.
///
/// ```yaml
/// parallelism: 2
/// seed: 7
/// steps:
///   split:
///     cache: false
///     parameters:
///       eval_fraction: 0.3
/// stack:
///   artifact_store: /shared/sluice/artifacts
/// ```
public struct RunConfig: Sendable, Equatable {
    /// How many steps may run at once; `nil` means one per core.
    public var parallelism: Int?
    /// Whether steps may reuse earlier outputs (`--no-cache` sets this to `false`).
    public var cache: Bool = true
    /// The run's seed; each step's seed is derived from it and the step's name.
    public var seed: UInt64 = 42
    /// The durability setting for this run's writes; `nil` takes the stack's.
    public var durability: Durability?
    /// Per-step settings by step name.
    public var steps: [String: StepSettings] = [:]
    /// Stack overrides (where stores live).
    public var stack: StackSettings = StackSettings()
    /// Where the config was read from, for messages.
    public var sources: [String] = []

    /// A config with every default.
    public init() {}

    /// Settings of one step.
    public struct StepSettings: Sendable, Equatable {
        /// `false` to always run the step.
        public var cache: Bool?
        /// Parameter overrides, as written.
        public var parameters: ConfigValue?
        /// What the step's job asks of a Slurm cluster (the `slurm` orchestrator's; others run the step on the
        /// machine they run on).
        public var resources: StepResources?
        /// Where the step's section was written.
        public var location: SourceLocation?

        /// Creates step settings.
        public init(
            cache: Bool? = nil, parameters: ConfigValue? = nil, resources: StepResources? = nil,
            location: SourceLocation? = nil
        ) {
            self.cache = cache
            self.parameters = parameters
            self.resources = resources
            self.location = location
        }
    }

    static let topLevelKeys = ["parallelism", "cache", "seed", "durability", "steps", "stack"]

    /// Reads a YAML run config file.
    /// - Throws: ``ConfigError`` with the file and line of the first problem.
    public static func load(contentsOf url: URL) throws -> RunConfig {
        let text: String
        do {
            text = try String(contentsOf: url, encoding: .utf8)
        } catch {
            throw ConfigError(
                problem: "cannot read the run config '\(url.path)' (\(error.localizedDescription)).",
                fix: "check the path given to --config.")
        }
        var config = try RunConfig(tree: try ConfigValue.parseYAML(text, source: url.path))
        config.sources = [url.path]
        return config
    }

    /// Parses a config tree (from YAML or built in code).
    public init(tree: ConfigValue) throws {
        guard let entries = tree.entries else {
            throw ConfigError(
                problem: "\(tree.location.map { "\($0): " } ?? "")a run config must be a mapping of settings.",
                fix: "start the file with keys such as `steps:` or `parallelism:`.")
        }
        for (key, value) in entries {
            try apply(key: key, value: value)
        }
    }

    /// Applies `--set` overrides: `STEP.PARAM=VALUE` sets a step parameter (nested with more dots);
    /// `parallelism=4`, `cache=false`, `seed=7`, `durability=power`, `stack.KEY=VALUE` and
    /// `steps.STEP.cache=false` set the rest.
    public mutating func apply(overrides: [String]) throws {
        for override in overrides {
            guard let equals = override.firstIndex(of: "=") else {
                throw ConfigError(
                    problem: "--set \(override): an override needs the form KEY=VALUE.",
                    fix: "write it like `--set split.eval_fraction=0.3`.")
            }
            let key = String(override[..<equals])
            let path = key.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            let value = try ConfigValue.parseOverrideValue(String(override[override.index(after: equals)...]), key: key)
            guard let first = path.first, !path.contains(where: \.isEmpty) else {
                throw ConfigError(
                    problem: "--set \(override): '\(key)' is not a valid key.",
                    fix: "write STEP.PARAMETER=VALUE, like `--set split.eval_fraction=0.3`.")
            }
            if Self.topLevelKeys.contains(first) {
                var tree = ConfigValue.emptyObject
                tree.set(value, at: path)
                for (key, value) in tree.entries ?? [] { try apply(key: key, value: value) }
            } else {
                guard path.count >= 2 else {
                    let guess = Self.topLevelKeys.closest(to: first).map { " Did you mean '\($0)'?" } ?? ""
                    throw ConfigError(
                        problem: "--set \(override): '\(key)' is neither a setting nor STEP.PARAMETER.\(guess)",
                        fix: "use STEP.PARAMETER=VALUE or one of \(Self.topLevelKeys.joined(separator: ", ")).")
                }
                var settings = steps[first] ?? StepSettings(location: value.location)
                var parameters = settings.parameters ?? ConfigValue.emptyObject
                parameters.set(value, at: Array(path.dropFirst()))
                settings.parameters = parameters
                steps[first] = settings
            }
            sources.append("--set \(key)")
        }
    }

    private mutating func apply(key: String, value: ConfigValue) throws {
        let decoder = ConfigDecoder()
        switch key {
        case "parallelism":
            let n = try decoder.decode(Int.self, from: value, path: key).value
            guard n >= 1 else {
                throw ConfigError(
                    problem:
                        "\(value.location.map { "\($0): " } ?? "")'parallelism' must be at least 1, but it is \(n).",
                    fix: "write a positive number of concurrent steps, or leave it out for one per core.")
            }
            parallelism = n
        case "cache": cache = try decoder.decode(Bool.self, from: value, path: key).value
        case "seed": seed = try decoder.decode(UInt64.self, from: value, path: key).value
        case "durability": durability = try decoder.decode(Durability.self, from: value, path: key).value
        case "stack":
            let (settings, unknown) = try decoder.decode(
                StackSettings.self, from: stack.tree.overlaid(with: value), path: key)
            if let first = unknown.first {
                throw ConfigError.unknownKey(
                    String(first.path.dropFirst("stack.".count)), path: "stack", at: first.location, known: first.known,
                    what: "stack setting")
            }
            stack = settings
        case "steps":
            guard let entries = value.entries else {
                throw ConfigError(
                    problem:
                        "\(value.location.map { "\($0): " } ?? "")'steps' must be a mapping from step names to settings.",
                    fix: "write `steps:` and under it each step's name, then `parameters:`.")
            }
            for (name, section) in entries {
                try applyStep(name: name, section: section)
            }
        default:
            throw ConfigError.unknownKey(key, path: "", at: value.location, known: Self.topLevelKeys, what: "setting")
        }
    }

    private mutating func applyStep(name: String, section: ConfigValue) throws {
        var settings = steps[name] ?? StepSettings(location: section.location)
        guard let entries = section.entries else {
            if section.kind == .null { return }
            throw ConfigError(
                problem:
                    "\(section.location.map { "\($0): " } ?? "")'steps.\(name)' must be a mapping with `parameters:` and/or `cache:`.",
                fix: "put the step's parameters under `parameters:`.")
        }
        for (key, value) in entries {
            switch key {
            case "cache":
                settings.cache = try ConfigDecoder().decode(Bool.self, from: value, path: "steps.\(name).cache").value
            case "parameters":
                if value.kind == .null { continue }
                guard value.entries != nil else {
                    throw ConfigError(
                        problem:
                            "\(value.location.map { "\($0): " } ?? "")'steps.\(name).parameters' must be a mapping of parameter names to values.",
                        fix: "write each parameter on its own line under `parameters:`.")
                }
                settings.parameters = (settings.parameters ?? .emptyObject).overlaid(with: value)
            case "resources":
                let path = "steps.\(name).resources"
                let (resources, unknown) = try ConfigDecoder().decode(StepResources.self, from: value, path: path)
                if let first = unknown.first {
                    throw ConfigError.unknownKey(
                        String(first.path.dropFirst(path.count + 1)), path: path, at: first.location,
                        known: first.known, what: "resource")
                }
                try resources.validate(at: path, location: value.location)
                settings.resources = (settings.resources ?? StepResources()).overlaid(with: resources)
            default:
                throw ConfigError.unknownKey(
                    key, path: "steps.\(name)", at: value.location, known: ["cache", "parameters", "resources"],
                    what: "step setting")
            }
        }
        steps[name] = settings
    }
}

/// The settings of one stack: where runs execute and where their records and artifacts live. A stack file names
/// several; a run config's `stack:` overrides the chosen one's keys.
public struct StackSettings: Codable, Sendable, Equatable {
    /// The artifact store's root directory (relative paths are relative to `.sluice/`).
    public var artifactStore: String?
    /// The metadata store and model registry: a SQLite file path (relative to `.sluice/`), or a
    /// `postgres://USER@HOST:PORT/DATABASE` URL.
    public var metadataStore: String?
    /// Where runs execute: `in_process` (the default) or `process` (each step run in a child process).
    public var orchestrator: String?
    /// The default durability for runs on this stack.
    public var durability: Durability?
    /// The environment variable holding the PostgreSQL password.
    public var passwordEnv: String?
    /// A file holding the PostgreSQL password (relative paths are relative to `.sluice/`).
    public var passwordFile: String?
    /// The `slurm` orchestrator's account and default step resources.
    public var slurm: SlurmSettings?
    /// A container image the `process` orchestrator starts every step run in, with podman.
    public var container: String?
    /// The feature store's online store: a SQLite file path (relative to `.sluice/`; `online.sqlite` by default),
    /// a `postgres://USER@HOST:PORT/DATABASE` URL, or a `redis://HOST:PORT[/DB]` URL.
    public var onlineStore: String?

    /// A stack with every default.
    public init(
        artifactStore: String? = nil, metadataStore: String? = nil, orchestrator: String? = nil,
        durability: Durability? = nil, passwordEnv: String? = nil, passwordFile: String? = nil,
        slurm: SlurmSettings? = nil, container: String? = nil, onlineStore: String? = nil
    ) {
        self.onlineStore = onlineStore
        self.slurm = slurm
        self.container = container
        self.artifactStore = artifactStore
        self.metadataStore = metadataStore
        self.orchestrator = orchestrator
        self.durability = durability
        self.passwordEnv = passwordEnv
        self.passwordFile = passwordFile
    }

    enum CodingKeys: String, CodingKey {
        case artifactStore = "artifact_store"
        case metadataStore = "metadata_store"
        case orchestrator
        case durability
        case passwordEnv = "password_env"
        case passwordFile = "password_file"
        case slurm
        case container
        case onlineStore = "online_store"
    }

    var tree: ConfigValue { (try? ConfigValue.encoding(self)) ?? .emptyObject }

    /// The set settings as `(key, value)` pairs, keys as the stack file spells them.
    public var assignments: [(key: String, value: String)] {
        [
            ("artifact_store", artifactStore), ("metadata_store", metadataStore), ("orchestrator", orchestrator),
            ("durability", durability?.rawValue), ("password_env", passwordEnv), ("password_file", passwordFile),
            ("container", container), ("online_store", onlineStore),
        ].compactMap { key, value in value.map { (key, $0) } }
            + (slurm?.assignments.map { ("slurm.\($0.key)", $0.value) } ?? [])
    }

    /// These settings with `other`'s set values on top.
    public func overlaid(with other: StackSettings) -> StackSettings {
        StackSettings(
            artifactStore: other.artifactStore ?? artifactStore, metadataStore: other.metadataStore ?? metadataStore,
            orchestrator: other.orchestrator ?? orchestrator, durability: other.durability ?? durability,
            passwordEnv: other.passwordEnv ?? passwordEnv, passwordFile: other.passwordFile ?? passwordFile,
            slurm: other.slurm.map { (slurm ?? SlurmSettings()).overlaid(with: $0) } ?? slurm,
            container: other.container ?? container, onlineStore: other.onlineStore ?? onlineStore)
    }
}
