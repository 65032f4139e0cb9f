import Foundation
import SluiceTesting
import Testing

@testable import SluiceCore

@Suite("Run engine: concurrency, failures, cancellation, context")
struct RunEngineTests {
    @Test("the two middle steps of a diamond run at the same time")
    func diamondOverlaps() async throws {
        let timeline = Timeline()
        let pipeline = Pipeline("diamond") { p in
            let top = p.step("top", version: 1) { _ in [1, 2, 3] }
            let left = p.step("left", version: 1, top) { values, _ in
                try await timeline.record("left", sleep: .milliseconds(300))
                return values.count
            }
            let right = p.step("right", version: 1, top) { values, _ in
                try await timeline.record("right", sleep: .milliseconds(300))
                return values.reduce(0, +)
            }
            p.step("bottom", version: 1, left, right) { count, sum, _ in
                try await timeline.record("bottom", sleep: .milliseconds(1))
                return sum / count
            }
        }
        var config = RunConfig()
        config.parallelism = 2
        let engine = try TestEngine()
        let result = try await engine.run(pipeline, config: config)
        #expect(result.run.status == .completed)
        #expect(timeline.overlap("left", "right"))
        #expect(try #require(timeline["bottom"]).start >= max(timeline["left"]!.end, timeline["right"]!.end))
        #expect(try result.value(Int.self, step: "bottom") == 2)
    }

    @Test("parallelism bounds how many steps run at once", arguments: [1, 2, 3])
    func parallelismBound(limit: Int) async throws {
        let timeline = Timeline()
        let pipeline = Pipeline("wide") { p in
            for index in 0..<6 {
                p.step("s\(index)", version: 1) { _ in try await timeline.record("s\(index)", sleep: .milliseconds(250))
                }
            }
        }
        var config = RunConfig()
        config.parallelism = limit
        config.cache = false
        let result = try await TestEngine().run(pipeline, config: config)
        #expect(result.run.status == .completed)
        #expect(timeline.peakConcurrency == limit)
    }

    @Test("a failed step fails the run, skips its dependents and lets independent branches finish")
    func failurePolicy() async throws {
        let pipeline = Pipeline("branches") { p in
            let source = p.add(Numbers())
            let bad = p.step("bad", version: 1, source) { _, _ -> Int in throw Boom() }
            p.step("after_bad", version: 1, bad) { value, _ in value }
            let good = p.step("good", version: 1, source) { values, _ in
                try await Task.sleep(for: .milliseconds(50))
                return values.count
            }
            p.step("after_good", version: 1, good) { value, _ in value + 1 }
        }
        let engine = try TestEngine()
        let result = try await engine.run(pipeline)
        #expect(result.run.status == .failed)
        #expect(result.run.error == "step 'bad' failed: boom: the step gave up")
        #expect(result.stepRun("bad")?.status == .failed)
        #expect(result.stepRun("bad")?.error == "boom: the step gave up")
        #expect(result.stepRun("after_bad")?.status == .skipped)
        #expect(result.stepRun("after_bad")?.error == "'bad' failed")
        #expect(result.stepRun("after_good")?.status == .completed)
        #expect(try result.value(Int.self, step: "after_good") == 6)
        let stored = try await engine.metadata.run(result.run.id)
        #expect(stored?.status == .failed)
        #expect(try await engine.metadata.stepRuns(ofRun: result.run.id).count == 5)
    }

    @Test("every step run records the steps it reads from, skipped and cached ones too")
    func upstreamRecorded() async throws {
        let pipeline = Pipeline("branches") { p in
            let source = p.add(Numbers())
            let bad = p.step("bad", version: 1, source) { _, _ -> Int in throw Boom() }
            let good = p.step("good", version: 1, source) { values, _ in values.count }
            p.step("join", version: 1, bad, good) { a, b, _ in a + b }
        }
        let engine = try TestEngine()
        for _ in 0..<2 {
            let result = try await engine.run(pipeline)
            let stored = try await engine.metadata.stepRuns(ofRun: result.run.id)
            let upstream = Dictionary(uniqueKeysWithValues: stored.map { ($0.stepName, $0.upstream) })
            #expect(upstream["numbers"] == .some([]))
            #expect(upstream["bad"] == .some(["numbers"]))
            #expect(upstream["join"] == .some(["bad", "good"]), "a skipped step keeps its edges")
            #expect(stored.first { $0.stepName == "join" }?.status == .skipped)
            #expect(stored.allSatisfy { $0.stepProperties[StepRun.upstreamProperty] == nil })
        }
        let second = try await engine.metadata.runs(RunFilter(limit: 1))[0]
        let good = try await engine.metadata.stepRuns(ofRun: second.id).first { $0.stepName == "good" }
        #expect(good?.status == .cached && good?.upstream == ["numbers"])
    }

    @Test("cancelling a run cancels running steps and records the run as cancelled")
    func cancellation() async throws {
        let started = AsyncStream<Void>.makeStream()
        let pipeline = Pipeline("slow") { p in
            let first = p.step("first", version: 1) { _ in 1 }
            let slow = p.step("slow", version: 1, first) { value, _ in
                started.continuation.yield()
                try await Task.sleep(for: .seconds(120))
                return value
            }
            p.step("last", version: 1, slow) { value, _ in value }
        }
        let engine = try TestEngine()
        let task = Task { try await engine.run(pipeline) }
        var iterator = started.stream.makeAsyncIterator()
        await iterator.next()
        let clock = ContinuousClock()
        let begin = clock.now
        task.cancel()
        let result = try await task.value
        // Well before the step's 120 s sleep would end. The bound leaves room for a loaded 2-core machine: under the
        // whole suite, the cancelled records' writes once waited 22 s for a thread of the cooperative pool.
        #expect(clock.now - begin < .seconds(60))
        #expect(result.run.status == .cancelled)
        #expect(result.stepRun("first")?.status == .completed)
        #expect(result.stepRun("slow")?.status == .cancelled)
        #expect(result.stepRun("last")?.status == .cancelled)
        #expect(try await engine.metadata.run(result.run.id)?.status == .cancelled)
    }

    @Test("each step gets a seed derived from the run seed and its name, recorded with the step run")
    func seeds() async throws {
        let pipeline = Pipeline("random") { p in
            p.step("a", version: 1) { context in
                var random = context.random()
                return (0..<3).map { _ in Int.random(in: 0..<1_000_000, using: &random) }
            }
            p.step("b", version: 1) { context in context.seed }
        }
        let engine = try TestEngine()
        var config = RunConfig()
        config.seed = 7
        config.cache = false
        let first = try await engine.run(pipeline, config: config)
        let second = try await engine.run(pipeline, config: config)
        #expect(try first.value([Int].self, step: "a") == second.value([Int].self, step: "a"))
        #expect(first.stepRun("a")?.seed == SeededRandom.derive(seed: 7, name: "a"))
        #expect(first.stepRun("a")?.seed != first.stepRun("b")?.seed)
        config.seed = 8
        let third = try await engine.run(pipeline, config: config)
        #expect(try first.value([Int].self, step: "a") != third.value([Int].self, step: "a"))
    }

    @Test("logs, metrics and properties a step records end up in the metadata store")
    func contextRecording() async throws {
        let pipeline = Pipeline("recording") { p in
            p.step("train", version: 1) { context in
                context.logger.info("epoch done", metadata: ["epoch": "1"])
                for epoch in 1...3 { context.log(metric: "loss", 1 / Double(epoch), step: epoch) }
                context.setProperty("rows", .int(42))
                context.setProperty("source", .string("synthetic"), forOutput: "output")
                return 1
            }
            p.step("quiet", version: 1) { _ in 2 }
        }
        let engine = try TestEngine()
        let result = try await engine.run(pipeline)
        let train = try #require(result.stepRun("train"))
        #expect(train.stepProperties == ["rows": .int(42)])
        #expect(try await engine.metadata.metrics(ofStepRun: train.id).map(\.value) == [1, 0.5, 1.0 / 3])
        let log = try String(contentsOfFile: try #require(train.logPath), encoding: .utf8)
        #expect(log.contains("info epoch done"))
        #expect(log.contains("epoch=1"))
        #expect(log.contains("run.id=\(result.run.id)"))
        #expect(result.stepRun("quiet")?.logPath == nil)  // nothing logged, no file
        #expect(result.outputs["train"]?["output"]?.properties["source"] == .string("synthetic"))
    }

    @Test("observers see queued, running and done for every step")
    func observerStates() async throws {
        let observer = RecordingObserver()
        let pipeline = Pipeline("observed") { p in p.add(Scale(), p.add(Numbers())) }
        let engine = try TestEngine()
        _ = try await engine.run(pipeline, observer: observer)
        let states = observer.states(of: "scale")
        #expect(states.count == 3)
        #expect(states.first == .queued)
        if case .running = states[1] {} else { Issue.record("expected running, got \(states[1])") }
        if case .completed = states[2] {} else { Issue.record("expected completed, got \(states[2])") }
        _ = try await engine.run(pipeline, observer: observer)
        if case .cached = observer.states(of: "scale").last! {
        } else {
            Issue.record("expected cached on the second run")
        }
    }

    @Test("the run records user, host, OS, Swift version and the resolved config")
    func runRecord() async throws {
        let pipeline = Pipeline("recorded") { p in p.add(Numbers()) }
        var config = RunConfig()
        try config.apply(overrides: ["numbers.count=3", "parallelism=1"])
        let engine = try TestEngine()
        let result = try await engine.run(pipeline, config: config)
        let run = try #require(try await engine.metadata.run(result.run.id))
        #expect(run.environment.host == ProcessInfo.processInfo.hostName)
        #expect(!run.environment.user.isEmpty)
        #expect(run.environment.swiftVersion.hasPrefix("6."))
        #expect(run.owner == .current)
        #expect(run.config.contains("count: 3"))
        #expect(run.config.contains("parallelism: 1"))
        #expect(run.endedAt != nil)
    }
}
