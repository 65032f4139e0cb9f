import Foundation
import SluiceCore
import SluiceStoreSQLite
import SluiceTesting
import Testing

@testable import SluiceCLI

@Suite("step run: one step run of a recorded run, as an orchestrator starts it")
struct StepRunnerTests {
    func stepRuns(_ run: RunID, in directory: URL) async throws -> [StepRun] {
        try await SQLiteMetadataStore(path: directory.appending(path: ".sluice/metadata.sqlite").path)
            .stepRuns(ofRun: run)
    }

    @Test("the steps a killed run left undone run one by one in their own processes, from its recorded config")
    func finishesAKilledRun() async throws {
        let directory = try TemporaryDirectory(prefix: "sluice-step")
        let gate = directory.path("gate")
        let first = try CommandProcess(
            "FixturePipelines", ["run", "crashy", "--set", "wait.gate=\(gate.path)"], in: directory.url)
        try await first.waitForError(containing: "wait running")
        kill(first.process.processIdentifier, SIGKILL)
        _ = await first.wait()
        let runs = try await CommandProcess.run("FixturePipelines", ["runs", "list", "--json"], in: directory.url)
        struct Listed: Decodable { var id: String }
        let run = try #require(try JSONDecoder().decode([Listed].self, from: Data(runs.output.utf8)).first).id

        // Out of order: blob reads wait's output, which this run does not have yet.
        let early = try await CommandProcess.run(
            "FixturePipelines", ["step", "run", "--run", run, "--step", "blob"], in: directory.url)
        #expect(early.status == 2)
        #expect(early.errors.contains("no finished 'wait' step run"))
        let unknown = try await CommandProcess.run(
            "FixturePipelines", ["step", "run", "--run", run, "--step", "blobb"], in: directory.url)
        #expect(unknown.status == 2)
        #expect(unknown.errors.contains("Did you mean 'blob'?"))
        // What the orchestrators' fast path does not take still gets ArgumentParser's messages and statuses.
        let missing = try await CommandProcess.run("FixturePipelines", ["step", "run", "--run"], in: directory.url)
        #expect(missing.status == 2)
        #expect(missing.errors.contains("--run"))
        let typo = try await CommandProcess.run(
            "FixturePipelines", ["step", "run", "--run", run, "--stpe", "blob"], in: directory.url)
        #expect(typo.status == 2)
        #expect(typo.errors.contains("--step"))

        // The recorded config carries the gate: the step waits for it, as the killed run did.
        try Data().write(to: gate)
        for step in ["wait", "blob", "finish"] {
            let result = try await CommandProcess.run(
                "FixturePipelines", ["step", "run", "--run", run, "--step", step], in: directory.url)
            #expect(result.status == 0, "\(step): \(result.errors)")
        }
        let records = try await stepRuns(run, in: directory.url)
        let finish = try #require(records.last { $0.stepName == "finish" })
        #expect(finish.status == .completed)
        let store = try SQLiteMetadataStore(path: directory.path(".sluice/metadata.sqlite").path)
        let outputs = try await store.outputs(ofStepRun: finish.id)
        let text = try LocalArtifactStore(root: directory.path(".sluice/artifacts")).data(for: outputs["output"]!.uri)
        #expect(String(decoding: text, as: UTF8.self).contains("blob of 4005040 bytes"))
        // The finish step read the blob this run's blob step run wrote.
        let blob = try #require(records.last { $0.stepName == "blob" && $0.status == .completed })
        let read = try await store.events(ofStepRun: finish.id).first { $0.kind == .input }
        #expect(read?.artifactID == (try await store.outputs(ofStepRun: blob.id))["output"]?.id)

        // Again: every step is a cache hit now, recorded as cached.
        let again = try await CommandProcess.run(
            "FixturePipelines", ["step", "run", "--run", run, "--step", "blob"], in: directory.url)
        #expect(again.status == 0)
        #expect(try await stepRuns(run, in: directory.url).last?.status == .cached)
    }

    @Test("a step that fails exits with 1 and is recorded failed with its error")
    func failingStep() async throws {
        let directory = try TemporaryDirectory(prefix: "sluice-step-fail")
        let first = try await CommandProcess.run("FixturePipelines", ["run", "failing"], in: directory.url)
        #expect(first.status == 1)
        let runs = try await CommandProcess.run("FixturePipelines", ["runs", "list", "--json"], in: directory.url)
        struct Listed: Decodable { var id: String }
        let run = try #require(try JSONDecoder().decode([Listed].self, from: Data(runs.output.utf8)).first).id
        let result = try await CommandProcess.run(
            "FixturePipelines", ["step", "run", "--run", run, "--step", "broken"], in: directory.url)
        #expect(result.status == 1)
        let last = try #require(try await stepRuns(run, in: directory.url).last)
        #expect(last.stepName == "broken" && last.status == .failed)
        #expect(last.error?.contains("failed on purpose") == true)
    }
}

/// The arguments orchestrators pass to `step run`, read without ArgumentParser (it costs each step process
/// milliseconds).
@Suite("step run's fast argument reading")
struct StepRunArgumentsTests {
    typealias Request = StepCommand.RunStep.StepRequest

    @Test("an orchestrator's step run is read by the fast path, shard or not; anything else goes to ArgumentParser")
    func fastPath() throws {
        let plain = try #require(
            Request(orchestratorArguments: [
                "--run", "run-1", "--step", "train", "--step-run", "step-1", "--stack", "local", "--set",
                "stack.durability=process", "--finish-run",
            ]))
        #expect(plain.run == "run-1" && plain.step == "train" && plain.stepRun == "step-1")
        #expect(plain.stack == "local" && plain.overrides == ["stack.durability=process"] && plain.finishRun)
        #expect(plain.shard == nil && !plain.mergeShards)
        let shard = try #require(Request(orchestratorArguments: ["--run", "r", "--step", "s", "--shard", "3"]))
        #expect(shard.shard == 3)
        for arguments in [
            ["--run", "r"], ["--run", "r", "--step", "s", "--help"], ["--run", "r", "--step", "s", "--shard", "x"],
            ["--run", "r", "--run", "q", "--step", "s"], ["--run", "r", "--step"],
        ] {
            #expect(Request(orchestratorArguments: arguments) == nil, "\(arguments)")
        }
    }
}
