import Foundation
import SluiceCore
import SluiceStorePostgres
import SluiceStoreSQLite
import SluiceTesting
import Testing

/// A project whose default stack runs every step in a process of its own.
func processProject(prefix: String) throws -> TemporaryDirectory {
    let directory = try TemporaryDirectory(prefix: prefix)
    try FileManager.default.createDirectory(at: directory.path(".sluice"), withIntermediateDirectories: true)
    try Data("stacks:\n  local: {orchestrator: process}\n".utf8).write(to: directory.path(".sluice/stack.yaml"))
    return directory
}

/// The PID of the running `step run` process of step `step`, a child of `command`, once it exists.
func stepProcess(_ step: String, of command: CommandProcess, timeout: Duration = .seconds(120)) async throws -> Int32 {
    let parent = command.process.processIdentifier
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        guard command.process.isRunning else {
            Issue.record("the run ended before step \(step) started: \(command.output)\n\(command.errors)")
            throw CancellationError()
        }
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry),
                let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                let closing = stat.lastIndex(of: ")")
            else { continue }
            let fields = stat[stat.index(after: closing)...].split(separator: " ")
            guard fields.count > 1, Int32(fields[1]) == parent,
                let raw = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline")
            else { continue }
            let arguments = raw.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            if let index = arguments.firstIndex(of: "--step"), arguments.indices.contains(index + 1),
                arguments[index + 1] == step
            {
                return pid
            }
        }
        try await Task.sleep(for: .milliseconds(10))
    }
    Issue.record("no `step run --step \(step)` child of \(parent) appeared; its output so far:\n\(command.errors)")
    throw CancellationError()
}

/// Waits until a file under `directory` whose path ends with `suffix` contains `marker`.
func waitForOutput(under directory: URL, file suffix: String, containing marker: String) async throws {
    let deadline = ContinuousClock.now + .seconds(120)
    while ContinuousClock.now < deadline {
        if let path = FileManager.default.subpaths(atPath: directory.path)?.first(where: { $0.hasSuffix(suffix) }),
            let text = try? String(contentsOf: directory.appending(path: path), encoding: .utf8), text.contains(marker)
        {
            return
        }
        try await Task.sleep(for: .milliseconds(10))
    }
    Issue.record("no \(suffix) under \(directory.path) said '\(marker)'")
    throw CancellationError()
}

@Suite("The process orchestrator: every step run in a process of its own", .serialized)
struct ProcessOrchestratorTests {
    func store(_ directory: TemporaryDirectory) throws -> SQLiteMetadataStore {
        try SQLiteMetadataStore(path: directory.path(".sluice/metadata.sqlite").path)
    }

    func onlyRun(_ directory: TemporaryDirectory) async throws -> (Run, [String: StepRun]) {
        let runs = try await store(directory).runs(RunFilter())
        let run = try #require(runs.first)
        let steps = try await store(directory).stepRuns(ofRun: run.id)
        return (run, Dictionary(steps.map { ($0.stepName, $0) }) { $1 })
    }

    @Test("a failed step's dependents are skipped, the independent branch finishes, each step ran in its own process")
    func failurePolicy() async throws {
        let directory = try processProject(prefix: "sluice-proc-fail")
        let result = try await CommandProcess.run("FixturePipelines", ["run", "branches"], in: directory.url)
        #expect(result.status == 1, "\(result.errors)")
        let (run, steps) = try await onlyRun(directory)
        #expect(run.status == .failed)
        #expect(run.error?.contains("step 'broken' failed") == true)
        #expect(
            steps.mapValues(\.status) == [
                "source": .completed, "broken": .failed, "after_broken": .skipped, "doubled": .completed,
                "report": .completed,
            ])
        #expect(steps["broken"]?.error?.contains("failed on purpose") == true)
        // Each step that executed wrote its own process's output; the skipped one never started.
        let logs = directory.path(".sluice/logs/\(run.id)")
        for step in ["source", "broken", "doubled", "report"] {
            #expect(FileManager.default.fileExists(atPath: logs.appending(path: "\(step).out").path), "\(step)")
        }
        #expect(!FileManager.default.fileExists(atPath: logs.appending(path: "after_broken.out").path))
    }

    @Test("Ctrl-C stops the step processes, records the run cancelled and exits with 130")
    func interruptStopsChildren() async throws {
        let directory = try processProject(prefix: "sluice-proc-int")
        let command = try CommandProcess(
            "FixturePipelines", ["run", "crashy", "--set", "wait.gate=\(directory.path("never").path)"],
            in: directory.url)
        let child = try await stepProcess("wait", of: command)
        try await command.waitForError(containing: "wait running")
        kill(command.process.processIdentifier, SIGINT)
        #expect(await command.wait(timeout: .seconds(60)) == 130)
        #expect(kill(child, 0) == -1 && errno == ESRCH, "the step's process is gone")
        let (run, steps) = try await onlyRun(directory)
        #expect(run.status == .cancelled)
        #expect(
            steps.mapValues(\.status) == [
                "numbers": .completed, "wait": .cancelled, "blob": .cancelled, "finish": .cancelled,
            ])
    }

    @Test("a step process killed with SIGKILL mid-write fails its step with the signal; the next run resumes")
    func killedStepProcess() async throws {
        let directory = try processProject(prefix: "sluice-proc-kill")
        let gate = directory.path("gate").path
        _ = FileManager.default.createFile(atPath: gate, contents: nil)
        let arguments = ["run", "crashy", "--set", "wait.gate=\(gate)"]
        // The blob's write holds after its first chunk (until a file that never comes): the kill lands mid-write.
        let first = try CommandProcess(
            "FixturePipelines", arguments, in: directory.url,
            environment: ["SLUICE_FIXTURE_HOLD_WRITE": directory.path("never").path])
        let child = try await stepProcess("blob", of: first)
        try await waitForOutput(
            under: directory.path(".sluice/logs"), file: "blob.out", containing: "holding the write")
        let temporaryFolder = directory.path(".sluice/artifacts/.tmp").path
        kill(child, SIGKILL)
        #expect(await first.wait() == 1)
        #expect(first.output.contains("killed by signal 9 (SIGKILL)"), "\(first.output)")
        let (run, steps) = try await onlyRun(directory)
        #expect(run.status == .failed)
        #expect(steps["blob"]?.status == .failed)
        #expect(steps["blob"]?.error?.contains("killed by signal 9 (SIGKILL)") == true)
        #expect(steps["finish"]?.status == .skipped)
        #expect(try await store(directory).outputs(ofStepRun: steps["blob"]!.id).isEmpty)
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: temporaryFolder).count == 1,
            "the partial blob stays in .tmp, outside the store")

        let second = try await CommandProcess.run("FixturePipelines", arguments, in: directory.url)
        #expect(second.status == 0, "\(second.errors)")
        let runs = try await store(directory).runs(RunFilter())
        let resumed = try await store(directory).stepRuns(ofRun: runs[0].id)
        #expect(
            Dictionary(uniqueKeysWithValues: resumed.map { ($0.stepName, $0.status) }) == [
                "numbers": .cached, "wait": .cached, "blob": .completed, "finish": .completed,
            ])
        #expect(try FileManager.default.contentsOfDirectory(atPath: temporaryFolder).isEmpty)
    }
}

@Suite("The process orchestrator on SQLite and PostgreSQL records what an in-process run records")
struct ProcessOrchestratorRecordsTests {
    /// What a run's records say, without the orchestrator's fields (IDs, hosts, process IDs, times): per step,
    /// its status, cache key and each output's content hash.
    struct StepRecord: Equatable, CustomStringConvertible {
        var step: String
        var status: StepRunStatus
        var cacheKey: CacheKey?
        var outputs: [String: String]
        var description: String { "\(step) \(status) \(cacheKey?.rawValue.prefix(16) ?? "-") \(outputs)" }
    }

    func records(_ store: any MetadataStore, pipeline: String) async throws -> [StepRecord] {
        let runs = try await store.runs(RunFilter(pipeline: pipeline))
        try #require(runs.count == 1, "one run of \(pipeline)")
        #expect(runs[0].status == .completed)
        var records: [StepRecord] = []
        for stepRun in try await store.stepRuns(ofRun: runs[0].id) {
            let outputs = try await store.outputs(ofStepRun: stepRun.id).mapValues(\.contentHash)
            records.append(
                StepRecord(step: stepRun.stepName, status: stepRun.status, cacheKey: stepRun.cacheKey, outputs: outputs)
            )
        }
        return records.sorted { $0.step < $1.step }
    }

    @Test("the standard pipeline and the Swift example: in-process on SQLite, process on SQLite and on PostgreSQL")
    func sameRecords() async throws {
        let server = try await TestPostgres.started()
        let url = try await PostgresDatabases.create(
            "p_\(UUID().uuidString.prefix(12).lowercased())", on: server.adminURL)
        let directory = try TemporaryDirectory(prefix: "sluice-proc-records")
        try FileManager.default.createDirectory(at: directory.path(".sluice"), withIntermediateDirectories: true)
        try Data(
            """
            default: local
            stacks:
              local: {metadata_store: metadata.sqlite}
              procs: {orchestrator: process, metadata_store: procs.sqlite, artifact_store: procs-artifacts}
              team:
                orchestrator: process
                metadata_store: \(url)
                password_env: SLUICE_TEST_PG_PASSWORD
                artifact_store: team-artifacts

            """.utf8
        ).write(to: directory.path(".sluice/stack.yaml"))
        for stack in ["local", "procs", "team"] {
            let demo = try await CommandProcess.run(
                "sluice", ["demo", "--stack", stack], in: directory.url, environment: teamEnvironment)
            #expect(demo.status == 0, "\(stack): \(demo.errors)")
            let example = try await CommandProcess.run(
                "sluice-example", ["run", "--stack", stack], in: directory.url, environment: teamEnvironment)
            #expect(example.status == 0, "\(stack): \(example.errors)")
        }
        let local = try SQLiteMetadataStore(path: directory.path(".sluice/metadata.sqlite").path)
        let procs = try SQLiteMetadataStore(path: directory.path(".sluice/procs.sqlite").path)
        let team = try await PostgresMetadataStore(url: url, password: TestPostgres.password)
        defer { Task { await team.close() } }
        for pipeline in ["penguins-demo", "prices"] {
            let inProcess = try await records(local, pipeline: pipeline)
            #expect(inProcess.count >= 7)
            #expect(inProcess.allSatisfy { $0.status == .completed })
            for (name, store) in [("process + SQLite", procs as any MetadataStore), ("process + PostgreSQL", team)] {
                let recorded = try await records(store, pipeline: pipeline)
                #expect(recorded.map(\.step) == inProcess.map(\.step))
                for (got, want) in zip(recorded, inProcess) {
                    #expect(got == want, "\(pipeline) on \(name)")
                }
            }
        }
        // The process runs' steps each ran in a process of their own, which left its output beside the step logs.
        let procsRun = try #require(try await procs.runs(RunFilter(pipeline: "penguins-demo")).first)
        #expect(
            FileManager.default.fileExists(atPath: directory.path(".sluice/logs/\(procsRun.id)/train.out").path))
        let localRun = try #require(try await local.runs(RunFilter(pipeline: "penguins-demo")).first)
        #expect(
            !FileManager.default.fileExists(atPath: directory.path(".sluice/logs/\(localRun.id)/train.out").path))
    }
}
