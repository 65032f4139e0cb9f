import Foundation
import SluiceCore
import SluiceData
import Testing

@testable import SluiceFeatures

/// A random source and entity rows, with the brute-force answer the join must equal.
struct RandomCase {
    var keys: [Int64?] = []
    var times: [Int64?] = []
    var created: [Int64?] = []
    var amounts: [Double?] = []
    var statuses: [String?] = []
    var entityKeys: [Int64?] = []
    var entityTimes: [Int64?] = []
    let ttl: Int64 = 50
    let windows: [Int64] = [20, 100]

    init(seed: UInt64, sourceRows: Int, entityRows: Int, keySpace: Int64) {
        var random = SeededRandom(seed: seed)
        func pick(_ n: Int64) -> Int64 { Int64(random.next() % UInt64(n)) }
        for _ in 0..<sourceRows {
            keys.append(pick(20) == 0 ? nil : pick(keySpace))
            // Coarse times give many (key, time) ties; created times break some of them.
            times.append(pick(30) == 0 ? nil : pick(200) * 1_000_000)
            created.append(pick(3) == 0 ? nil : pick(5) * 1_000_000)
            amounts.append(pick(6) == 0 ? nil : Double(pick(1000)) / 10)
            statuses.append(pick(5) == 0 ? nil : ["new", "paid", "shipped", "returned"][Int(pick(4))])
        }
        for _ in 0..<entityRows {
            entityKeys.append(pick(25) == 0 ? nil : pick(keySpace + 3))
            entityTimes.append(pick(40) == 0 ? nil : pick(260) * 1_000_000)
        }
    }

    var definitions: FeatureDefinitions {
        FeatureDefinitions(
            entities: ["customer": Entity(joinKeys: [.init(name: "customer_id", type: .integer)])],
            sources: [
                "orders": FeatureSource(origin: .files(["orders.arrow"]), timestamp: "ts", createdTimestamp: "loaded")
            ],
            views: [
                "orders": FeatureView(
                    entity: "customer", source: "orders", ttl: ttl,
                    features: [.init(name: "amount", type: .float), .init(name: "status", type: .string)],
                    aggregations: [
                        Aggregation(name: "n_20", function: .count, column: nil, window: 20),
                        Aggregation(name: "amounts_100", function: .count, column: "amount", window: 100),
                        Aggregation(name: "sum_20", function: .sum, column: "amount", window: 20),
                        Aggregation(name: "mean_100", function: .mean, column: "amount", window: 100),
                        Aggregation(name: "min_20", function: .min, column: "amount", window: 20),
                        Aggregation(name: "max_100", function: .max, column: "amount", window: 100),
                        Aggregation(name: "last_status_20", function: .last, column: "status", window: 20),
                    ])
            ],
            services: ["all": FeatureService(features: [.init(view: "orders", feature: "*")])])
    }

    func sourceTable() -> Table {
        let dictionary = Array(Set(statuses.compactMap { $0 })).sorted()
        return Table(columns: [
            Column(name: "customer_id", storage: .integer(keys.map { $0 ?? 0 }, valid: keys.map { $0 != nil })),
            Column(name: "ts", storage: .timestamp(times.map { $0 ?? 0 }, valid: times.map { $0 != nil })),
            Column(name: "loaded", storage: .timestamp(created.map { $0 ?? 0 }, valid: created.map { $0 != nil })),
            Column(name: "amount", storage: .float(amounts.map { $0 ?? 0 }, valid: amounts.map { $0 != nil })),
            Column(
                name: "status",
                storage: .string(
                    codes: statuses.map { s in s.map { Int32(dictionary.firstIndex(of: $0)!) } ?? -1 },
                    dictionary: dictionary)),
        ])
    }

    func entityTable() -> Table {
        Table(columns: [
            Column(
                name: "row",
                storage: .integer((0..<Int64(entityKeys.count)).map { $0 }, valid: entityKeys.map { _ in true })),
            Column(
                name: "customer_id", storage: .integer(entityKeys.map { $0 ?? 0 }, valid: entityKeys.map { $0 != nil })),
            Column(
                name: "event_timestamp",
                storage: .timestamp(entityTimes.map { $0 ?? 0 }, valid: entityTimes.map { $0 != nil })),
        ])
    }

    /// The brute-force answer for entity row `i`: feature name → value (nil: missing).
    func expected(_ i: Int) -> [String: String?] {
        let names = [
            "amount", "status", "n_20", "amounts_100", "sum_20", "mean_100", "min_20", "max_100", "last_status_20",
        ]
        guard let key = entityKeys[i], let t = entityTimes[i] else {
            return Dictionary(uniqueKeysWithValues: names.map { ($0, nil) })
        }
        let rows = keys.indices.filter { keys[$0] == key && times[$0] != nil && times[$0]! <= t }
        func rank(_ r: Int) -> (Int64, Int64, Int) { (times[r]!, created[r] ?? .min, r) }
        var out: [String: String?] = [:]
        if let newest = rows.max(by: { rank($0) < rank($1) }), t - times[newest]! <= ttl * 1_000_000 {
            out["amount"] = amounts[newest].map { String($0) }
            out["status"] = statuses[newest]
        } else {
            out["amount"] = String?.none
            out["status"] = String?.none
        }
        func window(_ w: Int64) -> [Int] { rows.filter { times[$0]! > t - w * 1_000_000 } }
        out["n_20"] = String(window(20).count)
        out["amounts_100"] = String(window(100).filter { amounts[$0] != nil }.count)
        out["sum_20"] = String(window(20).compactMap { amounts[$0] }.reduce(0, +))
        let m = window(100).compactMap { amounts[$0] }
        out["mean_100"] = m.isEmpty ? String?.none : String(m.reduce(0, +) / Double(m.count))
        out["min_20"] = window(20).compactMap { amounts[$0] }.min().map { String($0) }
        out["max_100"] = m.max().map { String($0) }
        out["last_status_20"] = window(20).filter { statuses[$0] != nil }.max(by: { rank($0) < rank($1) }).map {
            statuses[$0]!
        }
        return out
    }
}

func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appending(path: "sluice-features-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

@Suite("Point-in-time join")
struct PointInTimeJoinTests {
    func runJoin(_ data: RandomCase, buckets: Int?, directory: URL, batchRows: Int = 64) throws -> (Table, JoinReport) {
        let source = try TableFile.write(
            data.sourceTable(), to: directory.appending(path: "orders.arrow"), batchRows: batchRows)
        let entities = try TableFile.write(
            data.entityTable(), to: directory.appending(path: "entities.arrow"), batchRows: batchRows)
        let definitions = data.definitions
        let resolved = ResolvedSource(name: "orders", tables: [source], version: "v1", origin: "orders.arrow")
        var join = PointInTimeJoin(
            definitions: definitions, features: definitions.expandedFeatures(of: definitions.services["all"]!),
            sources: ["orders": resolved], now: Date(timeIntervalSince1970: 150))
        join.bucketsOverride = buckets
        let output = directory.appending(path: "out.arrow")
        let report = try join.run(entityRows: entities, output: output, scratch: directory.appending(path: "scratch"))
        return (try TableFile(contentsOf: output).readAll(), report)
    }

    func check(_ data: RandomCase, _ table: Table) {
        #expect(table.rowCount == data.entityKeys.count)
        let rowColumn = table["row"]!
        var mismatches: [String] = []
        for i in 0..<table.rowCount {
            #expect(rowColumn.string(i) == String(i), "the output keeps the entity rows' order")
            for (name, value) in data.expected(i) {
                let got = table[name]!.string(i)
                let same: Bool
                if let value, let got, let a = Double(value), let b = Double(got) {
                    same = abs(a - b) <= 1e-9 * max(1, abs(a))
                } else {
                    same = value == got
                }
                if !same && mismatches.count < 10 {
                    mismatches.append("row \(i) \(name): expected \(value ?? "missing"), got \(got ?? "missing")")
                }
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.joined(separator: "\n"))")
    }

    @Test("equals a brute-force oracle in memory: TTL, ties, late and future events, missing keys, windows")
    func oracleInMemory() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        for seed in [1, 2, 3] as [UInt64] {
            let data = RandomCase(seed: seed, sourceRows: 3000, entityRows: 800, keySpace: 40)
            let (table, report) = try runJoin(data, buckets: nil, directory: directory)
            #expect(report.views[0].buckets == 1)
            check(data, table)
            #expect(report.views[0].duplicateKeyTimes > 0, "the random data has (key, time) ties")
            #expect(
                report.views[0].rowsWithoutKeyOrTime
                    == zip(data.keys, data.times).filter { $0 == nil || $1 == nil }.count)
            let future = zip(data.keys, data.times).filter { $0 != nil && ($1 ?? 0) > 150_000_000 }.count
            #expect(report.views[0].futureRows == future)
        }
    }

    @Test("spilled to key buckets, the join gives the same rows in the same order")
    func oracleOutOfCore() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let data = RandomCase(seed: 9, sourceRows: 4000, entityRows: 1000, keySpace: 60)
        let (table, report) = try runJoin(data, buckets: 5, directory: directory, batchRows: 97)
        #expect(report.views[0].buckets == 5)
        check(data, table)
        let (inMemory, _) = try runJoin(data, buckets: nil, directory: directory)
        func cells(_ table: Table) -> [[String?]] {
            table.columns.map { column in (0..<column.count).map { column.string($0) } }
        }
        for (a, b) in zip(inMemory.columns, table.columns) {
            #expect(a.name == b.name && a.type == b.type)
            let differing = (0..<a.count).filter { a.string($0) != b.string($0) }.prefix(3)
            #expect(
                differing.isEmpty, "\(a.name): \(differing.map { "\(a.string($0) ?? "-") vs \(b.string($0) ?? "-")" })")
        }
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory.appending(path: "scratch").path)
        #expect(leftovers.isEmpty, "spill files are removed")
    }

    @Test("string keys join like integer keys")
    func stringKeys() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let source = Table(columns: [
            Column(name: "user", storage: .string(codes: [0, 1, 0, 1], dictionary: ["ann", "bo"])),
            Column(
                name: "ts", storage: .timestamp([1, 2, 3, 4].map { $0 * 1_000_000 }, valid: [true, true, true, true])),
            Column(name: "score", storage: .integer([10, 20, 30, 40], valid: [true, true, true, true])),
        ])
        let entities = Table(columns: [
            Column(name: "user", storage: .string(codes: [1, 0, 2, 0], dictionary: ["ann", "bo", "cy"])),
            Column(
                name: "event_timestamp",
                storage: .timestamp([3, 3, 9, 0].map { $0 * 1_000_000 }, valid: [true, true, true, true])),
        ])
        let definitions = FeatureDefinitions(
            entities: ["user": Entity(joinKeys: [.init(name: "user", type: .string)])],
            sources: ["s": FeatureSource(origin: .files(["s.arrow"]), timestamp: "ts")],
            views: ["v": FeatureView(entity: "user", source: "s", features: [.init(name: "score", type: .integer)])])
        for buckets in [nil, 3] as [Int?] {
            let sourceFile = try TableFile.write(source, to: directory.appending(path: "s.arrow"))
            let entityFile = try TableFile.write(entities, to: directory.appending(path: "e.arrow"))
            var join = PointInTimeJoin(
                definitions: definitions, features: [.init(view: "v", feature: "score")],
                sources: ["s": ResolvedSource(name: "s", tables: [sourceFile], version: "v", origin: "s")])
            join.bucketsOverride = buckets
            let out = directory.appending(path: "out.arrow")
            _ = try join.run(entityRows: entityFile, output: out, scratch: directory.appending(path: "tmp"))
            let table = try TableFile(contentsOf: out).readAll()
            #expect((0..<4).map { table["score"]!.string($0) } == ["20", "30", nil, nil])
        }
    }

    @Test("entity rows without the timestamp column or a key column are refused with the fix")
    func entityRowsChecked() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let data = RandomCase(seed: 1, sourceRows: 10, entityRows: 5, keySpace: 3)
        let source = try TableFile.write(data.sourceTable(), to: directory.appending(path: "orders.arrow"))
        let entities = try TableFile.write(
            Table(columns: [data.entityTable().columns[0], data.entityTable().columns[2]]),
            to: directory.appending(path: "e.arrow"))
        let join = PointInTimeJoin(
            definitions: data.definitions, features: [.init(view: "orders", feature: "amount")],
            sources: ["orders": ResolvedSource(name: "orders", tables: [source], version: "v", origin: "o")])
        #expect {
            try join.run(entityRows: entities, output: directory.appending(path: "o.arrow"), scratch: directory)
        } throws: { error in
            "\(error)".contains("no column 'customer_id'") && "\(error)".contains("To fix")
        }
        var other = join
        other.timestampColumn = "when"
        #expect {
            try other.run(entityRows: entities, output: directory.appending(path: "o.arrow"), scratch: directory)
        } throws: { error in
            "\(error)".contains("no 'when' column") && "\(error)".contains("--timestamp-column")
        }
        #expect(!FileManager.default.fileExists(atPath: directory.appending(path: "o.arrow").path))
    }
}
