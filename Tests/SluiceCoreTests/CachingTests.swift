import Foundation
import SluiceTesting
import Testing

@testable import SluiceCore

@Suite("Caching")
struct CachingTests {
    func chain(_ counter: Counter) -> Pipeline {
        Pipeline("chain") { p in
            let numbers = p.add(Numbers(counter: counter))
            let scaled = p.add(Scale(counter: counter), numbers)
            p.step("sum", version: 1, scaled) { values, _ in
                counter.hit("sum")
                return values.reduce(0, +)
            }
            p.step("other", version: 1) { _ in
                counter.hit("other")
                return "independent"
            }
        }
    }

    @Test("an unchanged second run reuses every step and points at the originals")
    func secondRunCached() async throws {
        let counter = Counter()
        let engine = try TestEngine()
        let first = try await engine.run(chain(counter))
        let second = try await engine.run(chain(counter))
        #expect(second.stepRuns.allSatisfy { $0.status == .cached })
        for name in ["numbers", "scale", "sum", "other"] {
            #expect(counter[name] == 1)
            #expect(second.stepRun(name)?.cachedFrom == first.stepRun(name)?.id)
            #expect(second.outputs[name]?["output"]?.id == first.outputs[name]?["output"]?.id)
        }
        #expect(try second.value(Int.self, step: "sum") == 20)
    }

    /// A step that draws from the run seed, one that declares it does not, and one that breaks its declaration.
    struct Draw: Step {
        static let name = "draw"
        static let version = 1
        func run(_ input: Void, context: StepContext) async throws -> UInt64 {
            var random = context.random()
            return random.next()
        }
    }

    struct Constant: Step {
        static let name = "constant"
        static let version = 1
        static let usesRunSeed = false
        func run(_ input: Void, context: StepContext) async throws -> Int { 7 }
    }

    struct Sneaky: Step {
        static let name = "sneaky"
        static let version = 1
        static let usesRunSeed = false
        func run(_ input: Void, context: StepContext) async throws -> UInt64 {
            var random = context.random()
            return random.next()
        }
    }

    @Test("a new run seed re-runs the steps that draw from it and reuses those that declare they do not")
    func runSeedInCacheKey() async throws {
        let engine = try TestEngine()
        let pipeline = Pipeline("seeded") { p in
            p.add(Draw())
            p.add(Constant())
        }
        var config = RunConfig()
        config.seed = 42
        let first = try await engine.run(pipeline, config: config)
        config.seed = 7
        let second = try await engine.run(pipeline, config: config)
        #expect(second.stepRun("draw")?.status == .completed, "seed 7 must not reuse seed 42's draw")
        #expect(try second.value(UInt64.self, step: "draw") != first.value(UInt64.self, step: "draw"))
        #expect(second.stepRun("constant")?.status == .cached)
        // The record of a cached step run is the seed it was made with, not a claim about this run's seed.
        config.seed = 42
        let third = try await engine.run(pipeline, config: config)
        #expect(third.stepRun("draw")?.cachedFrom == first.stepRun("draw")?.id)
    }

    @Test("a step that declares it does not use the run seed but draws from it fails, saying what to change")
    func undeclaredSeedUse() async throws {
        let engine = try TestEngine()
        let result = try await engine.run(Pipeline("sneaky") { p in p.add(Sneaky()) })
        #expect(result.stepRun("sneaky")?.status == .failed)
        #expect(result.stepRun("sneaky")?.error?.contains("usesRunSeed") == true)
    }

    @Test("changing one step's parameters re-runs it and everything downstream, nothing else")
    func parameterChange() async throws {
        let counter = Counter()
        let engine = try TestEngine()
        _ = try await engine.run(chain(counter))
        var config = RunConfig()
        try config.apply(overrides: ["scale.factor=3"])
        let changed = try await engine.run(chain(counter), config: config)
        #expect(changed.stepRun("numbers")?.status == .cached)
        #expect(changed.stepRun("other")?.status == .cached)
        #expect(changed.stepRun("scale")?.status == .completed)
        #expect(changed.stepRun("sum")?.status == .completed)
        #expect(counter["numbers"] == 1)
        #expect(counter["scale"] == 2)
        #expect(try changed.value(Int.self, step: "sum") == 30)
    }

    @Test("a parameter change that yields identical output stops the re-run at that step")
    func identicalOutputStopsPropagation() async throws {
        let counter = Counter()
        let engine = try TestEngine()
        _ = try await engine.run(chain(counter))
        var config = RunConfig()
        try config.apply(overrides: ["numbers.label=renamed"])  // label does not change the numbers
        let result = try await engine.run(chain(counter), config: config)
        #expect(result.stepRun("numbers")?.status == .completed)
        #expect(result.stepRun("scale")?.status == .cached)  // same input content hash
        #expect(result.stepRun("sum")?.status == .cached)
    }

    @Test("every cache key ingredient changes the key")
    func keyIngredients() {
        let base = CacheKey.Ingredients(
            stepName: "train", codeVersion: 1, parameters: #"{"lr":0.1}"#, inputs: [("data", "sha256:aa")],
            outputs: [("output", "json", 1)])
        var variants: [CacheKey.Ingredients] = []
        var v = base
        v.stepName = "train2"
        variants.append(v)
        v = base
        v.codeVersion = 2
        variants.append(v)
        v = base
        v.parameters = #"{"lr":0.2}"#
        variants.append(v)
        v = base
        v.inputs = [("data", "sha256:bb")]
        variants.append(v)
        v = base
        v.inputs = [("other", "sha256:aa")]
        variants.append(v)
        v = base
        v.outputs = [("output", "json", 2)]
        variants.append(v)
        v = base
        v.outputs = [("output", "arrow", 1)]
        variants.append(v)
        let keys = Set(([base] + variants).map { CacheKey(ingredients: $0) })
        #expect(keys.count == variants.count + 1)
        #expect(CacheKey(ingredients: base) == CacheKey(ingredients: base))
        #expect(CacheKey(ingredients: base).rawValue.hasPrefix("sha256:"))
    }

    @Test("bumping a step's code version misses the cache for it and its dependents")
    func codeVersionBump() async throws {
        let engine = try TestEngine()
        func pipeline(version: Int) -> Pipeline {
            Pipeline("versions") { p in
                let a = p.step("a", version: version) { _ in version > 1 ? 2 : 1 }
                p.step("b", version: 1, a) { x, _ in x * 10 }
            }
        }
        _ = try await engine.run(pipeline(version: 1))
        let same = try await engine.run(pipeline(version: 1))
        #expect(same.stepRun("a")?.status == .cached)
        let bumped = try await engine.run(pipeline(version: 2))
        #expect(bumped.stepRun("a")?.status == .completed)
        #expect(bumped.stepRun("b")?.status == .completed)
        #expect(try bumped.value(Int.self, step: "b") == 20)
    }

    @Test("a new materializer version misses the cache")
    func materializerVersion() async throws {
        struct Versioned: Materializer {
            var version: Int
            static var identifier: String { "versioned" }
            static var version: Int { 1 }
            func write(_ value: [Int], to url: URL) throws { try Data("\(value)".utf8).write(to: url) }
            func read(from url: URL) throws -> [Int] { [] }
        }
        struct Versioned2: Materializer {
            static var identifier: String { "versioned" }
            static var version: Int { 2 }
            func write(_ value: [Int], to url: URL) throws { try Data("\(value)".utf8).write(to: url) }
            func read(from url: URL) throws -> [Int] { [] }
        }
        let pipeline = Pipeline("m") { p in p.add(Numbers()) }
        var one = MaterializerRegistry()
        one.register(Versioned(version: 1))
        var two = MaterializerRegistry()
        two.register(Versioned2())
        let metadata = InMemoryMetadataStore()
        let first = try TestEngine(metadata: metadata, materializers: one)
        _ = try await first.run(pipeline)
        #expect(try await first.run(pipeline).stepRun("numbers")?.status == .cached)
        let second = RunEngine(
            metadata: metadata, artifacts: first.engine.artifacts, materializers: two,
            logDirectory: first.directory.path("logs"), scratchDirectory: first.directory.path("scratch"))
        let result = try await second.run(pipeline)
        #expect(result.stepRun("numbers")?.status == .completed)
        #expect(result.outputs["numbers"]?["output"]?.materializerVersion == 2)
    }

    @Test("caching can be turned off per step in code, per step in config, and per run")
    func optOuts() async throws {
        let counter = Counter()
        let engine = try TestEngine()
        let pipeline = Pipeline("opt") { p in
            let a = p.step("a", version: 1) { _ in
                counter.hit("a")
                return 1
            }
            p.step("always", version: 1, cache: false, a) { x, _ in
                counter.hit("always")
                return x
            }
            p.step("c", version: 1, a) { x, _ in
                counter.hit("c")
                return x
            }
        }
        _ = try await engine.run(pipeline)
        let second = try await engine.run(pipeline)
        #expect(second.stepRun("always")?.status == .completed)
        #expect(second.stepRun("c")?.status == .cached)
        var config = RunConfig()
        try config.apply(overrides: ["steps.c.cache=false"])
        let third = try await engine.run(pipeline, config: config)
        #expect(third.stepRun("c")?.status == .completed)
        #expect(third.stepRun("a")?.status == .cached)
        var noCache = RunConfig()
        noCache.cache = false
        let fourth = try await engine.run(pipeline, config: noCache)
        #expect(fourth.stepRuns.allSatisfy { $0.status == .completed })
        #expect(counter["a"] == 2)
        #expect(counter["always"] == 4)
    }

    @Test("a cache hit whose artifact was deleted re-runs the step")
    func missingArtifact() async throws {
        let engine = try TestEngine()
        let pipeline = Pipeline("gone") { p in p.add(Numbers()) }
        let first = try await engine.run(pipeline)
        let uri = try #require(first.outputs["numbers"]?["output"]?.uri)
        let root = engine.engine.artifacts.root
        try FileManager.default.removeItem(at: root.appending(path: String(uri.prefix { $0 != "#" })))
        #expect(!engine.engine.artifacts.contains(uri: uri))
        let second = try await engine.run(pipeline)
        #expect(second.stepRun("numbers")?.status == .completed)
        let rewritten = try #require(second.outputs["numbers"]?["output"]?.uri)
        #expect(engine.engine.artifacts.contains(uri: rewritten))
        #expect(try second.value([Int].self, step: "numbers") == [0, 1, 2, 3, 4])
    }

    @Test("a failed step is retried by the next run while its completed upstream is reused")
    func resumeAfterFailure() async throws {
        let engine = try TestEngine()
        let counter = Counter()
        func pipeline(failing: Bool) -> Pipeline {
            Pipeline("resume") { p in
                let a = p.step("a", version: 1) { _ in
                    counter.hit("a")
                    return 5
                }
                p.step("b", version: 1, parameters: ["fail": failing], a) { x, parameters, _ in
                    if parameters["fail"] == true { throw Boom() }
                    return x
                }
            }
        }
        let failed = try await engine.run(pipeline(failing: true))
        #expect(failed.run.status == .failed)
        let fixed = try await engine.run(pipeline(failing: false))
        #expect(fixed.stepRun("a")?.status == .cached)
        #expect(fixed.stepRun("b")?.status == .completed)
        #expect(counter["a"] == 1)
    }

    /// Reads a "file" whose content lives in a box: its fingerprint is the content.
    struct ReadOutside: ExternalInputStep {
        static let name = "read_outside"
        static let version = 1
        let source: Box
        let counter: Counter
        func externalFingerprint() throws -> String { source.value }
        func run(_ input: Void, context: StepContext) async throws -> String {
            counter.hit("read")
            return source.value
        }
    }

    final class Box: @unchecked Sendable {
        var value: String
        init(_ value: String) { self.value = value }
    }

    @Test("a step reading from outside re-runs when its fingerprint changes, and is cached while it does not")
    func externalFingerprint() async throws {
        let counter = Counter()
        let source = Box("v1")
        let pipeline = Pipeline("outside") { p in
            let text = p.add(ReadOutside(source: source, counter: counter))
            p.step("upper", version: 1, text) { text, _ in text.uppercased() }
        }
        let engine = try TestEngine()
        _ = try await engine.run(pipeline)
        let same = try await engine.run(pipeline)
        #expect(same.stepRun("read_outside")?.status == .cached)
        source.value = "v2"
        let changed = try await engine.run(pipeline)
        #expect(changed.stepRun("read_outside")?.status == .completed)
        #expect(changed.stepRun("upper")?.status == .completed)
        #expect(counter["read"] == 2)
    }
}

/// Sums the sizes of the `.txt` files of a folder, one shard per file, counting how often it lists them.
struct FileSizes: ShardedStep, ExternalInputStep {
    struct Parameters: Codable, Sendable, Equatable {
        var folder = ""
    }
    typealias Input = Void
    typealias Output = Int
    typealias Partial = Int
    static let name = "file_sizes"
    static let version = 1
    var parameters = Parameters()
    var listings: Counter?

    func shardFiles(of _: Void) throws -> [String] {
        listings?.hit("list")
        return try FileManager.default.contentsOfDirectory(atPath: parameters.folder).filter { $0.hasSuffix(".txt") }
            .sorted().map { parameters.folder + "/" + $0 }
    }

    /// What the step would key on without the shards' list: a listing of its own.
    func externalFingerprint() throws -> String { try shardFiles(of: ()).joined(separator: ",") }

    func externalFingerprint(of files: [String]) throws -> String? {
        try files.map { "\($0):\(try Data(contentsOf: URL(fileURLWithPath: $0)).count)" }.joined(separator: ",")
    }

    func runShard(_ file: String, of files: [String], context: StepContext) async throws -> Int {
        try Data(contentsOf: URL(fileURLWithPath: file)).count
    }

    func merge(_ partials: [Int], files: [String], context: StepContext) async throws -> Int { partials.reduce(0, +) }
}

@Suite("Sharded steps' files")
struct ShardedFilesTests {
    @Test("a sharded step lists its files once per run: its cache key and its shards cover the same files")
    func listedOnce() async throws {
        let folder = try TemporaryDirectory(prefix: "sluice-shards")
        for (name, size) in [("a.txt", 3), ("b.txt", 5)] {
            try Data(repeating: 1, count: size).write(to: folder.path(name))
        }
        let listings = Counter()
        var step = FileSizes()
        step.parameters.folder = folder.url.path
        step.listings = listings
        let pipeline = Pipeline("sizes") { p in p.add(step) }
        let engine = try TestEngine()
        let first = try await engine.run(pipeline)
        #expect(try first.value(Int.self, step: "file_sizes") == 8)
        #expect(listings["list"] == 1)
        let again = try await engine.run(pipeline)
        #expect(again.stepRun("file_sizes")?.status == .cached)
        #expect(listings["list"] == 2)
        // A file that grows changes the key though the listing does not.
        try Data(repeating: 1, count: 7).write(to: folder.path("b.txt"))
        let grown = try await engine.run(pipeline)
        #expect(grown.stepRun("file_sizes")?.status == .completed)
        #expect(try grown.value(Int.self, step: "file_sizes") == 10)
    }
}
