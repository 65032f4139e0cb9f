import Foundation

/// A named DAG of step invocations, built in Swift with checked wiring.
///
/// ```swift
/// let prices = Pipeline("prices") { p in
///     let raw = p.add(Generate())                 // Handle<[House]>
///     let sets = p.add(Split(), raw)              // StepOutputs<TrainEval>
///     let model = p.add(Fit(), sets.train)        // Handle<Model>
///     p.add(Evaluate(), model, sets.eval)         // Evaluate.Input == (Model, [House]), checked by the compiler
/// }
/// ```
/// Wiring a `Handle<Double>` into a step whose input is `Int` does not compile.
public struct Pipeline: Sendable {
    /// The pipeline's name, recorded with each run.
    public let name: String
    package let nodes: [StepNode]
    let problems: [String]

    /// Builds a pipeline by adding steps to the builder.
    public init(_ name: String, _ build: (PipelineBuilder) -> Void) {
        let builder = PipelineBuilder(pipelineName: name)
        build(builder)
        self.name = name
        self.nodes = builder.nodes
        self.problems = builder.problems
    }

    init(name: String, nodes: [StepNode], problems: [String] = []) {
        self.name = name
        self.nodes = nodes
        self.problems = problems
    }

    /// The names of the steps, in the order they were added.
    public var stepNames: [String] { nodes.map(\.name) }

    /// Each step's kind (its type name, as `sluice runs show` lists it), by step name.
    public var stepKinds: [String: String] {
        Dictionary(uniqueKeysWithValues: nodes.map { ($0.name, $0.kind) })
    }

    /// The names of the steps each step reads from, by step name.
    public var dependencies: [String: [String]] {
        Dictionary(uniqueKeysWithValues: nodes.map { node in (node.name, node.inputs.map { nodes[$0.node].name }) })
    }

    /// The steps that declare themselves not cacheable (they act on the world, as registering a model does), and
    /// every step downstream of one.
    public var uncacheableSteps: [String] {
        var excluded = Set<Int>()
        for (index, node) in nodes.enumerated()
        where !node.cacheable || node.inputs.contains(where: { excluded.contains($0.node) }) {
            excluded.insert(index)
        }
        return nodes.indices.filter(excluded.contains).map { nodes[$0].name }
    }

    /// This pipeline without the steps named in `removed`, under the same name. Every step that reads from a
    /// removed step must be removed too.
    public func removing(_ removed: [String]) -> Pipeline {
        let removed = Set(removed)
        var newIndex: [Int: Int] = [:]
        var kept: [StepNode] = []
        for (index, node) in nodes.enumerated() where !removed.contains(node.name) {
            var node = node
            node.inputs = node.inputs.map { edge in
                guard let mapped = newIndex[edge.node] else {
                    preconditionFailure("step '\(node.name)' reads a removed step; remove it too")
                }
                var edge = edge
                edge.node = mapped
                return edge
            }
            newIndex[index] = kept.count
            kept.append(node)
        }
        return Pipeline(name: name, nodes: kept, problems: problems)
    }
}

/// A typed reference to one output of a step in a pipeline under construction.
public struct Handle<Value: Sendable>: Sendable {
    let pipeline: ObjectIdentifier
    let node: Int
    let output: String
}

/// The named outputs of a step whose output type is ``MultipleOutputs``: `outputs.train` is a `Handle`.
@dynamicMemberLookup
public struct StepOutputs<Value: MultipleOutputs>: Sendable {
    let pipeline: ObjectIdentifier
    let node: Int

    /// The handle of the output that `keyPath` reads.
    public subscript<Field: Sendable>(dynamicMember keyPath: KeyPath<Value, Field>) -> Handle<Field> {
        guard let named = Value.outputs.first(where: { $0.keyPath == keyPath }) else {
            preconditionFailure(
                "\(Value.self).outputs does not list \(keyPath); add `.init(\"name\", \(keyPath))` to wire it.")
        }
        return Handle(pipeline: pipeline, node: node, output: named.name)
    }
}

/// Collects step invocations while a ``Pipeline`` is built. Use only inside `Pipeline.init`'s closure.
public final class PipelineBuilder {
    let pipelineName: String
    var nodes: [StepNode] = []
    var problems: [String] = []
    /// The names of `nodes`: a duplicate is found without comparing with every node (pipelines of thousands of
    /// steps are built by every step process of theirs).
    var names: Set<String> = []

    init(pipelineName: String) { self.pipelineName = pipelineName }

    private var identity: ObjectIdentifier { ObjectIdentifier(self) }

    /// Adds a step reading `inputs`, whose types must match the step's `Input` in order.
    /// - Parameters:
    ///   - name: the step's name in this pipeline; defaults to the step type's name.
    ///   - cache: `false` to always run this step, never reusing earlier outputs.
    @discardableResult
    public func add<S: Step, each I: Sendable>(
        _ step: S, name: String? = nil, cache: Bool = true, _ inputs: repeat Handle<each I>
    ) -> Handle<S.Output> where S.Input == (repeat each I) {
        let index = addNode(
            step, name: name, cache: cache, inputs: edges(repeat each inputs), outputs: single(S.Output.self),
            makeInput: Self.inputMaker((repeat (each I).self)))
        return Handle(pipeline: identity, node: index, output: "output")
    }

    /// Adds a step with several named outputs; wire them on as `outputs.train`, `outputs.eval`.
    @discardableResult
    public func add<S: Step, each I: Sendable>(
        _ step: S, name: String? = nil, cache: Bool = true, _ inputs: repeat Handle<each I>
    ) -> StepOutputs<S.Output> where S.Input == (repeat each I), S.Output: MultipleOutputs {
        let slots = S.Output.outputs.map { named in
            OutputSlot(name: named.name, valueType: named.valueType) { value in named.read(value as! S.Output) }
        }
        let index = addNode(
            step, name: name, cache: cache, inputs: edges(repeat each inputs), outputs: slots,
            makeInput: Self.inputMaker((repeat (each I).self)))
        return StepOutputs(pipeline: identity, node: index)
    }

    /// Rebuilds a step's input tuple from erased values, in wiring order.
    private static func inputMaker<each I: Sendable>(_ types: (repeat (each I).Type))
        -> @Sendable ([any Sendable]) -> (
            repeat each I
        )
    {
        { values in
            var index = 0
            func take<T>(_ type: T.Type) -> T {
                defer { index += 1 }
                return values[index] as! T
            }
            return (repeat take((each I).self))
        }
    }

    private func edges<each I>(_ inputs: repeat Handle<each I>) -> [(ObjectIdentifier, Int, String)] {
        var result: [(ObjectIdentifier, Int, String)] = []
        for handle in repeat each inputs { result.append((handle.pipeline, handle.node, handle.output)) }
        return result
    }

    private func single<T>(_ type: T.Type) -> [OutputSlot] {
        if T.self == Void.self { return [] }
        return [OutputSlot(name: "output", valueType: T.self) { $0 }]
    }

    private func addNode<S: Step>(
        _ step: S, name: String?, cache: Bool, inputs: [(ObjectIdentifier, Int, String)], outputs: [OutputSlot],
        makeInput: @escaping @Sendable ([any Sendable]) -> S.Input
    ) -> Int {
        let identified = step as? any InstanceIdentifiedStep
        let name = name ?? identified?.stepName ?? S.name
        var edges: [InputEdge] = []
        var used: [String: Int] = [:]
        for (pipeline, node, output) in inputs {
            guard pipeline == identity, node < nodes.count else {
                problems.append("step '\(name)' reads a handle that belongs to another pipeline.")
                continue
            }
            let producer = nodes[node].name
            var inputName = output == "output" ? producer : "\(producer).\(output)"
            used[inputName, default: 0] += 1
            if let count = used[inputName], count > 1 { inputName += "#\(count)" }
            edges.append(InputEdge(name: inputName, node: node, output: output))
        }
        if !names.insert(name).inserted {
            problems.append("two steps are named '\(name)'; give one another name with `add(_:name:)`.")
        }
        nodes.append(
            StepNode(
                name: name, kind: identified?.stepName ?? _typeName(S.self, qualified: false),
                codeVersion: identified?.codeVersion ?? S.version, inputs: edges, outputs: outputs,
                cacheable: cache, usesRunSeed: S.usesRunSeed, binder: StepBinder(step, makeInput: makeInput)))
        return nodes.count - 1
    }
}

// MARK: - Type-erased graph

/// One input of a node: which node and output it reads, and the name the read is recorded under.
package struct InputEdge: Sendable, Equatable {
    package var name: String
    package var node: Int
    package var output: String
}

/// One output of a node.
struct OutputSlot: @unchecked Sendable {
    // @unchecked: `Any.Type` is an immutable metatype.
    var name: String
    var valueType: Any.Type
    var extract: @Sendable (any Sendable) -> any Sendable
    /// The output type's qualified name, as `String(reflecting:)` writes it. `_typeName` asks the runtime for the
    /// name directly; `String(reflecting:)` first tries the metatype against the printing protocols, and each such
    /// cast searches every conformance record of the executable once per process (1 ms of a step process).
    var typeName: String { _typeName(valueType, qualified: true) }
}

/// A step invocation with its types erased, as the engine runs it.
package struct StepNode: Sendable {
    package var name: String
    var kind: String
    var codeVersion: Int
    package var inputs: [InputEdge]
    var outputs: [OutputSlot]
    var cacheable: Bool
    /// Whether the step seed joins the cache key (``Step/usesRunSeed``).
    var usesRunSeed: Bool
    var binder: StepBinder
}

/// A step with its parameters resolved and its body ready to run on erased values.
package struct BoundStep: Sendable {
    /// Canonical JSON of the resolved parameters.
    var parametersJSON: String
    /// The resolved parameters as a tree, for the printed config.
    var parameters: ConfigValue
    /// For an ``ExternalInputStep``: the fingerprint of what it reads from outside, taken when the run resolves.
    var externalFingerprint: String?
    var execute: @Sendable ([any Sendable], StepContext) async throws -> any Sendable
    /// For a ``ShardedStep``: its shards and merge, for orchestrators that run shards as jobs of their own.
    package var shards: ShardOperations?
}

/// Resolves a step's parameters from configuration, and wraps its `run` for erased inputs.
struct StepBinder: Sendable {
    let defaults: @Sendable () throws -> ConfigValue
    let bind: @Sendable (ConfigValue?, String) throws -> BoundStep

    init<S: Step>(_ step: S, makeInput: @escaping @Sendable ([any Sendable]) -> S.Input) {
        defaults = { try ConfigValue.encoding(step.parameters) }
        bind = { overrides, path in
            var configured = step
            if var overrides {
                overrides = try RenamedParameter.apply(S.renamedParameters, to: overrides, path: path)
                let base = try ConfigValue.encoding(step.parameters)
                let merged = base.overlaid(with: overrides) { key, existing in
                    existing.first { $0 == key || snakeCased($0) == key }
                }
                let (parameters, unknown) = try ConfigDecoder().decode(S.Parameters.self, from: merged, path: path)
                if let first = unknown.first {
                    let key = String(first.path.dropFirst(path.count + 1))
                    let known = first.known.map(snakeCased)
                    throw ConfigError.unknownKey(
                        key, path: path, at: first.location, known: Array(Set(known)), what: "parameter")
                }
                configured.parameters = parameters
            }
            let json = try canonicalJSON(configured.parameters)
            let tree = try JSONDecoder().decode(ConfigValue.self, from: json)
            let frozen = configured
            // A sharded step's files are listed once: its fingerprint and its shards cover the same files.
            let shards = try (configured as? any ShardedStep).map { try shardOperations($0, makeInput: makeInput) }
            let fingerprint =
                try shards?.fingerprint ?? (configured as? any ExternalInputStep)?.externalFingerprint()
            return BoundStep(
                parametersJSON: String(decoding: json, as: UTF8.self), parameters: tree,
                externalFingerprint: fingerprint,
                execute: { values, context in
                    if let shards { return try await shards.runAll(try shards.files(reading: values), context) }
                    return try await frozen.run(makeInput(values), context: context)
                }, shards: shards)
        }
    }
}
