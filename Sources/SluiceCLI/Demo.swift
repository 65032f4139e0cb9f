import ArgumentParser
import Foundation
import SluiceComponents
import SluiceCore
import SluiceData
import SluiceML

/// `sluice demo`: the standard pipeline on the Palmer penguins data, on the embedded defaults.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run the standard pipeline on the Palmer penguins data (shipped with Sluice).",
        discussion: """
            ingest → statistics → schema → validate → split → transform → train → evaluate → register, in this
            process, with records in ./.sluice (SQLite) and artifacts beside them. Run it twice: the second run
            reuses every step from the cache and only checks the registry again.
            Examples:
              sluice demo
              sluice demo --set train.rounds=50 --set train.learning_rate=0.1
            """)

    @Option(
        name: .customLong("set"),
        help: ArgumentHelp("Override a setting: STEP.PARAM=VALUE (see `--print-config`).", valueName: "key=value"))
    var overrides: [String] = []

    @Flag(help: "Print the fully resolved run config and exit without running.")
    var printConfig = false

    static let model = "penguins"

    @OptionGroup var stackOption: StackOption

    func run() async throws {
        let workspace = try await Workspace.open(create: true, stack: stackOption.name)
        let pipeline = try await Self.pipeline(workspace)
        var config = RunConfig()
        try config.apply(overrides: overrides)
        let engine = workspace.engine()
        let resolved = try engine.resolve(pipeline, config: config)
        if printConfig {
            print(resolved.configYAML, terminator: "")
            return
        }
        let result = try await RunCommand.runWithProgress(engine, resolved)
        RunCommand.printSummary(result, workspace: workspace)
        try RunCommand.requireCompleted(result.run)
        try printOutcome(result, workspace: workspace)
    }

    /// The demo's pipeline name, by which `step run` knows to build it.
    static let pipelineName = "penguins-demo"

    /// The standard pipeline over the shipped penguins data in the workspace's project, registering against the
    /// workspace's registry.
    static func pipeline(_ workspace: Workspace) async throws -> Pipeline {
        let registry = workspace.metadata
        // The data lives in the project; writing the same bytes again keeps its version (and the cache).
        let dataDirectory = workspace.project.directory.appending(path: "demo")
        try FileManager.default.createDirectory(at: dataDirectory, withIntermediateDirectories: true)
        let dataFile = dataDirectory.appending(path: "penguins.csv")
        let bytes = Data(DemoData.penguinsCSV.utf8)
        if (try? Data(contentsOf: dataFile)) != bytes { try bytes.write(to: dataFile, options: .atomic) }

        var options = StandardPipeline.Options(model: Self.model, paths: [dataFile.path], label: "species")
        options.name = pipelineName
        options.slices = ["island"]
        options.thresholds = [
            MetricThreshold(metric: "accuracy", atLeast: 0.9),
            MetricThreshold(metric: "macro_f1", atLeast: 0.9),
            MetricThreshold(metric: "accuracy", maxDegradation: 0.02),
        ]
        options.rounds = 50
        options.maxDepth = 4
        let baseline = try await Baseline.production(
            of: Self.model, registry: registry, artifacts: workspace.artifacts)
        let reference = try await TrainingReference.production(
            of: Self.model, registry: registry, artifacts: workspace.artifacts)
        return StandardPipeline.make(
            options, registry: registry, baseline: baseline, reference: reference, artifacts: workspace.artifacts)
    }

    private func printOutcome(_ result: RunResult, workspace: Workspace) throws {
        let t = Terminal.standardOutput
        let evaluation = try result.value(Evaluation.self, step: "evaluate", output: "evaluation")
        let registration = try result.value(Registration.self, step: "register")
        print("")
        print(t.paint("Model", .bold) + " penguins: predicts species from bill, flipper, body mass, island, sex, year")
        if case .classification(let metrics) = evaluation.overall {
            print(
                "  evaluation (\(metrics.count) held-out penguins): accuracy \(String(format: "%.3f", metrics.accuracy)), macro F1 \(String(format: "%.3f", metrics.macroF1)), log loss \(String(format: "%.3f", metrics.logLoss))"
            )
            for slice in evaluation.slices {
                if let accuracy = slice.metrics.value("accuracy") {
                    print(
                        "    \(slice.column) = \(slice.value): accuracy \(String(format: "%.3f", accuracy)) (\(slice.metrics.count))"
                    )
                }
            }
        }
        let blessing = registration.blessing
        print(
            "  blessing: " + (blessing.passed ? t.paint("passed", .green, .bold) : t.paint("not passed", .red, .bold)))
        for check in blessing.checks { print("    \(check.passed ? "✔" : "✘") \(check.reason)") }
        if let version = registration.version {
            let note = registration.isNew ? "registered" : "already registered"
            print("  \(note): penguins@\(version.version), stage \(version.stage)")
        } else {
            print("  not registered")
        }
        if let bundle = result.outputs["evaluate"]?["bundle"] {
            print("  bundle: artifact \(bundle.id) (\(workspace.display(workspace.artifacts.root.path)))")
        }
        print("")
        print(t.paint("Next", .bold))
        print("  sluice serve penguins@production          KServe V2 and /invocations on http://127.0.0.1:8080")
        print("  sluice profile penguins@production        size, load time, memory, latency percentiles")
        print("  sluice models show penguins               versions, stages, metrics, model card")
        print("  sluice models export penguins -o m.json   the bundle, to load anywhere SluiceML runs")
        print(
            "  sluice artifacts lineage \(result.outputs["evaluate"]?["bundle"]?.id.prefix(16) ?? "ID")  where it came from"
        )
        print("  sluice demo                               again: everything is reused from the cache")
    }
}
