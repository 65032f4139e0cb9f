import Foundation
import SluiceTesting
import Testing

@Suite("sluice data", .serialized)
struct DataCommandTests {
    func dataset(_ directory: TemporaryDirectory) throws -> String {
        var lines = ["price,rooms,city,listed"]
        for k in 0..<5_000 {
            let price = k % 100 == 0 ? "" : String(format: "%.2f", 100 + Double(k % 977) * 1.5)
            lines.append(
                "\(price),\(k % 6),\(["Lyon", "Paris", "Nice"][k % 3]),2024-01-\(String(format: "%02d", k % 28 + 1))")
        }
        let url = directory.path("houses.csv")
        try Data(lines.joined(separator: "\n").utf8).write(to: url)
        return url.path
    }

    @Test("stats prints a per-column summary and writes the HTML view")
    func statsTable() async throws {
        let directory = try TemporaryDirectory(prefix: "sluice-data")
        let path = try dataset(directory)
        let html = directory.path("stats.html").path
        let result = try await CommandProcess.run("sluice", ["data", "stats", path, "--html", html], in: directory.url)
        #expect(result.status == 0, "\(result.errors)")
        #expect(result.output.hasPrefix("dataset version sha256:"))
        #expect(result.output.contains("5000 rows, 4 columns"))
        #expect(result.output.contains("price   float"))
        #expect(result.output.contains("city    string"))
        #expect(result.output.contains("Lyon (1667)"))
        let page = try String(contentsOfFile: html, encoding: .utf8)
        #expect(page.components(separatedBy: "<svg").count - 1 == 4)
    }

    @Test("stats answers in JSON with exact counts")
    func statsJSON() async throws {
        let directory = try TemporaryDirectory(prefix: "sluice-data")
        let path = try dataset(directory)
        let result = try await CommandProcess.run("sluice", ["data", "stats", path, "--json"], in: directory.url)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any])
        #expect(json["rows"] as? Int == 5_000)
        let columns = try #require(json["columns"] as? [[String: Any]])
        #expect(columns.map { $0["name"] as? String } == ["price", "rooms", "city", "listed"])
        #expect(columns[0]["missing"] as? Int == 50)
        #expect(columns[3]["type"] as? String == "timestamp")
        let quantiles = try #require(columns[1]["quantiles"] as? [String: Double])
        #expect(quantiles["p50"] == 2)  // rooms cycle 0…5: the 2,500th of 5,000 sorted values is a 2
        let top = try #require(columns[2]["topValues"] as? [[String: Any]])
        #expect(top.first?["count"] as? Int == 1_667)
    }

    @Test("malformed input exits with status 2 and names the file, line and column")
    func malformedInput() async throws {
        let directory = try TemporaryDirectory(prefix: "sluice-data")
        let path = directory.path("bad.csv")
        try Data("a,b\n1,2\n3,\"open\n".utf8).write(to: path)
        let result = try await CommandProcess.run("sluice", ["data", "stats", path.path], in: directory.url)
        #expect(result.status == 2)
        #expect(result.errors.contains("\(path.path):3:3: a quoted field is never closed (unterminated quote)"))
        #expect(result.errors.contains("To fix:"))
    }

    @Test("a file three times larger than the process's address-space limit is summarized in bounded memory")
    func largerThanMemory() async throws {
        let directory = try TemporaryDirectory(prefix: "sluice-big")
        let url = directory.path("big.csv")
        // About 720 MB: a 6 MB block of rows written 120 times.
        var block = ""
        var k = 0
        while block.utf8.count < 6_000_000 {
            block += "\(k % 10_007),\(Double(k % 1_009) / 7),\(["a", "b", "c", "d"][k % 4]),\(k % 2 == 0)\n"
            k += 1
        }
        let rowsPerBlock = k
        FileManager.default.createFile(atPath: url.path, contents: Data("id,x,tag,flag\n".utf8))
        let handle = try FileHandle(forWritingTo: url)
        try handle.seekToEnd()
        let data = Data(block.utf8)
        for _ in 0..<120 { handle.write(data) }
        try handle.close()
        let size = try #require(try FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int)
        // The limit leaves room for the binary's own mappings (the debug build with gRPC maps about 60 MB).
        let limitKB = 230_000
        #expect(size > 3 * limitKB * 1024)

        let binary = try CommandProcess.executable("sluice").path
        // One malloc arena: glibc reserves 64 MiB of address space per extra arena (reserved, not used), which under
        // this `ulimit -v` left libdispatch unable to create a worker thread and the process waiting forever in
        // about one run of six. Set from the start, so no thread creates one first.
        let result = try await CommandProcess.run(
            "/bin/bash", ["-c", "ulimit -v \(limitKB) && exec \(binary) data stats \(url.path) --json"],
            in: directory.url, environment: ["GLIBC_TUNABLES": "glibc.malloc.arena_max=1"])
        #expect(result.status == 0, "under ulimit -v \(limitKB): \(result.errors.prefix(2_000))")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any])
        #expect(json["rows"] as? Int == rowsPerBlock * 120)
        let peak = try #require(json["peakResidentBytes"] as? Int)
        #expect(peak < limitKB * 1024)
        print(
            "larger-than-memory: \(size / 1_000_000) MB file, ulimit -v \(limitKB / 1024) MiB, peak RSS \(peak / 1_000_000) MB"
        )
    }
}

@Suite("sluice data schema and validate")
struct DataValidateCommandTests {
    @Test("schema writes YAML; validate exits 0 on pass, 1 on anomalies, 2 on unusable input")
    func exitStatuses() async throws {
        let directory = try TemporaryDirectory(prefix: "sluice-validate")
        let train = directory.path("train.csv")
        let drifted = directory.path("drifted.csv")
        try Data(
            ("x,kind\n" + (0..<2_000).map { "\($0 % 100),\($0 % 2 == 0 ? "a" : "b")" }.joined(separator: "\n")).utf8
        )
        .write(to: train)
        try Data(("x,kind\n" + (0..<2_000).map { "\($0 % 100 + 500),c" }.joined(separator: "\n")).utf8).write(
            to: drifted)
        let schema = try await CommandProcess.run("sluice", ["data", "schema", train.path], in: directory.url)
        #expect(schema.status == 0)
        #expect(schema.output.contains("domain: [a, b]"))
        try Data(schema.output.utf8).write(to: directory.path("schema.yaml"))
        let schemaPath = directory.path("schema.yaml").path

        let pass = try await CommandProcess.run(
            "sluice", ["data", "validate", train.path, "--schema", schemaPath, "--baseline", train.path],
            in: directory.url)
        #expect(pass.status == 0)
        #expect(pass.output.hasPrefix("PASS"))

        let fail = try await CommandProcess.run(
            "sluice", ["data", "validate", drifted.path, "--schema", schemaPath, "--baseline", train.path],
            in: directory.url)
        #expect(fail.status == 1)
        #expect(fail.output.hasPrefix("FAIL"))
        #expect(fail.output.contains("x: [out_of_range] values up to 599, above the maximum 99"))
        #expect(fail.output.contains("kind: [unseen_categories]"))
        #expect(fail.output.contains("[drift]"))

        let unusable = try await CommandProcess.run(
            "sluice", ["data", "validate", directory.path("nope.csv").path, "--schema", schemaPath], in: directory.url)
        #expect(unusable.status == 2)
        #expect(unusable.errors.contains("no such file or folder"))
    }
}

@Suite("sluice data versions")
struct DataVersionsCommandTests {
    @Test("versions lists the versions seen in the project, newest first, marking the current one")
    func versions() async throws {
        let directory = try TemporaryDirectory(prefix: "sluice-versions")
        _ = try await CommandProcess.run("sluice", ["init"], in: directory.url)
        let data = directory.path("data.csv")
        try Data("x\n1\n".utf8).write(to: data)
        let first = try await CommandProcess.run(
            "sluice", ["data", "versions", "data.csv", "--json"], in: directory.url)
        let v1 = try #require(try JSONSerialization.jsonObject(with: Data(first.output.utf8)) as? [String: Any])
        let id1 = try #require((v1["current"] as? [String: Any])?["id"] as? String)
        try Data("x\n1\n2\n".utf8).write(to: data)
        let second = try await CommandProcess.run("sluice", ["data", "versions", "data.csv"], in: directory.url)
        #expect(second.status == 0)
        let lines = second.output.split(separator: "\n").map(String.init)
        #expect(lines.count == 4)
        #expect(lines[2].hasPrefix("●"))
        #expect(lines[3].contains(String(id1.prefix(23))))
        #expect(FileManager.default.fileExists(atPath: directory.path(".sluice/datasets/versions.jsonl").path))
        let stats = try await CommandProcess.run("sluice", ["data", "stats", "data.csv"], in: directory.url)
        #expect(stats.output.hasPrefix("dataset version sha256:"))
    }
}
