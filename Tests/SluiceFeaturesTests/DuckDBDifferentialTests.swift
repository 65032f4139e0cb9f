import Foundation
import SluiceCore
import SluiceData
import SluiceTesting
import Testing

@testable import SluiceFeatures

/// Runs a Python script with duckdb and pyarrow (installed under `.build/test-python-duckdb` on first use) and
/// returns its standard output.
func duckdb(_ script: String) async throws -> String {
    try await PythonPackages.run(
        script, modules: ["duckdb", "pyarrow"], packages: ["duckdb", "pyarrow"], set: "duckdb")
}

@Suite("Point-in-time join against DuckDB")
struct DuckDBDifferentialTests {
    @Test("equals DuckDB's ASOF JOIN (with the TTL as a condition) on a generated set, in memory and in buckets")
    func matchesASOFJoin() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        // Distinct event times per key: DuckDB's ASOF JOIN leaves ties unordered, so the set has none.
        var random = SeededRandom(seed: 2024)
        let keys = 500
        var sourceKeys: [Int64] = []
        var sourceTimes: [Int64] = []
        var amounts: [Double] = []
        var valid: [Bool] = []
        for key in 0..<Int64(keys) {
            var t: Int64 = Int64(random.next() % 1000)
            for _ in 0..<Int(random.next() % 40) {
                t += 1 + Int64(random.next() % 500)
                sourceKeys.append(key)
                sourceTimes.append(t * 1_000_000)
                amounts.append(Double(random.next() % 100_000) / 100)
                valid.append(random.next() % 10 != 0)
            }
        }
        // Shuffled, so the source is not in key or time order.
        var order = Array(sourceKeys.indices)
        order.shuffle(using: &random)
        let source = Table(columns: [
            Column(
                name: "customer_id", storage: .integer(order.map { sourceKeys[$0] }, valid: order.map { _ in true })),
            Column(name: "ts", storage: .timestamp(order.map { sourceTimes[$0] }, valid: order.map { _ in true })),
            Column(name: "amount", storage: .float(order.map { amounts[$0] }, valid: order.map { valid[$0] })),
        ])
        let entityCount = 5000
        let entities = Table(columns: [
            Column(
                name: "row",
                storage: .integer(
                    (0..<Int64(entityCount)).map { $0 }, valid: .init(repeating: true, count: entityCount))),
            Column(
                name: "customer_id",
                storage: .integer(
                    (0..<entityCount).map { _ in Int64(random.next() % UInt64(keys + 20)) },
                    valid: .init(repeating: true, count: entityCount))),
            Column(
                name: "event_timestamp",
                storage: .timestamp(
                    (0..<entityCount).map { _ in Int64(random.next() % 25_000) * 1_000_000 },
                    valid: .init(repeating: true, count: entityCount))),
        ])
        let sourceFile = try TableFile.write(source, to: directory.appending(path: "orders.arrow"), batchRows: 4096)
        let entityFile = try TableFile.write(entities, to: directory.appending(path: "entities.arrow"), batchRows: 1000)
        let ttl: Int64 = 3000
        let definitions = FeatureDefinitions(
            entities: ["customer": Entity(joinKeys: [.init(name: "customer_id", type: .integer)])],
            sources: ["orders": FeatureSource(origin: .files(["orders.arrow"]), timestamp: "ts")],
            views: [
                "orders": FeatureView(
                    entity: "customer", source: "orders", ttl: ttl, features: [.init(name: "amount", type: .float)])
            ])

        let script = """
            import duckdb, pyarrow.feather as f
            con = duckdb.connect()
            e = f.read_table('\(entityFile.url.path)')
            s = f.read_table('\(sourceFile.url.path)')
            con.register('e', e)
            con.register('s', s)
            rows = con.execute('''
              SELECT e.row, CASE WHEN s.ts >= e.event_timestamp - INTERVAL \(ttl) SECOND THEN s.amount END AS amount
              FROM e ASOF LEFT JOIN s ON e.customer_id = s.customer_id AND e.event_timestamp >= s.ts
              ORDER BY e.row''').fetchall()
            for row, amount in rows:
                print(row, 'null' if amount is None else repr(float(amount)))
            """
        let expected = try await duckdb(script).split(separator: "\n").map { line in
            let parts = line.split(separator: " ")
            return parts[1] == "null" ? nil : Double(parts[1])
        }
        #expect(expected.count == entityCount)
        #expect(expected.compactMap { $0 }.count > entityCount / 5, "the set has matches")
        #expect(expected.filter { $0 == nil }.count > 100, "and misses (unknown keys, expired, no earlier row)")

        for buckets in [nil, 4] as [Int?] {
            var join = PointInTimeJoin(
                definitions: definitions, features: [.init(view: "orders", feature: "amount")],
                sources: ["orders": ResolvedSource(name: "orders", tables: [sourceFile], version: "v", origin: "o")])
            join.bucketsOverride = buckets
            let output = directory.appending(path: "joined.arrow")
            _ = try join.run(entityRows: entityFile, output: output, scratch: directory.appending(path: "scratch"))
            let joined = try TableFile(contentsOf: output).readAll()
            let mine = (0..<entityCount).map { joined["amount"]!.double($0) }
            let differing = (0..<entityCount).filter { mine[$0] != expected[$0] }
            let examples = differing.prefix(3).map { (row: Int) -> String in
                "row \(row): \(mine[row].map { String($0) } ?? "null") vs \(expected[row].map { String($0) } ?? "null")"
            }
            #expect(differing.isEmpty, "\(differing.count) rows differ, e.g. \(examples)")
        }
    }
}
