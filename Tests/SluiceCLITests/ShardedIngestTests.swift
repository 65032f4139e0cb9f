import Foundation
import SluiceData
import SluiceTesting
import Testing

@Suite("Sharded CSV ingest")
struct ShardedIngestTests {
    /// The content hash of each output of each step of the project's latest run on `stack`.
    static func outputHashes(stack: String, in directory: URL, environment: [String: String] = [:]) async throws
        -> [String: String]
    {
        let id = try await latestRunID(stack: stack, in: directory, environment: environment)
        let shown = try await CommandProcess.run(
            "sluice", ["runs", "show", id, "--json", "--stack", stack], in: directory, environment: environment)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(shown.output.utf8)) as? [String: Any])
        var hashes: [String: String] = [:]
        for step in try #require(object["steps"] as? [[String: Any]]) {
            let name = try #require((step["stepRun"] as? [String: Any])?["stepName"] as? String)
            for (output, record) in step["outputs"] as? [String: [String: Any]] ?? [:] {
                hashes["\(name).\(output)"] = record["contentHash"] as? String
            }
        }
        return hashes
    }

    /// Initializes a project in `directory` with a `processes` stack beside `local`, runs `file` on each, and
    /// returns each stack's output hashes (``outputHashes(stack:in:environment:)``).
    static func runOnBothStacks(_ file: String, in directory: TemporaryDirectory) async throws
        -> [(stack: String, hashes: [String: String])]
    {
        let initialized = try await CommandProcess.run("sluice", ["init"], in: directory.url)
        #expect(initialized.status == 0, "\(initialized.errors)")
        var stackFile = try String(contentsOf: directory.path(".sluice/stack.yaml"), encoding: .utf8)
        stackFile += "  processes: {orchestrator: process, metadata_store: processes.sqlite}\n"
        try Data(stackFile.utf8).write(to: directory.path(".sluice/stack.yaml"))
        var results: [(stack: String, hashes: [String: String])] = []
        for stack in ["local", "processes"] {
            let run = try await CommandProcess.run("sluice", ["run", file, "--stack", stack], in: directory.url)
            #expect(run.status == 0, "\(stack): \(run.output)\n\(run.errors)")
            results.append((stack, try await outputHashes(stack: stack, in: directory.url)))
        }
        return results
    }

    @Test(
        "ingest one shard per file gives the bytes one reader gives: widened columns, text, missing values, bad rows"
    )
    func shardedEqualsSingleReader() async throws {
        let directory = try TemporaryDirectory(prefix: "sluice-sharded-ingest")
        try FileManager.default.createDirectory(at: directory.path("data"), withIntermediateDirectories: true)
        // `n` holds whole numbers until part 2; `when` is text in every file; part 3 has a malformed row.
        for part in 0..<4 {
            var lines = ["id,n,x,shop,label"]
            for row in 0..<3_000 {
                let k = part * 3_000 + row
                let n = part == 2 && row == 1_500 ? "2.5" : String(k % 97)
                let x = k % 31 == 0 ? "" : String(Double(k) / 8)
                lines.append("\(k),\(n),\(x),shop_\(k % 7),\(k % 3 == 0 ? "yes" : "no")")
            }
            if part == 3 { lines.insert("9999,1,2", at: 10) }
            try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: directory.path("data/part\(part).csv"))
        }
        try Data(
            """
            pipeline: sharded-ingest
            steps:
              ingest:
                component: ingest_csv
                parameters: {paths: [data/*.csv], skip_bad_rows: true}
              sharded:
                component: ingest_csv_sharded
                parameters: {paths: [data/*.csv], skip_bad_rows: true}

            """.utf8
        ).write(to: directory.path("ingest.yaml"))
        for (stack, hashes) in try await Self.runOnBothStacks("ingest.yaml", in: directory) {
            #expect(hashes["ingest.table"] != nil)
            #expect(hashes["sharded.table"] == hashes["ingest.table"], "\(stack): \(hashes)")
            #expect(hashes["sharded.info"] == hashes["ingest.info"], "\(stack): \(hashes)")
            // The table itself: 12,000 rows (the malformed one skipped), `n` a float column after part 2.
            let hash = try #require(hashes["sharded.table"]).dropFirst("sha256:".count)
            let table = try TableFile(contentsOf: directory.path(".sluice/artifacts/sha256/\(hash)"))
            #expect(table.rowCount == 12_000)
            #expect(table.columnTypes == [.integer, .float, .float, .string, .string])
            #expect(try table.column("n").double(6_000 + 1_500) == 2.5)
            #expect(try table.embeddedStatistics()?.rows == 12_000)
        }
    }

    @Test(
        "sharded steps over the files list_files listed give the bytes they give over paths, re-run when a listed file changes; paths and files together are refused"
    )
    func shardedOverListedFiles() async throws {
        let directory = try TemporaryDirectory(prefix: "sluice-listed-files")
        try FileManager.default.createDirectory(at: directory.path("data"), withIntermediateDirectories: true)
        for part in 0..<3 {
            let rows = (0..<500).map { "\(part * 500 + $0),\(($0 * 7) % 13),shop_\($0 % 5)" }
            try Data((["id,n,shop"] + rows).joined(separator: "\n").appending("\n").utf8).write(
                to: directory.path("data/part\(part).csv"))
        }
        try Data(
            """
            pipeline: listed
            steps:
              files:
                component: list_files
                parameters: {paths: [data/*.csv]}
              stats:
                component: file_statistics
                parameters: {paths: [data/*.csv]}
              listed_stats:
                component: file_statistics
                inputs: {files: files}
              ingest:
                component: ingest_csv_sharded
                parameters: {paths: [data/*.csv]}
              listed_ingest:
                component: ingest_csv_sharded
                inputs: {files: files}

            """.utf8
        ).write(to: directory.path("listed.yaml"))
        for (stack, hashes) in try await Self.runOnBothStacks("listed.yaml", in: directory) {
            #expect(hashes["stats.output"] != nil && hashes["ingest.table"] != nil, "\(hashes)")
            #expect(hashes["listed_stats.output"] == hashes["stats.output"], "\(stack): \(hashes)")
            #expect(hashes["listed_ingest.table"] == hashes["ingest.table"], "\(stack): \(hashes)")
            #expect(hashes["listed_ingest.info"] == hashes["ingest.info"], "\(stack): \(hashes)")
        }

        // A listed file changes: the list's bytes change, so the steps reading it run again and agree again.
        try Data("id,n,shop\n9000,3,shop_9\n".utf8).write(to: directory.path("data/part1.csv"))
        let again = try await CommandProcess.run("sluice", ["run", "listed.yaml"], in: directory.url)
        #expect(again.status == 0, "\(again.errors)")
        let shown = try await CommandProcess.run(
            "sluice", ["runs", "show", "--json", try await Self.latestRunID(in: directory.url)], in: directory.url)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(shown.output.utf8)) as? [String: Any])
        let statuses = Dictionary(
            uniqueKeysWithValues: try #require(object["steps"] as? [[String: Any]]).compactMap { step in
                (step["stepRun"] as? [String: Any]).flatMap { run in
                    (run["stepName"] as? String).map { ($0, run["status"] as? String ?? "") }
                }
            })
        #expect(statuses["listed_stats"] == "completed", "\(statuses)")
        #expect(statuses["listed_ingest"] == "completed", "\(statuses)")
        let hashes = try await Self.outputHashes(stack: "local", in: directory.url)
        #expect(hashes["listed_stats.output"] == hashes["stats.output"], "\(hashes)")
        #expect(hashes["listed_ingest.table"] == hashes["ingest.table"], "\(hashes)")

        // Both `paths` and a `files` input: refused before any step runs, naming both.
        try Data(
            """
            pipeline: both
            steps:
              files:
                component: list_files
                parameters: {paths: [data/*.csv]}
              stats:
                component: file_statistics
                inputs: {files: files}
                parameters: {paths: [data/*.csv]}

            """.utf8
        ).write(to: directory.path("both.yaml"))
        let refused = try await CommandProcess.run("sluice", ["run", "both.yaml"], in: directory.url)
        #expect(refused.status == 2, "\(refused.output)\n\(refused.errors)")
        #expect(refused.errors.contains("'files' input") && refused.errors.contains("paths"), "\(refused.errors)")
    }

    /// The newest run's ID on `stack`.
    static func latestRunID(stack: String = "local", in directory: URL, environment: [String: String] = [:])
        async throws -> String
    {
        let list = try await CommandProcess.run(
            "sluice", ["runs", "list", "--json", "--limit", "1", "--stack", stack], in: directory,
            environment: environment)
        let runs = try #require(try JSONSerialization.jsonObject(with: Data(list.output.utf8)) as? [[String: Any]])
        return try #require(runs.first?["id"] as? String)
    }
}
