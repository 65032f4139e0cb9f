import ArgumentParser
import Foundation
import SluiceCore

/// `sluice runs reproduce RUN`: runs a past run again without the cache and checks every output is the same.
struct ReproduceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reproduce",
        abstract: "Run a past run again without the cache and check every output has the same content hash.",
        discussion: """
            Re-executes RUN from its recorded config (parameters, seed) as a new run with caching off, then \
            compares each step's outputs with the original's, artifact by artifact. Refuses, saying why, when the \
            code that ran it (the binary's hash, the git commit) or the data its source steps read has changed \
            (--allow-code-change compares anyway when only the code did). Steps that act on the world instead of \
            computing (register) and the steps after them are left out. Exit status: 0 every output the same, \
            1 some differ (listed), 2 refused.
            """)

    @Argument(help: "The run to reproduce (ID or unique prefix).") var run: String
    @Option(help: "The YAML pipeline file, for runs of YAML pipelines.") var file: String?
    @Flag(help: "Reproduce even though the binary or the git commit differ from the run's.")
    var allowCodeChange = false
    @Flag(help: "Print the comparison as JSON.") var json = false
    @OptionGroup var stackOption: StackOption

    /// One output compared.
    struct Comparison: Codable {
        var step: String
        var output: String
        var original: String
        var reproduced: String?
        var same: Bool { original == reproduced }
    }

    func run() async throws {
        let workspace = try await Workspace.open(create: false, stack: stackOption.name)
        let original = try await workspace.requireRun(run)
        let metadata = workspace.metadata

        // The code: the binary that ran it and the commit it was built from.
        let now = await RunEnvironment.capture(
            gitDirectory: Project.currentDirectory,
            cacheDirectory: workspace.project.directory.appending(path: "cache"))
        var codeChanges: [String] = []
        if let hash = original.environment.binaryHash, let current = now.binaryHash, hash != current {
            codeChanges.append("the binary differs (\(hash.prefix(19))… then, \(current.prefix(19))… now)")
        }
        if let commit = original.environment.gitCommit, commit != now.gitCommit {
            codeChanges.append(
                "the git commit differs (\(commit.prefix(8)) then, \(now.gitCommit?.prefix(8) ?? "none") now)")
        }
        if original.environment.gitDirty == true {
            codeChanges.append("the run was made from uncommitted changes, which no commit holds")
        }
        if !codeChanges.isEmpty && !allowCodeChange {
            throw CLIError(
                problem:
                    "run \(original.id) cannot be reproduced with this code: \(codeChanges.joined(separator: "; ")).",
                fix: "check out and build the code it ran (commit \(original.environment.gitCommit ?? "unknown")), "
                    + "or pass --allow-code-change to compare anyway.")
        }

        // The config as recorded, without the cache; without the steps that act on the world.
        var config = try RunConfig(recordedIn: original)
        config.cache = false
        let full = try await StepCommand.pipeline(of: original, file: file, workspace: workspace)
        let left = full.uncacheableSteps
        let pipeline = full.removing(left)
        for step in left { config.steps[step] = nil }
        let engine = workspace.engine(pipelineFile: file)
        let resolved = try engine.resolve(pipeline, config: config)

        // The data: the steps that read from outside must see what they saw then.
        let recorded = try await metadata.stepRuns(ofRun: original.id)
        for (step, key) in engine.sourceCacheKeys(resolved).sorted(by: { $0.key < $1.key }) {
            guard let before = recorded.last(where: { $0.stepName == step && $0.status.producedOutputs }) else {
                continue
            }
            guard before.cacheKey == key else {
                let reason =
                    before.parameters != resolved.parameters(of: step)
                    ? "its parameters resolve differently now"
                    : !codeChanges.isEmpty ? "its code or the data it reads changed" : "the data it reads changed"
                throw CLIError(
                    problem: "run \(original.id) cannot be reproduced: step '\(step)' would not do the same work "
                        + "(\(reason); its cache key differs).",
                    fix: "restore the data the run read (its dataset version is in `sluice runs show \(original.id)`), "
                        + "or start a new run.")
            }
        }

        let result = try await RunCommand.runWithProgress(
            engine, resolved, trigger: RunTrigger(kind: .reproduce, detail: original.id))
        var comparisons: [Comparison] = []
        var notCompared: [String] = []
        for step in pipeline.stepNames {
            guard let before = recorded.last(where: { $0.stepName == step && $0.status.producedOutputs }) else {
                notCompared.append(step)
                continue
            }
            let outputs = try await metadata.outputs(ofStepRun: before.id)
            for (name, artifact) in outputs.sorted(by: { $0.key < $1.key }) {
                comparisons.append(
                    Comparison(
                        step: step, output: name, original: artifact.contentHash,
                        reproduced: result.outputs[step]?[name]?.contentHash))
            }
        }
        let differing = comparisons.filter { !$0.same }
        if json {
            print(try jsonString(comparisons))
        } else {
            let t = Terminal.standardOutput
            print(
                "reproduction \(t.paint(result.run.id, .bold)) of \(original.id): \(comparisons.count) outputs compared, "
                    + "\(differing.isEmpty ? t.paint("all the same", .green, .bold) : t.paint("\(differing.count) differ", .red, .bold))"
            )
            for comparison in differing {
                print(
                    "  ✘ \(comparison.step).\(comparison.output): \(comparison.original.prefix(19))… then, "
                        + "\(comparison.reproduced.map { String($0.prefix(19)) + "…" } ?? "nothing") now")
            }
            if !left.isEmpty { print("  left out (they act on the world): \(left.joined(separator: ", "))") }
            if !notCompared.isEmpty {
                print("  not compared (no outputs in the original run): \(notCompared.joined(separator: ", "))")
            }
            if !codeChanges.isEmpty { print("  compared although \(codeChanges.joined(separator: "; "))") }
        }
        guard result.run.status == .completed, differing.isEmpty else { throw ExitCode(ExitStatus.failed.rawValue) }
    }
}
