import Foundation
import SluiceCore
import SluiceStorePostgres
import SluiceStoreRedis
import SluiceStoreSQLite

extension Stack {
    /// Opens the stack's online store (the feature store's latest values) from its `online_store` setting: a SQLite
    /// file relative to `.sluice/` (`online.sqlite` when unset), a `postgres://` URL (its password from the URL,
    /// else from the stack's `password_env`), or a `redis://HOST[:PORT][/DB]` URL.
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
        if location.hasPrefix("redis://") { return try await RedisOnlineStore(url: location) }
        if location.contains("://") {
            throw ConfigError(
                problem: "stack '\(name)' sets online_store to '\(location)', which is neither a SQLite file nor a "
                    + "postgres:// or redis:// URL.",
                fix: "set online_store to a SQLite file path (relative to .sluice/), postgres://… or redis://HOST:PORT."
            )
        }
        let path = location.hasPrefix("/") ? location : workDirectory.appending(path: location).path
        return try SQLiteOnlineStore(path: path)
    }
}
