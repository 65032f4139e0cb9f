import Foundation
import SluiceTesting
import Testing

@testable import SluiceCore

@Suite("Lineage")
struct LineageTests {
    func pipeline() -> Pipeline {
        Pipeline("lineage") { p in
            let raw = p.add(Numbers())
            let parts = p.add(Partition(), raw)
            let model = p.step("fit", version: 1, parts.even) { even, _ in even.reduce(0, +) }
            p.step("score", version: 1, model, parts.odd) { model, odd, _ in model * odd.count }
        }
    }

    @Test("upstream walks from a result back to the raw data through every step")
    func upstream() async throws {
        let engine = try TestEngine()
        let result = try await engine.run(pipeline())
        let score = try #require(result.outputs["score"]?["output"])
        let graph = try await Lineage.trace(score, .upstream, in: engine.metadata)
        #expect(Set(graph.stepRuns.map(\.stepName)) == ["score", "fit", "partition", "numbers"])
        #expect(Set(graph.artifacts.map(\.name)) == ["output", "even", "odd"])
        let raw = try #require(result.outputs["numbers"]?["output"])
        #expect(graph.artifacts.contains { $0.id == raw.id })
        #expect(graph.producer(of: raw.id)?.stepName == "numbers")
        let oneStep = try await Lineage.trace(score, .upstream, in: engine.metadata, depth: 1)
        #expect(oneStep.stepRuns.map(\.stepName) == ["score"])
    }

    @Test("downstream finds everything made from an artifact, across runs")
    func downstreamAcrossRuns() async throws {
        let engine = try TestEngine()
        let first = try await engine.run(pipeline())
        var config = RunConfig()
        try config.apply(overrides: ["steps.fit.cache=false"])
        let second = try await engine.run(pipeline(), config: config)
        let raw = try #require(first.outputs["numbers"]?["output"])
        #expect(second.outputs["numbers"]?["output"]?.id == raw.id)  // reused through the cache
        let graph = try await Lineage.trace(raw, .downstream, in: engine.metadata)
        let runs = Set(graph.stepRuns.map(\.runID))
        #expect(runs == [first.run.id, second.run.id])
        let fits = graph.stepRuns.filter { $0.stepName == "fit" }
        #expect(fits.count == 2)
        #expect(Set(graph.stepRuns.filter { $0.stepName == "score" }.map(\.runID)) == runs)
        // Both fit runs produced equal content; the second is its own artifact record.
        #expect(
            graph.artifacts.filter { $0.producerStepRunID == fits[1].id || $0.producerStepRunID == fits[0].id }.count
                == 2)
    }
}
