import Foundation

/// A pipeline whose parameters are resolved against a config: what will run, and the config to store.
public struct ResolvedPipeline: Sendable {
    /// The pipeline.
    public let pipeline: Pipeline
    /// The config it was resolved against.
    public let config: RunConfig
    /// Each step's bound parameters and body; `nil` for steps a single step run does not bind.
    package let steps: [BoundStep?]
    let materializers: [[AnyMaterializer]]

    /// The fully resolved config: every step's parameters with defaults filled in, caching, parallelism,
    /// seed and durability, as YAML.
    public var configYAML: String {
        var steps: [(key: String, value: ConfigValue)] = []
        for (node, bound) in zip(pipeline.nodes, self.steps) {
            guard let bound else { continue }
            let cache = (config.steps[node.name]?.cache ?? node.cacheable) && config.cache
            var entries: [(key: String, value: ConfigValue)] = [
                ("cache", ConfigValue(.bool(cache))), ("parameters", bound.parameters),
            ]
            if let resources = config.steps[node.name]?.resources, !resources.isEmpty,
                let tree = try? ConfigValue.encoding(resources)
            {
                entries.append(("resources", tree))
            }
            steps.append((node.name, ConfigValue(.object(entries))))
        }
        var top: [(key: String, value: ConfigValue)] = [
            ("pipeline", ConfigValue(.string(pipeline.name))),
            ("parallelism", ConfigValue(.int(config.parallelism ?? ProcessInfo.processInfo.activeProcessorCount))),
            ("cache", ConfigValue(.bool(config.cache))),
            ("seed", ConfigValue(.int(Int(truncatingIfNeeded: config.seed)))),
            ("durability", ConfigValue(.string((config.durability ?? config.stack.durability ?? .process).rawValue))),
        ]
        let stack = config.stack.tree
        if stack.entries?.isEmpty == false { top.append(("stack", stack)) }
        top.append(("steps", ConfigValue(.object(steps))))
        return ConfigValue(.object(top)).yaml()
    }

    /// The canonical JSON of a step's resolved parameters.
    public func parameters(of step: String) -> String? {
        pipeline.nodes.firstIndex { $0.name == step }.flatMap { steps[$0]?.parametersJSON }
    }
}
