import Foundation

/// The named stacks of a project's `.sluice/stack.yaml`, and which one commands use without `--stack`.
///
/// ```yaml
/// default: local
/// stacks:
///   local: {orchestrator: in_process, artifact_store: artifacts, metadata_store: metadata.sqlite}
///   team:
///     metadata_store: postgres://sluice@db.internal:5432/sluice
///     password_env: SLUICE_PG_PASSWORD
///     artifact_store: /mnt/shared/sluice
/// ```
///
/// A file without `stacks:` (the form written before named stacks) is one stack called `local`. Every key is
/// either used or refused, naming the file and line; keys a stack leaves out take the `local` defaults.
public struct StackFile: Sendable, Equatable {
    /// One named stack.
    public struct Entry: Sendable, Equatable {
        /// Its name.
        public var name: String
        /// Its settings, defaults filled in.
        public var settings: StackSettings
    }

    /// The stack commands use without `--stack`.
    public var defaultStack: String
    /// The stacks, in file order.
    public var stacks: [Entry]

    /// The settings every stack starts from: in-process, `.sluice/artifacts`, `.sluice/metadata.sqlite`.
    public static let defaults = StackSettings(
        artifactStore: "artifacts", metadataStore: "metadata.sqlite", orchestrator: "in_process", durability: .process)

    /// The stack file of a project that has none.
    public static let standard = StackFile(defaultStack: "local", stacks: [Entry(name: "local", settings: defaults)])

    /// Creates a stack file value.
    public init(defaultStack: String, stacks: [Entry]) {
        self.defaultStack = defaultStack
        self.stacks = stacks
    }

    /// The settings of the stack called `name`.
    public func settings(of name: String) -> StackSettings? { stacks.first { $0.name == name }?.settings }

    /// Parses a stack file.
    /// - Throws: ``ConfigError`` naming the file, line and key of anything it cannot use.
    public init(yaml text: String, source: String) throws {
        let tree = try ConfigValue.parseYAML(text, source: source)
        if case .null = tree.kind {
            self = .standard
            return
        }
        guard let entries = tree.entries else {
            throw ConfigError(
                problem:
                    "\(source): a stack file is a mapping with `default:` and `stacks:`, not \(tree.kindDescription).",
                fix: "see `sluice init`'s stack file, or docs/configuration.md.")
        }
        guard tree["stacks"] != nil else {
            // One unnamed stack, as files written before named stacks were.
            self.init(defaultStack: "local", stacks: [Entry(name: "local", settings: try Self.stack(tree, path: ""))])
            return
        }
        for (key, value) in entries where key != "default" && key != "stacks" {
            throw ConfigError.unknownKey(key, path: "", at: value.location, known: ["default", "stacks"])
        }
        let stacksValue = tree["stacks"]!
        guard let named = stacksValue.entries, !named.isEmpty else {
            throw ConfigError(
                problem: "\(stacksValue.location.map { "\($0)" } ?? source): `stacks:` must map names to stacks.",
                fix: "write `stacks:` then `  local: {metadata_store: metadata.sqlite}` (one entry per stack).")
        }
        let stacks = try named.map { name, value in
            Entry(name: name, settings: try Self.stack(value, path: "stacks.\(name)"))
        }
        var defaultStack = stacks[0].name
        if let value = tree["default"] {
            guard case .string(let name) = value.kind else {
                throw ConfigError(
                    problem: "\(value.location.map { "\($0)" } ?? source): `default` must name a stack, not "
                        + "\(value.kindDescription).",
                    fix: "write `default: \(stacks[0].name)`.")
            }
            guard stacks.contains(where: { $0.name == name }) else {
                let guess = stacks.map(\.name).closest(to: name).map { " Did you mean '\($0)'?" } ?? ""
                throw ConfigError(
                    problem: "\(value.location.map { "\($0)" } ?? source): the default stack '\(name)' is not "
                        + "under `stacks:`.\(guess)",
                    fix: "use one of \(stacks.map(\.name).joined(separator: ", ")).")
            }
            defaultStack = name
        }
        self.init(defaultStack: defaultStack, stacks: stacks)
    }

    static func stack(_ value: ConfigValue, path: String) throws -> StackSettings {
        let (settings, unknown) = try ConfigDecoder().decode(StackSettings.self, from: value, path: path)
        if let first = unknown.first {
            let key = path.isEmpty ? first.path : String(first.path.dropFirst(path.count + 1))
            throw ConfigError.unknownKey(key, path: path, at: first.location, known: first.known, what: "stack setting")
        }
        return defaults.overlaid(with: settings)
    }
}
