import ArgumentParser
import Foundation
import SluiceComponents
import SluiceCore
import SluiceOrchestrators

/// `step run`: runs one step run of a recorded run, the entry point out-of-process orchestrators call.
struct StepCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "step", abstract: "Run one step of a recorded run (the entry point of orchestrators).",
        subcommands: [RunStep.self])

    /// The pipeline a recorded run ran: compiled into this executable, the demo, or the YAML file `file`.
    static func pipeline(of record: Run, file: String?, workspace: Workspace) async throws -> Pipeline {
        if let file {
            let yaml = try YAMLPipeline.load(contentsOf: URL(fileURLWithPath: file))
            guard yaml.name == record.pipeline else {
                throw CLIError(
                    problem:
                        "\(file) is pipeline '\(yaml.name)', but run \(record.id) is a run of '\(record.pipeline)'.",
                    fix: "pass the YAML file of pipeline '\(record.pipeline)'.")
            }
            return try await RunCommand.build(yaml, config: try RunConfig(recordedIn: record), workspace: workspace)
        }
        if let compiled = Catalog.pipelines.first(where: { $0.name == record.pipeline }) { return compiled }
        if record.pipeline == DemoCommand.pipelineName { return try await DemoCommand.pipeline(workspace) }
        throw CLIError(
            problem: "run \(record.id) is a run of pipeline '\(record.pipeline)', which this executable does not have.",
            fix: "use that pipeline's executable, or pass --file for a YAML pipeline.")
    }

    /// The stack settings `--set stack.KEY=VALUE` gives a command that works on a recorded run (`step run`,
    /// `runs finish`): only the stack can change, the rest is the run's recorded config.
    static func stackOverrides(_ overrides: [String], command: String) throws -> StackSettings {
        var config = RunConfig()
        for assignment in overrides where !assignment.hasPrefix("stack.") {
            throw CLIError(
                problem: "--set \(assignment): `\(command)` takes only stack settings (stack.KEY=VALUE); the "
                    + "steps' parameters, seed and caching are the run's recorded config.",
                fix: "start a new run with `run … --set \(assignment)` instead.")
        }
        try config.apply(overrides: overrides)
        return config.stack
    }

    struct RunStep: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "run",
            abstract: "Run step STEP of run RUN: inputs from the run's records, outputs and record to the stack.",
            discussion: """
                Reads the run's recorded config, takes each input from the newest finished step run of its \
                producer in that run, checks the cache, runs the step, writes its outputs to the artifact store and \
                its record to the metadata store. Exit status: 0 done or cached, 1 the step failed, 2 the run, \
                the step or an upstream output is not there (or another usage mistake), 130 cancelled. \
                See docs/step-runner.md.
                """)
        @Option(help: "The run (ID or unique prefix).") var run: String
        @Option(help: "The step's name in the pipeline.") var step: String
        @Option(help: "The YAML pipeline file, for runs of YAML pipelines (through `sluice`).") var file: String?
        @Option(help: "Record the step run under this ID (orchestrators pick one to find the record).")
        var stepRun: String?
        @Option(
            name: .customLong("set"),
            help: ArgumentHelp("A stack setting on top of the stack file's: stack.KEY=VALUE.", valueName: "key=value"))
        var overrides: [String] = []
        @Flag(
            help: "End the run when this step leaves every step of it completed or cached (`slurm` jobs of last steps)."
        )
        var finishRun = false
        @Option(help: "Of a sharded step: compute only this shard and save its partial result for --merge-shards.")
        var shard: Int?
        @Flag(help: "Of a sharded step: compute the shard SLURM_ARRAY_TASK_ID says (a job of a Slurm array).")
        var shardArray = false
        @Flag(help: "Of a sharded step: merge the partials its shard jobs saved instead of computing the shards.")
        var mergeShards = false
        @Flag(
            help: ArgumentHelp(
                "Of a sharded step whose input lists its files: list them and submit its Slurm job array (the job "
                    + "the slurm orchestrator starts once the step's inputs exist)."))
        var planShards = false
        @OptionGroup var stackOption: StackOption

        func run() async throws {
            try await Self.execute(
                StepRequest(
                    run: run, step: step, file: file, stepRun: stepRun, overrides: overrides, stack: stackOption.name,
                    finishRun: finishRun, shard: try Self.shardIndex(shard, array: shardArray),
                    mergeShards: mergeShards, planShards: planShards))
        }

        /// What `step run` was asked to do.
        struct StepRequest {
            var run: String
            var step: String
            var file: String?
            var stepRun: String?
            var overrides: [String] = []
            var stack: String?
            var finishRun = false
            var shard: Int?
            var mergeShards = false
            var planShards = false

            /// Reads the arguments an orchestrator passes (`--run R --step S [--file F] [--step-run ID]
            /// [--stack N] [--set K=V]…`, after `step run`) without building the whole command tree: a step process
            /// starts once per step run, and parsing through ArgumentParser costs it several milliseconds (a
            /// protocol-conformance lookup per command type). `nil` for anything else (help, a typo, a missing
            /// value), which then goes through ArgumentParser and gets its usual messages.
            init?(orchestratorArguments arguments: [String]) {
                var values: [String: String] = [:]
                var overrides: [String] = []
                var flags: Set<String> = []
                var index = arguments.startIndex
                while index < arguments.endIndex {
                    let name = arguments[index]
                    if ["--finish-run", "--shard-array", "--merge-shards", "--plan-shards"].contains(name) {
                        guard flags.insert(name).inserted else { return nil }
                        index += 1
                        continue
                    }
                    guard ["--run", "--step", "--file", "--step-run", "--stack", "--set", "--shard"].contains(name),
                        index + 1 < arguments.endIndex, !arguments[index + 1].hasPrefix("--")
                    else { return nil }
                    let value = arguments[index + 1]
                    if name == "--set" {
                        overrides.append(value)
                    } else {
                        guard values.updateValue(value, forKey: name) == nil else { return nil }
                    }
                    index += 2
                }
                guard let run = values["--run"], let step = values["--step"] else { return nil }
                // Not `guard let … = try?`: that also gave up on every step run without a shard (a nil index),
                // sending each one through ArgumentParser.
                var shard: Int?
                do {
                    shard = try RunStep.shardIndex(nil, array: flags.contains("--shard-array"))
                } catch {
                    return nil
                }
                if let given = values["--shard"] {
                    guard shard == nil, let number = Int(given) else { return nil }
                    shard = number
                }
                self.init(
                    run: run, step: step, file: values["--file"], stepRun: values["--step-run"], overrides: overrides,
                    stack: values["--stack"], finishRun: flags.contains("--finish-run"), shard: shard,
                    mergeShards: flags.contains("--merge-shards"), planShards: flags.contains("--plan-shards"))
            }

            init(
                run: String, step: String, file: String?, stepRun: String?, overrides: [String], stack: String?,
                finishRun: Bool = false, shard: Int? = nil, mergeShards: Bool = false, planShards: Bool = false
            ) {
                self.shard = shard
                self.mergeShards = mergeShards
                self.planShards = planShards
                self.run = run
                self.step = step
                self.file = file
                self.stepRun = stepRun
                self.overrides = overrides
                self.stack = stack
                self.finishRun = finishRun
            }
        }

        /// The shard `--shard` or `--shard-array` (SLURM_ARRAY_TASK_ID) asks for.
        static func shardIndex(_ shard: Int?, array: Bool) throws -> Int? {
            guard array else { return shard }
            guard let text = ProcessInfo.processInfo.environment["SLURM_ARRAY_TASK_ID"], let index = Int(text) else {
                throw CLIError(
                    problem: "--shard-array reads the shard from SLURM_ARRAY_TASK_ID, which is not set here.",
                    fix: "use it only in a job of a Slurm array, or give the shard with --shard N.")
            }
            return index
        }

        /// The step run a planning or shard job works for (`--step-run`), which `flag` needs for `purpose`.
        static func jobStepRun(_ request: StepRequest, flag: String, purpose: String) throws -> String {
            guard let stepRunID = request.stepRun else {
                throw CLIError(
                    problem: "\(flag) needs --step-run: \(purpose).",
                    fix: "pass the step run ID the merge job (`--merge-shards`) is given.")
            }
            return stepRunID
        }

        /// Runs a planning or shard job's work: a ``StepRunError`` (the run, step or an input is not there) passes
        /// on as it is; any other failure is printed after `failure` and exits with status 1.
        static func job(failure: String, _ work: () async throws -> Void) async throws {
            do {
                try await work()
            } catch let error as StepRunError {
                throw error
            } catch {
                printError("\(failure): \(error)")
                throw ExitCode(ExitStatus.failed.rawValue)
            }
        }

        static func execute(_ request: StepRequest) async throws {
            let (run, step, file, overrides) = (request.run, request.step, request.file, request.overrides)
            let workspace = try await Workspace.open(
                create: false, stack: request.stack,
                stackOverrides: try StepCommand.stackOverrides(overrides, command: "step run"), forOneStep: true)
            let record = try await workspace.requireRun(run)
            let pipeline = try await StepCommand.pipeline(of: record, file: file, workspace: workspace)
            let reporter = RunReporter(terminal: .standardError)
            var engine = workspace.engine()
            // Where the step runs as its orchestrator reads it from the environment (a cluster's job, a container's
            // image), recorded on the step run; `runs show` and `runs finish` read it.
            engine.stepProperties = engine.orchestrator.placement(environment: ProcessInfo.processInfo.environment)
            if request.planShards {
                guard let slurm = engine.orchestrator as? SlurmOrchestrator else {
                    throw CLIError(
                        problem: "--plan-shards submits a job array, but stack '\(workspace.stack.name)' runs steps "
                            + "\(engine.orchestrator.name).",
                        fix: "use --plan-shards only in the jobs the slurm orchestrator submits.")
                }
                let stepRunID = try Self.jobStepRun(
                    request, flag: "--plan-shards", purpose: "the files are listed for that step run's jobs")
                try await Self.job(failure: "step '\(step)': planning its shards failed") {
                    let (files, array) = try await engine.planShards(
                        step, ofRun: record.id, pipeline: pipeline, stepRunID: stepRunID, client: slurm.client)
                    print(
                        "step '\(step)': \(files.count) shard\(files.count == 1 ? "" : "s")"
                            + (array.map { ", job array \($0)" } ?? ""))
                }
                await workspace.stack.close()
                return
            }
            if let shard = request.shard {
                let stepRunID = try Self.jobStepRun(
                    request, flag: "--shard", purpose: "the shard's partial is saved for that step run's merge")
                try await Self.job(failure: "step '\(step)' shard \(shard) failed") {
                    try await engine.runShard(
                        step, ofRun: record.id, pipeline: pipeline, stepRunID: stepRunID, index: shard)
                }
                await workspace.stack.close()
                return
            }
            engine.mergeSavedShards = request.mergeShards
            let task = Task { [engine] in
                try await engine.runStep(
                    step, ofRun: record.id, pipeline: pipeline, stepRunID: request.stepRun, observer: reporter)
            }
            let interrupts = InterruptHandler { task.cancel() }  // Ctrl-C, SIGTERM: the step is recorded cancelled
            defer { interrupts.stop() }
            let stepRun = try await task.value
            if request.finishRun && stepRun.status.producedOutputs {
                _ = try await engine.finishIfComplete(record.id, pipeline: pipeline)
            }
            await workspace.stack.close()
            switch stepRun.status {
            case .completed, .cached: return
            case .cancelled: throw ExitCode(ExitStatus.interrupted.rawValue)
            default: throw ExitCode(ExitStatus.failed.rawValue)
            }
        }
    }
}
