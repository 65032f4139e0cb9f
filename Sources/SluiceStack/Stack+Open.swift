import Foundation
import SluiceCore
import SluiceOrchestrators
import SluiceStorePostgres
import SluiceStoreSQLite

extension Stack {
    /// Opens the stack called `name` (the stack file's default when `nil`) of `project`: the one place that turns a
    /// stack file into opened stores. Every setting is used or refused with the reason and the fix.
    /// - Parameters:
    ///   - overrides: settings on top of the file's (a run config's `stack:`).
    ///   - durability: overrides the stack's durability (a run config's `durability:`).
    ///   - materializers: how this executable stores its output types.
    ///   - environment: where `password_env` is looked up (this process's environment by default).
    ///   - forOneStep: opened by a process that runs one step run (`step run`): an embedded store opens one
    ///     connection instead of a pool, and no store marks runs crashed (the step's process, perhaps in a
    ///     container's PID namespace, is not the judge of whether its run's owner is alive).
    /// - Throws: ``ConfigError`` for a setting that cannot be used, or the store's error when it cannot be opened.
    public static func open(
        project: Project, name: String? = nil, overrides: StackSettings = StackSettings(),
        durability: Durability? = nil, materializers: MaterializerRegistry = MaterializerRegistry(),
        forOneStep: Bool = false, environment: [String: String] = ProcessInfo.processInfo.environment
    ) async throws -> Stack {
        let (name, settings) = try project.stack(named: name, overrides: overrides)
        let orchestrator = try Orchestrators.make(settings: settings, stack: name, project: project)
        let durability = durability ?? settings.durability ?? .process
        let location = settings.metadataStore ?? "metadata.sqlite"
        let metadata: any MetadataStore & ModelRegistry
        let tokens: any AccessTokenStore
        let tracking: any TrackingStore
        let display: String
        var close: @Sendable () async -> Void = {}
        if PostgresURL.isPostgres(location) {
            let url = try PostgresURL(location)
            let password = try Self.password(
                settings, url: url, stack: name, project: project, environment: environment)
            let store = try await PostgresMetadataStore(
                url: location, password: password, marksCrashedRuns: !forOneStep)
            metadata = store
            tokens = store
            tracking = store
            display = store.location
            close = { await store.close() }
        } else {
            for (key, value) in [("password_env", settings.passwordEnv), ("password_file", settings.passwordFile)]
            where value != nil {
                throw ConfigError(
                    problem: "stack '\(name)' sets \(key), but its metadata_store '\(location)' is a SQLite file, "
                        + "which has no password.",
                    fix: "remove \(key) from \(project.stackFile.path), or set metadata_store to a postgres:// URL.")
            }
            let path = project.resolve(location).path
            let store = try SQLiteMetadataStore(
                path: path, durability: durability, singleConnection: forOneStep, marksCrashedRuns: !forOneStep)
            metadata = store
            tokens = store
            tracking = store
            display = path
        }
        let artifacts = try LocalArtifactStore(
            root: project.resolve(settings.artifactStore ?? "artifacts"), durability: durability)
        var effective = settings
        effective.durability = durability
        return Stack(
            name: name, settings: effective, overrides: overrides, metadata: metadata, tokens: tokens,
            tracking: tracking,
            artifacts: artifacts, materializers: materializers, orchestrator: orchestrator,
            placementProperties: Orchestrators.placementProperties, metadataLocation: display,
            workDirectory: project.directory, close: close)
    }

    /// The PostgreSQL password: from `password_env`, `password_file`, or the URL, in that order.
    static func password(
        _ settings: StackSettings, url: PostgresURL, stack: String, project: Project, environment: [String: String]
    ) throws -> String? {
        if let variable = settings.passwordEnv {
            guard let value = environment[variable] else {
                throw ConfigError(
                    problem: "stack '\(stack)' reads the PostgreSQL password from $\(variable), which is not set.",
                    fix: "export \(variable)=… before running, or use password_file in \(project.stackFile.path).")
            }
            return value
        }
        if let file = settings.passwordFile {
            let path = project.resolve(file)
            guard let text = try? String(contentsOf: path, encoding: .utf8) else {
                throw ConfigError(
                    problem: "stack '\(stack)' reads the PostgreSQL password from \(path.path), which cannot be read.",
                    fix: "create that file (mode 600) holding the password, or use password_env.")
            }
            return text.trimmingCharacters(in: .newlines)
        }
        return url.password
    }
}
