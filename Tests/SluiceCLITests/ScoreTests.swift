import Foundation
import SluiceComponents
import SluiceData
import SluiceML
import SluiceTesting
import Testing

@Suite("sluice score")
struct ScoreTests {
    /// A project with the demo model, its bundle, and the shipped penguins (complete rows) with an `id` column.
    struct Setup {
        let directory: TemporaryDirectory
        let bundle: ModelBundle
        let rows: [[String: RawValue]]
        let ids: [Int]
        let csv: String
    }

    static func setup() async throws -> Setup {
        let directory = try TemporaryDirectory(prefix: "sluice-score")
        let bundle = try await exportedDemoBundle(in: directory)
        let lines = DemoData.penguinsCSV.split(separator: "\n").map(String.init)
        let names = lines[0].split(separator: ",").map(String.init)
        var rows: [[String: RawValue]] = []
        var ids: [Int] = []
        var csv = "id," + lines[0] + "\n"
        for line in lines.dropFirst() where !line.contains("NA") {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            var row: [String: RawValue] = [:]
            for input in bundle.signature.inputs {
                let text = fields[names.firstIndex(of: input.name)!]
                row[input.name] = input.type == .string ? .text(text) : .number(Double(text)!)
            }
            ids.append(1000 + rows.count)
            rows.append(row)
            csv += "\(ids.last!)," + line + "\n"
        }
        return Setup(directory: directory, bundle: bundle, rows: rows, ids: ids, csv: csv)
    }

    /// Checks a scored table against the in-process predictions, bit for bit.
    static func checkScored(_ table: Table, _ setup: Setup) throws {
        let local = try setup.bundle.predict(rows: setup.rows)
        guard case .classification(let classes) = setup.bundle.model.task else {
            Issue.record("the demo model is a classifier")
            return
        }
        #expect(
            table.columnNames
                == ["id", "prediction"] + classes.map { "probability_\($0)" } + ["model_version"])
        #expect(table.rowCount == setup.rows.count)
        #expect((0..<table.rowCount).map { table["id"]!.string($0) } == setup.ids.map(String.init))
        #expect(
            (0..<table.rowCount).map { table["prediction"]!.string($0)! }
                == local.predictedClasses.map { classes[Int($0)] })
        for (c, name) in classes.enumerated() {
            let column = try #require(table["probability_\(name)"])
            #expect(
                (0..<table.rowCount).map { column.double($0)!.bitPattern }
                    == (0..<table.rowCount).map { local.values[$0 * classes.count + c].bitPattern })
        }
        #expect(Set((0..<table.rowCount).map { table["model_version"]!.string($0) }) == ["penguins@1"])
    }

    @Test("CSV in, CSV and Arrow out: the in-process predictions bit for bit, with kept columns and the version")
    func scoresCSV() async throws {
        let setup = try await Self.setup()
        let directory = setup.directory
        try setup.csv.write(to: directory.path("new.csv"), atomically: true, encoding: .utf8)
        // Each format twice: the second run replaces the first's output.
        for output in ["scored.csv", "scored.arrow", "scored.csv", "scored.arrow"] {
            let result = try await CommandProcess.run(
                "sluice", ["score", "penguins@production", "new.csv", "-o", output, "--keep", "id"], in: directory.url)
            #expect(result.status == 0, "\(result.errors)")
            #expect(result.output.contains("scored \(setup.rows.count) rows with penguins@1"), "\(result.output)")
            let table =
                output.hasSuffix(".csv")
                ? try CSVReader(
                    files: [directory.path(output)],
                    options: {
                        var options = CSVOptions()
                        options.schema = ["id": .string]
                        return options
                    }()
                ).readTable()
                : try ArrowFile.read(contentsOf: directory.path(output))
            try Self.checkScored(table, setup)
        }
    }

    @Test("Arrow in, many record batches: the same predictions as from CSV")
    func scoresArrow() async throws {
        let setup = try await Self.setup()
        let directory = setup.directory
        try setup.csv.write(to: directory.path("new.csv"), atomically: true, encoding: .utf8)
        var options = CSVOptions()
        options.schema = ["id": .string]
        let input = try CSVReader(files: [directory.path("new.csv")], options: options).readTable()
        let writer = try ArrowFileWriter(
            url: directory.path("new.arrow"), columnNames: input.columnNames, columnTypes: input.columns.map(\.type))
        var start = 0
        while start < input.rowCount {
            let end = min(start + 37, input.rowCount)
            try writer.write(Table(columns: input.columns.map { $0.slice(start..<end) }))
            start = end
        }
        try writer.finish()
        #expect(try ArrowFileReader(contentsOf: directory.path("new.arrow")).batchCount > 3)
        let result = try await CommandProcess.run(
            "sluice", ["score", "penguins@production", "new.arrow", "-o", "scored.arrow", "--keep", "id"],
            in: directory.url)
        #expect(result.status == 0, "\(result.errors)")
        let scored = try ArrowFileReader(contentsOf: directory.path("scored.arrow"))
        #expect(scored.batchCount > 3, "written batch by batch")
        try Self.checkScored(try scored.readAll(), setup)
    }

    @Test("a row that cannot be read stops the job with file:line:column and writes nothing, or is skipped and counted")
    func badRows() async throws {
        let setup = try await Self.setup()
        let directory = setup.directory
        var lines = setup.csv.split(separator: "\n").map(String.init)
        // The third data row (line 4) gets text for bill_length_mm (its fourth field).
        var fields = lines[3].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        fields[3] = "heavy"
        lines[3] = fields.joined(separator: ",")
        try (lines.joined(separator: "\n") + "\n").write(
            to: directory.path("bad.csv"), atomically: true, encoding: .utf8)
        let stopped = try await CommandProcess.run(
            "sluice", ["score", "penguins@production", "bad.csv", "-o", "scored.csv"], in: directory.url)
        #expect(stopped.status == 2)
        #expect(stopped.errors.contains("bad.csv:4:"), "\(stopped.errors)")
        #expect(stopped.errors.contains("'bill_length_mm'"))
        #expect(stopped.errors.contains("expected a number but found 'heavy'"))
        #expect(!FileManager.default.fileExists(atPath: directory.path("scored.csv").path))
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: directory.url.path).allSatisfy {
                !$0.contains("partial")
            }, "no partial output left behind")

        let skipped = try await CommandProcess.run(
            "sluice", ["score", "penguins@production", "bad.csv", "-o", "scored.csv", "--skip-bad-rows"],
            in: directory.url)
        #expect(skipped.status == 0, "\(skipped.errors)")
        #expect(skipped.output.contains("scored \(setup.rows.count - 1) rows"))
        #expect(skipped.output.contains("skipped 1 bad row"))
        #expect(skipped.output.contains("bad.csv:4:"))
    }

    @Test("a missing input column, an unknown model and an unknown output format are refused with exit 2")
    func refusals() async throws {
        let setup = try await Self.setup()
        let directory = setup.directory
        try "id,island\n1,Biscoe\n".write(to: directory.path("thin.csv"), atomically: true, encoding: .utf8)
        let thin = try await CommandProcess.run(
            "sluice", ["score", "penguins@production", "thin.csv", "-o", "out.csv"], in: directory.url)
        #expect(thin.status == 2)
        #expect(thin.errors.contains("thin.csv has no column 'bill_length_mm'"), "\(thin.errors)")
        let clash = try await CommandProcess.run(
            "sluice", ["score", "penguins@production", "thin.csv", "-o", "out.csv", "--keep", "prediction"],
            in: directory.url)
        #expect(clash.status == 2)
        #expect(clash.errors.contains("has the name of an output column"))
        let format = try await CommandProcess.run(
            "sluice", ["score", "penguins@production", "thin.csv", "-o", "out.parquet"], in: directory.url)
        #expect(format.status != 0)
        #expect(format.errors.contains("must name a .csv or .arrow file"))
        let unknown = try await CommandProcess.run(
            "sluice", ["score", "walrus@production", "thin.csv", "-o", "out.csv"], in: directory.url)
        #expect(unknown.status == 2, "\(unknown.errors)")
        #expect(!FileManager.default.fileExists(atPath: directory.path("out.csv").path))
    }
    @Test("a YAML pipeline scores with model and score steps, reuses its cache, and rescores after a promotion")
    func scoringPipeline() async throws {
        let setup = try await Self.setup()
        let directory = setup.directory
        #expect(
            try await CommandProcess.run("sluice", ["demo", "--set", "train.rounds=10"], in: directory.url).status
                == 0)
        try setup.csv.write(to: directory.path("new.csv"), atomically: true, encoding: .utf8)
        try """
        pipeline: penguins-scoring
        steps:
          ingest:
            component: ingest_csv
            parameters: {paths: [new.csv]}
          model:
            component: model
            parameters: {model: penguins@production}
          score:
            component: score
            inputs: {table: ingest.table, model: model}
            parameters: {keep: [id]}
        """.write(to: directory.path("score.yaml"), atomically: true, encoding: .utf8)

        /// Runs the pipeline and returns its output and the scored table.
        func run() async throws -> (String, Table) {
            let result = try await CommandProcess.run("sluice", ["run", "score.yaml"], in: directory.url)
            #expect(result.status == 0, "\(result.errors)")
            let listed = try await CommandProcess.run(
                "sluice", ["artifacts", "list", "--name", "output", "--limit", "1", "--json"], in: directory.url)
            let entries = try #require(
                try JSONSerialization.jsonObject(with: Data(listed.output.utf8)) as? [[String: Any]])
            let uri = try #require(entries.first?["uri"] as? String)
            return (result.errors, try ArrowFile.read(contentsOf: directory.path(".sluice/artifacts/\(uri)")))
        }
        let (first, scored) = try await run()
        #expect(first.contains("score done"), "\(first)")
        try Self.checkScored(scored, setup)

        let (again, _) = try await run()
        #expect(again.contains("model cached") && again.contains("score cached"), "\(again)")

        // A promotion changes what the model step reads: it and the scoring run again, with the new version.
        #expect(
            try await CommandProcess.run("sluice", ["models", "promote", "penguins", "2"], in: directory.url).status
                == 0)
        let (promoted, rescored) = try await run()
        #expect(promoted.contains("model done") && promoted.contains("score done"), "\(promoted)")
        #expect(Set((0..<rescored.rowCount).map { rescored["model_version"]!.string($0) }) == ["penguins@2"])
    }

    @Test(
        "score_files scores files one shard each: the in-process predictions bit for bit, cached, rescored on promotion"
    )
    func scoringFilesSharded() async throws {
        let setup = try await Self.setup()
        let directory = setup.directory
        #expect(
            try await CommandProcess.run("sluice", ["demo", "--set", "train.rounds=10"], in: directory.url).status
                == 0)
        let lines = setup.csv.split(separator: "\n").map(String.init)
        try FileManager.default.createDirectory(at: directory.path("files"), withIntermediateDirectories: true)
        let body = Array(lines.dropFirst())
        for part in 0..<3 {
            let rows = body[(part * body.count / 3)..<((part + 1) * body.count / 3)]
            try ([lines[0]] + rows).joined(separator: "\n").appending("\n").write(
                to: directory.path("files/part\(part).csv"), atomically: true, encoding: .utf8)
        }
        try """
        pipeline: penguins-files
        steps:
          scores:
            component: score_files
            parameters: {paths: [files/*.csv], model: penguins@production, keep: [id]}
        """.write(to: directory.path("files.yaml"), atomically: true, encoding: .utf8)
        var stackFile = try String(contentsOf: directory.path(".sluice/stack.yaml"), encoding: .utf8)
        stackFile += "  processes: {orchestrator: process}\n"
        try Data(stackFile.utf8).write(to: directory.path(".sluice/stack.yaml"))

        /// Runs the pipeline on `stack` and returns its output and the scored table.
        func run(_ stack: String = "local", _ extra: [String] = []) async throws -> (String, Table) {
            let result = try await CommandProcess.run(
                "sluice", ["run", "files.yaml", "--stack", stack] + extra, in: directory.url)
            #expect(result.status == 0, "\(result.errors)")
            let hashes = try await ShardedIngestTests.outputHashes(stack: stack, in: directory.url)
            let hash = try #require(hashes["scores.output"]).dropFirst("sha256:".count)
            return (result.errors, try ArrowFile.read(contentsOf: directory.path(".sluice/artifacts/sha256/\(hash)")))
        }
        let (first, scored) = try await run()
        #expect(first.contains("scores done"), "\(first)")
        try Self.checkScored(scored, setup)
        let (again, _) = try await run()
        #expect(again.contains("scores cached"), "\(again)")
        // The shards again in a step process, not from the cache: the same bytes.
        let (fresh, processes) = try await run("processes", ["--no-cache"])
        #expect(fresh.contains("scores done"), "\(fresh)")
        #expect(processes == scored)

        #expect(
            try await CommandProcess.run("sluice", ["models", "promote", "penguins", "2"], in: directory.url).status
                == 0)
        let (promoted, rescored) = try await run()
        #expect(promoted.contains("scores done"), "\(promoted)")
        #expect(Set((0..<rescored.rowCount).map { rescored["model_version"]!.string($0) }) == ["penguins@2"])
    }

    @Test("Ctrl-C stops scoring with exit 130 and leaves no output, not even a partial file")
    func interrupted() async throws {
        let setup = try await Self.setup()
        let directory = setup.directory
        // About 40 MB of rows, two windows: many seconds of scoring for a debug build. Written on a thread of its
        // own, off the threads Swift concurrency shares between the tests running at once.
        let body = setup.csv.split(separator: "\n").dropFirst().joined(separator: "\n") + "\n"
        let header = setup.csv.prefix { $0 != "\n" } + "\n"
        let url = directory.path("big.csv")
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            Thread {
                continuation.resume(
                    with: Result {
                        var text = String(header)
                        while text.utf8.count < 40_000_000 { text += body }
                        try Data(text.utf8).write(to: url)
                    })
            }.start()
        }
        let job = try CommandProcess(
            "sluice", ["score", "penguins@production", "big.csv", "-o", "scored.arrow"], in: directory.url)
        // Interrupted once it says it is scoring (its Ctrl-C handler is in place by then).
        try await job.waitForError(containing: "scoring big.csv with penguins@1")
        kill(job.process.processIdentifier, SIGINT)
        #expect(await job.wait(timeout: .seconds(120)) == 130, "\(job.errors)")
        #expect(job.errors.contains("stopped: nothing written to scored.arrow"))
        let left = try FileManager.default.contentsOfDirectory(atPath: directory.url.path)
        #expect(!left.contains("scored.arrow"))
        #expect(!left.contains { $0.contains("partial") }, "\(left)")
    }
}
