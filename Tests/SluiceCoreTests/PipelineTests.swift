import Foundation
import SluiceTesting
import Testing

@testable import SluiceCore

@Suite("Pipelines: typed wiring and validation")
struct PipelineTests {
    // Type safety is enforced by the compiler. This wiring must not compile, because `Combine` reads
    // `([Int], String)` and the handles are passed as `(String, [Int])`:
    //
    //     let numbers = p.add(Numbers())                       // Handle<[Int]>
    //     let label = p.step("label", version: 1) { _ in "sum" } // Handle<String>
    //     p.add(Combine(), label, numbers)
    //     // error: instance method 'add' requires the types '([Int], String)' and '(String, [Int])' be equivalent
    //
    // `CompileTimeWiringTests` in SluiceCLITests type-checks that snippet with swiftc against
    // the built module and expects exactly this error. Its compiling counterpart runs here:
    @Test("steps with several typed inputs receive them in wiring order")
    func typedWiring() async throws {
        let pipeline = Pipeline("wiring") { p in
            let numbers = p.add(Numbers())
            let label = p.step("label", version: 1) { _ in "sum" }
            p.add(Combine(), numbers, label)
        }
        let result = try await TestEngine().run(pipeline)
        #expect(result.run.status == .completed)
        #expect(try result.value(String.self, step: "combine") == "sum: 10")
    }

    @Test("named outputs are stored and wired separately")
    func namedOutputs() async throws {
        let pipeline = Pipeline("named") { p in
            let parts = p.add(Partition(), p.add(Numbers()))
            p.step("sum_even", version: 1, parts.even) { even, _ in even.reduce(0, +) }
            p.step("count_odd", version: 1, parts.odd) { odd, _ in odd.count }
        }
        let result = try await TestEngine().run(pipeline)
        #expect(try result.value([Int].self, step: "partition", output: "even") == [0, 2, 4])
        #expect(try result.value([Int].self, step: "partition", output: "odd") == [1, 3])
        #expect(try result.value(Int.self, step: "sum_even") == 6)
        #expect(try result.value(Int.self, step: "count_odd") == 2)
        #expect(Set(result.outputs["partition"]!.keys) == ["even", "odd"])
    }

    @Test("closure steps take up to five inputs and Codable parameters")
    func closureSteps() async throws {
        struct Offset: Codable, Sendable { var by = 1 }
        let pipeline = Pipeline("closures") { p in
            let a = p.step("a", version: 1) { _ in 1 }
            let b = p.step("b", version: 1) { _ in 2.5 }
            let c = p.step("c", version: 1) { _ in "x" }
            let d = p.step("d", version: 1, parameters: Offset()) { offset, _ in offset.by }
            let e = p.step("e", version: 1) { _ in true }
            p.step("all", version: 1, a, b, c, d, e) { a, b, c, d, e, _ in "\(a) \(b) \(c) \(d) \(e)" }
        }
        var config = RunConfig()
        try config.apply(overrides: ["d.by=7"])
        let result = try await TestEngine().run(pipeline, config: config)
        #expect(try result.value(String.self, step: "all") == "1 2.5 x 7 true")
    }

    @Test("two steps with one name are rejected before anything runs")
    func duplicateNames() async throws {
        let pipeline = Pipeline("dupes") { p in
            p.add(Numbers())
            p.add(Numbers())
        }
        let error = await #expect(throws: PipelineValidationError.self) { try await TestEngine().run(pipeline) }
        #expect(error?.problems == ["two steps are named 'numbers'; give one another name with `add(_:name:)`."])
    }

    @Test("a handle from another pipeline is an unconnected input")
    func foreignHandle() async throws {
        nonisolated(unsafe) var leaked: Handle<[Int]>?
        _ = Pipeline("first") { p in leaked = p.add(Numbers()) }
        let pipeline = Pipeline("second") { p in p.add(Scale(), leaked!) }
        let error = await #expect(throws: PipelineValidationError.self) { try await TestEngine().run(pipeline) }
        #expect(error?.problems.first == "step 'scale' reads a handle that belongs to another pipeline.")
    }

    @Test("a cycle is reported with the steps that form it")
    func cycles() throws {
        let valid = Pipeline("ring") { p in
            let a = p.add(Numbers(), name: "a")
            let b = p.add(Scale(), name: "b", a)
            p.add(Scale(), name: "c", b)
        }
        // The Swift builder cannot make a cycle (a handle exists only after its step); graphs built from
        // YAML can, so rewire a's input to c and validate.
        var nodes = valid.nodes
        nodes[0].inputs = [InputEdge(name: "c", node: 2, output: "output")]
        let cyclic = Pipeline(name: "ring", nodes: nodes)
        let error = #expect(throws: PipelineValidationError.self) { try cyclic.validate() }
        #expect(error?.problems.contains("steps form a cycle: a → c → b → a; remove one of those connections.") == true)
    }

    @Test("an output no materializer can store is reported with the fix")
    func unstorableOutput() throws {
        final class Opaque: Sendable {}
        let pipeline = Pipeline("opaque") { p in p.step("make", version: 1) { _ in Opaque() } }
        let error = #expect(throws: PipelineValidationError.self) { try pipeline.validate() }
        #expect(
            error?.problems.first?.contains("no materializer can store; make it Codable or register a Materializer")
                == true)
    }

    /// A generic step whose kind is its type's name.
    struct Wrap<Value: Codable & Sendable>: Step {
        static var name: String { "wrap" }
        static var version: Int { 1 }
        var parameters = NoParameters()
        func run(_ input: Void, context: StepContext) async throws -> [String: [Value?]] { [:] }
    }

    @Test("recorded output type names and step kinds read as String(reflecting:) and String(describing:) write them")
    func typeNamesAsBefore() {
        struct Local: Codable, Sendable {}
        struct Pair: Codable, Sendable {
            var label: String
            var values: [Int]
        }
        let pipeline = Pipeline("names") { p in
            p.add(Wrap<Local>())
            p.add(Wrap<Int>(), name: "ints")
            p.step("pair", version: 1) { _ in Pair(label: "a", values: [1]) }
        }
        let types: [Any.Type] = [[String: [Local?]].self, [String: [Int?]].self]
        for (node, type) in zip(pipeline.nodes, types) {
            #expect(node.outputs.first?.typeName == String(reflecting: type))
        }
        #expect(pipeline.nodes[0].kind == String(describing: Wrap<Local>.self))
        #expect(pipeline.nodes[1].kind == String(describing: Wrap<Int>.self))
        #expect(pipeline.nodes[2].outputs.first?.typeName == String(reflecting: Pair.self))
    }

    @Test("an unknown step in the config gets a did-you-mean", arguments: ["scael", "sacle", "scales"])
    func unknownStepInConfig(typo: String) throws {
        let pipeline = Pipeline("p") { p in p.add(Scale(), p.add(Numbers())) }
        let config = try RunConfig(
            tree: ConfigValue.parseYAML("steps:\n  \(typo):\n    cache: false\n", source: "run.yaml"))
        let error = #expect(throws: PipelineValidationError.self) { try pipeline.validate(config: config) }
        #expect(
            error?.problems == [
                "run.yaml:2:3: unknown step 'steps.\(typo)'. Did you mean 'scale'?\n  To fix: use one of numbers, scale."
            ])
    }

    @Test("an unknown parameter gets a did-you-mean naming the file and line")
    func unknownParameter() async throws {
        let pipeline = Pipeline("p") { p in p.add(Scale(), p.add(Numbers())) }
        let config = try RunConfig(
            tree: ConfigValue.parseYAML("steps:\n  numbers:\n    parameters:\n      cuont: 3\n", source: "run.yaml"))
        let error = await #expect(throws: PipelineValidationError.self) {
            try await TestEngine().run(pipeline, config: config)
        }
        #expect(
            error?.problems == [
                "run.yaml:4:14: unknown parameter 'steps.numbers.parameters.cuont'. Did you mean 'count'?\n"
                    + "  To fix: use one of count, label, start."
            ])
    }

    @Test("a parameter of the wrong type names the file, line and expected type")
    func wrongParameterType() async throws {
        let pipeline = Pipeline("p") { p in p.add(Numbers()) }
        let config = try RunConfig(
            tree: ConfigValue.parseYAML("steps:\n  numbers:\n    parameters:\n      count: many\n", source: "run.yaml"))
        let error = await #expect(throws: PipelineValidationError.self) {
            try await TestEngine().run(pipeline, config: config)
        }
        #expect(
            error?.problems == [
                "run.yaml:4:14: 'steps.numbers.parameters.count' must be a whole number, but it is the string 'many'.\n"
                    + "  To fix: write a whole number, for example 3."
            ])
    }
}
