import Foundation
import SluiceComponents
import SluiceCore
import SluiceOrchestrators
import SluiceStorePostgres
import SluiceTesting
import Testing

/// Runs on a real single-node Slurm cluster the tests install and start (``TestSlurm``), with a real PostgreSQL
/// server as the metadata store. One test at a time: the cluster's two CPUs are what the jobs share.
@Suite("The slurm orchestrator on a real Slurm cluster, with PostgreSQL as the store", .serialized)
struct SlurmTests {
    /// Rounds that keep the training step busy far past the time a test waits for it (stumps: little memory).
    static let slowTraining = ["--set", "train.rounds=10000000", "--set", "train.max_depth=1"]

    /// A project with the example pipeline and its data, a `local` stack (SQLite, in-process) and a `cluster` stack
    /// (Slurm, a fresh PostgreSQL database, the same artifact folder); and the environment its commands need.
    func clusterProject(_ prefix: String) async throws -> (TemporaryDirectory, [String: String]) {
        let slurm = try await TestSlurm.started()
        let server = try await TestPostgres.started()
        let url = try await PostgresDatabases.create(
            "s_\(UUID().uuidString.prefix(12).lowercased())", on: server.adminURL)
        let directory = try TemporaryDirectory(prefix: prefix)
        try FileManager.default.copyItem(at: AirflowTests.example, to: directory.path("penguins.yaml"))
        try FileManager.default.createDirectory(at: directory.path(".sluice/demo"), withIntermediateDirectories: true)
        try Data(DemoData.penguinsCSV.utf8).write(to: directory.path(".sluice/demo/penguins.csv"))
        try Data(
            """
            default: local
            stacks:
              local: {metadata_store: metadata.sqlite}
              cluster:
                orchestrator: slurm
                metadata_store: \(url)
                password_env: SLUICE_TEST_PG_PASSWORD
                artifact_store: artifacts
                slurm: {cpus: 1, memory: 300M}

            """.utf8
        ).write(to: directory.path(".sluice/stack.yaml"))
        return (directory, teamEnvironment.merging(slurm.environment) { $1 })
    }

    struct Shown: Decodable {
        struct Step: Decodable {
            var stepName: String
            var status: String
            var cacheKey: CacheKey?
            var error: String?
            var properties: [String: PropertyValue]
        }
        struct Details: Decodable { var stepRun: Step }
        struct Queued: Decodable {
            var step: String
            var job: String
            var state: String
        }
        struct Record: Decodable {
            var id: String
            var status: String
            var error: String?
        }
        var run: Record
        var steps: [Details]
        var queuedJobs: [Queued]?

        /// Each step's latest step run.
        var latest: [String: Step] {
            Dictionary(steps.map { ($0.stepRun.stepName, $0.stepRun) }, uniquingKeysWith: { $1 })
        }
    }

    func show(_ run: String, stack: String = "cluster", in directory: URL, _ environment: [String: String])
        async throws -> Shown
    {
        let shown = try await CommandProcess.run(
            "sluice", ["runs", "show", run, "--json", "--stack", stack], in: directory, environment: environment)
        try #require(shown.status == 0, "\(shown.errors)")
        return try JSONDecoder().decode(Shown.self, from: Data(shown.output.utf8))
    }

    func latestRun(stack: String, in directory: URL, _ environment: [String: String]) async throws -> String {
        try await ShardedIngestTests.latestRunID(stack: stack, in: directory, environment: environment)
    }

    /// Waits until step `step` of `run` is running in its job; returns the job's ID.
    func waitUntilRunning(_ step: String, of run: String, in directory: URL, _ environment: [String: String])
        async throws -> String
    {
        let deadline = ContinuousClock.now + .seconds(120)
        while ContinuousClock.now < deadline {
            let shown = try await show(run, in: directory, environment)
            if shown.latest[step]?.status == "running",
                case .string(let job)? = shown.latest[step]?.properties[SlurmOrchestrator.jobProperty]
            {
                return job
            }
            try await Task.sleep(for: .milliseconds(300))
        }
        Issue.record("step '\(step)' of \(run) did not start within 120 s")
        throw CancellationError()
    }

    /// Submits the example with `arguments` and returns the run's ID (`run --detach`).
    func detach(_ arguments: [String], in directory: URL, _ environment: [String: String]) async throws -> String {
        let submitted = try await CommandProcess.run(
            "sluice", ["run", "penguins.yaml", "--stack", "cluster", "--detach"] + arguments, in: directory,
            environment: environment)
        try #require(submitted.status == 0, "\(submitted.errors)")
        #expect(submitted.errors.contains("submitted run"), "\(submitted.errors)")
        return submitted.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// `runs wait RUN` on the cluster stack, giving up after `timeout` seconds.
    func wait(for run: String, timeout: Int, in directory: URL, _ environment: [String: String]) async throws -> (
        status: Int32, output: String, errors: String
    ) {
        try await CommandProcess.run(
            "sluice",
            ["runs", "wait", run, "--file", "penguins.yaml", "--stack", "cluster", "--timeout", "\(timeout)"],
            in: directory, environment: environment)
    }

    /// The steps a run of the example takes from the cache after a run that stopped at training.
    static let upstreamOfTraining = ["ingest", "statistics", "split", "transform"]

    /// A re-run on the cluster completes, taking everything upstream of training from the cache.
    func expectResumesFromCache(in directory: URL, _ environment: [String: String]) async throws {
        let resumed = try await CommandProcess.run(
            "sluice", ["run", "penguins.yaml", "--stack", "cluster", "--set", "train.rounds=10"], in: directory,
            environment: environment)
        #expect(resumed.status == 0, "\(resumed.errors)")
        for step in Self.upstreamOfTraining {
            #expect(resumed.errors.contains("↺ \(step) cached"), "\(step): \(resumed.errors)")
        }
    }

    @Test("slurm settings on a stack that does not run on Slurm are refused, and --detach needs a Slurm stack")
    func settingsNeedSlurm() async throws {
        let directory = try TemporaryDirectory(prefix: "sluice-slurm-settings")
        try FileManager.default.createDirectory(at: directory.path(".sluice"), withIntermediateDirectories: true)
        try Data("stacks:\n  local: {orchestrator: process, slurm: {cpus: 2}}\n".utf8).write(
            to: directory.path(".sluice/stack.yaml"))
        let refused = try await CommandProcess.run("sluice", ["runs", "list"], in: directory.url)
        #expect(refused.status == 2)
        #expect(refused.errors.contains("`slurm:` settings, but its orchestrator is process"), "\(refused.errors)")
        try Data("stacks:\n  local: {orchestrator: in_process}\n".utf8).write(to: directory.path(".sluice/stack.yaml"))
        try FileManager.default.copyItem(at: AirflowTests.example, to: directory.path("penguins.yaml"))
        let detached = try await CommandProcess.run("sluice", ["run", "penguins.yaml", "--detach"], in: directory.url)
        #expect(detached.status == 2)
        #expect(detached.errors.contains("--detach is for stacks whose orchestrator is slurm"), "\(detached.errors)")
    }

    @Test("the standard pipeline on Slurm with PostgreSQL records what a local run records, every step in a job")
    func standardPipeline() async throws {
        let (directory, environment) = try await clusterProject("sluice-slurm-standard")
        let local = try await CommandProcess.run(
            "sluice", ["run", "penguins.yaml", "--set", "train.rounds=10"], in: directory.url, environment: environment)
        #expect(local.status == 0, "\(local.errors)")
        let cluster = try await CommandProcess.run(
            "sluice", ["run", "penguins.yaml", "--set", "train.rounds=10", "--stack", "cluster"], in: directory.url,
            environment: environment)
        #expect(cluster.status == 0, "\(cluster.errors)")
        #expect(cluster.output.contains("completed"), "\(cluster.output)")
        #expect(cluster.output.contains("9 done"), "\(cluster.output)")

        let onCluster = try await show(
            try await latestRun(stack: "cluster", in: directory.url, environment), in: directory.url, environment)
        let onLaptop = try await show(
            try await latestRun(stack: "local", in: directory.url, environment), stack: "local", in: directory.url,
            environment)
        #expect(onCluster.run.status == "completed")
        // The same step runs, statuses and cache keys: only orchestrator fields (jobs, hosts, times) differ.
        #expect(onCluster.steps.map(\.stepRun.stepName) == onLaptop.steps.map(\.stepRun.stepName))
        #expect(onCluster.steps.map(\.stepRun.status) == onLaptop.steps.map(\.stepRun.status))
        #expect(onCluster.steps.map(\.stepRun.cacheKey) == onLaptop.steps.map(\.stepRun.cacheKey))
        let jobs = onCluster.steps.compactMap { $0.stepRun.properties[SlurmOrchestrator.jobProperty] }
        #expect(jobs.count == 9 && Set(jobs).count == 9, "every step ran in a job of its own: \(jobs)")
        #expect(onLaptop.steps.allSatisfy { $0.stepRun.properties[SlurmOrchestrator.jobProperty] == nil })

        // Again: ingest and statistics are settled from the cache at submission, without a job. Schema and
        // validate run again (the schema now comes from the production version the first run registered), so the
        // steps below them are jobs that find their outputs in the cache; register is never cached.
        let again = try await CommandProcess.run(
            "sluice", ["run", "penguins.yaml", "--set", "train.rounds=10", "--stack", "cluster"], in: directory.url,
            environment: environment)
        #expect(again.status == 0, "\(again.errors)")
        #expect(again.output.contains("3 done, 6 cached"), "\(again.output)")
        let second = try await show(
            try await latestRun(stack: "cluster", in: directory.url, environment), in: directory.url, environment)
        let withJobs = second.steps.filter { $0.stepRun.properties[SlurmOrchestrator.jobProperty] != nil }
        #expect(
            withJobs.map(\.stepRun.stepName) == [
                "schema", "validate", "split", "transform", "train", "evaluate", "register",
            ])
        #expect(second.latest["ingest"]?.status == "cached" && second.latest["statistics"]?.status == "cached")
        #expect(second.latest["train"]?.status == "cached")

        let human = try await CommandProcess.run(
            "sluice", ["runs", "show", second.run.id, "--stack", "cluster"], in: directory.url,
            environment: environment)
        #expect(human.output.contains("Slurm jobs named sluice-\(second.run.id)"))
        #expect(human.output.contains("JOB"))
    }

    @Test(
        "a run submitted with --detach goes on without its submitter, runs wait follows it, and a cached re-run submits no job"
    )
    func detachedAndFullyCached() async throws {
        let (directory, environment) = try await clusterProject("sluice-slurm-detach")
        // The example without its register step: nothing left that is never cached.
        let text = try String(contentsOf: directory.path("penguins.yaml"), encoding: .utf8)
        let register = try #require(text.range(of: "  register:"))
        let trimmed = String(text[..<register.lowerBound])
        try Data(trimmed.utf8).write(to: directory.path("penguins.yaml"))

        let run = try await detach(["--set", "train.rounds=10"], in: directory.url, environment)
        let waited = try await CommandProcess.run(
            "sluice", ["runs", "wait", run, "--file", "penguins.yaml", "--stack", "cluster"], in: directory.url,
            environment: environment)
        #expect(waited.status == 0, "\(waited.errors)")
        #expect(waited.output.contains("completed"), "\(waited.output)")
        #expect(try await show(run, in: directory.url, environment).run.status == "completed")

        let again = try await CommandProcess.run(
            "sluice", ["run", "penguins.yaml", "--stack", "cluster", "--detach", "--set", "train.rounds=10"],
            in: directory.url, environment: environment)
        #expect(again.status == 0, "\(again.errors)")
        #expect(again.errors.contains("every step was in the cache"), "\(again.errors)")
        let cached = try await show(
            again.output.trimmingCharacters(in: .whitespacesAndNewlines), in: directory.url, environment)
        #expect(cached.run.status == "completed")
        #expect(cached.steps.count == 8 && cached.steps.allSatisfy { $0.stepRun.status == "cached" })
        #expect(cached.steps.allSatisfy { $0.stepRun.properties[SlurmOrchestrator.jobProperty] == nil })
        #expect(!FileManager.default.fileExists(atPath: directory.path(".sluice/logs/\(cached.run.id)").path))
    }

    @Test("a step that fails marks its dependents skipped and the run failed; the re-run resumes from the cache")
    func failingStep() async throws {
        let (directory, environment) = try await clusterProject("sluice-slurm-fail")
        let failed = try await CommandProcess.run(
            "sluice", ["run", "penguins.yaml", "--stack", "cluster", "--set", "train.label=no_such_column"],
            in: directory.url, environment: environment)
        #expect(failed.status == 1, "\(failed.errors)")
        let record = try await show(
            try await latestRun(stack: "cluster", in: directory.url, environment), in: directory.url, environment)
        #expect(record.run.status == "failed")
        #expect(record.run.error?.contains("step 'train' failed") == true, "\(record.run)")
        #expect(record.latest["train"]?.status == "failed")
        #expect(record.latest["train"]?.error?.contains("no_such_column") == true)
        #expect(record.latest["evaluate"]?.status == "skipped")
        #expect(record.latest["register"]?.status == "skipped")
        #expect(record.latest["transform"]?.status == "completed")

        try await expectResumesFromCache(in: directory.url, environment)
    }

    @Test("a job cancelled with scancel mid-step and a run cancelled with runs cancel are recorded cancelled")
    func cancelled() async throws {
        let (directory, environment) = try await clusterProject("sluice-slurm-cancel")
        let slurm = try TestSlurm.shared()

        // scancel of the training step's job: the step records itself cancelled, the run ends cancelled.
        let first = try await detach(Self.slowTraining, in: directory.url, environment)
        let job = try await waitUntilRunning("train", of: first, in: directory.url, environment)
        // runs show lists the jobs still queued: training running, the steps after it pending on it.
        let queued = try #require(try await show(first, in: directory.url, environment).queuedJobs)
        #expect(queued.contains { $0.step == "train" && $0.job == job && $0.state == "RUNNING" }, "\(queued)")
        #expect(queued.contains { $0.step == "evaluate" && $0.state == "PENDING" }, "\(queued)")
        // A waiter that gives up stops waiting; the run goes on.
        let impatient = try await wait(for: first, timeout: 1, in: directory.url, environment)
        #expect(impatient.status == 3, "\(impatient.errors)")
        #expect(try await show(first, in: directory.url, environment).run.status == "running")
        #expect(try await show(first, in: directory.url, environment).latest["train"]?.status == "running")
        #expect(try slurm.run(["scancel", job]).status == 0)
        let waited = try await wait(for: first, timeout: 120, in: directory.url, environment)
        #expect(waited.status == 130, "\(waited.output)\n\(waited.errors)")
        let scancelled = try await show(first, in: directory.url, environment)
        #expect(scancelled.run.status == "cancelled")
        #expect(scancelled.latest["train"]?.status == "cancelled")
        #expect(scancelled.latest["evaluate"]?.status == "cancelled")
        #expect(scancelled.latest["ingest"]?.status == "completed")

        // runs cancel: every job of the run is cancelled and the run recorded cancelled at once.
        let second = try await detach(Self.slowTraining, in: directory.url, environment)
        _ = try await waitUntilRunning("train", of: second, in: directory.url, environment)
        let cancel = try await CommandProcess.run(
            "sluice", ["runs", "cancel", second, "--file", "penguins.yaml", "--stack", "cluster"], in: directory.url,
            environment: environment)
        #expect(cancel.status == 0, "\(cancel.errors)")
        #expect(cancel.output.contains("cancelled"))
        let cancelledRun = try await show(second, in: directory.url, environment)
        #expect(cancelledRun.run.status == "cancelled")
        #expect(cancelledRun.latest["train"]?.status == "cancelled")
        #expect(cancelledRun.latest["register"]?.status == "cancelled")
        #expect(try slurm.run(["squeue", "-h", "--name=sluice-\(second)"]).output.isEmpty)

        try await expectResumesFromCache(in: directory.url, environment)
    }

    @Test("a step over its time limit is recorded failed with Slurm's TIMEOUT, not as cancelled")
    func timeLimit() async throws {
        let (directory, environment) = try await clusterProject("sluice-slurm-timeout")
        let run = try await detach(
            Self.slowTraining + ["--set", "steps.train.resources.time=1"], in: directory.url, environment)
        // Slurm checks time limits about every 30 s: the job ends between one and two minutes in.
        let waited = try await wait(for: run, timeout: 240, in: directory.url, environment)
        #expect(waited.status == 1, "\(waited.output)\n\(waited.errors)")
        let record = try await show(run, in: directory.url, environment)
        #expect(record.run.status == "failed")
        #expect(record.latest["train"]?.status == "failed")
        #expect(
            record.latest["train"]?.error?.contains("TIMEOUT") == true, "\(String(describing: record.latest["train"]))")
        #expect(record.latest["evaluate"]?.status == "skipped")
    }

    @Test("sharded statistics over 8 files run as a Slurm job array and equal the single-process statistics exactly")
    func shardedStatistics() async throws {
        let (directory, environment) = try await clusterProject("sluice-slurm-shards")
        let lines = DemoData.penguinsCSV.split(separator: "\n")
        try FileManager.default.createDirectory(at: directory.path("data"), withIntermediateDirectories: true)
        for part in 0..<8 {
            let rows = lines.dropFirst().enumerated().filter { $0.offset % 8 == part }.map(\.element)
            try Data(([lines[0]] + rows).joined(separator: "\n").appending("\n").utf8).write(
                to: directory.path("data/part\(part).csv"))
        }
        try Data(
            """
            pipeline: sharded-statistics
            steps:
              stats:
                component: file_statistics
                parameters: {paths: [data/*.csv]}
              schema:
                component: schema
                inputs: {statistics: stats}
              ingest:
                component: ingest_csv
                parameters: {paths: [data/*.csv]}
              sharded:
                component: ingest_csv_sharded
                parameters: {paths: [data/*.csv]}
              files:
                component: list_files
                parameters: {paths: [data/*.csv]}
              listed_stats:
                component: file_statistics
                inputs: {files: files}

            """.utf8
        ).write(to: directory.path("stats.yaml"))
        var stackFile = try String(contentsOf: directory.path(".sluice/stack.yaml"), encoding: .utf8)
        stackFile += "  processes: {orchestrator: process, metadata_store: processes.sqlite}\n"
        try Data(stackFile.utf8).write(to: directory.path(".sluice/stack.yaml"))

        var hashes: [String: String] = [:]
        for stack in ["local", "processes", "cluster"] {
            let run = try await CommandProcess.run(
                "sluice", ["run", "stats.yaml", "--stack", stack], in: directory.url, environment: environment)
            #expect(run.status == 0, "\(stack): \(run.errors)")
            let id = try await latestRun(stack: stack, in: directory.url, environment)
            let shown = try await CommandProcess.run(
                "sluice", ["runs", "show", id, "--json", "--stack", stack], in: directory.url, environment: environment)
            let object = try #require(try JSONSerialization.jsonObject(with: Data(shown.output.utf8)) as? [String: Any])
            let steps = try #require(object["steps"] as? [[String: Any]])
            let stats = try #require(
                steps.first { ($0["stepRun"] as? [String: Any])?["stepName"] as? String == "stats" })
            let output = try #require((stats["outputs"] as? [String: Any])?["output"] as? [String: Any])
            hashes[stack] = output["contentHash"] as? String
            let properties = (stats["stepRun"] as? [String: Any])?["properties"] as? [String: Any]
            #expect((properties?["rows"] as? Int) == 344, "\(stack): \(String(describing: properties))")
            if stack == "cluster" {
                #expect((properties?["shards"] as? Int) == 8, "merged from the 8 jobs of the array")
            }
            // CSV ingest sharded over the files (an array of 8 jobs on the cluster) is the single reader's bytes.
            let outputs = try await ShardedIngestTests.outputHashes(
                stack: stack, in: directory.url, environment: environment)
            #expect(outputs["ingest.table"] != nil)
            #expect(outputs["sharded.table"] == outputs["ingest.table"], "\(stack): \(outputs)")
            #expect(outputs["sharded.info"] == outputs["ingest.info"], "\(stack): \(outputs)")
            // Over the files a list_files step listed: on the cluster a planning job sizes the array once the list
            // exists, and the result is the same bytes.
            #expect(outputs["listed_stats.output"] == output["contentHash"] as? String, "\(stack): \(outputs)")
            if stack == "cluster" {
                let listed = try #require(
                    steps.first { ($0["stepRun"] as? [String: Any])?["stepName"] as? String == "listed_stats" })
                let listedProperties = (listed["stepRun"] as? [String: Any])?["properties"] as? [String: Any]
                #expect((listedProperties?["shards"] as? Int) == 8, "\(String(describing: listedProperties))")
            }
        }
        #expect(hashes["local"] != nil)
        #expect(hashes["cluster"] == hashes["local"], "\(hashes)")
        #expect(hashes["processes"] == hashes["local"], "\(hashes)")
        let logs = try FileManager.default.contentsOfDirectory(
            atPath: directory.path(
                ".sluice/logs/\(try await latestRun(stack: "cluster", in: directory.url, environment))"
            )
            .path)
        #expect(logs.filter { $0.hasPrefix("stats.shard-") }.count == 8, "\(logs)")
        #expect(logs.filter { $0.hasPrefix("listed_stats.shard-") }.count == 8, "\(logs)")
        #expect(logs.contains("listed_stats.plan.out"), "\(logs)")

        // A malformed file fails its shard: the run fails naming the file, line and column.
        try Data("species,island\nAdelie\n".utf8).write(to: directory.path("data/part8.csv"))
        let broken = try await CommandProcess.run(
            "sluice", ["run", "stats.yaml", "--stack", "cluster"], in: directory.url, environment: environment)
        #expect(broken.status == 1, "\(broken.errors)")
        let failed = try await show(
            try await latestRun(stack: "cluster", in: directory.url, environment), in: directory.url, environment)
        #expect(failed.run.status == "failed")
        #expect(failed.latest["stats"]?.status == "failed")
        #expect(
            failed.latest["stats"]?.error?.contains("part8.csv") == true,
            "\(String(describing: failed.latest["stats"]))")
        #expect(failed.latest["schema"]?.status == "skipped")
        #expect(failed.latest["listed_stats"]?.status == "failed")
        #expect(
            failed.latest["listed_stats"]?.error?.contains("part8.csv") == true,
            "\(String(describing: failed.latest["listed_stats"]))")
    }
}
