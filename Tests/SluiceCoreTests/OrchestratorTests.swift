import Foundation
import SluiceTesting
import Synchronization
import Testing

@testable import SluiceCore

@Suite("Orchestrator: the one seam where a ready step run is placed")
struct OrchestratorTests {
    /// Runs steps here, records what it was handed, and refuses the step called `refused`.
    final class Recording: Orchestrator {
        let handed = Mutex<[(step: String, resources: StepResources?)]>([])
        let refused: String?

        init(refusing refused: String? = nil) { self.refused = refused }

        var name: String { "recording" }
        var runsStepsHere: Bool { true }
        var placementProperties: [String] { ["recording.slot"] }

        func execute(_ step: ReadyStep) async -> StepExecution {
            handed.withLock { $0.append((step.launch.step, step.resources)) }
            if step.launch.step == refused { return .elsewhere(.notStarted("no slot for it")) }
            return await step.runHere()
        }

        var steps: [String] { handed.withLock { $0.map(\.step) } }
    }

    func pipeline() -> Pipeline {
        Pipeline("placed") { p in
            let numbers = p.step("numbers", version: 1) { _ in [1, 2, 3] }
            let doubled = p.step("doubled", version: 1, numbers) { values, _ in values.map { $0 * 2 } }
            p.step("total", version: 1, doubled) { values, _ in values.reduce(0, +) }
        }
    }

    @Test("every step that misses the cache is handed to the engine's orchestrator with its resources; hits are not")
    func handsReadySteps() async throws {
        let test = try TestEngine()
        var engine = test.engine
        let recording = Recording()
        engine.orchestrator = recording
        engine.stepProperties = ["recording.slot": .string("7")]
        var config = RunConfig()
        config.steps["doubled"] = RunConfig.StepSettings(resources: StepResources(cpus: 4))
        let first = try await engine.run(pipeline(), config: config)
        #expect(first.run.status == .completed)
        #expect(try first.value(Int.self, step: "total") == 12)
        #expect(recording.steps == ["numbers", "doubled", "total"], "in DAG order, one at a time along a chain")
        #expect(recording.handed.withLock { $0[1].resources?.cpus } == 4)
        #expect(first.stepRuns.allSatisfy { $0.properties["recording.slot"] == .string("7") })

        // A second run is all cache hits: nothing is placed, and where the originals ran is not copied over.
        engine.stepProperties = [:]
        engine.placementProperties = ["recording.slot"]
        let second = try await engine.run(pipeline(), config: config)
        #expect(second.stepRuns.allSatisfy { $0.status == .cached })
        #expect(recording.steps.count == 3)
        #expect(second.stepRuns.allSatisfy { $0.properties["recording.slot"] == nil })
    }

    @Test("a step the orchestrator could not start is recorded failed with its reason, and its dependents skipped")
    func refusedStep() async throws {
        var engine = try TestEngine().engine
        engine.orchestrator = Recording(refusing: "doubled")
        let result = try await engine.run(pipeline())
        #expect(result.run.status == .failed)
        let doubled = try #require(result.stepRun("doubled"))
        #expect(doubled.status == .failed)
        #expect(doubled.error?.contains("could not be started: no slot for it") == true)
        #expect(result.stepRun("total")?.status == .skipped)
        #expect(try await engine.metadata.stepRun(doubled.id)?.status == .failed, "the record is written")
    }
}
