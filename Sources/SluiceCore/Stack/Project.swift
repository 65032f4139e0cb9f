import Foundation

/// A project directory: the folder holding `.sluice/`, found by walking up from the working directory
/// the way git finds `.git/`.
///
/// `.sluice/stack.yaml` says where the stores live; by default the artifact store is `.sluice/artifacts`
/// and the metadata store `.sluice/metadata.sqlite`. `SLUICE_PROJECT=DIR` picks a project explicitly.
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

    /// Creates `.sluice/` with a commented default stack file in `root` (idempotent).
    @discardableResult
    public static func create(at root: URL) throws -> Project {
        let project = Project(root: root)
        try FileManager.default.createDirectory(at: project.directory, withIntermediateDirectories: true)
        if !FileManager.default.fileExists(atPath: project.stackFile.path) {
            try Data(defaultStackFile.utf8).write(to: project.stackFile, options: .atomic)
        }
        let ignore = project.directory.appending(path: ".gitignore")
        if !FileManager.default.fileExists(atPath: ignore.path) {
            // Stores are data, not source: keep them out of the user's repository.
            try Data("*\n!stack.yaml\n!.gitignore\n".utf8).write(to: ignore, options: .atomic)
        }
        return project
    }

    static let defaultStackFile = """
        # Where this project's runs execute and where their records live.
        # Relative paths are relative to this .sluice/ folder.
        orchestrator: in_process
        artifact_store: artifacts          # content-addressed files
        metadata_store: metadata.sqlite    # SQLite (WAL); a postgres:// URL for a team store
        # process: survive a killed process (default, fast); power: also fsync for power loss
        durability: process

        """

    /// The project's stack settings with `overrides` on top.
    /// - Throws: ``ConfigError`` for an unreadable or invalid stack file.
    public func stack(overrides: StackSettings = StackSettings()) throws -> StackSettings {
        var settings = StackSettings(
            artifactStore: "artifacts", metadataStore: "metadata.sqlite", orchestrator: "in_process",
            durability: .process)
        if let text = try? String(contentsOf: stackFile, encoding: .utf8) {
            let tree = try ConfigValue.parseYAML(text, source: stackFile.path)
            let (file, unknown) = try ConfigDecoder().decode(StackSettings.self, from: tree, path: "")
            if let first = unknown.first {
                throw ConfigError.unknownKey(
                    first.path, path: "", at: first.location, known: first.known, what: "stack setting")
            }
            settings = settings.overlaid(with: file)
        }
        return settings.overlaid(with: overrides)
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
