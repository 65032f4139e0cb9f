import Foundation
import SluiceTesting
import Testing

@testable import SluiceData

/// Runs a Python script with pyarrow and pandas (installed under `.build/test-python` on first use) and returns its
/// standard output.
func python(_ script: String) async throws -> String {
    try await PythonPackages.run(script, modules: ["pyarrow", "pandas"], packages: ["pyarrow", "pandas"])
}

@Suite("Arrow IPC files (Feather v2)")
struct ArrowFileTests {
    func sample() throws -> Table {
        try read(
            """
            i,f,b,s,t
            1,1.5,true,x,2024-01-01T00:00:00Z
            ,NA,false,,2024-01-02T12:00:00.5Z
            -3,2.25,,yy,
            9007199254740993,-0.0,true,héllo,1999-12-31T23:59:59Z
            """)
    }

    @Test("a table survives a round trip through its own Arrow file")
    func roundTrip() throws {
        let table = try sample()
        #expect(try ArrowFile.read(ArrowFile.data(for: table)) == table)
        let empty = Table(columns: [Column(name: "x", storage: .float([], valid: []))])
        #expect(try ArrowFile.read(ArrowFile.data(for: empty)).columnNames == ["x"])
    }

    @Test("pyarrow.feather.read_table opens a Sluice-written file with the same values and types")
    func pyarrowReadsSluice() async throws {
        let directory = try TemporaryDirectory(prefix: "sluice-arrow")
        let url = directory.path("t.arrow")
        try ArrowFile.write(try sample(), to: url)
        let output = try await python(
            """
            import json, pyarrow.feather as f
            t = f.read_table('\(url.path)')
            print(json.dumps({'types': [str(x.type) for x in t.schema],
                              'values': {k: [str(v) if v is not None else None for v in vs] for k, vs in t.to_pydict().items()}}))
            """)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])
        #expect(json["types"] as? [String] == ["int64", "double", "bool", "string", "timestamp[us, tz=UTC]"])
        let values = try #require(json["values"] as? [String: [Any]])
        #expect(values["i"]?.map { $0 as? String } == ["1", nil, "-3", "9007199254740993"])
        #expect(values["f"]?.map { $0 as? String } == ["1.5", nil, "2.25", "-0.0"])
        #expect(values["b"]?.map { $0 as? String } == ["True", "False", nil, "True"])
        #expect(values["s"]?.map { $0 as? String } == ["x", nil, "yy", "héllo"])
        #expect(values["t"]?.map { $0 as? String }[1] == "2024-01-02 12:00:00.500000+00:00")
    }

    @Test("Sluice reads a pyarrow-written file: narrow ints, float32, strings, categoricals, bools, timestamps")
    func sluiceReadsPyarrow() async throws {
        let directory = try TemporaryDirectory(prefix: "sluice-arrow")
        let url = directory.path("py.arrow")
        _ = try await python(
            """
            import datetime, pandas as pd, pyarrow as pa, pyarrow.feather as f
            t = pa.table({
                'i': pa.array([1, None, 3], pa.int32()),
                'u': pa.array([200, 0, None], pa.uint8()),
                'f': pa.array([0.5, None, 1.0], pa.float32()),
                's': pa.array(['a', None, 'bb']),
                'c': pd.Categorical(['u', 'v', 'u']),
                'b': [True, False, None],
                't': pa.array([datetime.datetime(2024, 1, 1), None, datetime.datetime(2024, 1, 2, 3, 4, 5)], pa.timestamp('ns')),
            })
            f.write_feather(t, '\(url.path)', compression='uncompressed')
            """)
        let table = try ArrowFile.read(contentsOf: url)
        #expect(table.columnNames == ["i", "u", "f", "s", "c", "b", "t"])
        #expect(table.columns.map(\.type) == [.integer, .integer, .float, .string, .string, .boolean, .timestamp])
        #expect(table["i"]!.storage == .integer([1, 0, 3], valid: [true, false, true]))
        #expect(table["u"]!.storage == .integer([200, 0, 0], valid: [true, true, false]))
        #expect(table["f"]!.storage == .float([0.5, 0, 1], valid: [true, false, true]))
        #expect((0..<3).map { table["s"]!.string($0) } == ["a", nil, "bb"])
        #expect((0..<3).map { table["c"]!.string($0) } == ["u", "v", "u"])
        #expect(table["b"]!.storage == .boolean([true, false, false], valid: [true, true, false]))
        #expect(table["t"]!.double(2) == Double(1_704_164_645_000_000))
    }

    @Test("compressed and foreign files are refused with the reason")
    func refusals() async throws {
        let directory = try TemporaryDirectory(prefix: "sluice-arrow")
        let url = directory.path("lz4.arrow")
        _ = try await python(
            "import pyarrow as pa, pyarrow.feather as f; f.write_feather(pa.table({'x': [1, 2]}), '\(url.path)')")
        let compressed = #expect(throws: ArrowFile.FormatError.self) { try ArrowFile.read(contentsOf: url) }
        #expect(compressed?.problem.contains("compressed") == true)
        let garbage = #expect(throws: ArrowFile.FormatError.self) { try ArrowFile.read(Data("hello, world".utf8)) }
        #expect(garbage?.problem == "the file does not start and end with ARROW1")
    }
    /// Five batches of the sample's columns, each with its own rows (and its own string dictionary).
    func batches() throws -> [Table] {
        try (0..<5).map { k in
            try read(
                """
                i,f,b,s,t
                \(k),\(Double(k) / 4),true,batch\(k),2024-01-0\(k + 1)T00:00:00Z
                ,NA,false,,
                \(-k),2.25,,shared,2024-02-01T00:00:00Z
                """,
                options: {
                    var options = CSVOptions()
                    options.schema = ["i": .integer, "f": .float, "b": .boolean, "s": .string, "t": .timestamp]
                    return options
                }())
        }
    }

    @Test("a file written batch by batch reads back batch by batch and as one table")
    func manyBatches() throws {
        let directory = try TemporaryDirectory(prefix: "sluice-arrow")
        let url = directory.path("many.arrow")
        let parts = try batches()
        let writer = try ArrowFileWriter(
            url: url, columnNames: parts[0].columnNames, columnTypes: parts[0].columns.map(\.type))
        for part in parts { try writer.write(part) }
        #expect(!FileManager.default.fileExists(atPath: url.path), "the file appears only when finished")
        try writer.finish()
        #expect(writer.rowsWritten == 15)
        let reader = try ArrowFileReader(contentsOf: url)
        #expect(reader.batchCount == 5)
        #expect(reader.columnNames == ["i", "f", "b", "s", "t"])
        for k in 0..<5 { #expect(try reader.batch(k) == parts[k]) }
        let whole = try ArrowFile.read(contentsOf: url)
        #expect(whole.rowCount == 15)
        #expect(
            (0..<15).map { whole["s"]!.string($0) } == parts.flatMap { part in (0..<3).map { part["s"]!.string($0) } })
        // The single-batch form of the same rows reads the same.
        #expect(try ArrowFile.read(ArrowFile.data(for: whole)) == whole)
        // Only the folder's file is left: no partial file beside it.
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.url.path) == ["many.arrow"])
    }

    @Test("a batch whose columns differ is refused, and an unfinished file never appears")
    func unfinishedWriter() throws {
        let directory = try TemporaryDirectory(prefix: "sluice-arrow")
        let url = directory.path("never.arrow")
        let parts = try batches()
        do {
            let writer = try ArrowFileWriter(url: url, columnNames: ["i"], columnTypes: [.integer])
            let refused = #expect(throws: ArrowFile.FormatError.self) { try writer.write(parts[0]) }
            #expect(refused?.problem.contains("does not match the file's") == true)
            try writer.write(Table(columns: [parts[0]["i"]!]))
        }  // dropped without finish(), as when a job fails midway
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.url.path).isEmpty)
    }

    @Test("pyarrow reads a many-batch Sluice file batch by batch, and Sluice reads pyarrow's many-batch files")
    func manyBatchesWithPyarrow() async throws {
        let directory = try TemporaryDirectory(prefix: "sluice-arrow")
        let ours = directory.path("ours.arrow")
        let parts = try batches()
        let writer = try ArrowFileWriter(
            url: ours, columnNames: parts[0].columnNames, columnTypes: parts[0].columns.map(\.type))
        for part in parts { try writer.write(part) }
        try writer.finish()
        let theirs = directory.path("theirs.arrow")
        let output = try await python(
            """
            import json, pyarrow as pa
            r = pa.ipc.open_file('\(ours.path)')
            batches = [r.get_batch(k) for k in range(r.num_record_batches)]
            print(json.dumps({'batches': r.num_record_batches, 'rows': [b.num_rows for b in batches],
                              's': [b.column(3).to_pylist() for b in batches], 'i': r.read_all().column(0).to_pylist()}))
            schema = pa.schema([('k', pa.int64()), ('name', pa.string()), ('x', pa.float64())])
            with pa.ipc.new_file('\(theirs.path)', schema) as w:
                for b in range(7):
                    w.write_batch(pa.record_batch([pa.array([b * 10 + j for j in range(4)]),
                                                   pa.array([f'n{b}-{j}' if j != 2 else None for j in range(4)]),
                                                   pa.array([b + j / 8 for j in range(4)])], schema=schema))
            """)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])
        #expect(json["batches"] as? Int == 5)
        #expect(json["rows"] as? [Int] == [3, 3, 3, 3, 3])
        #expect(
            (json["s"] as? [[Any]])?.map { $0.map { $0 as? String } }
                == parts.map { p in (0..<3).map { p["s"]!.string($0) } })
        #expect(
            (json["i"] as? [Any])?.map { $0 as? Int } == [0, nil, 0, 1, nil, -1, 2, nil, -2, 3, nil, -3, 4, nil, -4])

        let reader = try ArrowFileReader(contentsOf: theirs)
        #expect(reader.batchCount == 7)
        #expect(reader.columnTypes == [.integer, .string, .float])
        let sixth = try reader.batch(6)
        #expect(sixth["k"]!.storage == .integer([60, 61, 62, 63], valid: [true, true, true, true]))
        #expect((0..<4).map { sixth["name"]!.string($0) } == ["n6-0", "n6-1", nil, "n6-3"])
        // Some columns only: in the file's order, the others skipped.
        let projected = try reader.batch(6, columns: ["x", "name"])
        #expect(projected.columnNames == ["name", "x"])
        #expect(projected["x"] == sixth["x"])
        #expect((0..<4).map { projected["name"]!.string($0) } == ["n6-0", "n6-1", nil, "n6-3"])
        #expect(try reader.readAll().rowCount == 28)
    }
}
