import Foundation
import SluiceCore
import SluiceTesting
import Testing

@Suite("The command line, as a user runs it")
struct CommandLineTests {
    static let decoder = CommandProcess.jsonDecoder

    /// A project with one completed run of the example pipeline.
    func projectWithRun() async throws -> (TemporaryDirectory, Run) {
        let directory = try TemporaryDirectory(prefix: "sluice-cli")
        let run = try await CommandProcess.run(
            "sluice-example", ["run", "prices", "--set", "generate.rows=2000", "--json"], in: directory.url)
        #expect(run.status == 0, "run failed: \(run.errors)")
        return (directory, try Self.decoder.decode(Run.self, from: Data(run.output.utf8)))
    }

    @Test("run shows each step's state and a summary with the run ID and where the records are")
    func runOutput() async throws {
        let directory = try TemporaryDirectory(prefix: "sluice-cli")
        let first = try await CommandProcess.run("sluice-example", ["run"], in: directory.url)
        #expect(first.status == 0)
        for step in ["generate", "split", "describe", "fit_scaler", "fit", "evaluate", "report"] {
            #expect(first.errors.contains("✔ \(step) done in"))
        }
        #expect(first.output.contains("completed in"))
        #expect(first.output.contains("7 done"))
        #expect(first.output.contains("records:   .sluice/metadata.sqlite"))
        #expect(!first.output.contains("\u{1B}["), "NO_COLOR output has no escape codes")
        #expect(!first.errors.contains("\u{1B}["))
        let second = try await CommandProcess.run("sluice-example", ["run"], in: directory.url)
        #expect(second.output.contains("7 cached"))
        #expect(second.errors.contains("↺ fit cached"))
        let forced = try await CommandProcess.run(
            "sluice-example", ["run", "--no-cache", "--parallelism", "1"], in: directory.url)
        #expect(forced.output.contains("7 done"))
    }

    @Test("colour appears only on a terminal, and never with NO_COLOR")
    func colourOnlyOnTerminal() async throws {
        let directory = try TemporaryDirectory(prefix: "sluice-tty")
        let binary = try CommandProcess.executable("sluice-example").path
        // `script` gives the command a pseudo-terminal.
        func underTerminal(_ environment: String) async throws -> String {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/script")
            process.arguments = ["-qec", "\(environment) \(binary) run prices --set generate.rows=500", "/dev/null"]
            process.currentDirectoryURL = directory.url
            var env = ProcessInfo.processInfo.environment
            env.removeValue(forKey: "NO_COLOR")
            env["TERM"] = "xterm"
            process.environment = env
            let pipe = Pipe()
            process.standardOutput = pipe
            try process.run()
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return String(decoding: data, as: UTF8.self)
        }
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/script") else {
            Issue.record("/usr/bin/script (bsdutils) is needed to test terminal output")
            return
        }
        let coloured = try await underTerminal("")
        #expect(coloured.contains("\u{1B}[32m"), "green ✔ on a terminal")
        let plain = try await underTerminal("NO_COLOR=1")
        #expect(plain.contains("completed"))
        #expect(!plain.contains("\u{1B}[32m"))
    }

    @Test("runs list and show answer in JSON for scripts")
    func runsJSON() async throws {
        let (directory, run) = try await projectWithRun()
        let list = try await CommandProcess.run("sluice", ["runs", "list", "--json"], in: directory.url)
        let runs = try Self.decoder.decode([Run].self, from: Data(list.output.utf8))
        #expect(runs.map(\.id) == [run.id])
        #expect(runs[0].status == .completed)
        let show = try await CommandProcess.run(
            "sluice", ["runs", "show", String(run.id.prefix(20)), "--json"], in: directory.url)
        #expect(show.status == 0, "\(show.errors)")
        let details = try #require(try JSONSerialization.jsonObject(with: Data(show.output.utf8)) as? [String: Any])
        let steps = try #require(details["steps"] as? [[String: Any]])
        #expect(steps.count == 7)
        // Milliseconds and UTC, durations as numbers: what the dashboard's API gives too.
        let started = try #require((details["run"] as? [String: Any])?["startedAt"] as? String)
        #expect(started.wholeMatch(of: /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z/) != nil, "\(started)")
        #expect(details["durationSeconds"] is Double)
        #expect(steps.allSatisfy { $0["durationSeconds"] is Double })
        let filtered = try await CommandProcess.run(
            "sluice", ["runs", "list", "--status", "failed", "--json"], in: directory.url)
        #expect(try Self.decoder.decode([Run].self, from: Data(filtered.output.utf8)).isEmpty)
    }

    @Test("the resolved config is stored with the run and printable")
    func storedConfig() async throws {
        let (directory, run) = try await projectWithRun()
        let printed = try await CommandProcess.run("sluice", ["runs", "show", run.id, "--config"], in: directory.url)
        #expect(printed.output == run.config)
        #expect(printed.output.contains("rows: 2000"))
        let dryRun = try await CommandProcess.run(
            "sluice-example", ["run", "--print-config", "--set", "generate.rows=2000"], in: directory.url)
        #expect(dryRun.output.contains("rows: 2000"))
        #expect(dryRun.output.contains("eval_fraction") || dryRun.output.contains("evalFraction"))
        // A printed config runs as a config file: the same parameters, so everything is cached.
        let configFile = directory.path("run.yaml")
        try Data(dryRun.output.replacingOccurrences(of: "pipeline: prices\n", with: "").utf8).write(to: configFile)
        let rerun = try await CommandProcess.run(
            "sluice-example", ["run", "--config", configFile.path], in: directory.url)
        #expect(rerun.status == 0, "\(rerun.errors)")
        #expect(rerun.output.contains("7 cached"))
    }

    @Test("artifacts list, show and lineage answer from the store")
    func artifactsCommands() async throws {
        let (directory, run) = try await projectWithRun()
        let list = try await CommandProcess.run(
            "sluice", ["artifacts", "list", "--run", run.id, "--json"], in: directory.url)
        let artifacts = try Self.decoder.decode([ArtifactRecord].self, from: Data(list.output.utf8))
        #expect(artifacts.count == 8)  // split writes two
        let report = try #require(artifacts.first { $0.typeName == "Swift.String" })
        let show = try await CommandProcess.run("sluice", ["artifacts", "show", report.id], in: directory.url)
        #expect(show.output.contains(report.contentHash))
        #expect(show.output.contains("written by    step 'report'"))
        let lineage = try await CommandProcess.run(
            "sluice", ["artifacts", "lineage", report.id, "--direction", "upstream", "--json"], in: directory.url)
        let graphs = try Self.decoder.decode([Lineage.Graph].self, from: Data(lineage.output.utf8))
        #expect(
            Set(graphs[0].stepRuns.map(\.stepName)) == [
                "report", "evaluate", "describe", "fit", "fit_scaler", "split", "generate",
            ])
        let raw = try #require(
            artifacts.first { $0.name == "output" && $0.typeName.contains("Array<PricePipeline.House>") })
        let down = try await CommandProcess.run("sluice", ["artifacts", "lineage", raw.id], in: directory.url)
        #expect(down.output.contains("Downstream"))
        #expect(down.output.contains("→ read by split"))
    }

    @Test("pipelines list shows compiled pipelines with their steps and recorded runs")
    func pipelinesList() async throws {
        let (directory, _) = try await projectWithRun()
        let list = try await CommandProcess.run("sluice-example", ["pipelines", "list"], in: directory.url)
        #expect(list.output.contains("prices"))
        #expect(list.output.contains("generate, split, describe, fit_scaler, fit, evaluate, report"))
        let json = try await CommandProcess.run("sluice", ["pipelines", "list", "--json"], in: directory.url)
        let entries = try #require(try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [[String: Any]])
        #expect(entries.first?["runCount"] as? Int == 1)
    }

    @Test(
        "mistakes get a clear error, a fix, and exit status 2",
        arguments: [
            (["run", "prcies"], "this executable has no pipeline named 'prcies'. Did you mean 'prices'?"),
            (["run", "--set", "fit.l3=1"], "unknown parameter 'steps.fit.parameters.l3'. Did you mean 'l2'?"),
            (
                ["run", "--set", "fit.l2=lots"],
                "'steps.fit.parameters.l2' must be a number, but it is the string 'lots'."
            ),
            (["runs", "show", "run-nope"], "no run matches 'run-nope'."),
            (["artifacts", "show", "art-nope"], "no artifact matches 'art-nope'."),
        ])
    func mistakes(arguments: [String], message: String) async throws {
        let directory = try TemporaryDirectory(prefix: "sluice-errors")
        _ = try await CommandProcess.run("sluice-example", ["init"], in: directory.url)
        let result = try await CommandProcess.run("sluice-example", arguments, in: directory.url)
        #expect(result.status == 2)
        #expect(result.errors.contains(message), "stderr was: \(result.errors)")
        #expect(result.errors.contains("To fix:"))
    }

    @Test("a bad YAML config names the file and line, and runs nothing")
    func badConfigFile() async throws {
        let directory = try TemporaryDirectory(prefix: "sluice-yaml")
        let file = directory.path("run.yaml")
        try Data("steps:\n  fit:\n    parameters:\n      l2: [1, 2\n".utf8).write(to: file)
        let result = try await CommandProcess.run("sluice-example", ["run", "--config", file.path], in: directory.url)
        #expect(result.status == 2)
        #expect(result.errors.contains("\(file.path):"))
        #expect(result.errors.contains("this is not valid YAML"))
        let typo = directory.path("typo.yaml")
        try Data("steps:\n  fitt:\n    parameters:\n      l2: 2\n".utf8).write(to: typo)
        let unknown = try await CommandProcess.run("sluice-example", ["run", "--config", typo.path], in: directory.url)
        #expect(unknown.errors.contains("\(typo.path):2:3: unknown step 'steps.fitt'. Did you mean 'fit'?"))
        let runs = try await CommandProcess.run("sluice", ["runs", "list", "--json"], in: directory.url)
        #expect(try Self.decoder.decode([Run].self, from: Data(runs.output.utf8)).isEmpty)
    }

    @Test("a failed step fails the run with exit status 1, naming the step, its error and its log")
    func failedRun() async throws {
        let directory = try TemporaryDirectory(prefix: "sluice-fail")
        let result = try await CommandProcess.run("FixturePipelines", ["run", "failing"], in: directory.url)
        #expect(result.status == 1)
        #expect(result.errors.contains("✘ broken failed: the fixture step failed on purpose"))
        #expect(result.output.contains("reason: step 'broken' failed: the fixture step failed on purpose"))
        #expect(result.output.contains("log of 'broken': .sluice/logs/"))
    }

    @Test("the project is found from a subdirectory, as git finds .git")
    func projectDiscovery() async throws {
        let (directory, run) = try await projectWithRun()
        let nested = directory.path("a/b/c")
        try FileManager.default.createDirectory(at: nested, withIntermediateDirectories: true)
        let list = try await CommandProcess.run("sluice", ["runs", "list"], in: nested)
        #expect(list.output.contains(run.id))
        let elsewhere = try TemporaryDirectory(prefix: "sluice-none")
        let none = try await CommandProcess.run("sluice", ["runs", "list"], in: elsewhere.url)
        #expect(none.status == 2)
        #expect(none.errors.contains("no Sluice project here"))
        let explicit = try await CommandProcess.run(
            "sluice", ["runs", "list"], in: elsewhere.url, environment: ["SLUICE_PROJECT": directory.url.path])
        #expect(explicit.output.contains(run.id))
    }

    @Test("sluice init creates .sluice with a stack file, and the stack can point elsewhere")
    func initAndStack() async throws {
        let directory = try TemporaryDirectory(prefix: "sluice-init")
        let created = try await CommandProcess.run("sluice", ["init"], in: directory.url)
        #expect(created.status == 0)
        #expect(FileManager.default.fileExists(atPath: directory.path(".sluice/stack.yaml").path))
        let shared = try TemporaryDirectory(prefix: "sluice-shared")
        try Data(
            "artifact_store: \(shared.path("artifacts").path)\nmetadata_store: \(shared.path("meta.sqlite").path)\n"
                .utf8
        )
        .write(to: directory.path(".sluice/stack.yaml"))
        for suffix in ["", "-wal", "-shm"] {
            try? FileManager.default.removeItem(at: directory.path(".sluice/metadata.sqlite" + suffix))
        }
        let run = try await CommandProcess.run(
            "sluice-example", ["run", "--set", "generate.rows=300"], in: directory.url)
        #expect(run.status == 0, "\(run.errors)")
        #expect(FileManager.default.fileExists(atPath: shared.path("meta.sqlite").path))
        #expect(try !FileManager.default.contentsOfDirectory(atPath: shared.path("artifacts/packs").path).isEmpty)
        #expect(!FileManager.default.fileExists(atPath: directory.path(".sluice/metadata.sqlite").path))
    }
}
