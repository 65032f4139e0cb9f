import Foundation
import SluiceCore
import SluiceStoreSQLite

extension Stack {
    /// Opens the stack's online store (the feature store's latest values) from its `online_store` setting: a SQLite
    /// file relative to `.sluice/` (`online.sqlite` when unset).
    /// - Throws: ``SluiceCore/ConfigError`` for a setting it cannot use; ``SluiceCore/OnlineStoreOpenError`` when
    ///   the store cannot be opened.
    public func openOnlineStore() async throws -> any OnlineStore {
        let location = settings.onlineStore ?? "online.sqlite"
        if location.contains("://") {
            throw ConfigError(
                problem: "stack '\(name)' sets online_store to '\(location)', which this version of Sluice cannot "
                    + "open: it opens SQLite files.",
                fix: "set online_store to a SQLite file path (relative to .sluice/), or remove it for online.sqlite.")
        }
        let path = location.hasPrefix("/") ? location : workDirectory.appending(path: location).path
        return try SQLiteOnlineStore(path: path)
    }
}
