import Foundation
import SluiceTesting
import Testing

@testable import SluiceData

/// Writes `text` to a file in a fresh directory and returns its path.
func csvFile(_ text: String, name: String = "data.csv", in directory: TemporaryDirectory? = nil) throws -> String {
    let directory = try directory ?? TemporaryDirectory(prefix: "sluice-csv")
    let url = directory.path(name)
    try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
    try Data(text.utf8).write(to: url)
    return url.path
}

func read(_ text: String, options: CSVOptions = CSVOptions()) throws -> Table {
    try CSVReader(paths: [csvFile(text)], options: options).readTable()
}

@Suite("CSV reading")
struct CSVReaderTests {
    @Test("RFC 4180: quotes, escaped quotes, embedded newlines and delimiters, CRLF and a BOM")
    func rfc4180() throws {
        let text = "\u{FEFF}name,note\r\n\"Smith, Ann\",\"said \"\"hi\"\"\"\r\nBob,\"two\r\nlines\"\r\n\"\",plain"
        let table = try read(text)
        #expect(table.columnNames == ["name", "note"])
        #expect(table.rowCount == 3)
        #expect((0..<3).map { table["name"]!.string($0) } == ["Smith, Ann", "Bob", nil])
        #expect((0..<3).map { table["note"]!.string($0) } == ["said \"hi\"", "two\r\nlines", "plain"])
    }

    @Test("a carriage return not followed by a line feed is part of an unquoted field, in short and long fields")
    func loneCarriageReturn() throws {
        let text = "a,b\r\nx\ry,long field with\ra return inside\r\nend,\r"
        let table = try read(text)
        #expect(table.rowCount == 2)
        #expect((0..<2).map { table["a"]!.string($0) } == ["x\ry", "end"])
        #expect(table["b"]!.string(0) == "long field with\ra return inside")
        #expect(table["b"]!.string(1) == "\r")
    }

    @Test("types are inferred: integer, float, boolean, timestamp, string; missing tokens are missing")
    func inference() throws {
        let text = """
            i,f,b,t,s
            1,1.5,true,2024-03-01,a
            -2,NA,FALSE,2024-03-01T12:30:00.5Z,b
            ,3e2,,2024-03-02 00:00:00,
            """
        let table = try read(text)
        #expect(table.columns.map(\.type) == [.integer, .float, .boolean, .timestamp, .string])
        #expect(table["i"]!.storage == .integer([1, -2, 0], valid: [true, true, false]))
        #expect(table["f"]!.storage == .float([1.5, 0, 300], valid: [true, false, true]))
        #expect(table["b"]!.storage == .boolean([true, false, false], valid: [true, true, false]))
        #expect(table["t"]!.double(1) == Double(1_709_296_200_500_000))
        #expect(table["s"]!.string(2) == nil)
    }

    @Test("an explicit schema overrides inference, and delimiters and missing tokens are configurable")
    func schemaAndDelimiter() throws {
        var options = CSVOptions()
        options.delimiter = UInt8(ascii: ";")
        options.schema = ["zip": .string]
        options.missingValues = ["-"]
        let table = try read("zip;n\n01234;-\n99999;7\n", options: options)
        #expect(table["zip"]!.string(0) == "01234")
        #expect(table["n"]!.storage == .integer([0, 7], valid: [false, true]))
    }

    @Test("integers widen to floats when later rows have fractions, across windows")
    func widening() throws {
        var options = CSVOptions()
        options.windowSize = 1 << 16
        options.inferenceRows = 10
        let rows = (0..<20_000).map { "\($0)" } + ["2.5"]
        let table = try read("x\n" + rows.joined(separator: "\n") + "\n", options: options)
        #expect(table["x"]!.type == .float)
        #expect(table["x"]!.double(19_999) == 19_999)
        #expect(table["x"]!.double(20_000) == 2.5)
    }

    @Test("parallel, windowed parsing gives the same table as one thread, with quoted newlines across pieces")
    func parallelMatchesSequential() throws {
        var lines = ["id,text,value"]
        var random = SystemRandomNumberGenerator()
        for index in 0..<30_000 {
            let text = index % 7 == 0 ? "\"multi\nline, \"\"quoted\"\" \(index)\"" : "plain\(index % 13)"
            lines.append("\(index),\(text),\(Double(index) / 8)")
            _ = random.next()
        }
        let path = try csvFile(lines.joined(separator: "\n"))
        var one = CSVOptions()
        one.threads = 1
        var many = CSVOptions()
        many.threads = 4
        many.windowSize = 1 << 16
        let a = try CSVReader(paths: [path], options: one).readTable()
        let b = try CSVReader(paths: [path], options: many).readTable()
        #expect(a.rowCount == 30_000)
        #expect(b.rowCount == 30_000)
        #expect(a["value"] == b["value"])
        #expect((0..<30_000).allSatisfy { a["text"]!.string($0) == b["text"]!.string($0) })
        #expect(b["text"]!.string(7) == "multi\nline, \"quoted\" 7")
    }

    @Test("a 10 MB field is read whole, however small the window")
    func hugeField() throws {
        let big = String(repeating: "x", count: 10 << 20)
        var options = CSVOptions()
        options.windowSize = 1 << 16
        let table = try read("a,b\n1,\"\(big)\"\n2,small\n", options: options)
        #expect(table.rowCount == 2)
        #expect(table["b"]!.string(0)?.count == 10 << 20)
        #expect(table["b"]!.string(1) == "small")
    }

    @Test("many files, folders and globs read as one dataset, in a stable order")
    func manyFiles() throws {
        let directory = try TemporaryDirectory(prefix: "sluice-many")
        _ = try csvFile("x,y\n1,a\n", name: "2024/01/a.csv", in: directory)
        _ = try csvFile("x,y\n2,b\n", name: "2024/02/b.csv", in: directory)
        _ = try csvFile("x,y\n3,c\n", name: "2025/c.csv", in: directory)
        _ = try csvFile("ignored", name: "2025/readme.txt", in: directory)
        let folder = try CSVReader(paths: [directory.url.path]).readTable()
        #expect(folder["x"]!.storage == .integer([1, 2, 3], valid: [true, true, true]))
        let glob = try CSVReader(paths: [directory.url.path + "/2024/*/*.csv"]).readTable()
        #expect(glob["y"].map { c in (0..<c.count).map { c.string($0)! } } == ["a", "b"])
    }

    @Test("files with different columns are refused, naming the file")
    func headerMismatch() throws {
        let directory = try TemporaryDirectory(prefix: "sluice-mismatch")
        _ = try csvFile("x,y\n1,2\n", name: "a.csv", in: directory)
        let second = try csvFile("x,z\n1,2\n", name: "b.csv", in: directory)
        let error = #expect(throws: CSVError.self) { try CSVReader(paths: [directory.url.path]).readTable() }
        #expect(error?.file == second)
        #expect(error?.problem == "this file's columns (x, z) differ from the first file's (x, y)")
    }

    @Test(
        "malformed input names the file, line and column, and what was expected",
        arguments: [
            ("a,b\n1,2\n3\n", 3, 1, "expected 2 fields but found 1 (a ragged row)"),
            ("a,b\n1,2\n3,4,5\n", 3, 1, "expected 2 fields but found 3 (a ragged row)"),
            ("a,b\n1,\"open\n2,3\n", 2, 3, "a quoted field is never closed (unterminated quote)"),
            ("a,b\n1,2\n3,\"x\"y\n", 3, 6, "unexpected text after a closing quote"),
            ("n\n1\n2\nthree\n", 4, 1, "column 'n' (integer) expected a whole number but found 'three'"),
        ])
    func malformed(text: String, line: Int, column: Int, problem: String) throws {
        let path = try csvFile(text)
        var options = CSVOptions()
        options.inferenceRows = 2  // infer from the good rows, so a later bad value is a type error
        let error = #expect(throws: CSVError.self) { try CSVReader(paths: [path], options: options).readTable() }
        #expect(error?.file == path)
        #expect(error?.line == line)
        #expect(error?.column == column)
        #expect(error?.problem == problem)
        #expect(error?.description.contains("To fix:") == true)
    }

    @Test("invalid UTF-8 in a text column is named with its place")
    func invalidUTF8() throws {
        let directory = try TemporaryDirectory(prefix: "sluice-utf8")
        let url = directory.path("bad.csv")
        try Data("name\nok\n".utf8 + [0x66, 0xFF, 0xFE, 0x0A]).write(to: url)
        let error = #expect(throws: CSVError.self) { try CSVReader(paths: [url.path]).readTable() }
        #expect(error?.line == 3)
        #expect(error?.problem == "column 'name' has text that is not valid UTF-8")
    }

    @Test("an empty file is an error; a header-only file is an empty table")
    func emptyAndHeaderOnly() throws {
        let empty = try csvFile("")
        let error = #expect(throws: CSVError.self) { try CSVReader(paths: [empty]).readTable() }
        #expect(error?.problem == "the file is empty: there is no header row")
        let table = try read("a,b\n")
        #expect(table.columnNames == ["a", "b"])
        #expect(table.rowCount == 0)
    }

    @Test("bad rows can be skipped, counted, with the first examples kept")
    func skipBadRows() throws {
        var options = CSVOptions()
        options.skipBadRows = true
        options.badRowExamples = 2
        options.schema = ["n": .integer]
        let path = try csvFile("n,s\n1,a\nx,b\n2,c\n3\n4,d,e\n5,f\n")
        let reader = try CSVReader(paths: [path], options: options)
        var rows = 0
        let summary = try reader.forEachChunk { rows += $0.table.rowCount }
        #expect(rows == 3)
        #expect(summary.badRowCount == 3)
        #expect(summary.badRows.map(\.place) == ["\(path):3:1", "\(path):5:1"])
        #expect(summary.badRows[0].problem == "column 'n' (integer) expected a whole number but found 'x'")
    }

    @Test("a path that matches nothing says so")
    func missingPath() throws {
        let error = #expect(throws: CSVError.self) { try CSVReader(paths: ["/nonexistent/x.csv"]) }
        #expect(error?.problem == "no such file or folder")
    }
}
