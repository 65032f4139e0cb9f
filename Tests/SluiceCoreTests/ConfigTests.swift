import Foundation
import SluiceTesting
import Testing

@testable import SluiceCore

@Suite("Run configuration")
struct ConfigTests {
    @Test("unquoted scalars get YAML 1.1's types: bools, ints, floats, nulls, and text for everything else")
    func plainScalarTypes() throws {
        let expected: [(String, PlainScalar)] = [
            ("yes", .bool), ("No", .bool), ("TRUE", .bool), ("off", .bool), ("y", .string), ("truth", .string),
            ("0", .int), ("-12", .int), ("+7", .int), ("1_000", .int), ("0x1F", .int), ("0b101", .int),
            ("0o17", .int), ("017", .int), ("1:30", .int), ("1:60", .string), ("0x", .string),
            ("1.5", .float), ("-0.25", .float), ("1e3", .float), ("1.5E-3", .float), (".5", .float), ("09", .float),
            ("1.", .float), ("-.inf", .float), (".NaN", .float), ("1:30.5", .float), (".5e3", .string),
            ("1e", .string), ("", .null), ("~", .null), ("null", .null), ("Null", .null), ("nil", .string),
            ("12abc", .string), ("2024-03-01", .string), ("v1.2", .string), ("-", .string), ("1-2", .string),
        ]
        for (text, type) in expected {
            #expect(PlainScalar(text) == type, "'\(text)'")
        }
        let tree = try ConfigValue.parseYAML("a: 3\nb: 0.5\nc: yes\nd: ~\ne: '3'\nf: x1", source: "t")
        #expect(tree["a"]?.kind == .int(3))
        #expect(tree["b"]?.kind == .double(0.5))
        #expect(tree["c"]?.kind == .bool(true))
        #expect(tree["d"]?.kind == .null)
        #expect(tree["e"]?.kind == .string("3"))
        #expect(tree["f"]?.kind == .string("x1"))
    }

    @Test("a YAML run config sets parameters, caching, parallelism, seed, durability and the stack")
    func fullConfig() throws {
        let yaml = """
            parallelism: 3
            cache: false
            seed: 11
            durability: power
            steps:
              numbers:
                cache: false
                parameters:
                  count: 4
                  label: "007"
            stack:
              artifact_store: /shared/artifacts
            """
        let config = try RunConfig(tree: ConfigValue.parseYAML(yaml, source: "run.yaml"))
        #expect(config.parallelism == 3)
        #expect(config.cache == false)
        #expect(config.seed == 11)
        #expect(config.durability == .power)
        #expect(config.steps["numbers"]?.cache == false)
        #expect(config.stack.artifactStore == "/shared/artifacts")
        let resolved = try TestEngine().engine.resolve(Pipeline("p") { p in p.add(Numbers()) }, config: config)
        #expect(resolved.parameters(of: "numbers") == #"{"count":4,"label":"007","start":0}"#)
    }

    @Test("--set overrides the file, and parses values as YAML scalars")
    func overrides() throws {
        var config = try RunConfig(
            tree: ConfigValue.parseYAML("steps:\n  numbers:\n    parameters:\n      count: 4\n", source: "run.yaml"))
        try config.apply(overrides: [
            "numbers.count=9", "numbers.label=hello world", "parallelism=2", "seed=5", "cache=false",
        ])
        #expect(config.parallelism == 2)
        #expect(config.seed == 5)
        #expect(config.cache == false)
        let resolved = try TestEngine().engine.resolve(Pipeline("p") { p in p.add(Numbers()) }, config: config)
        #expect(resolved.parameters(of: "numbers") == #"{"count":9,"label":"hello world","start":0}"#)
    }

    @Test("the resolved config shows every step's parameters with defaults filled in")
    func resolvedConfig() throws {
        var config = RunConfig()
        try config.apply(overrides: ["scale.factor=5"])
        config.parallelism = 2
        let pipeline = Pipeline("p") { p in p.add(Scale(), p.add(Numbers())) }
        let yaml = try TestEngine().engine.resolve(pipeline, config: config).configYAML
        #expect(
            yaml == """
                pipeline: p
                parallelism: 2
                cache: true
                seed: 42
                durability: process
                steps:
                  numbers:
                    cache: true
                    parameters:
                      count: 5
                      start: 0
                  scale:
                    cache: true
                    parameters:
                      factor: 5

                """)
        // The printed config is itself a valid run config that resolves to the same parameters.
        let reread = try RunConfig(
            tree: ConfigValue.parseYAML(yaml.replacingOccurrences(of: "pipeline: p\n", with: ""), source: "r.yaml"))
        #expect(try TestEngine().engine.resolve(pipeline, config: reread).configYAML == yaml)
    }

    @Test("snake_case keys set camelCase parameters")
    func snakeCaseKeys() throws {
        struct Split: Step {
            struct Parameters: Codable, Sendable { var evalFraction = 0.2 }
            static let name = "split"
            static let version = 1
            var parameters = Parameters()
            func run(_ input: Void, context: StepContext) async throws -> Double { parameters.evalFraction }
        }
        var config = RunConfig()
        try config.apply(overrides: ["split.eval_fraction=0.3"])
        let resolved = try TestEngine().engine.resolve(Pipeline("p") { p in p.add(Split()) }, config: config)
        #expect(resolved.parameters(of: "split") == #"{"evalFraction":0.3}"#)
    }

    @Test("bad YAML is reported with the file and line")
    func badYAML() throws {
        let error = #expect(throws: ConfigError.self) {
            try ConfigValue.parseYAML("steps:\n  numbers:\n    parameters: [1, 2\n", source: "run.yaml")
        }
        #expect(error?.problem.hasPrefix("run.yaml:") == true)
        #expect(error?.problem.contains("this is not valid YAML") == true)
        #expect(error?.fix == "check the indentation and the quoting near that line.")
    }

    @Test("an unknown top-level key gets a did-you-mean")
    func unknownTopLevel() throws {
        let error = #expect(throws: ConfigError.self) {
            try RunConfig(tree: ConfigValue.parseYAML("paralelism: 2\n", source: "run.yaml"))
        }
        #expect(
            error?.description == """
                run.yaml:1:13: unknown setting 'paralelism'. Did you mean 'parallelism'?
                  To fix: use one of cache, durability, parallelism, seed, stack, steps.
                """)
    }

    @Test("wrong types in settings name the place and the expected type")
    func settingTypes() throws {
        let error = #expect(throws: ConfigError.self) {
            try RunConfig(tree: ConfigValue.parseYAML("cache: maybe\n", source: "run.yaml"))
        }
        #expect(error?.problem == "run.yaml:1:8: 'cache' must be true or false, but it is the string 'maybe'.")
        let durability = #expect(throws: ConfigError.self) {
            try RunConfig(tree: ConfigValue.parseYAML("durability: strong\n", source: "run.yaml"))
        }
        #expect(
            durability?.problem
                == "run.yaml:1:13: 'durability' must be one of process, power, but it is the string 'strong'.")
        let zero = #expect(throws: ConfigError.self) {
            try RunConfig(tree: ConfigValue.parseYAML("parallelism: 0\n", source: "run.yaml"))
        }
        #expect(zero?.problem == "run.yaml:1:14: 'parallelism' must be at least 1, but it is 0.")
    }

    @Test(
        "unknown step settings and stack settings are named",
        arguments: [
            (
                "steps:\n  numbers:\n    params: {}\n",
                "run.yaml:3:5: unknown step setting 'steps.numbers.params'. Did you mean 'parameters'?"
            ),
            (
                "stack:\n  artifacts_store: /x\n",
                "run.yaml:2:20: unknown stack setting 'stack.artifacts_store'. Did you mean 'artifact_store'?"
            ),
        ])
    func unknownNestedKeys(yaml: String, problem: String) throws {
        let error = #expect(throws: ConfigError.self) {
            try RunConfig(tree: ConfigValue.parseYAML(yaml, source: "run.yaml"))
        }
        #expect(error?.problem == problem)
    }

    @Test(
        "malformed --set overrides say how to write them",
        arguments: [
            ("numbers.count", "--set numbers.count: an override needs the form KEY=VALUE."),
            (
                "paralelism=3",
                "--set paralelism=3: 'paralelism' is neither a setting nor STEP.PARAMETER. Did you mean 'parallelism'?"
            ),
            ("numbers..count=3", "--set numbers..count=3: 'numbers..count' is not a valid key."),
        ])
    func badOverrides(override: String, problem: String) throws {
        var config = RunConfig()
        let error = #expect(throws: ConfigError.self) { try config.apply(overrides: [override]) }
        #expect(error?.problem == problem)
    }

    @Test("a type error from --set names the override")
    func overrideTypeError() throws {
        var config = RunConfig()
        try config.apply(overrides: ["numbers.count=lots"])
        let error = #expect(throws: PipelineValidationError.self) {
            try TestEngine().engine.resolve(Pipeline("p") { p in p.add(Numbers()) }, config: config)
        }
        #expect(
            error?.problems.first?.hasPrefix(
                "--set numbers.count: 'steps.numbers.parameters.count' must be a whole number, but it is the string 'lots'."
            ) == true)
    }

    @Test("edit distance suggestions find likely typos and only those")
    func suggestions() {
        #expect(["train", "split", "evaluate"].closest(to: "trian") == "train")
        #expect(["train", "split", "evaluate"].closest(to: "evalute") == "evaluate")
        #expect(["train", "split", "evaluate"].closest(to: "deploy") == nil)
    }

    @Test("a step run reads only its own step's block of the recorded config, with the same settings as the whole")
    func recordedConfigOfOneStep() throws {
        var config = RunConfig()
        let long = Array(repeating: "a long label that the emitter folds over lines", count: 4).joined(separator: " ")
        try config.apply(overrides: ["scale.factor=5", "numbers.label=\(long)", "steps.scale.cache=false"])
        config.parallelism = 2
        let pipeline = Pipeline("p") { p in p.add(Scale(), p.add(Numbers())) }
        let yaml = try TestEngine().engine.resolve(pipeline, config: config).configYAML
        let run = Run(
            id: "run-1", pipeline: "p", status: .running, config: yaml, environment: .basic(), owner: .current,
            startedAt: Date())
        let whole = try RunConfig(recordedIn: run)
        for step in ["numbers", "scale"] {
            let text = RunConfig.recordedText(yaml, keepingStep: step)
            #expect(text.contains("  \(step):") && !text.contains(step == "scale" ? "numbers:" : "scale:"), "\(text)")
            let one = try RunConfig(recordedIn: run, step: step)
            #expect(one.steps.keys.sorted() == [step])
            #expect(one.steps[step]?.cache == whole.steps[step]?.cache)
            #expect(one.steps[step]?.parameters?.yaml() == whole.steps[step]?.parameters?.yaml())
            #expect(one.seed == whole.seed && one.parallelism == whole.parallelism && one.cache == whole.cache)
        }
        #expect(
            try RunConfig(recordedIn: run, step: "numbers").steps["numbers"]?.parameters?["label"]?.kind
                == .string(long))
        #expect(try RunConfig(recordedIn: run, step: "nope").steps.isEmpty, "a step the pipeline does not have")
        // A name that is not a plain word keeps every block: the same settings, parsed the slow way.
        let quoted = yaml.replacingOccurrences(of: "  scale:", with: "  \"scale\":")
        #expect(RunConfig.recordedText(quoted, keepingStep: "numbers").contains("\"scale\":"))
        // So does a name with letters beyond ASCII (the scan is over bytes).
        let accented = yaml.replacingOccurrences(of: "  scale:", with: "  scalé:")
        #expect(RunConfig.recordedText(accented, keepingStep: "numbers").contains("  scalé:"))
    }
}
