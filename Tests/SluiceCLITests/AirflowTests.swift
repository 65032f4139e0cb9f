import Foundation
import SluiceComponents
import SluiceTesting
import Testing

@Suite("Outside schedulers: runs start, step run and runs finish, and the DAG sluice export airflow writes")
struct AirflowTests {
    /// The YAML pipeline the README shows.
    static let example = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appending(path: "Examples/penguins.yaml")
    static let steps = [
        "ingest", "statistics", "schema", "validate", "split", "transform", "train", "evaluate", "register",
    ]

    /// A project holding the example pipeline and the data it reads.
    func project(_ prefix: String) throws -> TemporaryDirectory {
        let directory = try TemporaryDirectory(prefix: prefix)
        try FileManager.default.copyItem(at: Self.example, to: directory.path("penguins.yaml"))
        try FileManager.default.createDirectory(at: directory.path(".sluice/demo"), withIntermediateDirectories: true)
        try Data(DemoData.penguinsCSV.utf8).write(to: directory.path(".sluice/demo/penguins.csv"))
        return directory
    }

    /// A run's status, error and each step's latest status, from `sluice runs show --json`.
    func recorded(_ run: String, in directory: URL) async throws -> (
        status: String, error: String?, steps: [String: String]
    ) {
        let shown = try await CommandProcess.run("sluice", ["runs", "show", run, "--json"], in: directory)
        #expect(shown.status == 0, "\(shown.errors)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(shown.output.utf8)) as? [String: Any])
        let record = try #require(object["run"] as? [String: Any])
        var steps: [String: String] = [:]
        for step in object["steps"] as? [[String: Any]] ?? [] {
            let stepRun = step["stepRun"] as? [String: Any] ?? [:]
            if let name = stepRun["stepName"] as? String { steps[name] = stepRun["status"] as? String }
        }
        return (try #require(record["status"] as? String), record["error"] as? String, steps)
    }

    func runIDs(in directory: URL) async throws -> [String] {
        let listed = try await CommandProcess.run("sluice", ["runs", "list", "--json"], in: directory)
        let runs = try #require(try JSONSerialization.jsonObject(with: Data(listed.output.utf8)) as? [[String: Any]])
        return runs.compactMap { $0["id"] as? String }
    }

    /// The same settings run locally hit the cache for every step the scheduler's run computed. Schema and
    /// validate run again: their run registered the first production version, which the schema now comes from;
    /// register acts on the registry and is never cached.
    func expectCachedLocally(in directory: URL) async throws {
        let local = try await CommandProcess.run(
            "sluice", ["run", "penguins.yaml", "--set", "train.rounds=10"], in: directory)
        #expect(local.status == 0, "\(local.errors)")
        for step in ["ingest", "statistics", "split", "transform", "train", "evaluate"] {
            #expect(local.errors.contains("↺ \(step) cached"), "\(step): \(local.errors)")
        }
    }

    @Test("a run started for an outside scheduler, run step by step and finished, records as a local run would")
    func startStepFinish() async throws {
        let directory = try project("sluice-external")
        let started = try await CommandProcess.run(
            "sluice", ["runs", "start", "penguins.yaml", "--set", "train.rounds=10", "--orchestrator", "airflow"],
            in: directory.url)
        #expect(started.status == 0, "\(started.errors)")
        let run = started.output.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(run.hasPrefix("run-"))
        // Registered, not crashed: the process that recorded it has exited, but the run is the scheduler's.
        #expect(try await recorded(run, in: directory.url).status == "running")

        for step in Self.steps {
            let result = try await CommandProcess.run(
                "sluice", ["step", "run", "--file", "penguins.yaml", "--run", run, "--step", step], in: directory.url)
            #expect(result.status == 0, "\(step): \(result.errors)")
        }
        let finished = try await CommandProcess.run(
            "sluice", ["runs", "finish", run, "--file", "penguins.yaml"], in: directory.url)
        #expect(finished.status == 0, "\(finished.errors)")
        #expect(finished.output.contains("completed"))
        let record = try await recorded(run, in: directory.url)
        #expect(record.status == "completed")
        #expect(Set(record.steps.keys) == Set(Self.steps))
        #expect(record.steps.values.allSatisfy { $0 == "completed" || $0 == "cached" }, "\(record.steps)")
        let shown = try await CommandProcess.run("sluice", ["runs", "show", run], in: directory.url)
        #expect(shown.output.contains("run by airflow"))

        try await expectCachedLocally(in: directory.url)

        // A run whose scheduler ran only some steps ends failed, naming them, the rest recorded skipped.
        let second = try await CommandProcess.run("sluice", ["runs", "start", "penguins.yaml"], in: directory.url)
        let partial = second.output.trimmingCharacters(in: .whitespacesAndNewlines)
        let ingest = try await CommandProcess.run(
            "sluice", ["step", "run", "--file", "penguins.yaml", "--run", partial, "--step", "ingest"],
            in: directory.url)
        #expect(ingest.status == 0, "\(ingest.errors)")
        let ended = try await CommandProcess.run(
            "sluice", ["runs", "finish", partial, "--file", "penguins.yaml"], in: directory.url)
        #expect(ended.status == 1)
        let partialRecord = try await recorded(partial, in: directory.url)
        #expect(partialRecord.status == "failed")
        #expect(partialRecord.error?.contains("steps that never ran: statistics, schema") == true)
        #expect(partialRecord.steps["ingest"] == "cached")
        #expect(partialRecord.steps["register"] == "skipped")
        // Finishing again changes nothing; an unknown run is unusable input.
        let again = try await CommandProcess.run(
            "sluice", ["runs", "finish", partial, "--file", "penguins.yaml"], in: directory.url)
        #expect(again.status == 1)
        let unknown = try await CommandProcess.run(
            "sluice", ["runs", "finish", "run-nosuch", "--file", "penguins.yaml"], in: directory.url)
        #expect(unknown.status == 2, "\(unknown.errors)")
    }

    @Test("the exported DAG runs the pipeline in Apache Airflow; a failing step fails the DAG and skips its dependents")
    func airflowRunsTheDAG() async throws {
        let directory = try project("sluice-airflow")
        let dags = directory.path("airflow/dags")
        for arguments in [
            ["--set", "train.rounds=10"],
            [
                "--set", "train.label=nosuchcolumn", "--dag-id", "penguins_broken", "--retries", "1", "--retry-delay",
                "0",
            ],
        ] {
            let exported = try await CommandProcess.run(
                "sluice", ["export", "airflow", "penguins.yaml", "-o", dags.path] + arguments, in: directory.url)
            #expect(exported.status == 0, "\(exported.errors)")
        }
        let dag = try String(contentsOf: dags.appending(path: "sluice_penguins_yaml.py"), encoding: .utf8)
        #expect(dag.contains("steps[\"split\"] >> steps[\"train\"]"))
        #expect(dag.contains("\"train.rounds=10\""))

        // Airflow from PyPI (pinned: the DAG is tested against this release), SQLite backend, nothing global.
        var environment = try await PythonPackages.environment(
            modules: ["airflow"], packages: ["apache-airflow==3.3.2"], set: "airflow")
        let home = directory.path("airflow")
        environment["AIRFLOW_HOME"] = home.path
        environment["AIRFLOW__CORE__DAGS_FOLDER"] = dags.path
        environment["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
        environment["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = "sqlite:///\(home.path)/airflow.db"
        func airflow(_ arguments: [String]) async throws -> (status: Int32, output: String, errors: String) {
            try await CommandProcess.run(
                "/usr/bin/env", ["python3", "-m", "airflow"] + arguments, in: directory.url, environment: environment)
        }
        let migrated = try await airflow(["db", "migrate"])
        try #require(migrated.status == 0, "\(migrated.output)\n\(migrated.errors)")

        let tested = try await airflow(["dags", "test", "sluice_penguins_yaml"])
        let log = tested.output + tested.errors
        #expect(tested.status == 0, "\(log.suffix(4000))")
        #expect(log.contains("state=success"), "\(log.suffix(4000))")
        let runs = try await runIDs(in: directory.url)
        try #require(runs.count == 1, "\(runs)")
        let record = try await recorded(runs[0], in: directory.url)
        #expect(record.status == "completed", "\(record)")
        #expect(Set(record.steps.keys) == Set(Self.steps))
        #expect(record.steps.values.allSatisfy { $0 == "completed" || $0 == "cached" }, "\(record.steps)")
        try await expectCachedLocally(in: directory.url)

        // train fails (no such label): Airflow retries it once, skips what depends on it, fails the DAG run; the
        // Sluice run says the same.
        let before = try await runIDs(in: directory.url)
        let broken = try await airflow(["dags", "test", "penguins_broken"])
        let brokenLog = broken.output + broken.errors
        #expect(brokenLog.contains("state=failed"), "\(brokenLog.suffix(4000))")
        let failed = try #require(try await runIDs(in: directory.url).first { !before.contains($0) })
        let failedRecord = try await recorded(failed, in: directory.url)
        #expect(failedRecord.status == "failed")
        #expect(failedRecord.error?.contains("step 'train' failed") == true, "\(failedRecord)")
        #expect(failedRecord.error?.contains("nosuchcolumn") == true, "\(failedRecord)")
        #expect(failedRecord.steps["split"] == "cached")
        #expect(failedRecord.steps["evaluate"] == "skipped")
        #expect(failedRecord.steps["register"] == "skipped")
        #expect(
            brokenLog.components(separatedBy: "✘ train failed").count == 3, "Airflow ran train twice (one retry)")
    }
}
