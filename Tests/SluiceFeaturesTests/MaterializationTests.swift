import Foundation
import SluiceCore
import SluiceData
import SluiceStorePostgres
import SluiceStoreRedis
import SluiceStoreSQLite
import SluiceTesting
import Testing

@testable import SluiceFeatures

@Suite("Materialization and online lookups")
struct MaterializationTests {
    static let yaml = """
        entities:
          customer: {join_keys: {customer_id: integer}}
        sources:
          orders: {path: orders.arrow, timestamp: ts, created_timestamp: loaded}
        views:
          orders:
            entity: customer
            source: orders
            ttl: 50s
            features: {amount: float, status: string}
            aggregations:
              - {name: n_20, function: count, window: 20s}
              - {name: sum_20, function: sum, column: amount, window: 20s}
              - {name: max_100, function: max, column: amount, window: 100s}
        services:
          all: [orders:*]
        """

    /// A project folder with the random case's source and the definitions above, applied.
    static func project(_ data: RandomCase) async throws -> (URL, FeatureStore) {
        let directory = try temporaryDirectory()
        _ = try TableFile.write(data.sourceTable(), to: directory.appending(path: "orders.arrow"), batchRows: 500)
        try yaml.write(to: directory.appending(path: "features.yaml"), atomically: true, encoding: .utf8)
        let store = FeatureStore(
            root: directory, cache: directory.appending(path: "cache"), metadata: InMemoryMetadataStore(),
            artifacts: try LocalArtifactStore(root: directory.appending(path: "artifacts")))
        _ = try await store.registry.apply(try store.definitions(), environment: RunEnvironment.basic())
        return (directory, store)
    }

    /// A fresh online store of `kind`: a SQLite file in `directory`, or a new database on the test PostgreSQL server.
    static func onlineStore(_ kind: String, in directory: URL, name: String) async throws -> any OnlineStore {
        if kind == "redis" {
            let store = try await RedisOnlineStore(url: try await TestRedis.started().freshDatabase())
            #expect(try await store.flushForTests())
            return store
        }
        guard kind == "postgres" else {
            return try SQLiteOnlineStore(path: directory.appending(path: "\(name).sqlite").path)
        }
        let admin = try await TestPostgres.started().adminURL
        let url = try await PostgresDatabases.create(
            "o_\(UUID().uuidString.prefix(12).lowercased())", on: admin, password: TestPostgres.password)
        return try await PostgresOnlineStore(url: url, password: TestPostgres.password)
    }

    static func at(_ seconds: Int64) -> Date { Date(timeIntervalSince1970: TimeInterval(seconds)) }

    /// Every key's record in `online`.
    static func records(_ online: any OnlineStore, keys: Int64) async throws -> [OnlineRecord?] {
        try await online.read(view: "orders", keys: (0..<keys).map { String($0) })
    }

    @Test(
        "incremental materializations give the same online values as one full one, and as the join at the watermark",
        arguments: ["sqlite", "postgres", "redis"])
    func incrementalEqualsFull(_ kind: String) async throws {
        let data = RandomCase(seed: 5, sourceRows: 4000, entityRows: 1, keySpace: 1500)
        let (directory, store) = try await Self.project(data)
        defer { try? FileManager.default.removeItem(at: directory) }
        let stepwise = try await Self.onlineStore(kind, in: directory, name: "stepwise")
        let full = try await Self.onlineStore(kind, in: directory, name: "full")
        let scratch = directory.appending(path: "scratch")
        let environment = RunEnvironment.basic()
        var written: [Int] = []
        for until in [60, 90, 91, 140, 199] as [Int64] {
            let (outcomes, _) = try await FeatureMaterialization(store: store, online: stepwise, scratch: scratch)
                .run(views: [], until: Self.at(until), environment: environment)
            written.append(outcomes[0].rowsWritten)
        }
        // Each step recomputes only the entities with rows after the previous watermark minus the longest window.
        func keys(after: Int64, upTo: Int64) -> Int {
            Set(
                data.keys.indices.filter { row in
                    data.keys[row] != nil
                        && data.times[row].map { $0 > after * 1_000_000 && $0 <= upTo * 1_000_000 } == true
                }.map { data.keys[$0]! }
            ).count
        }
        #expect(
            written == [
                keys(after: -1_000, upTo: 60), keys(after: -40, upTo: 90), keys(after: -10, upTo: 91),
                keys(after: -9, upTo: 140), keys(after: 40, upTo: 199),
            ])
        #expect(written[4] < written[0] + written[3], "later steps skip entities with no recent rows")
        let (outcomes, run) = try await FeatureMaterialization(store: store, online: full, scratch: scratch)
            .run(views: ["orders"], until: Self.at(199), environment: environment)
        #expect(outcomes[0].from == nil)
        #expect(run.pipeline == FeatureMaterialization.pipeline)
        let a = try await Self.records(stepwise, keys: 1500)
        let b = try await Self.records(full, keys: 1500)
        #expect(a == b)
        #expect(a.compactMap { $0 }.count > 1000)
        // The values equal the training join as of the watermark (its as-of values without the TTL).
        for key in 0..<Int64(1500) {
            guard let record = a[Int(key)] else { continue }
            let values = OnlineValues.decode(record.values)
            let rows = data.keys.indices.filter {
                data.keys[$0] == key && data.times[$0] != nil && data.times[$0]! <= 199_000_000
            }
            func rank(_ r: Int) -> (Int64, Int64, Int) { (data.times[r]!, data.created[r] ?? .min, r) }
            let newest = rows.max { rank($0) < rank($1) }!
            #expect(record.eventTime == data.times[newest]!)
            #expect(values["amount"]?.double == data.amounts[newest])
            #expect(values["status"] == data.statuses[newest].map { .text($0) })
            let window = rows.filter { data.times[$0]! > 179_000_000 }
            #expect(values["n_20"] == .integer(Int64(window.count)))
        }
        let freshness = try await stepwise.freshness()
        #expect(freshness.map(\.watermark) == [Self.at(199)])
        let again = try await FeatureMaterialization(store: store, online: stepwise, scratch: scratch)
            .run(views: [], until: Self.at(150), environment: environment)
        #expect(again.0[0].upToDate, "an older --until changes nothing")
        await stepwise.close()
        await full.close()
    }

    @Test("lookups say present, missing or expired (older than the TTL now), and the HTTP answer names each")
    func lookupStatuses() async throws {
        let data = RandomCase(seed: 6, sourceRows: 2000, entityRows: 1, keySpace: 30)
        let (directory, store) = try await Self.project(data)
        defer { try? FileManager.default.removeItem(at: directory) }
        let online = try SQLiteOnlineStore(path: directory.appending(path: "online.sqlite").path)
        _ = try await FeatureMaterialization(store: store, online: online, scratch: directory.appending(path: "s"))
            .run(views: [], until: Self.at(199), environment: RunEnvironment.basic())
        let lookups = OnlineFeatures(definitions: try store.definitions(), online: online)
        let references = [
            FeatureService.Reference(view: "orders", feature: "amount"), .init(view: "orders", feature: "n_20"),
        ]
        let records = try await Self.records(online, keys: 30)
        let key = try #require(
            records.firstIndex { record in
                record.map { $0.eventTime != .min && OnlineValues.decode($0.values)["amount"] != nil } ?? false
            })
        let eventTime = records[key]!.eventTime
        let found = try await lookups.lookup(
            references, keys: ["customer_id": [String(key), "12345"]],
            now: Date(timeIntervalSince1970: Double(eventTime) / 1e6 + 10))
        #expect(found.known == [true, false])
        let fresh = found.results
        #expect(fresh[0][0].status == .present)
        #expect(fresh[0][0].value?.double != nil)
        #expect(fresh[1][0].status == .missing)
        #expect(
            fresh[1][1] == .init(value: .integer(0), status: .present), "an unknown entity's count is 0, as in training"
        )
        let late = try await lookups.lookup(
            references, keys: ["customer_id": [String(key)]],
            now: Date(timeIntervalSince1970: Double(eventTime) / 1e6 + 51)
        ).results
        #expect(late[0][0].status == .expired)
        #expect(late[0][0].value == nil)
        #expect(late[0][1].status == .present, "aggregations are as of the watermark, not subject to the TTL")

        let (json, entities) = try await lookups.answer(
            json: Data(#"{"feature_service": "all", "entities": {"customer_id": [\#(key), 12345]}}"#.utf8))
        #expect(entities == 2)
        let answer = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let names = (answer["metadata"] as? [String: Any])?["feature_names"] as? [String]
        #expect(names == ["customer_id", "amount", "status", "n_20", "sum_20", "max_100"])
        await #expect {
            try await lookups.answer(json: Data(#"{"feature_service": "nope", "entities": {"customer_id": [1]}}"#.utf8))
        } throws: { ($0 as? FeatureRequestError)?.message.contains("no feature service 'nope'") == true }
        await #expect {
            try await lookups.answer(json: Data(#"{"feature_service": "all", "entities": {"user": [1]}}"#.utf8))
        } throws: { ($0 as? FeatureRequestError)?.message.contains("lack 'customer_id'") == true }
    }

    @Test("event times are written as Foundation writes ISO 8601, for instants before and after 1970")
    func isoTimes() {
        var random = SeededRandom(seed: 3)
        for _ in 0..<2000 {
            let micros = Int64(bitPattern: random.next() % 8_000_000_000_000_000) - 2_000_000_000_000_000
            let whole = micros - ((micros % 1_000_000) + 1_000_000) % 1_000_000
            let date = Date(timeIntervalSince1970: TimeInterval(whole / 1_000_000))
            #expect(isoTime(whole) == date.formatted(.iso8601), "\(whole)")
        }
        #expect(isoTime(1_767_225_600_250_000) == "2026-01-01T00:00:00.250000Z")
        #expect(isoTime(-1) == "1969-12-31T23:59:59.999999Z")
    }

    @Test(
        "PostgreSQL and Redis: a failed write leaves the previous values; a second lock holder waits for the first",
        arguments: ["postgres", "redis"])
    func atomicAndExclusive(_ kind: String) async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let online = try await Self.onlineStore(kind, in: directory, name: "p")
        let record = OnlineRecord(
            eventTime: 5,
            values: OnlineValues.encode(
                [Column(name: "x", storage: .float([0.1 + 0.2], valid: [true]))], row: 0))
        let fresh = ViewFreshness(
            view: "v", version: "1", watermark: Self.at(10), materializedAt: Self.at(11), rowsWritten: 1, entities: 0)
        try await online.write(view: "v", records: [("a", record)], freshness: fresh)
        #expect(try await online.read(view: "v", keys: ["a", "b"]) == [record, nil])
        #expect(OnlineValues.decode(record.values)["x"] == .number(0.1 + 0.2), "numbers come back bit for bit")
        #expect(try await online.freshness().map(\.entities) == [1])
        // A write that fails inside its transaction (PostgreSQL: a key its text column cannot hold; Redis: a
        // transaction abandoned before EXEC, as a killed client leaves it) changes nothing.
        var later = fresh
        later.watermark = Self.at(20)
        await #expect(throws: (any Error).self) {
            let records = [("a", OnlineRecord(eventTime: 9, values: Data())), ("b\u{0}", record)]
            if let redis = online as? RedisOnlineStore {
                try await redis.write(view: "v", records: records, freshness: later, abandon: true)
            } else {
                try await online.write(view: "v", records: records, freshness: later)
            }
        }
        #expect(try await online.read(view: "v", keys: ["a"]) == [record])
        #expect(try await online.freshness().map(\.watermark) == [Self.at(10)])
        let first = try await online.lock(view: "v")
        let acquired = Task { () -> Date in
            let second = try await online.lock(view: "v")
            let at = Date()
            await second.release()
            return at
        }
        try await Task.sleep(for: .milliseconds(300))
        let released = Date()
        await first.release()
        #expect(try await acquired.value >= released)
        await online.close()
    }

    @Test("a failed materialization leaves the previous values and watermark; two of one view never interleave")
    func failureAndExclusion() async throws {
        let data = RandomCase(seed: 8, sourceRows: 1500, entityRows: 1, keySpace: 25)
        let (directory, store) = try await Self.project(data)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appending(path: "online.sqlite").path
        let online = try SQLiteOnlineStore(path: path)
        let scratch = directory.appending(path: "s")
        _ = try await FeatureMaterialization(store: store, online: online, scratch: scratch)
            .run(views: [], until: Self.at(100), environment: RunEnvironment.basic())
        let before = try await Self.records(online, keys: 25)
        // A store whose write fails partway (after the values, before the commit): nothing of it is kept.
        let failing = FailingWrites(inner: online)
        await #expect(throws: (any Error).self) {
            _ = try await FeatureMaterialization(store: store, online: failing, scratch: scratch)
                .run(views: [], until: Self.at(190), environment: RunEnvironment.basic())
        }
        #expect(try await Self.records(online, keys: 25) == before)
        #expect(try await online.freshness().map(\.watermark) == [Self.at(100)])
        let runs = try await store.registry.metadata.runs(RunFilter(pipeline: FeatureMaterialization.pipeline))
        #expect(runs.map(\.status) == [.failed, .completed])

        // The lock: a second holder waits until the first releases it.
        let first = try await online.lock(view: "orders")
        let acquired = Task { () -> Date in
            let second = try await SQLiteOnlineStore(path: path).lock(view: "orders")
            let at = Date()
            await second.release()
            return at
        }
        try await Task.sleep(for: .milliseconds(300))
        let released = Date()
        await first.release()
        #expect(try await acquired.value >= released)
    }
}

/// An online store whose writes fail inside their transaction, after the values are written.
struct FailingWrites: OnlineStore {
    let inner: SQLiteOnlineStore
    var location: String { inner.location }
    func read(view: String, keys: [String]) async throws -> [OnlineRecord?] {
        try await inner.read(view: view, keys: keys)
    }
    func freshness() async throws -> [ViewFreshness] { try await inner.freshness() }
    func lock(view: String) async throws -> any OnlineStoreLock { try await inner.lock(view: view) }
    func write(view: String, records: [(key: String, record: OnlineRecord)], freshness: ViewFreshness) async throws {
        try await inner.write(view: view, records: records, freshness: freshness, failBeforeCommit: true)
    }
}
