import ArgumentParser
import Foundation
import SluiceComponents
import SluiceCore

extension RunsCommand {
    /// `runs start`: records a run for an outside scheduler and prints its ID.
    struct Start: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Record a run for an outside scheduler (Airflow) to execute with `step run`; print its ID.",
            discussion: """
                The run is recorded with its fully resolved config (the steps read it from the record, wherever \
                they run) and an external owner, so it does not read as crashed when this command exits. Each step \
                then runs as `step run --run RUN --step STEP` in DAG order, and `runs finish RUN` ends the run. \
                `sluice export airflow` writes a DAG that does all three.
                """)
        @Argument(help: "The pipeline, or a YAML pipeline file (optional when the executable has only one).")
        var pipeline: String?
        @Option(name: .shortAndLong, help: "A YAML run config: step parameters, caching, parallelism, seed, stack.")
        var config: String?
        @Option(
            name: .customLong("set"),
            help: ArgumentHelp("Override a setting: STEP.PARAM=VALUE, or seed=N…", valueName: "key=value"))
        var overrides: [String] = []
        @Option(help: "The scheduler that will run the steps, as recorded with the run.") var orchestrator = "external"
        @OptionGroup var stackOption: StackOption

        func run() async throws {
            let request = PipelineRequest(pipeline: pipeline, configPath: config, overrides: overrides)
            let (workspace, pipeline, runConfig) = try await request.open(stack: stackOption.name)
            let engine = workspace.engine(pipelineFile: request.yamlFile)
            let run = try await engine.register(
                try engine.resolve(pipeline, config: runConfig), orchestrator: orchestrator)
            await workspace.stack.close()
            print(run.id)
        }
    }

    /// `runs finish`: ends a run an outside scheduler executed.
    struct Finish: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "End a run recorded with `runs start`: completed, or failed naming the step that failed.",
            discussion: """
                Steps that never ran are recorded skipped; a step run left running (its process died) is recorded \
                failed. Exit status: 0 completed, 1 failed, 130 cancelled, 2 no such run.
                """)
        @Argument(help: "The run (ID or unique prefix).") var run: String
        @Option(help: "The YAML pipeline file, for runs of YAML pipelines.") var file: String?
        @Option(
            name: .customLong("set"),
            help: ArgumentHelp("A stack setting on top of the stack file's: stack.KEY=VALUE.", valueName: "key=value"))
        var overrides: [String] = []
        @OptionGroup var stackOption: StackOption

        func run() async throws {
            let workspace = try await Workspace.open(
                create: false, stack: stackOption.name,
                stackOverrides: try StepCommand.stackOverrides(overrides, command: "runs finish"))
            let record = try await workspace.requireRun(run)
            let pipeline = try await StepCommand.pipeline(of: record, file: file, workspace: workspace)
            let finished = try await workspace.engine(pipelineFile: file).finishRegistered(
                record.id, pipeline: pipeline)
            await workspace.stack.close()
            print("run \(finished.id) \(finished.status.rawValue)" + (finished.error.map { ": \($0)" } ?? ""))
            try RunCommand.requireCompleted(finished)
        }
    }
}

/// `sluice export`: a pipeline handed to an engine a team already runs.
struct ExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export", abstract: "Write a pipeline out for another scheduler (Airflow).",
        subcommands: [Airflow.self])

    struct Airflow: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write an Airflow DAG whose tasks run the pipeline's steps through `step run`.",
            discussion: """
                The DAG has a task per step with the pipeline's dependencies, between `sluice_start` (records the \
                run with this command's settings: `runs start`, its ID passed on through XCom) and `sluice_finish` \
                (`runs finish`, whatever happened). Airflow's retries and schedules apply; cached steps finish at \
                once. The tasks run this executable on this project: the DAG names both by absolute path.
                Example: sluice export airflow pipeline.yaml -o ~/airflow/dags --set train.rounds=50 --schedule @daily
                """)
        @Argument(help: "The pipeline, or a YAML pipeline file (optional when the executable has only one).")
        var pipeline: String?
        @Option(name: .shortAndLong, help: "The folder to write the DAG file into (Airflow's dags folder).")
        var output: String
        @Option(name: .shortAndLong, help: "A YAML run config the DAG's runs use.") var config: String?
        @Option(
            name: .customLong("set"),
            help: ArgumentHelp("A setting every run of the DAG uses: STEP.PARAM=VALUE…", valueName: "key=value"))
        var overrides: [String] = []
        @Option(help: "The DAG's ID (default: sluice_PIPELINE).") var dagID: String?
        @Option(help: "Airflow's schedule: a cron expression or a preset like @daily (default: none, runs on demand).")
        var schedule: String?
        @Option(help: "How many times Airflow retries a failed step.") var retries = 0
        @Option(help: "Seconds Airflow waits before retrying a failed step (default: Airflow's own, 300).")
        var retryDelay: Int?
        @OptionGroup var stackOption: StackOption

        func run() async throws {
            guard retries >= 0 else { throw ValidationError("--retries must be 0 or more") }
            guard (retryDelay ?? 0) >= 0 else { throw ValidationError("--retry-delay must be 0 or more seconds") }
            let request = PipelineRequest(pipeline: pipeline, configPath: config, overrides: overrides)
            let (workspace, built, runConfig) = try await request.open(stack: stackOption.name)
            _ = try workspace.engine().resolve(built, config: runConfig)  // refuses bad settings now, not in Airflow
            await workspace.stack.close()
            let dagID = dagID ?? "sluice_" + built.name.map { $0.isLetter || $0.isNumber ? $0 : "_" }
            guard dagID.allSatisfy({ $0.isLetter || $0.isNumber || "_-.".contains($0) }) else {
                throw ValidationError("--dag-id is letters, digits and _ - . only")
            }
            let executable = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL
            let binary =
                FileManager.default.isExecutableFile(atPath: executable.path)
                ? executable.path : URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
            var startArguments: [String] = []
            var fileArguments: [String] = []
            if let file = request.yamlFile {
                let absolute = URL(fileURLWithPath: file).standardizedFileURL.path
                startArguments.append(absolute)
                fileArguments = ["--file", absolute]
            } else {
                startArguments.append(built.name)
            }
            if let config { startArguments += ["--config", URL(fileURLWithPath: config).standardizedFileURL.path] }
            for assignment in overrides { startArguments += ["--set", assignment] }
            if let stack = stackOption.name {
                startArguments += ["--stack", stack]
                fileArguments += ["--stack", stack]
            }
            let dag = AirflowDAG(
                dagID: dagID, pipeline: built, binary: binary, project: workspace.project.root.path,
                startArguments: startArguments, stepArguments: fileArguments, schedule: schedule, retries: retries,
                retryDelay: retryDelay)
            let folder = URL(fileURLWithPath: output)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let file = folder.appending(path: "\(dagID).py")
            try Data(dag.python.utf8).write(to: file, options: .atomic)
            print(file.path)
            printError(
                "wrote DAG '\(dagID)' (\(built.stepNames.count) steps) for Airflow: trigger it with "
                    + "`airflow dags trigger \(dagID)`, or try it with `airflow dags test \(dagID)`")
        }
    }
}

/// The Python of an Airflow DAG running a pipeline's steps: one BashOperator per step, wired as the pipeline is.
struct AirflowDAG {
    var dagID: String
    var pipeline: Pipeline
    var binary: String
    var project: String
    var startArguments: [String]
    var stepArguments: [String]
    var schedule: String?
    var retries: Int
    var retryDelay: Int?

    /// A Python string literal (JSON's escaping is valid Python).
    static func literal(_ text: String) -> String {
        let data = try! JSONSerialization.data(withJSONObject: [text], options: [.withoutEscapingSlashes])
        return String(String(decoding: data, as: UTF8.self).dropFirst().dropLast())
    }

    static func list(_ items: [String]) -> String { "[" + items.map(literal).joined(separator: ", ") + "]" }

    /// A task ID Airflow accepts for a step name.
    static func taskID(_ step: String) -> String {
        String(step.map { $0.isLetter || $0.isNumber || "_-.".contains($0) ? $0 : "_" })
    }

    var python: String {
        let names = pipeline.stepNames
        let retrySettings =
            "retries=\(retries)" + (retryDelay.map { ", retry_delay=timedelta(seconds=\($0))" } ?? "")
        let dependencies = pipeline.dependencies
        var lines: [String] = []
        for name in names {
            lines.append(
                "    steps[\(Self.literal(name))] = step(\(Self.literal(name)), \(Self.literal(Self.taskID(name))))")
        }
        var edges: [String] = []
        for name in names {
            let upstream = Set(dependencies[name] ?? []).sorted()
            if upstream.isEmpty {
                edges.append("    start >> steps[\(Self.literal(name))]")
            }
            for source in upstream {
                edges.append("    steps[\(Self.literal(source))] >> steps[\(Self.literal(name))]")
            }
        }
        return """
            # Written by `sluice export airflow`: pipeline '\(pipeline.name)' as an Airflow DAG. Write it again after
            # changing the pipeline's steps or wiring; settings are recorded with each run by `sluice_start`.
            import shlex
            from datetime import datetime, timedelta

            try:  # Airflow 3
                from airflow.sdk import DAG
            except ImportError:  # Airflow 2
                from airflow import DAG
            try:
                from airflow.providers.standard.operators.bash import BashOperator
            except ImportError:
                from airflow.operators.bash import BashOperator

            SLUICE = \(Self.literal(binary))
            PROJECT = \(Self.literal(project))
            START = \(Self.list(startArguments))
            STEP = \(Self.list(stepArguments))
            # The Sluice run of this DAG run, recorded by the first task.
            RUN = "{{ ti.xcom_pull(task_ids='sluice_start') }}"
            ENV = {"SLUICE_PROJECT": PROJECT, "NO_COLOR": "1"}


            def command(arguments, run=False):
                return shlex.join([SLUICE] + arguments) + (" --run " + RUN if run else "")


            def step(name, task_id):
                return BashOperator(
                    task_id=task_id, bash_command=command(["step", "run", "--step", name] + STEP, run=True),
                    env=ENV, append_env=True, cwd=PROJECT, \(retrySettings))


            with DAG(
                dag_id=\(Self.literal(dagID)), start_date=datetime(2024, 1, 1),
                schedule=\(schedule.map(Self.literal) ?? "None"), catchup=False, tags=["sluice"],
                doc_md=\(Self.literal("Sluice pipeline `\(pipeline.name)`: \(names.count) steps.")),
            ) as dag:
                start = BashOperator(
                    task_id="sluice_start", bash_command=command(["runs", "start"] + START + ["--orchestrator", "airflow"]),
                    env=ENV, append_env=True, cwd=PROJECT, do_xcom_push=True)
                finish = BashOperator(
                    task_id="sluice_finish",
                    bash_command=command(["runs", "finish"] + STEP) + " " + RUN,
                    env=ENV, append_env=True, cwd=PROJECT, trigger_rule="all_done")
                steps = {}
            \(lines.joined(separator: "\n"))
            \(edges.joined(separator: "\n"))
                list(steps.values()) >> finish

            """
    }
}
