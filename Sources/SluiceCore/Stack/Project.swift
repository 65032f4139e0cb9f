import Foundation

/// A project directory: the folder holding `.sluice/`, found by walking up from the working directory
/// the way git finds `.git/`.
///
/// `.sluice/stack.yaml` names the project's stacks (``StackFile``); by default the artifact store is
/// `.sluice/artifacts` and the metadata store `.sluice/metadata.sqlite`. `SLUICE_PROJECT=DIR` picks a project explicitly.
public struct Project: Sendable, Equatable {
    /// The folder that contains `.sluice/`.
    public let root: URL
    /// The `.sluice/` folder.
    public var directory: URL { root.appending(path: ".sluice", directoryHint: .isDirectory) }
    /// The stack file.
    public var stackFile: URL { directory.appending(path: "stack.yaml") }

    /// Opens the project rooted at `root` (which must contain `.sluice/`).
    public init(root: URL) { self.root = root.standardizedFileURL }

    /// Finds the nearest project at or above `start`, or the one `SLUICE_PROJECT` names.
    public static func find(from start: URL = currentDirectory) -> Project? {
        if let explicit = ProcessInfo.processInfo.environment["SLUICE_PROJECT"], !explicit.isEmpty {
            let root = URL(fileURLWithPath: explicit, isDirectory: true)
            return FileManager.default.fileExists(atPath: root.appending(path: ".sluice").path)
                ? Project(root: root) : nil
        }
        var current = start.standardizedFileURL
        while true {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(
                atPath: current.appending(path: ".sluice").path, isDirectory: &isDirectory),
                isDirectory.boolValue
            {
                return Project(root: current)
            }
            let parent = current.deletingLastPathComponent()
            if parent.path == current.path { return nil }
            current = parent
        }
    }

    /// Finds the nearest project, or creates one in `start` (or in `SLUICE_PROJECT`) when there is none.
    public static func findOrCreate(from start: URL = currentDirectory) throws -> Project {
        if let project = find(from: start) { return project }
        if let explicit = ProcessInfo.processInfo.environment["SLUICE_PROJECT"], !explicit.isEmpty {
            return try create(at: URL(fileURLWithPath: explicit, isDirectory: true))
        }
        return try create(at: start)
    }

    /// Creates `.sluice/` in `root` with a commented stack file whose `local` stack has `settings` on top of the
    /// defaults (idempotent: an existing stack file is kept).
    @discardableResult
    public static func create(at root: URL, settings: StackSettings = StackSettings()) throws -> Project {
        let project = Project(root: root)
        try FileManager.default.createDirectory(at: project.directory, withIntermediateDirectories: true)
        if !FileManager.default.fileExists(atPath: project.stackFile.path) {
            try Data(stackFileText(StackFile.defaults.overlaid(with: settings)).utf8).write(
                to: project.stackFile, options: .atomic)
        }
        let ignore = project.directory.appending(path: ".gitignore")
        if !FileManager.default.fileExists(atPath: ignore.path) {
            // Stores are data, not source: keep them out of the user's repository.
            try Data("*\n!stack.yaml\n!.gitignore\n".utf8).write(to: ignore, options: .atomic)
        }
        return project
    }

    /// A commented stack file with one stack, `local`, holding `settings`.
    static func stackFileText(_ settings: StackSettings) -> String {
        var lines = [
            "# Where this project's runs execute and where their records live: named stacks, picked with",
            "# `--stack NAME` (default below). Relative paths are relative to this .sluice/ folder.",
            "# Keys: orchestrator (in_process; process: each step in a child process; slurm: each step a Slurm",
            "# job), artifact_store (a folder), metadata_store (a SQLite file or a postgres://USER@HOST:PORT/DB",
            "# URL), password_env / password_file (the PostgreSQL password), durability (process: survive a",
            "# killed process; power: also fsync for power loss), container (an image the process orchestrator",
            "# runs steps in), slurm (account and default resources), online_store (the feature store's latest",
            "# values: a SQLite file, postgres://… or redis://HOST:PORT/DB). See docs/configuration.md.",
            "default: local",
            "stacks:",
            "  local:",
        ]
        let entries: [(String, String?)] = [
            ("orchestrator", settings.orchestrator), ("artifact_store", settings.artifactStore),
            ("metadata_store", settings.metadataStore), ("password_env", settings.passwordEnv),
            ("password_file", settings.passwordFile), ("durability", settings.durability?.rawValue),
            ("container", settings.container),
        ]
        func scalar(_ value: String) -> String { ConfigValue(.string(value)).yaml().trimmingCharacters(in: .newlines) }
        for case (let key, let value?) in entries { lines.append("    \(key): \(scalar(value))") }
        if let slurm = settings.slurm, !slurm.assignments.isEmpty {
            lines.append("    slurm:")
            for (key, value) in slurm.assignments {
                lines.append("      \(key): " + (key == "cpus" ? value : scalar(value)))
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The stacks of this project's stack file (a project without one has the `local` stack only).
    /// - Throws: ``ConfigError`` for an unreadable or invalid stack file.
    public func stacks() throws -> StackFile {
        guard let text = try? String(contentsOf: stackFile, encoding: .utf8) else { return StackFile.standard }
        return try StackFile(yaml: text, source: stackFile.path)
    }

    /// The settings of the stack called `name` (the file's default when `nil`) with `overrides` on top.
    /// - Throws: ``ConfigError`` for an invalid stack file or a stack it does not name.
    public func stack(named name: String? = nil, overrides: StackSettings = StackSettings()) throws -> (
        name: String, settings: StackSettings
    ) {
        let file = try stacks()
        let chosen = name ?? file.defaultStack
        guard let settings = file.settings(of: chosen) else {
            let names = file.stacks.map(\.name)
            let guess = names.closest(to: chosen).map { " Did you mean '\($0)'?" } ?? ""
            throw ConfigError(
                problem: "\(stackFile.path) has no stack named '\(chosen)'.\(guess)",
                fix: "use one of \(names.joined(separator: ", ")), or add it under `stacks:` in that file.")
        }
        return (chosen, settings.overlaid(with: overrides))
    }

    /// Resolves a stack path: absolute as is, relative to `.sluice/`.
    public func resolve(_ path: String) -> URL {
        path.hasPrefix("/") ? URL(fileURLWithPath: path) : directory.appending(path: path)
    }

    /// The current working directory.
    public static var currentDirectory: URL {
        URL(fileURLWithPath: FileManager.default.currentDirectoryPath, isDirectory: true)
    }
}
