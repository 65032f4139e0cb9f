/// A pipeline that cannot run as built or configured: every problem found, each with its fix.
public struct PipelineValidationError: Error, CustomStringConvertible, Equatable {
    /// The pipeline's name.
    public var pipeline: String
    /// Each problem, with what to do about it.
    public var problems: [String]

    public var description: String {
        "pipeline '\(pipeline)' cannot run:\n" + problems.map { "  - \($0)" }.joined(separator: "\n")
    }
}

extension Pipeline {
    /// Checks the graph (duplicate names, foreign or missing inputs, cycles, outputs no materializer can
    /// store) and the config (unknown step names, with a "did you mean").
    /// - Throws: ``PipelineValidationError`` listing every problem.
    public func validate(config: RunConfig = RunConfig(), materializers: MaterializerRegistry = MaterializerRegistry())
        throws
    {
        _ = try validated(config: config, materializers: materializers)
    }

    /// Validates, returning the materializer of each output of each node (what a run writes them with).
    func validated(config: RunConfig, materializers: MaterializerRegistry) throws -> [[AnyMaterializer]] {
        var problems = self.problems
        if nodes.isEmpty { problems.append("it has no steps; add one with `p.add(...)`.") }
        let found = materializers.materializers(forOutputsOf: nodes)
        for (node, outputMaterializers) in zip(nodes, found) {
            for edge in node.inputs {
                if edge.node >= nodes.count || !nodes[edge.node].outputs.contains(where: { $0.name == edge.output }) {
                    problems.append(
                        "step '\(node.name)' reads '\(edge.name)', which no step produces; wire it to a step's output.")
                }
            }
            for (output, materializer) in zip(node.outputs, outputMaterializers) where materializer == nil {
                problems.append(
                    "step '\(node.name)' outputs a \(output.typeName), which no materializer can store; "
                        + "make it Codable or register a Materializer for it.")
            }
        }
        if let cycle = findCycle() {
            problems.append("steps form a cycle: \(cycle.joined(separator: " → ")); remove one of those connections.")
        }
        let known = Set(nodes.map(\.name))
        for (name, settings) in config.steps.sorted(by: { $0.key < $1.key }) where !known.contains(name) {
            let error = ConfigError.unknownKey(
                name, path: "steps", at: settings.location, known: stepNames, what: "step")
            problems.append(error.description)
        }
        if !problems.isEmpty { throw PipelineValidationError(pipeline: name, problems: problems) }
        return found.map { $0.map { $0! } }
    }

    /// The first cycle found by depth-first search, as step names, or `nil`.
    func findCycle() -> [String]? {
        var state = Array(repeating: 0, count: nodes.count)  // 0 new, 1 on stack, 2 done
        var stack: [Int] = []
        func visit(_ index: Int) -> [String]? {
            state[index] = 1
            stack.append(index)
            for edge in nodes[index].inputs where edge.node < nodes.count {
                if state[edge.node] == 1 {
                    let start = stack.firstIndex(of: edge.node)!
                    return (stack[start...] + [edge.node]).map { nodes[$0].name }
                }
                if state[edge.node] == 0, let cycle = visit(edge.node) { return cycle }
            }
            stack.removeLast()
            state[index] = 2
            return nil
        }
        for index in nodes.indices where state[index] == 0 {
            if let cycle = visit(index) { return cycle }
        }
        return nil
    }
}
