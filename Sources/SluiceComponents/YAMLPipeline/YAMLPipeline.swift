import Foundation
import SluiceCore

/// A pipeline of built-in components written in YAML: each step names its component, wires its inputs to other
/// steps' outputs by name, and sets parameters. The file is also the run config (parameters, `cache`, `seed`,
/// `parallelism`), so `--set` overrides work as for Swift pipelines.
///
/// ```yaml
/// pipeline: penguins
/// steps:
///   ingest: {component: ingest_csv, parameters: {paths: [data/penguins.csv]}}
///   statistics: {component: statistics, inputs: {table: ingest.table}}
///   schema: {component: schema, inputs: {statistics: statistics.statistics}}
///   …
/// ```
/// Mistakes are reported before anything runs, with file:line:column and a "did you mean".
public struct YAMLPipeline: Sendable {
    /// One step as written.
    public struct StepSpec: Sendable {
        /// The step's name.
        public var name: String
        /// Its component.
        public var component: String
        /// Input name → (step, output or nil for the step's only output), with where it was written.
        public var inputs: [(name: String, step: String, output: String?, location: SourceLocation?)]
        /// Where the step was written.
        public var location: SourceLocation?
    }

    /// The pipeline's name.
    public var name: String
    /// The steps, in file order.
    public var steps: [StepSpec]
    /// The run config the file carries (parameters and run settings).
    public var config: RunConfig
    /// The file.
    public var source: String

    /// Reads a pipeline file.
    public static func load(contentsOf url: URL) throws -> YAMLPipeline {
        let text: String
        do {
            text = try String(contentsOf: url, encoding: .utf8)
        } catch {
            throw ConfigError(
                problem: "cannot read the pipeline file '\(url.path)' (\(error.localizedDescription)).",
                fix: "check the path.")
        }
        return try parse(text, source: url.path, defaultName: url.deletingPathExtension().lastPathComponent)
    }

    /// Parses pipeline YAML.
    public static func parse(_ text: String, source: String, defaultName: String = "pipeline") throws -> YAMLPipeline {
        let tree = try ConfigValue.parseYAML(text, source: source)
        func place(_ value: ConfigValue?) -> String { value?.location.map { "\($0): " } ?? "\(source): " }
        guard let entries = tree.entries else {
            throw ConfigError(
                problem: "\(place(tree))a pipeline file must be a mapping with `pipeline:` and `steps:`.",
                fix: "see docs/components.md for an example.")
        }
        var name = defaultName
        var steps: [StepSpec] = []
        var configEntries: [(key: String, value: ConfigValue)] = []
        for (key, value) in entries {
            switch key {
            case "pipeline":
                guard case .string(let text) = value.kind, !text.isEmpty else {
                    throw ConfigError(
                        problem: "\(place(value))'pipeline' must be the pipeline's name.",
                        fix: "write `pipeline: NAME`.")
                }
                name = text
            case "steps":
                guard let stepEntries = value.entries, !stepEntries.isEmpty else {
                    throw ConfigError(
                        problem:
                            "\(place(value))'steps' must map step names to their component, inputs and parameters.",
                        fix:
                            "write `steps:` then, per step, `NAME: {component: COMPONENT, inputs: {…}, parameters: {…}}`."
                    )
                }
                var configSteps: [(key: String, value: ConfigValue)] = []
                for (stepName, section) in stepEntries {
                    let (spec, rest) = try parseStep(stepName, section, place: place)
                    steps.append(spec)
                    configSteps.append((stepName, ConfigValue(.object(rest), at: section.location)))
                }
                configEntries.append((key, ConfigValue(.object(configSteps), at: value.location)))
            default:
                configEntries.append((key, value))
            }
        }
        guard !steps.isEmpty else {
            throw ConfigError(problem: "\(source): the pipeline has no steps.", fix: "add a `steps:` section.")
        }
        var config = try RunConfig(tree: ConfigValue(.object(configEntries), at: tree.location))
        config.sources = [source]
        return YAMLPipeline(name: name, steps: steps, config: config, source: source)
    }

    private static func parseStep(
        _ name: String, _ section: ConfigValue, place: (ConfigValue?) -> String
    ) throws -> (StepSpec, [(key: String, value: ConfigValue)]) {
        guard let entries = section.entries else {
            throw ConfigError(
                problem: "\(place(section))step '\(name)' must be a mapping with `component:`.",
                fix: "write `\(name): {component: COMPONENT, inputs: {…}}`.")
        }
        var component: String?
        var inputs: [(name: String, step: String, output: String?, location: SourceLocation?)] = []
        var rest: [(key: String, value: ConfigValue)] = []
        for (key, value) in entries {
            switch key {
            case "component":
                guard case .string(let text) = value.kind else {
                    throw ConfigError(
                        problem: "\(place(value))'steps.\(name).component' must be a component name.",
                        fix: "use one of \(ComponentCatalog.entries.map(\.name).joined(separator: ", ")).")
                }
                component = text
            case "inputs":
                guard let wires = value.entries else {
                    if value.kind == .null { continue }
                    throw ConfigError(
                        problem: "\(place(value))'steps.\(name).inputs' must map input names to STEP or STEP.OUTPUT.",
                        fix: "write for example `inputs: {table: ingest.table}`.")
                }
                for (input, reference) in wires {
                    guard case .string(let text) = reference.kind, !text.isEmpty else {
                        throw ConfigError(
                            problem: "\(place(reference))input '\(name).\(input)' must name STEP or STEP.OUTPUT.",
                            fix: "write for example `\(input): ingest.table`.")
                    }
                    let parts = text.split(separator: ".", maxSplits: 1).map(String.init)
                    inputs.append((input, parts[0], parts.count > 1 ? parts[1] : nil, reference.location))
                }
            default:
                rest.append((key, value))
            }
        }
        guard let component else {
            throw ConfigError(
                problem: "\(place(section))step '\(name)' has no `component:`.",
                fix: "add `component:` with one of \(ComponentCatalog.entries.map(\.name).joined(separator: ", ")).")
        }
        return (StepSpec(name: name, component: component, inputs: inputs, location: section.location), rest)
    }

    /// The model name each register step writes (after the file's parameters and `overrides`), by step name.
    public func registeredModels(config: RunConfig) -> [String: String] {
        var result: [String: String] = [:]
        for step in steps where step.component == "register" {
            let value = config.steps[step.name]?.parameters?.entries?.first { $0.key == "model" }?.value
            if case .string(let model)? = value?.kind { result[step.name] = model } else { result[step.name] = "model" }
        }
        return result
    }

    /// The reference each `model` (and `score_files`) step reads (after the file's parameters and `overrides`), by step name.
    public func scoringReferences(config: RunConfig) -> [String: String] {
        var result: [String: String] = [:]
        for step in steps where step.component == "model" || step.component == "score_files" {
            let value = config.steps[step.name]?.parameters?.entries?.first { $0.key == "model" }?.value
            if case .string(let model)? = value?.kind {
                result[step.name] = model
            } else {
                result[step.name] = LoadModel.Parameters().model
            }
        }
        return result
    }

    /// Every step `step` reads from, directly or through others.
    public func upstream(of step: String) -> Set<String> {
        var seen = Set<String>()
        var pending = [step]
        while let next = pending.popLast() {
            for input in steps.first(where: { $0.name == next })?.inputs ?? [] where seen.insert(input.step).inserted {
                pending.append(input.step)
            }
        }
        return seen
    }

    /// For each `evaluate` step whose rows come from exactly one `feature_join` step, that step's name.
    public func featureJoinFeeding() -> [String: String] {
        var result: [String: String] = [:]
        for step in steps where step.component == "evaluate" {
            let joins = upstream(of: step.name).filter { name in
                steps.first { $0.name == name }?.component == "feature_join"
            }
            if joins.count == 1 { result[step.name] = joins.first! }
        }
        return result
    }

    /// The service each `feature_join` step joins, by step name (empty when the step sets none).
    public func featureJoinServices(config: RunConfig) -> [String: String] {
        var result: [String: String] = [:]
        for step in steps where step.component == "feature_join" {
            let value = config.steps[step.name]?.parameters?.entries?.first { $0.key == "service" }?.value
            if case .string(let service)? = value?.kind { result[step.name] = service } else { result[step.name] = "" }
        }
        return result
    }

    /// Builds the pipeline, checking every component name, input name, reference and type.
    public func build(context: ComponentContext) throws -> Pipeline {
        var problems: [String] = []
        func place(_ location: SourceLocation?) -> String { location.map { "\($0): " } ?? "\(source): " }
        let names = steps.map(\.name)
        var entries: [String: ComponentEntry] = [:]
        for step in steps {
            guard let entry = ComponentCatalog.entry(step.component) else {
                let known = ComponentCatalog.entries.map(\.name)
                let guess = known.closest(to: step.component).map { " Did you mean '\($0)'?" } ?? ""
                problems.append(
                    "\(place(step.location))step '\(step.name)' uses unknown component '\(step.component)'.\(guess) Components: \(known.joined(separator: ", "))."
                )
                continue
            }
            if entry.name == "register" && context.registry == nil {
                problems.append("\(place(step.location))step '\(step.name)' registers models, but no registry is open.")
            }
            entries[step.name] = entry
            for wire in step.inputs where !entry.inputs.contains(where: { $0.name == wire.name }) {
                let known = entry.inputs.map(\.name)
                let guess = known.closest(to: wire.name).map { " Did you mean '\($0)'?" } ?? ""
                problems.append(
                    "\(place(wire.location))'\(step.component)' has no input '\(wire.name)'.\(guess) Its inputs: \(known.isEmpty ? "none" : known.joined(separator: ", "))."
                )
            }
            for port in entry.inputs where !port.isOptional && !step.inputs.contains(where: { $0.name == port.name }) {
                problems.append(
                    "\(place(step.location))step '\(step.name)' does not wire input '\(port.name)' (\(port.typeName)).")
            }
        }
        // Check references and types.
        for step in steps {
            guard let entry = entries[step.name] else { continue }
            for wire in step.inputs {
                guard let port = entry.inputs.first(where: { $0.name == wire.name }) else { continue }
                guard let source = entries[wire.step] else {
                    if !names.contains(wire.step) {
                        let guess = names.closest(to: wire.step).map { " Did you mean '\($0)'?" } ?? ""
                        problems.append(
                            "\(place(wire.location))input '\(step.name).\(wire.name)' reads step '\(wire.step)', which is not in the pipeline.\(guess)"
                        )
                    }
                    continue
                }
                let outputName: String
                if let output = wire.output {
                    outputName = output
                } else if source.outputs.count == 1 {
                    outputName = source.outputs[0].name
                } else {
                    problems.append(
                        "\(place(wire.location))'\(wire.step)' has several outputs; say which: \(source.outputs.map { "\(wire.step).\($0.name)" }.joined(separator: ", "))."
                    )
                    continue
                }
                guard let output = source.outputs.first(where: { $0.name == outputName }) else {
                    let known = source.outputs.map(\.name)
                    let guess = known.closest(to: outputName).map { " Did you mean '\($0)'?" } ?? ""
                    problems.append(
                        "\(place(wire.location))step '\(wire.step)' has no output '\(outputName)'.\(guess) Its outputs: \(known.joined(separator: ", "))."
                    )
                    continue
                }
                if output.type != port.type {
                    problems.append(
                        "\(place(wire.location))input '\(step.name).\(wire.name)' expects \(port.typeName), but '\(wire.step).\(outputName)' is \(output.typeName)."
                    )
                }
            }
        }
        // Order by dependencies; a cycle is an error.
        var order: [StepSpec] = []
        var placed = Set<String>()
        var remaining = steps.filter { entries[$0.name] != nil }
        while !remaining.isEmpty {
            guard
                let next = remaining.firstIndex(where: { step in
                    step.inputs.allSatisfy { placed.contains($0.step) || entries[$0.step] == nil }
                })
            else {
                problems.append(
                    "\(source): the steps \(remaining.map(\.name).joined(separator: ", ")) read each other in a cycle.")
                break
            }
            order.append(remaining.remove(at: next))
            placed.insert(order.last!.name)
        }
        if !problems.isEmpty {
            throw ConfigError(
                problem: "pipeline '\(name)' cannot be built:\n" + problems.map { "  - \($0)" }.joined(separator: "\n"),
                fix: "fix the file; `sluice run --components` lists the components with their inputs and outputs.")
        }
        return Pipeline(name) { p in
            var handles: [String: [String: Any]] = [:]
            for step in order {
                let entry = entries[step.name]!
                let inputs = entry.inputs.map { port -> Any? in
                    guard let wire = step.inputs.first(where: { $0.name == port.name }) else { return nil }
                    let outputs = handles[wire.step]!
                    return outputs[wire.output ?? outputs.keys.first!]!
                }
                handles[step.name] = entry.add(p, step.name, inputs, context)
            }
        }
    }
}
