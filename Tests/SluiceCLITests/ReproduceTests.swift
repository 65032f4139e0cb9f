import Foundation
import SluiceCore
import SluiceTesting
import Testing

@Suite("runs reproduce: a past run made again without the cache, verified hash for hash")
struct ReproduceTests {
    struct Listed: Decodable { var id: String }
    struct Compared: Decodable {
        var step: String
        var output: String
        var original: String
        var reproduced: String?
    }

    func newestRun(_ executable: String, pipeline: String, in directory: URL) async throws -> String {
        let list = try await CommandProcess.run(
            executable, ["runs", "list", "--pipeline", pipeline, "--json"], in: directory)
        return try #require(try JSONDecoder().decode([Listed].self, from: Data(list.output.utf8)).first).id
    }

    @Test("an unchanged run reproduces with every output the same; a non-deterministic step is listed by artifact")
    func sameAndDifferent() async throws {
        let directory = try TemporaryDirectory(prefix: "sluice-repro")
        let first = try await CommandProcess.run("FixturePipelines", ["run", "noisy"], in: directory.url)
        #expect(first.status == 0, "\(first.errors)")
        let run = try await newestRun("FixturePipelines", pipeline: "noisy", in: directory.url)

        let same = try await CommandProcess.run(
            "FixturePipelines", ["runs", "reproduce", run, "--json"], in: directory.url)
        #expect(same.status == 0, "\(same.errors)")
        let compared = try JSONDecoder().decode([Compared].self, from: Data(same.output.utf8))
        #expect(compared.map(\.step) == ["base", "scaled", "total"])
        #expect(compared.allSatisfy { $0.original == $0.reproduced })
        // It ran every step again (no cache) as a new run of its own.
        let reproduction = try await newestRun("FixturePipelines", pipeline: "noisy", in: directory.url)
        #expect(reproduction != run)
        let shown = try await CommandProcess.run("FixturePipelines", ["runs", "show", reproduction], in: directory.url)
        #expect(!shown.output.contains("cached"), "\(shown.output)")

        let noisy = try await CommandProcess.run(
            "FixturePipelines", ["runs", "reproduce", run], in: directory.url,
            environment: ["SLUICE_FIXTURE_NOISE": "1"])
        #expect(noisy.status == 1)
        #expect(noisy.output.contains("2 differ"), "\(noisy.output)")
        #expect(noisy.output.contains("✘ scaled.output"))
        #expect(noisy.output.contains("✘ total.output"))
        #expect(!noisy.output.contains("✘ base.output"))
    }

    /// Writes an executable with a close-on-exec descriptor: a process another test forks meanwhile must not keep
    /// it open for writing, or executing it fails with "text file busy".
    func writeExecutable(_ data: Data, to url: URL) throws {
        let fd = open(url.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o755)
        try #require(fd >= 0, "cannot create \(url.path)")
        defer { close(fd) }
        let written = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        try #require(written == data.count)
    }

    /// Runs `binary`, retrying while a process forked by a concurrent test still holds it open (ETXTBSY).
    func run(_ binary: URL, _ arguments: [String], in directory: URL) async throws -> (
        status: Int32, output: String, errors: String
    ) {
        for _ in 0..<50 {
            do {
                return try await CommandProcess.run(binary.path, arguments, in: directory)
            } catch let error as NSError where "\(error)".contains("Text file busy") {
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        return try await CommandProcess.run(binary.path, arguments, in: directory)
    }

    @Test("a changed binary is refused with exit status 2 unless --allow-code-change")
    func changedBinary() async throws {
        let directory = try TemporaryDirectory(prefix: "sluice-repro-bin")
        let binary = directory.path("pipelines")
        let original = try Data(contentsOf: try CommandProcess.executable("FixturePipelines"))
        try writeExecutable(original, to: binary)
        let first = try await run(binary, ["run", "noisy"], in: directory.url)
        #expect(first.status == 0, "\(first.errors)")
        let run = try await newestRun(binary.path, pipeline: "noisy", in: directory.url)
        let unchanged = try await self.run(binary, ["runs", "reproduce", run], in: directory.url)
        #expect(unchanged.status == 0, "\(unchanged.errors)")

        // Another build of the same pipelines: the same bytes and a few more (written beside it, not over it: a file
        // another process may still be executing cannot be opened for writing).
        let rebuilt = directory.path("pipelines-rebuilt")
        try writeExecutable(original + Data("a different build".utf8), to: rebuilt)
        let refused = try await self.run(rebuilt, ["runs", "reproduce", run], in: directory.url)
        #expect(refused.status == 2)
        #expect(refused.errors.contains("the binary differs"), "\(refused.errors)")
        #expect(refused.errors.contains("--allow-code-change"))
        let allowed = try await self.run(rebuilt, ["runs", "reproduce", run, "--allow-code-change"], in: directory.url)
        #expect(allowed.status == 0, "\(allowed.errors)")
        #expect(allowed.output.contains("compared although the binary differs"))
    }

    @Test("changed data is refused with exit status 2, naming the step that reads it")
    func changedData() async throws {
        let directory = try TemporaryDirectory(prefix: "sluice-repro-data")
        try FileManager.default.createDirectory(at: directory.path("data"), withIntermediateDirectories: true)
        try Data("a,b\n1,2\n3,4\n5,6\n".utf8).write(to: directory.path("data/x.csv"))
        try Data(
            """
            pipeline: tiny
            steps:
              ingest:
                component: ingest_csv
                parameters: {paths: [data/x.csv]}
              statistics:
                component: statistics
                inputs: {table: ingest.table}

            """.utf8
        ).write(to: directory.path("p.yaml"))
        let first = try await CommandProcess.run("sluice", ["run", "p.yaml"], in: directory.url)
        #expect(first.status == 0, "\(first.errors)")
        let run = try await newestRun("sluice", pipeline: "tiny", in: directory.url)
        let same = try await CommandProcess.run(
            "sluice", ["runs", "reproduce", run, "--file", "p.yaml"], in: directory.url)
        #expect(same.status == 0, "\(same.errors)")
        #expect(same.output.contains("4 outputs compared, all the same"), "\(same.output)")

        try Data("a,b\n1,2\n3,4\n5,7\n".utf8).write(to: directory.path("data/x.csv"))
        let refused = try await CommandProcess.run(
            "sluice", ["runs", "reproduce", run, "--file", "p.yaml"], in: directory.url)
        #expect(refused.status == 2)
        #expect(refused.errors.contains("step 'ingest' would not do the same work"), "\(refused.errors)")
        #expect(refused.errors.contains("the data it reads changed"))
        let noFile = try await CommandProcess.run("sluice", ["runs", "reproduce", run], in: directory.url)
        #expect(noFile.status == 2)
        #expect(noFile.errors.contains("--file"))
    }
}
