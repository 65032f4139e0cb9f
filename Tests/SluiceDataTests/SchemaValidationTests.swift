import Foundation
import SluiceTesting
import Testing

@testable import SluiceData

@Suite("Schema and validation")
struct SchemaValidationTests {
    /// Rows of a small market: price (float, a few missing), rooms (integer), city (3 values).
    func market(
        rows: Int, priceShift: Double = 0, cities: [String] = ["Lyon", "Nice", "Paris"], missingEvery: Int = 50
    )
        -> String
    {
        var lines = ["price,rooms,city"]
        for k in 0..<rows {
            let price = k % missingEvery == 0 ? "" : String(100 + Double(k % 200) + priceShift)
            lines.append("\(price),\(k % 5 + 1),\(cities[k % cities.count])")
        }
        return lines.joined(separator: "\n")
    }

    func statistics(_ text: String) throws -> DatasetStatistics {
        try DatasetStatistics.compute(CSVReader(paths: [csvFile(text)])).statistics
    }

    @Test("a schema is inferred from statistics: types, required, ranges, domains, drift limits")
    func inference() throws {
        let schema = Schema.inferred(from: try statistics(market(rows: 1_000)))
        let price = try #require(schema["price"])
        #expect(price.type == .float)
        #expect(price.required == false)
        #expect(price.maxMissingRate == 0.04)
        #expect(price.min == 101)
        #expect(price.max == 299)
        #expect(price.drift == DriftThreshold(metric: .jensenShannon, threshold: 0.1))
        #expect(schema["rooms"]?.required == true)
        #expect(schema["rooms"]?.type == .integer)
        #expect(schema["city"]?.domain == ["Lyon", "Nice", "Paris"])
        #expect(schema["city"]?.drift?.metric == .lInfinity)
    }

    @Test("the schema round-trips through its editable YAML")
    func yamlRoundTrip() throws {
        let schema = Schema.inferred(from: try statistics(market(rows: 300)))
        let directory = try TemporaryDirectory()
        let url = directory.path("schema.yaml")
        let text = try schema.yaml()
        #expect(text.contains("domain: [Lyon, Nice, Paris]"))
        #expect(text.contains("max_missing_rate: 0.04"))
        try Data(text.utf8).write(to: url)
        #expect(try Schema.load(contentsOf: url) == schema)
    }

    @Test("a bad schema file names the file and the key")
    func badSchema() throws {
        let directory = try TemporaryDirectory()
        let url = directory.path("schema.yaml")
        try Data("columns:\n- name: x\n".utf8).write(to: url)
        let error = #expect(throws: SchemaError.self) { try Schema.load(contentsOf: url) }
        #expect(error?.problem == "'columns[0].type' is required but missing")
        #expect(error?.file == url.path)
    }

    @Test("data like the training data passes, with drift measured against the baseline")
    func passes() throws {
        let baseline = try statistics(market(rows: 2_000))
        let schema = Schema.inferred(from: baseline)
        let validation = Validation.check(try statistics(market(rows: 1_000)), against: schema, baseline: baseline)
        #expect(validation.passed, "\(validation.text())")
        #expect(try #require(validation.drift["price"]) < 0.05)
        #expect(validation.text().hasPrefix("PASS"))
    }

    @Test("each kind of anomaly is found and described")
    func anomalies() throws {
        let baseline = try statistics(market(rows: 2_000))
        let schema = Schema.inferred(from: baseline)
        let drifted = try statistics(
            market(rows: 1_000, priceShift: 150, cities: ["Lyon", "Nice", "Paris", "Brest", "Brest"], missingEvery: 5))
        let validation = Validation.check(drifted, against: schema, baseline: baseline)
        let kinds = Dictionary(grouping: validation.anomalies, by: \.column).mapValues { $0.map(\.kind) }
        #expect(kinds["price"] == [.missingValues, .outOfRange, .drift])
        #expect(kinds["city"] == [.unseenCategories, .drift])
        #expect(kinds["rooms"] == nil)
        let unseen = try #require(validation.anomalies.first { $0.kind == .unseenCategories })
        #expect(unseen.description == "1 value outside the domain in 400 rows: 'Brest' (400)")
        #expect(validation.text().hasPrefix("FAIL: 5 anomalies"))
    }

    @Test("missing, unexpected and retyped columns are anomalies")
    func columnChanges() throws {
        let schema = Schema.inferred(from: try statistics("a,b\n1,x\n2,y\n"))
        let validation = Validation.check(try statistics("a,c\nhello,1\n"), against: schema)
        #expect(validation.anomalies.map(\.kind) == [.typeChange, .missingColumn, .unexpectedColumn])
        #expect(validation.anomalies[0].description == "expected integer values but the data has string")
    }

    @Test(
        "distances: identical distributions are 0, disjoint ones 1 (Jensen–Shannon) and the largest frequency gap (L-infinity)"
    )
    func distances() throws {
        let a = try statistics(
            "x,c\n" + (0..<1_000).map { "\($0 % 100),\($0 % 2 == 0 ? "p" : "q")" }.joined(separator: "\n"))
        let b = try statistics("x,c\n" + (0..<1_000).map { "\($0 % 100 + 1_000),p" }.joined(separator: "\n"))
        #expect(Validation.jensenShannon(a["x"]!, a["x"]!) < 1e-12)
        #expect(abs(Validation.jensenShannon(a["x"]!, b["x"]!) - 1) < 1e-9)
        #expect(abs(Validation.lInfinity(a["c"]!, b["c"]!) - 0.5) < 1e-12)
    }
}
