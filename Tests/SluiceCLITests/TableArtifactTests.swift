import Foundation
import Sluice
import SluiceTesting
import Testing

@Suite("Tables as pipeline artifacts")
struct TableArtifactTests {
    @Test("a step's Table output is stored as an Arrow file with row and column properties, and read back")
    func tableArtifacts() async throws {
        let directory = try TemporaryDirectory(prefix: "sluice-table")
        let csv = directory.path("in.csv")
        try Data("x,city\n1.5,Lyon\n2.5,\n3.5,Nice\n".utf8).write(to: csv)
        let pipeline = Pipeline("tables") { p in
            let table = p.step("ingest", version: 1) { _ in try CSVReader(paths: [csv.path]).readTable() }
            p.step("count", version: 1, table) { table, _ in table.rowCount }
        }
        let engine = try TestEngine(materializers: .standard)
        let result = try await engine.run(pipeline)
        let record = try #require(result.outputs["ingest"]?["output"])
        #expect(record.materializer == "arrow-ipc")
        #expect(record.properties["rows"] == .int(3))
        #expect(record.properties["schema"] == .string("x:float,city:string"))
        #expect(try result.value(Int.self, step: "count") == 3)
        let table = try result.value(Table.self, step: "ingest")
        #expect(table["city"]?.string(1) == nil)
        let file = try #require(engine.engine.artifacts.url(for: record.uri))
        #expect(try ArrowFile.read(contentsOf: file) == table)
    }
}
