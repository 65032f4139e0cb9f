import Foundation
import Logging
import NIOCore
import PostgresNIO
import SluiceCore

/// The feature store's online store on PostgreSQL, for a team: a pool of connections for lookups (one round trip per
/// view and batch of keys), a materialization written in one transaction, and a view's materialization lock held as
/// a session advisory lock on a connection of its own (so the server frees it when the holder dies).
public final class PostgresOnlineStore: OnlineStore, Sendable {
    /// The server and database, without the password.
    public let location: String
    private let client: PostgresClient
    private let runner: Task<Void, Never>
    private let connection: PostgresConnection.Configuration
    private let logger: Logger = {
        var logger = Logger(label: "sluice.online.postgres")
        logger.logLevel = .error
        return logger
    }()

    /// Connects to the database `url` names (`postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`) and creates the
    /// online tables as needed; `password` overrides one in the URL.
    /// - Throws: ``SluiceCore/OnlineStoreOpenError`` naming the server and the reason.
    public init(url: String, password: String? = nil, maximumConnections: Int = 8) async throws {
        let target = try PostgresURL(url)
        location = target.display
        var probe = PostgresConnection.Configuration(
            host: target.host, port: target.port, username: target.user, password: password ?? target.password,
            database: target.database, tls: .disable)
        probe.options.connectTimeout = .seconds(5)
        connection = probe
        do {
            let first = try await PostgresConnection.connect(configuration: probe, id: 0, logger: logger)
            try await first.query("SELECT pg_advisory_lock(7331002)", logger: logger)
            try await first.query(
                """
                CREATE TABLE IF NOT EXISTS sluice_online_values (
                    view TEXT NOT NULL, entity_key TEXT NOT NULL, event_time BIGINT NOT NULL, "values" BYTEA NOT NULL,
                    PRIMARY KEY (view, entity_key))
                """, logger: logger)
            try await first.query(
                """
                CREATE TABLE IF NOT EXISTS sluice_online_freshness (
                    view TEXT PRIMARY KEY, version TEXT NOT NULL, watermark DOUBLE PRECISION NOT NULL,
                    materialized_at DOUBLE PRECISION NOT NULL, rows_written BIGINT NOT NULL, run_id TEXT)
                """, logger: logger)
            try await first.query("SELECT pg_advisory_unlock(7331002)", logger: logger)
            try await first.close()
        } catch {
            throw OnlineStoreOpenError(location: target.display, underlying: String(reflecting: error))
        }
        var configuration = PostgresClient.Configuration(
            host: target.host, port: target.port, username: target.user, password: password ?? target.password,
            database: target.database, tls: .disable)
        configuration.options.maximumConnections = maximumConnections
        configuration.options.connectTimeout = .seconds(5)
        configuration.options.keepAliveBehavior = nil
        client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        runner = await client.running()
    }

    deinit { runner.cancel() }

    public func close() async {
        runner.cancel()
        _ = await runner.value
    }

    public func read(view: String, keys: [String]) async throws -> [OnlineRecord?] {
        var found: [String: OnlineRecord] = [:]
        do {
            let rows = try await client.query(
                """
                SELECT entity_key, event_time, "values" FROM sluice_online_values
                WHERE view = \(view) AND entity_key = ANY(\(keys))
                """, logger: logger)
            for try await (key, time, values) in rows.decode((String, Int64, ByteBuffer).self) {
                found[key] = OnlineRecord(eventTime: time, values: Data(buffer: values))
            }
        } catch {
            throw OnlineStoreOpenError(location: location, underlying: String(reflecting: error))
        }
        return keys.map { found[$0] }
    }

    public func freshness() async throws -> [ViewFreshness] {
        var result: [ViewFreshness] = []
        do {
            let rows = try await client.query(
                """
                SELECT f.view, f.version, f.watermark, f.materialized_at, f.rows_written, f.run_id,
                       (SELECT count(*) FROM sluice_online_values v WHERE v.view = f.view)
                FROM sluice_online_freshness f ORDER BY f.view
                """, logger: logger)
            for try await (view, version, watermark, at, written, run, entities) in rows.decode(
                (String, String, Double, Double, Int64, String?, Int64).self)
            {
                result.append(
                    ViewFreshness(
                        view: view, version: version, watermark: Date(timeIntervalSince1970: watermark),
                        materializedAt: Date(timeIntervalSince1970: at), rowsWritten: Int(written),
                        entities: Int(entities), runID: run))
            }
        } catch {
            throw OnlineStoreOpenError(location: location, underlying: String(reflecting: error))
        }
        return result
    }

    public func lock(view: String) async throws -> any OnlineStoreLock {
        do {
            let held = try await PostgresConnection.connect(configuration: connection, id: 1, logger: logger)
            let key = Self.lockKey(view)
            // Waits on the server for another holder; the lock goes with this connection.
            try await held.query("SELECT pg_advisory_lock(\(key))", logger: logger)
            return SessionLock(connection: held)
        } catch {
            throw OnlineStoreOpenError(location: location, underlying: String(reflecting: error))
        }
    }

    public func write(view: String, records: [(key: String, record: OnlineRecord)], freshness: ViewFreshness)
        async throws
    {
        do {
            try await client.withTransaction(logger: logger) { connection in
                // Batches of rows per statement: one round trip per thousand entities.
                var start = 0
                while start < records.count {
                    let chunk = records[start..<min(start + 1000, records.count)]
                    start += chunk.count
                    let keys = chunk.map(\.key)
                    let times = chunk.map(\.record.eventTime)
                    let values = chunk.map { ByteBuffer(data: $0.record.values) }
                    try await connection.query(
                        """
                        INSERT INTO sluice_online_values (view, entity_key, event_time, "values")
                        SELECT \(view), k, t, v FROM unnest(\(keys)::text[], \(times)::bigint[], \(values)::bytea[])
                          AS u(k, t, v)
                        ON CONFLICT (view, entity_key) DO UPDATE SET event_time = excluded.event_time,
                          "values" = excluded."values"
                        """, logger: logger)
                }
                try await connection.query(
                    """
                    INSERT INTO sluice_online_freshness (view, version, watermark, materialized_at, rows_written, run_id)
                    VALUES (\(view), \(freshness.version), \(freshness.watermark.timeIntervalSince1970),
                            \(freshness.materializedAt.timeIntervalSince1970), \(Int64(freshness.rowsWritten)),
                            \(freshness.runID))
                    ON CONFLICT (view) DO UPDATE SET version = excluded.version, watermark = excluded.watermark,
                      materialized_at = excluded.materialized_at, rows_written = excluded.rows_written,
                      run_id = excluded.run_id
                    """, logger: logger)
            }
        } catch {
            let cause = (error as? PostgresTransactionError)?.closureError ?? error
            throw OnlineStoreOpenError(location: location, underlying: String(reflecting: cause))
        }
    }

    /// A view's advisory lock key: a stable hash of its name in the online store's own key range.
    static func lockKey(_ view: String) -> Int64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in "sluice.online.\(view)".utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return Int64(bitPattern: hash)
    }
}

/// A session advisory lock: released by closing its connection (the server frees it on a dead connection too).
final class SessionLock: OnlineStoreLock, Sendable {
    let connection: PostgresConnection

    init(connection: PostgresConnection) { self.connection = connection }

    func release() async { try? await connection.close() }
}
