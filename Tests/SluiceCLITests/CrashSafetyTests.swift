import Foundation
import SluiceCore
import SluiceStoreSQLite
import SluiceTesting
import Testing

@Suite("Crash safety and cancellation, with real processes", .serialized)
struct CrashSafetyTests {
    /// Every artifact the store records exists and has the content its hash says.
    func verifyArtifacts(in project: URL) async throws -> Int {
        let store = try SQLiteMetadataStore(path: project.appending(path: ".sluice/metadata.sqlite").path)
        let artifacts = try await store.artifacts(ArtifactFilter(limit: 1_000))
        let content = try LocalArtifactStore(root: project.appending(path: ".sluice/artifacts"))
        for artifact in artifacts {
            let (hash, size): (String, Int64)
            if let url = content.url(for: artifact.uri) {
                (hash, size) = try ContentHasher.hash(url)
            } else {
                let data = try content.data(for: artifact.uri)
                (hash, size) = (ContentHasher.hash(data), Int64(data.count))
            }
            #expect(hash == artifact.contentHash, "artifact \(artifact.id) does not match its hash")
            #expect(size == artifact.size)
        }
        return artifacts.count
    }

    func runs(in directory: URL) async throws -> [Run] {
        let (status, output, errors) = try await CommandProcess.run(
            "FixturePipelines", ["runs", "list", "--json"], in: directory)
        #expect(status == 0, "runs list failed: \(errors)")
        return try CommandProcess.jsonDecoder.decode([Run].self, from: Data(output.utf8))
    }

    func stepStatuses(_ run: RunID, in directory: URL) async throws -> [String: StepRunStatus] {
        let store = try SQLiteMetadataStore(path: directory.appending(path: ".sluice/metadata.sqlite").path)
        return Dictionary(uniqueKeysWithValues: try await store.stepRuns(ofRun: run).map { ($0.stepName, $0.status) })
    }

    @Test("runs cancel stops a run of this machine as Ctrl-C would: recorded cancelled, its process exits 130")
    func runsCancelLocalRun() async throws {
        let directory = try TemporaryDirectory(prefix: "sluice-cancel-local")
        let running = try CommandProcess(
            "FixturePipelines", ["run", "crashy", "--set", "wait.gate=\(directory.path("never").path)"],
            in: directory.url)
        try await running.waitForError(containing: "wait running")
        let run = try #require(try await runs(in: directory.url).first)
        #expect(run.status == .running)
        let (status, output, errors) = try await CommandProcess.run(
            "FixturePipelines", ["runs", "cancel", String(run.id.prefix(16))], in: directory.url)
        #expect(status == 0, "\(errors)")
        #expect(output.contains("run \(run.id) cancelled"), "\(output)")
        #expect(await running.wait() == 130)
        #expect(try await stepStatuses(run.id, in: directory.url)["wait"] == .cancelled)
        let again = try await CommandProcess.run("FixturePipelines", ["runs", "cancel", run.id], in: directory.url)
        #expect(again.status == 2, "a run that is not running cannot be cancelled")
        #expect(again.errors.contains("is not running"))
    }

    @Test("a run killed with SIGKILL mid-step and mid-write reads as crashed; the next run resumes from cache")
    func killedRunResumes() async throws {
        let directory = try TemporaryDirectory(prefix: "sluice-crash")
        let gate = directory.path("gate").path
        let arguments = ["run", "crashy", "--set", "wait.gate=\(gate)"]

        // 1. Killed while a step runs: its finished upstream is kept, the run reads as crashed.
        let first = try CommandProcess("FixturePipelines", arguments, in: directory.url)
        try await first.waitForError(containing: "wait running")
        kill(first.process.processIdentifier, SIGKILL)
        #expect(await first.wait() == SIGKILL)
        let afterKill = try await runs(in: directory.url)
        #expect(afterKill.map(\.status) == [.crashed])
        var steps = try await stepStatuses(afterKill[0].id, in: directory.url)
        #expect(steps["numbers"] == .completed)
        #expect(steps["wait"] == .crashed)
        #expect(try await verifyArtifacts(in: directory.url) == 1)

        // 2. Killed while an artifact is being written: nothing half-written becomes visible.
        _ = FileManager.default.createFile(atPath: gate, contents: nil)
        // The write holds after its first chunk (until a file that never comes), so the kill lands mid-write
        // however loaded the machine is.
        let second = try CommandProcess(
            "FixturePipelines", arguments, in: directory.url,
            environment: ["SLUICE_FIXTURE_HOLD_WRITE": directory.path("never").path])
        try await second.waitForError(containing: "fixture: holding the write")
        kill(second.process.processIdentifier, SIGKILL)
        #expect(await second.wait() == SIGKILL)
        let temporaries = try FileManager.default.contentsOfDirectory(
            atPath: directory.path(".sluice/artifacts/.tmp").path)
        #expect(temporaries.count == 1, "the partial blob stays in .tmp, outside the store")
        let afterSecond = try await runs(in: directory.url)
        #expect(afterSecond.map(\.status) == [.crashed, .crashed])
        steps = try await stepStatuses(afterSecond[0].id, in: directory.url)
        #expect(steps["numbers"] == .cached)
        #expect(steps["wait"] == .completed)
        #expect(steps["blob"] == .crashed)
        #expect(try await verifyArtifacts(in: directory.url) == 2)

        // 3. The next run reuses every completed step, finishes the rest and sweeps the partial write.
        let third = try await CommandProcess.run("FixturePipelines", arguments, in: directory.url)
        #expect(third.status == 0, "resumed run failed: \(third.errors)")
        let afterThird = try await runs(in: directory.url)
        #expect(afterThird.first?.status == .completed)
        steps = try await stepStatuses(afterThird[0].id, in: directory.url)
        #expect(steps == ["numbers": .cached, "wait": .cached, "blob": .completed, "finish": .completed])
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: directory.path(".sluice/artifacts/.tmp").path).isEmpty)
        #expect(try await verifyArtifacts(in: directory.url) == 4)
    }

    @Test("8 processes running at once on one project record every run, step run, artifact and event")
    func concurrentProcesses() async throws {
        let directory = try TemporaryDirectory(prefix: "sluice-procs")
        _ = try await CommandProcess.run("FixturePipelines", ["init"], in: directory.url)
        let processes = try (0..<8).map { _ in
            try CommandProcess("FixturePipelines", ["run", "wide", "--no-cache"], in: directory.url)
        }
        for process in processes {
            #expect(await process.wait() == 0, "a run failed: \(process.errors)")
        }
        let recorded = try await runs(in: directory.url)
        #expect(recorded.count == 8)
        #expect(recorded.allSatisfy { $0.status == .completed })
        #expect(Set(recorded.map(\.owner.pid)).count == 8)
        let store = try SQLiteMetadataStore(path: directory.path(".sluice/metadata.sqlite").path)
        for run in recorded {
            let steps = try await store.stepRuns(ofRun: run.id)
            #expect(steps.count == 18)
            #expect(steps.allSatisfy { $0.status == .completed })
            #expect(try await store.artifacts(ArtifactFilter(runID: run.id, limit: 100)).count == 18)
            let total = try #require(steps.first { $0.stepName == "total" })
            #expect(try await store.events(ofStepRun: total.id).filter { $0.kind == .input }.count == 4)
        }
        #expect(try await verifyArtifacts(in: directory.url) == 8 * 18)
    }

    @Test("Ctrl-C cancels the run cleanly, records it as cancelled and exits with 130")
    func interruptCancels() async throws {
        let directory = try TemporaryDirectory(prefix: "sluice-sigint")
        let command = try CommandProcess(
            "FixturePipelines", ["run", "crashy", "--set", "wait.gate=\(directory.path("never").path)"],
            in: directory.url)
        try await command.waitForError(containing: "wait running")
        kill(command.process.processIdentifier, SIGINT)
        #expect(await command.wait() == 130)
        #expect(command.errors.contains("cancelling the run"))
        #expect(command.output.contains("cancelled"))
        let recorded = try await runs(in: directory.url)
        #expect(recorded.map(\.status) == [.cancelled])
        let steps = try await stepStatuses(recorded[0].id, in: directory.url)
        #expect(steps == ["numbers": .completed, "wait": .cancelled, "blob": .cancelled, "finish": .cancelled])
    }

    @Test("Ctrl-C stops gradient boosting between rounds: the run is recorded cancelled within a second or two")
    func interruptStopsTraining() async throws {
        let directory = try TemporaryDirectory(prefix: "sluice-sigint-train")
        let command = try CommandProcess("sluice", ["demo", "--set", "train.rounds=1000000"], in: directory.url)
        try await command.waitForError(containing: "train running")
        try await Task.sleep(for: .milliseconds(500))  // well into training
        let interrupted = ContinuousClock.now
        kill(command.process.processIdentifier, SIGINT)
        #expect(await command.wait(timeout: .seconds(60)) == 130, "\(command.errors)")
        let latency = ContinuousClock.now - interrupted
        #expect(latency < .seconds(5), "training stopped \(latency) after Ctrl-C")
        let recorded = try await runs(in: directory.url)
        #expect(recorded.map(\.status) == [.cancelled])
        let steps = try await stepStatuses(recorded[0].id, in: directory.url)
        #expect(steps["train"] == .cancelled)
        #expect(steps["register"] == .cancelled)
    }
}
