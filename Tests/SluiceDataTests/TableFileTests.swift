import Foundation
import SluiceTesting
import Testing

@testable import SluiceData

@Suite("Table files")
struct TableFileTests {
    /// Rows with every column type, some missing values and a label.
    func rows(_ count: Int, offset: Int = 0) -> Table {
        let range = offset..<(offset + count)
        return Table(columns: [
            Column(
                name: "id",
                storage: .string(codes: range.map { Int32($0 - offset) }, dictionary: range.map { "u\($0)" })),
            Column(name: "x", storage: .float(range.map { Double($0) * 0.5 }, valid: range.map { $0 % 7 != 0 })),
            Column(name: "n", storage: .integer(range.map { Int64($0 % 13) }, valid: range.map { _ in true })),
            Column(name: "flag", storage: .boolean(range.map { $0 % 3 == 0 }, valid: range.map { $0 % 11 != 0 })),
            Column(
                name: "when",
                storage: .timestamp(range.map { Int64($0) * 1_000_000 }, valid: range.map { _ in true })),
            Column(
                name: "label",
                storage: .string(codes: range.map { Int32($0 % 10 < 3 ? 0 : 1) }, dictionary: ["yes", "no"])),
        ])
    }

    /// What a table holds, cell by cell, with its column types (string dictionaries may differ in what they hold
    /// beyond the rows' values).
    func cells(_ table: Table) -> [String] {
        zip(table.columnNames, table.columns.map(\.type)).map { "\($0):\($1)" }
            + (0..<table.rowCount).map { row in table.columns.map { $0.string(row) ?? "∅" }.joined(separator: "|") }
    }

    @Test("the same rows make the same bytes however they arrive, in batches of a fixed size")
    func batchingDependsOnlyOnRows() throws {
        let directory = try TemporaryDirectory(prefix: "sluice-tablefile")
        let table = rows(1_000)
        let whole = try TableFile.write(table, to: directory.path("whole.arrow"), batchRows: 128)
        let writer = try TableFileWriter(url: directory.path("pieces.arrow"), batchRows: 128)
        var start = 0
        for size in [1, 7, 300, 2, 129, 561] {
            try writer.append(table.slice(start..<(start + size)))
            start += size
        }
        let pieces = try writer.finish(columnNames: table.columnNames, columnTypes: table.columns.map(\.type))
        #expect(whole.batchRowCounts == [128, 128, 128, 128, 128, 128, 128, 104])
        #expect(pieces.batchRowCounts == whole.batchRowCounts)
        #expect(try Data(contentsOf: whole.url) == Data(contentsOf: pieces.url))
        #expect(try cells(pieces.readAll()) == cells(table))
        #expect(try pieces.column("x") == table["x"])
        // Only some columns decoded, in the order asked for.
        let some = try pieces.columns(["label", "when", "flag"])
        #expect(cells(some) == cells(Table(columns: [table["label"]!, table["when"]!, table["flag"]!])))
        var seen: [Int] = []
        try pieces.forEachBatch { batch, first in
            #expect(cells(batch) == cells(table.slice(first..<(first + batch.rowCount))))
            seen.append(first)
        }
        #expect(seen == stride(from: 0, to: 1_000, by: 128).map { $0 })
    }

    @Test("integer columns that turn into floats midway give every batch the final type")
    func wideningRewritesEarlierBatches() throws {
        let directory = try TemporaryDirectory(prefix: "sluice-tablefile")
        let writer = try TableFileWriter(url: directory.path("t.arrow"), batchRows: 4, computeStatistics: true)
        let ints = Table(columns: [
            Column(name: "v", storage: .integer(Array(0..<10), valid: .init(repeating: true, count: 10)))
        ])
        let floats = Table(columns: [Column(name: "v", storage: .float([10.5, 11, 12], valid: [true, true, true]))])
        try writer.append(ints)
        try writer.append(floats)
        let file = try writer.finish(columnNames: ["v"], columnTypes: [.float])
        #expect(file.columnTypes == [.float])
        #expect(file.batchRowCounts == [4, 4, 4, 1])
        let expected = (0..<10).map(Double.init) + [10.5, 11, 12]
        #expect(
            try file.readAll()
                == Table(columns: [
                    Column(name: "v", storage: .float(expected, valid: .init(repeating: true, count: 13)))
                ]))
        let statistics = try #require(try file.embeddedStatistics())
        #expect(statistics.rows == 13)
        #expect(statistics.columns[0].type == .float)
        #expect(statistics.columns[0].max == 12)
        // No segment files are left beside it.
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.url.path) == ["t.arrow"])
    }

    @Test("statistics stored while writing equal the statistics of the batches merged in order")
    func embeddedStatistics() throws {
        let directory = try TemporaryDirectory(prefix: "sluice-tablefile")
        let table = rows(5_000)
        let writer = try TableFileWriter(url: directory.path("t.arrow"), batchRows: 1_000, computeStatistics: true)
        try writer.append(table.slice(0..<2_500))
        try writer.append(table.slice(2_500..<5_000))
        let file = try writer.finish(columnNames: table.columnNames, columnTypes: table.columns.map(\.type))
        var merged = DatasetStatistics()
        for start in stride(from: 0, to: 5_000, by: 1_000) {
            merged.merge(DatasetStatistics(table.slice(start..<(start + 1_000))))
        }
        #expect(try file.embeddedStatistics() == merged)
        #expect(try TableFile.write(table, to: directory.path("plain.arrow")).embeddedStatistics() == nil)
    }

    @Test("text columns read back with their values in order of first appearance: empty, missing, many distinct")
    func textColumnsRoundTrip() throws {
        let directory = try TemporaryDirectory(prefix: "sluice-tablefile")
        // 5,000 distinct values (the lookup grows many times), repeats, the empty string and missing rows.
        let values: [String?] = (0..<20_000).map { k in
            k % 17 == 0 ? nil : k % 13 == 0 ? "" : "v\((k * 7_919) % 5_000)-ü"
        }
        var dictionary: [String] = []
        var lookup: [String: Int32] = [:]
        let codes = values.map { value -> Int32 in
            guard let value else { return -1 }
            if let code = lookup[value] { return code }
            lookup[value] = Int32(dictionary.count)
            dictionary.append(value)
            return Int32(dictionary.count - 1)
        }
        let table = Table(columns: [Column(name: "t", storage: .string(codes: codes, dictionary: dictionary))])
        let file = try TableFile.write(table, to: directory.path("t.arrow"), batchRows: 20_000)
        // One batch: the codes and the dictionary come back exactly as written.
        #expect(try file.readAll() == table)
        let column = try file.column("t")
        #expect((0..<values.count).map { column.string($0) } == values)
    }

    @Test("a column of distinct text values holds only the kept rows' values between batches")
    func distinctTextStaysBounded() throws {
        let directory = try TemporaryDirectory(prefix: "sluice-tablefile")
        let writer = try TableFileWriter(url: directory.path("ids.arrow"), batchRows: 1_000)
        for piece in 0..<20 {
            let ids = (0..<1_500).map { "id-\(piece)-\($0)" }
            let table = Table(columns: [
                Column(name: "id", storage: .string(codes: (0..<1_500).map(Int32.init), dictionary: ids))
            ])
            try writer.append(table)
            #expect(writer.heldTextValues < 1_000, "piece \(piece) holds \(writer.heldTextValues) values")
        }
        let file = try writer.finish(columnNames: ["id"], columnTypes: [.string])
        let column = try file.column("id")
        #expect(file.rowCount == 30_000)
        #expect(column.string(29_999) == "id-19-1499")
        #expect(column.string(1_500) == "id-1-0")
    }

    @Test("a file that is not finished leaves nothing at its path")
    func unfinishedLeavesNothing() throws {
        let directory = try TemporaryDirectory(prefix: "sluice-tablefile")
        do {
            let writer = try TableFileWriter(url: directory.path("t.arrow"), batchRows: 10)
            try writer.append(rows(95))
        }
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: directory.url.path).filter { !$0.hasPrefix(".") }
                .isEmpty)
    }

    @Test(
        "every split method streams to exactly the rows the in-memory split gives",
        arguments: [
            SplitMethod.random(seed: 7), .stratified(label: "label", seed: 3), .hashed(key: "id"),
            .byTime(column: "when"),
        ])
    func streamingSplitEqualsInMemory(method: SplitMethod) throws {
        let directory = try TemporaryDirectory(prefix: "sluice-tablefile")
        let table = rows(3_000)
        let file = try TableFile.write(table, to: directory.path("all.arrow"), batchRows: 256)
        let streamed = try file.split(
            method, evalFraction: 0.2, train: directory.path("train.arrow"), eval: directory.path("eval.arrow"))
        let inMemory = try table.split(method, evalFraction: 0.2)
        #expect(try cells(streamed.train.readAll()) == cells(inMemory.train))
        #expect(try cells(streamed.eval.readAll()) == cells(inMemory.eval))
        #expect(streamed.info == inMemory.info)
        #expect(streamed.train.batchRowCounts.allSatisfy { $0 <= TableFile.defaultBatchRows })
    }

    @Test("a streaming split names a missing column")
    func streamingSplitErrors() throws {
        let directory = try TemporaryDirectory(prefix: "sluice-tablefile")
        let file = try TableFile.write(rows(10), to: directory.path("all.arrow"))
        let error = #expect(throws: SplitError.self) {
            try file.split(
                .stratified(label: "species", seed: 1), evalFraction: 0.2, train: directory.path("a"),
                eval: directory.path("b"))
        }
        #expect(error?.problem == "there is no column 'species' to stratify by")
        #expect(error?.fix == "use one of id, x, n, flag, when, label.")
    }
}
