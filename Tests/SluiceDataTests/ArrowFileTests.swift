import Foundation
import SluiceTesting
import Testing

@testable import SluiceData

/// Runs a Python script with pyarrow and pandas (installed under `.build/test-python` on first use) and returns its
/// standard output.
func python(_ script: String) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", script]
    process.environment = try PythonPackages.environment(
        modules: ["pyarrow", "pandas"], packages: ["pyarrow", "pandas"])
    let output = Pipe()
    let errors = Pipe()
    process.standardOutput = output
    process.standardError = errors
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    let problem = errors.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    try #require(
        process.terminationStatus == 0,
        "python3 failed:\n\(String(decoding: problem, as: UTF8.self))")
    return String(decoding: data, as: UTF8.self)
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
    func pyarrowReadsSluice() throws {
        let directory = try TemporaryDirectory(prefix: "sluice-arrow")
        let url = directory.path("t.arrow")
        try ArrowFile.write(try sample(), to: url)
        let output = try python(
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
    func sluiceReadsPyarrow() throws {
        let directory = try TemporaryDirectory(prefix: "sluice-arrow")
        let url = directory.path("py.arrow")
        _ = try python(
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
    func refusals() throws {
        let directory = try TemporaryDirectory(prefix: "sluice-arrow")
        let url = directory.path("lz4.arrow")
        _ = try python(
            "import pyarrow as pa, pyarrow.feather as f; f.write_feather(pa.table({'x': [1, 2]}), '\(url.path)')")
        let compressed = #expect(throws: ArrowFile.FormatError.self) { try ArrowFile.read(contentsOf: url) }
        #expect(compressed?.problem.contains("compressed") == true)
        let garbage = #expect(throws: ArrowFile.FormatError.self) { try ArrowFile.read(Data("hello, world".utf8)) }
        #expect(garbage?.problem == "the file does not start and end with ARROW1")
    }
}
