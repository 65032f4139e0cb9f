import ArgumentParser
import Foundation
import SluiceComponents
import SluiceCore
import SluiceOrchestrators

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
        commandName: "export",
        abstract: "Write a pipeline out for another scheduler (Airflow) or as a container image.",
        subcommands: [Airflow.self, Container.self])

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

extension ExportCommand {
    /// `export container`: an image whose entry point is this executable.
    struct Container: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a container build context (Containerfile and root filesystem) whose image runs the "
                + "step entry point; --build builds it with podman.",
            discussion: """
                The image holds this executable at /app/NAME (its entry point) and the shared libraries it links: \
                the system's at their usual paths, the Swift runtime's under /usr/lib/sluice (LD_LIBRARY_PATH), \
                nothing from this machine's build paths, no shell. A stack with `orchestrator: process` and \
                `container: TAG` then starts every step run in it (docs/step-runner.md).
                Example: sluice export container pipeline.yaml -o image --build --tag localhost/churn:1
                """)
        @Argument(help: "The pipeline, or a YAML pipeline file (optional when the executable has only one).")
        var pipeline: String?
        @Option(name: .shortAndLong, help: "The folder to write the build context into.") var output: String
        @Option(help: "The image's name (default: localhost/sluice-PIPELINE:latest).") var tag: String?
        @Flag(help: "Build the image with podman after writing the context.") var build = false
        @OptionGroup var stackOption: StackOption

        func run() async throws {
            let request = PipelineRequest(pipeline: pipeline, configPath: nil, overrides: [])
            let name: String
            if let file = request.yamlFile {
                name = try YAMLPipeline.load(contentsOf: URL(fileURLWithPath: file)).name
            } else {
                name = try PipelineRequest.select(pipeline).name
            }
            let safe = String(name.lowercased().map { $0.isLetter || $0.isNumber || "-_.".contains($0) ? $0 : "-" })
            let tag = tag ?? "localhost/sluice-\(safe):latest"
            let binary = URL(fileURLWithPath: StepCommandLine.currentExecutable).resolvingSymlinksInPath()
            let context = ContainerContext(binary: binary, pipeline: name)
            let folder = URL(fileURLWithPath: output)
            let written = try await context.write(to: folder)
            print(folder.appending(path: "Containerfile").path)
            printError(
                "wrote a build context for pipeline '\(name)': \(binary.lastPathComponent) and \(written) libraries")
            guard build else {
                printError("build it with `podman build -t \(tag) \(folder.path)`, or run this again with --build")
                return
            }
            let podman = try ContainerRuntime.podmanPath(stack: "(export)")
            var arguments = ["build", "--network=none", "-t", tag, folder.path]
            if ExternalCommand.find("runc") != nil { arguments.insert(contentsOf: ["--runtime", "runc"], at: 1) }
            let result = await ExternalCommand.capture(podman, arguments, environment: [:])
            guard result.status == 0 else {
                throw CLIError(
                    problem: "podman could not build the image (exit \(result.status)): \(result.error)",
                    fix: "run `podman \(arguments.joined(separator: " "))` to see the whole output.")
            }
            let id = try await ContainerRuntime.imageID(of: tag, podman: podman, stack: "(export)")
            print(tag)
            printError("built \(tag) (\(id)): set `container: \(tag)` on a stack with `orchestrator: process`")
        }
    }
}

/// The build context of an image holding one executable and the libraries it links.
struct ContainerContext {
    var binary: URL
    var pipeline: String

    /// Where the libraries that are not the system's (the Swift runtime) go inside the image.
    static let libraryFolder = "/usr/lib/sluice"

    /// The shared libraries `ldd` lists for the binary: `(name it is loaded by, file)`.
    func libraries() async throws -> [(name: String, path: String)] {
        let result = await ExternalCommand.capture("/usr/bin/ldd", [binary.path], environment: [:])
        guard result.status == 0 else {
            throw CLIError(
                problem: "ldd could not list the libraries of \(binary.path): \(result.error)\(result.output)",
                fix: "export from a dynamically linked Linux executable.")
        }
        var libraries: [(String, String)] = []
        for line in result.output.split(separator: "\n") {
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            if words.count >= 3, words[1] == "=>", words[2].hasPrefix("/") {
                libraries.append((words[0], words[2]))
            } else if let first = words.first, first.hasPrefix("/") {
                libraries.append(((first as NSString).lastPathComponent, first))  // the dynamic loader
            }
        }
        return libraries
    }

    /// Writes `Containerfile` and `rootfs/` into `folder` (replacing an earlier context); returns how many
    /// libraries went in.
    func write(to folder: URL) async throws -> Int {
        let manager = FileManager.default
        let rootfs = folder.appending(path: "rootfs")
        try? manager.removeItem(at: rootfs)
        for path in ["app", "tmp", "etc", Self.libraryFolder.dropFirst().description] {
            try manager.createDirectory(at: rootfs.appending(path: path), withIntermediateDirectories: true)
        }
        try manager.setAttributes([.posixPermissions: 0o1777], ofItemAtPath: rootfs.appending(path: "tmp").path)
        let executableName = binary.lastPathComponent
        try copy(binary, to: rootfs.appending(path: "app/\(executableName)"))
        let libraries = try await libraries()
        for (name, path) in libraries {
            let system = ["/lib/", "/lib64/", "/usr/lib/"].contains { path.hasPrefix($0) }
            let target = system ? path : "\(Self.libraryFolder)/\(name)"
            try manager.createDirectory(
                at: rootfs.appending(path: String(target.dropFirst())).deletingLastPathComponent(),
                withIntermediateDirectories: true)
            try copy(
                URL(fileURLWithPath: path).resolvingSymlinksInPath(),
                to: rootfs.appending(path: String(target.dropFirst())))
        }
        try Data("root:x:0:0:root:/tmp:/nonexistent\n".utf8).write(to: rootfs.appending(path: "etc/passwd"))
        try Data("root:x:0:\n".utf8).write(to: rootfs.appending(path: "etc/group"))
        let containerfile = """
            # Written by `sluice export container`: pipeline '\(pipeline)' (\(executableName)) as an image whose
            # entry point is the step runner's executable. No base image, no shell: the executable and the
            # \(libraries.count) libraries it links, under rootfs/.
            FROM scratch
            COPY rootfs/ /
            ENV LD_LIBRARY_PATH=\(Self.libraryFolder) HOME=/tmp NO_COLOR=1
            LABEL org.opencontainers.image.title="sluice-\(pipeline)" io.sluice.pipeline="\(pipeline)"
            ENTRYPOINT ["/app/\(executableName)"]

            """
        try Data(containerfile.utf8).write(to: folder.appending(path: "Containerfile"), options: .atomic)
        return libraries.count
    }

    private func copy(_ source: URL, to target: URL) throws {
        try? FileManager.default.removeItem(at: target)
        try FileManager.default.copyItem(at: source, to: target)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: target.path)
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
