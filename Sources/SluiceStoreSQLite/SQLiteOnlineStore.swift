import Foundation
import GRDB
import SluiceCore

/// The embedded online store: one SQLite file (WAL mode) beside the metadata, nothing to set up. Lookups are point
/// reads by primary key on a pool of readers that never wait for a materialization; a materialization writes in one
/// transaction, under a lock file that keeps two of the same view from interleaving (and is freed when its holder
/// dies).
public final class SQLiteOnlineStore: OnlineStore {
    /// The database file.
    public let path: String
    private let pool: DatabasePool

    public var location: String { path }

    /// Opens (creating as needed) the store at `path`.
    /// - Throws: ``SluiceCore/OnlineStoreOpenError`` when the file cannot be opened.
    public init(path: String, busyTimeout: TimeInterval = 30) throws {
        self.path = path
        var configuration = Configuration()
        configuration.busyMode = .timeout(busyTimeout)
        configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = NORMAL") }
        do {
            try FileManager.default.createDirectory(
                at: URL(fileURLWithPath: path).deletingLastPathComponent(), withIntermediateDirectories: true)
            pool = try SQLiteMetadataStore.retrying(attempts: 10, onlyWhileBusy: true) {
                try DatabasePool(path: path, configuration: configuration)
            }
            var migrator = DatabaseMigrator()
            migrator.registerMigration("v1 online values and freshness") { db in
                try db.execute(
                    sql: """
                        CREATE TABLE online_values (
                            view TEXT NOT NULL, entity_key TEXT NOT NULL, event_time INTEGER NOT NULL,
                            "values" BLOB NOT NULL, PRIMARY KEY (view, entity_key)) WITHOUT ROWID;
                        CREATE TABLE online_freshness (
                            view TEXT PRIMARY KEY, version TEXT NOT NULL, watermark REAL NOT NULL,
                            materialized_at REAL NOT NULL, rows_written INTEGER NOT NULL, run_id TEXT);
                        """)
            }
            try SQLiteMetadataStore.retrying(attempts: 5, onlyWhileBusy: false) { try migrator.migrate(pool) }
        } catch {
            throw OnlineStoreOpenError(location: path, underlying: "\(error)")
        }
    }

    /// A read on the calling thread: a point lookup takes microseconds, less than a hop to GRDB's reader queue.
    private func readNow<T>(_ body: (Database) throws -> T) throws -> T { try pool.read(body) }

    public func read(view: String, keys: [String]) async throws -> [OnlineRecord?] {
        try readNow { db in
            let statement = try db.cachedStatement(
                sql: "SELECT event_time, \"values\" FROM online_values WHERE view = ? AND entity_key = ?")
            return try keys.map { key in
                try Row.fetchOne(statement, arguments: [view, key]).map {
                    OnlineRecord(eventTime: $0[0], values: $0[1])
                }
            }
        }
    }

    public func freshness() async throws -> [ViewFreshness] {
        try readNow { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT f.view, f.version, f.watermark, f.materialized_at, f.rows_written, f.run_id,
                           (SELECT count(*) FROM online_values v WHERE v.view = f.view)
                    FROM online_freshness f ORDER BY f.view
                    """
            ).map {
                ViewFreshness(
                    view: $0[0], version: $0[1], watermark: Date(timeIntervalSince1970: $0[2]),
                    materializedAt: Date(timeIntervalSince1970: $0[3]), rowsWritten: $0[4], entities: $0[6],
                    runID: $0[5])
            }
        }
    }

    public func lock(view: String) async throws -> any OnlineStoreLock {
        let url = URL(fileURLWithPath: path + ".locks").appending(path: view.replacingOccurrences(of: "/", with: "_"))
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let descriptor = open(url.path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw OnlineStoreOpenError(location: url.path, underlying: String(cString: strerror(errno)))
        }
        // Wait for another materialization of the view without holding a thread of the cooperative pool.
        while flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            try await Task.sleep(for: .milliseconds(50))
        }
        return FileLock(descriptor: descriptor)
    }

    public func write(view: String, records: [(key: String, record: OnlineRecord)], freshness: ViewFreshness)
        async throws
    {
        try await write(view: view, records: records, freshness: freshness, failBeforeCommit: false)
    }

    /// ``write(view:records:freshness:)``; with `failBeforeCommit`, it fails after writing everything and before
    /// committing (what the tests of a killed materialization need).
    package func write(
        view: String, records: [(key: String, record: OnlineRecord)], freshness: ViewFreshness, failBeforeCommit: Bool
    ) async throws {
        try await pool.write { db in
            let statement = try db.cachedStatement(
                sql: """
                    INSERT INTO online_values (view, entity_key, event_time, "values") VALUES (?, ?, ?, ?)
                    ON CONFLICT (view, entity_key) DO UPDATE SET event_time = excluded.event_time,
                    "values" = excluded."values"
                    """)
            for (key, record) in records {
                try statement.execute(arguments: [view, key, record.eventTime, record.values])
            }
            try db.execute(
                sql: """
                    INSERT INTO online_freshness (view, version, watermark, materialized_at, rows_written, run_id)
                    VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (view) DO UPDATE SET version = excluded.version,
                    watermark = excluded.watermark, materialized_at = excluded.materialized_at,
                    rows_written = excluded.rows_written, run_id = excluded.run_id
                    """,
                arguments: [
                    view, freshness.version, freshness.watermark.timeIntervalSince1970,
                    freshness.materializedAt.timeIntervalSince1970, freshness.rowsWritten, freshness.runID,
                ])
            if failBeforeCommit { throw DatabaseError(message: "failing before the commit, as asked") }
        }
    }
}

/// An exclusive `flock` on a file, released on ``release()`` or when the process dies.
final class FileLock: OnlineStoreLock, @unchecked Sendable {
    // @unchecked: the descriptor is closed once, by release or deinit.
    private var descriptor: Int32

    init(descriptor: Int32) { self.descriptor = descriptor }

    func release() async {
        if descriptor >= 0 {
            flock(descriptor, LOCK_UN)
            close(descriptor)
            descriptor = -1
        }
    }

    deinit { if descriptor >= 0 { close(descriptor) } }
}
