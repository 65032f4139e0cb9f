import Foundation
import SluiceCore
import SluiceStorePostgres
import SluiceStoreSQLite

extension Stack {
    /// Opens the stack's online store (the feature store's latest values) from its `online_store` setting: a SQLite
    /// file relative to `.sluice/` (`online.sqlite` when unset), or a `postgres://` URL (its password from the URL,
    /// else from the stack's `password_env`).
    /// - Throws: ``SluiceCore/ConfigError`` for a setting it cannot use; ``SluiceCore/OnlineStoreOpenError`` when
    ///   the store cannot be opened.
    public func openOnlineStore(environment: [String: String] = ProcessInfo.processInfo.environment) async throws
        -> any OnlineStore
    {
        let location = settings.onlineStore ?? "online.sqlite"
        if PostgresURL.isPostgres(location) {
            let password = try PostgresURL(location).password ?? settings.passwordEnv.flatMap { environment[$0] }
            return try await PostgresOnlineStore(url: location, password: password)
        }
        if location.contains("://") {
            throw ConfigError(
                problem: "stack '\(name)' sets online_store to '\(location)', which this version of Sluice cannot "
                    + "open: it opens SQLite files and postgres:// URLs (Redis is not built yet).",
                fix: "set online_store to a SQLite file path (relative to .sluice/) or a postgres:// URL.")
        }
        let path = location.hasPrefix("/") ? location : workDirectory.appending(path: location).path
        return try SQLiteOnlineStore(path: path)
    }
}
