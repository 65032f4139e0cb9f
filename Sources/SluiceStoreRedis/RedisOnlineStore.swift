import Foundation
import SluiceCore

/// The feature store's online store on Redis, where lookup latency matters: one hash per (view, entity) with the
/// event time and the encoded values, read with pipelined `HMGET`s on one connection; a materialization written in
/// one `MULTI`/`EXEC` transaction (nothing of it applies unless all of it does); a view's lock is a key set with
/// `NX` and an expiry, so a dead holder's lock lapses.
public final class RedisOnlineStore: OnlineStore, Sendable {
    /// `redis://HOST:PORT/DB`.
    public let location: String
    private let connection: RESPConnection
    private let prefix = "sluice:online"
    /// How long a materialization lock lives without its holder releasing it.
    static let lockLifetime = 600_000

    /// Connects to `redis://HOST[:PORT][/DB]` (port 6379 and database 0 by default).
    /// - Throws: ``SluiceCore/OnlineStoreOpenError`` naming the server and the reason.
    public init(url: String) async throws {
        guard let parsed = URL(string: url), parsed.scheme == "redis", let host = parsed.host, !host.isEmpty else {
            throw OnlineStoreOpenError(
                location: url, underlying: "not a redis://HOST[:PORT][/DB] URL")
        }
        let port = parsed.port ?? 6379
        let database = Int(parsed.path.dropFirst()) ?? 0
        location = "redis://\(host):\(port)/\(database)"
        do {
            connection = try await RESPConnection.connect(host: host, port: port)
            let replies = try await connection.send([["PING"], ["SELECT", .text(String(database))]])
            if case .error(let message) = replies[0] { throw RedisError(message: message) }
            if case .error(let message) = replies[1] { throw RedisError(message: message) }
        } catch {
            throw OnlineStoreOpenError(location: "redis://\(host):\(port)/\(database)", underlying: "\(error)")
        }
    }

    public func close() async { await connection.close() }

    private func key(_ view: String, _ entity: String) -> RESPArgument { .text("\(prefix):v:\(view):\(entity)") }

    public func read(view: String, keys: [String]) async throws -> [OnlineRecord?] {
        let replies = try await checked(keys.map { ["HMGET", key(view, $0), "t", "v"] })
        return replies.map { reply in
            guard case .array(let fields?) = reply, fields.count == 2, let time = fields[0].text.flatMap({ Int64($0) }),
                case .bulk(let bytes?) = fields[1]
            else { return nil }
            return OnlineRecord(eventTime: time, values: Data(bytes))
        }
    }

    public func freshness() async throws -> [ViewFreshness] {
        guard case .array(let members?) = try await checked([["SMEMBERS", .text("\(prefix):views")]])[0] else {
            return []
        }
        var result: [ViewFreshness] = []
        for view in members.compactMap(\.text).sorted() {
            let replies = try await checked([
                [
                    "HMGET", .text("\(prefix):f:\(view)"), "version", "watermark", "materialized_at", "rows_written",
                    "run_id",
                ],
                ["SCARD", .text("\(prefix):e:\(view)")],
            ])
            guard case .array(let fields?) = replies[0], fields.count == 5, let version = fields[0].text,
                let watermark = fields[1].text.flatMap(Double.init), let at = fields[2].text.flatMap(Double.init)
            else { continue }
            var entities = 0
            if case .integer(let count) = replies[1] { entities = Int(count) }
            result.append(
                ViewFreshness(
                    view: view, version: version, watermark: Date(timeIntervalSince1970: watermark),
                    materializedAt: Date(timeIntervalSince1970: at),
                    rowsWritten: fields[3].text.flatMap { Int($0) } ?? 0, entities: entities,
                    runID: fields[4].text.flatMap { $0.isEmpty ? nil : $0 }))
        }
        return result
    }

    public func lock(view: String) async throws -> any OnlineStoreLock {
        let name = "\(prefix):lock:\(view)"
        let token = UUID().uuidString
        while true {
            let reply = try await checked([
                ["SET", .text(name), .text(token), "NX", "PX", .text(String(Self.lockLifetime))]
            ])[0]
            if case .simple("OK") = reply { return RedisLock(connection: connection, name: name, token: token) }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    public func write(view: String, records: [(key: String, record: OnlineRecord)], freshness: ViewFreshness)
        async throws
    {
        try await write(view: view, records: records, freshness: freshness, abandon: false)
    }

    /// ``write(view:records:freshness:)``; with `abandon`, the queued transaction is discarded instead of executed
    /// (what a client killed before `EXEC` leaves: nothing), for the tests.
    package func write(
        view: String, records: [(key: String, record: OnlineRecord)], freshness: ViewFreshness, abandon: Bool
    ) async throws {
        var commands: [[RESPArgument]] = [["MULTI"]]
        commands.reserveCapacity(records.count * 2 + 5)
        for (entity, record) in records {
            commands.append([
                "HSET", key(view, entity), "t", .text(String(record.eventTime)), "v", .bytes(Array(record.values)),
            ])
        }
        // The view's entity set, for counting (in batches of arguments).
        var start = 0
        while start < records.count {
            let chunk = records[start..<min(start + 1000, records.count)]
            start += chunk.count
            commands.append([.text("SADD"), .text("\(prefix):e:\(view)")] + chunk.map { .text($0.key) })
        }
        commands.append(["SADD", .text("\(prefix):views"), .text(view)])
        commands.append([
            "HSET", .text("\(prefix):f:\(view)"), "version", .text(freshness.version), "watermark",
            .text(String(freshness.watermark.timeIntervalSince1970)), "materialized_at",
            .text(String(freshness.materializedAt.timeIntervalSince1970)), "rows_written",
            .text(String(freshness.rowsWritten)), "run_id", .text(freshness.runID ?? ""),
        ])
        if abandon {
            commands.append(["DISCARD"])
            _ = try await connection.send(commands)
            throw OnlineStoreOpenError(location: location, underlying: "the transaction was abandoned, as asked")
        }
        commands.append(["EXEC"])
        let replies = try await connection.send(commands)
        guard case .array(let results?) = replies.last else {
            throw OnlineStoreOpenError(location: location, underlying: "the transaction was aborted")
        }
        for result in results {
            if case .error(let message) = result {
                throw OnlineStoreOpenError(location: location, underlying: message)
            }
        }
    }

    /// Sends commands and turns an error reply into a thrown error.
    private func checked(_ commands: [[RESPArgument]]) async throws -> [RESPValue] {
        let replies: [RESPValue]
        do {
            replies = try await connection.send(commands)
        } catch {
            throw OnlineStoreOpenError(location: location, underlying: "\(error)")
        }
        for reply in replies {
            if case .error(let message) = reply { throw OnlineStoreOpenError(location: location, underlying: message) }
        }
        return replies
    }
}

/// A held lock: released by deleting its key if it still holds this holder's token.
final class RedisLock: OnlineStoreLock, Sendable {
    let connection: RESPConnection
    let name: String
    let token: String

    init(connection: RESPConnection, name: String, token: String) {
        self.connection = connection
        self.name = name
        self.token = token
    }

    func release() async {
        let script = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"
        _ = try? await connection.send(["EVAL", .text(script), "1", .text(name), .text(token)])
    }
}

/// An error reply from Redis.
struct RedisError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

extension RedisOnlineStore {
    /// Empties the connection's database (tests start from nothing).
    package func flushForTests() async throws -> Bool {
        if case .simple("OK") = try await connection.send(["FLUSHDB"]) { return true }
        return false
    }
}
