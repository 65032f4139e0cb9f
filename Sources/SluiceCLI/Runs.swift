import ArgumentParser
import Foundation
import SluiceCore
import SluiceOrchestrators

extension RunStatus: ExpressibleByArgument {}

/// `sluice runs`: the run history.
struct RunsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runs", abstract: "List and inspect runs.",
        subcommands: [
            List.self, Show.self, Compare.self, ReproduceCommand.self, Wait.self, Cancel.self, Start.self, Finish.self,
            Tag.self, Note.self, Rename.self, Delete.self, Restore.self,
        ],
        defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List runs, newest first.")
        @Option(help: "Only runs of this pipeline.") var pipeline: String?
        @Option(help: "Only runs with this status.") var status: RunStatus?
        @Option(help: "At most this many runs.") var limit = 20
        @Option(
            name: .customLong("param"),
            help: ArgumentHelp(
                "Only runs whose step parameter has this value, e.g. train.rounds=50 (repeatable).",
                valueName: "step.parameter=value"))
        var parameters: [String] = []
        @Option(
            help: ArgumentHelp(
                "Only runs meeting this filter, in MLflow's syntax: metrics.auc > 0.8 and params.learner = 'gbdt' and tags.team = 'fraud' (a pipeline run's params and metrics are STEP.NAME: params.train.rounds).",
                valueName: "filter"))
        var filter: String?
        @Option(
            name: .customLong("order-by"),
            help: ArgumentHelp(
                "Order by metrics.KEY, params.KEY, tags.KEY or attributes.start_time, with ASC or DESC (repeatable).",
                valueName: "key [ASC|DESC]"))
        var orderBy: [String] = []
        @Flag(help: "List deleted runs instead (restore one with `sluice runs restore`).") var deleted = false
        @Flag(help: "Print JSON.") var json = false

        @OptionGroup var stackOption: StackOption

        func run() async throws {
            let workspace = try await Workspace.open(create: false, stack: stackOption.name)
            if filter != nil || !orderBy.isEmpty || deleted {
                return try await search(workspace)
            }
            let conditions = try parameters.map(RunsCommand.condition)
            var runs = try await workspace.metadata.runs(
                RunFilter(
                    pipeline: pipeline, status: status, limit: conditions.isEmpty ? limit : max(limit * 20, 1_000)))
            if !conditions.isEmpty {
                var kept: [Run] = []
                for run in runs where kept.count < limit {
                    let values = try await RunParameters.values(of: run.id, in: workspace.metadata)
                    if conditions.allSatisfy({ $0.matches(values) }) { kept.append(run) }
                }
                runs = kept
            }
            if json { return print(try jsonString(runs)) }
            let t = Terminal.standardOutput
            guard !runs.isEmpty else {
                return print(
                    conditions.isEmpty ? "No runs yet. Start one with `sluice run`." : "No runs match those parameters."
                )
            }
            let rows = runs.map { run in
                [
                    run.id, run.pipeline, paint(run.status, t), formatDate(run.startedAt), formatDuration(run.duration),
                    run.environment.gitCommit.map {
                        String($0.prefix(8)) + (run.environment.gitDirty == true ? "+" : "")
                    } ?? "-",
                    run.environment.user, run.trigger.kind.rawValue,
                ]
            }
            print(
                renderTable(
                    ["RUN", "PIPELINE", "STATUS", "STARTED", "DURATION", "GIT", "USER", "TRIGGER"], rows, terminal: t))
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a run: environment, config, steps, outputs.")
        @Argument(help: "A run ID or a unique prefix of one.") var run: String
        @Flag(help: "Print only the fully resolved run config (YAML).") var config = false
        @Flag(help: "Print JSON.") var json = false

        /// Times in ISO 8601 with milliseconds; durations as numbers of seconds, as the dashboard's API has them.
        struct Details: Encodable {
            var run: Run
            var durationSeconds: Double
            var steps: [StepDetails]
            /// For a running run on Slurm: its jobs still in the cluster's queue.
            var queuedJobs: [QueuedJob]?
        }
        struct QueuedJob: Encodable {
            var step: String
            var job: String
            var state: String
            var reason: String?
        }
        struct StepDetails: Encodable {
            var stepRun: StepRun
            var durationSeconds: Double?
            var outputs: [String: ArtifactRecord]
            var metrics: [MetricRecord]
        }

        @OptionGroup var stackOption: StackOption

        func run() async throws {
            let workspace = try await Workspace.open(create: false, stack: stackOption.name)
            let record = try await workspace.requireRun(run)
            if config { return print(record.config, terminator: "") }
            let stepRuns = try await workspace.metadata.stepRuns(ofRun: record.id)
            var steps: [StepDetails] = []
            for stepRun in stepRuns {
                steps.append(
                    StepDetails(
                        stepRun: stepRun, durationSeconds: stepRun.duration,
                        outputs: try await workspace.metadata.outputs(ofStepRun: stepRun.id),
                        metrics: try await workspace.metadata.metrics(ofStepRun: stepRun.id)))
            }
            // A run handed to an orchestrator's own scheduler (Slurm): its jobs, and where it places steps.
            let placement = record.owner.externalOrchestrator.flatMap {
                Orchestrators.owning($0, stack: workspace.stack, project: workspace.project)
            }.flatMap { owner in owner.placementSummary(of: record.id).map { (owner, $0) } }
            let onCluster = placement != nil
            var queued: [OrchestratorJob] = []
            if let (owner, _) = placement, record.status == .running {
                do {
                    queued = try await owner.jobs(of: record.id)
                } catch {
                    printError("note: the cluster's queue could not be read: \(error)")
                }
            }
            if json {
                return print(
                    try jsonString(
                        Details(
                            run: record, durationSeconds: record.duration, steps: steps,
                            queuedJobs: onCluster
                                ? queued.map {
                                    QueuedJob(step: $0.step, job: $0.id, state: $0.state, reason: $0.reason)
                                }
                                : nil)))
            }

            let t = Terminal.standardOutput
            let e = record.environment
            print("\(t.paint("Run", .bold)) \(record.id)  \(paint(record.status, t))")
            if let name = record.name { print("  name      \(name)") }
            print(
                "  \(record.kind == .tracked ? "experiment" : "pipeline  ") \(record.pipeline)\(record.kind == .tracked ? "   (tracked run)" : "")"
            )
            print("  started   \(formatDate(record.startedAt))   duration \(formatDuration(record.duration))")
            print("  by        \(e.user)@\(e.host)   \(e.os)")
            print("  trigger   \(record.trigger.summary)")
            if let (_, summary) = placement {
                print("  steps     \(summary)")
            } else if let scheduler = record.owner.externalOrchestrator {
                print("  steps     run by \(scheduler) (`step run`), ended by `sluice runs finish`")
            }
            print("  code      git \(e.gitCommit ?? "none")\(e.gitDirty == true ? " (uncommitted changes)" : "")")
            print("  binary    \(e.binaryPath ?? "?")  \(e.binaryHash.map { String($0.prefix(23)) } ?? "")")
            print("  swift     \(e.swiftVersion)   sluice \(e.sluiceVersion)")
            if let error = record.error { print("  \(t.paint("error", .red))     \(error)") }
            print("")
            var rows = steps.map { step -> [String] in
                let s = step.stepRun
                let outputs = step.outputs.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.id)" }.joined(
                    separator: " ")
                let note = s.status == .cached ? "from \(s.cachedFrom ?? "?")" : (s.error ?? "")
                var row = [s.stepName, paint(s.status, t), s.duration.map(formatDuration) ?? "-", outputs, note]
                if let (owner, _) = placement {
                    let job = owner.placementProperties.first.flatMap { s.properties[$0] }.map { "\($0)" }
                    let live = queued.first { $0.step == s.stepName }
                    row.insert(live.map { "\($0.id) \($0.state.lowercased())" } ?? job ?? "-", at: 2)
                }
                return row
            }
            var headers = ["STEP", "STATUS", "TIME", "OUTPUTS", "NOTE"]
            if onCluster {
                headers.insert("JOB", at: 2)
                // Steps whose jobs wait in the queue have no record yet.
                for job in queued where !steps.contains(where: { $0.stepRun.stepName == job.step }) {
                    let state = job.state == "PENDING" ? t.paint("pending", .cyan) : paint(StepRunStatus.running, t)
                    rows.append(
                        [
                            job.endsRun ? "(\(job.step))" : job.step, state,
                            "\(job.id) \(job.state.lowercased())", "-", "", job.reason.map { "waiting: \($0)" } ?? "",
                        ])
                }
            }
            print(renderTable(headers, rows, terminal: t))
            for step in steps where !step.metrics.isEmpty || !step.stepRun.stepProperties.isEmpty {
                let properties = step.stepRun.stepProperties.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
                let latest = Dictionary(step.metrics.map { ($0.name, $0.value) }, uniquingKeysWith: { $1 })
                let metrics = latest.sorted { $0.key < $1.key }.map { "\($0.key)=\(String(format: "%.6g", $0.value))" }
                print("  \(step.stepRun.stepName): " + (properties + metrics).joined(separator: "  "))
            }
            if let tracked = try await workspace.stack.tracking.trackedRun(record.id) {
                Self.printTracking(tracked, terminal: t)
            }
            if record.kind == .pipeline { print("\nResolved config: sluice runs show \(record.id) --config") }
        }
    }
}

extension RunsCommand.Show {
    /// A run's tags, note and (for a tracked run) params and latest metrics.
    static func printTracking(_ run: TrackedRun, terminal t: Terminal) {
        let tags = run.tags.filter { !$0.key.hasPrefix("mlflow.") }.sorted { $0.key < $1.key }
        if !tags.isEmpty {
            print("\n\(t.paint("Tags", .bold))  " + tags.map { "\($0.key)=\($0.value)" }.joined(separator: "  "))
        }
        if run.kind == .tracked {
            if !run.params.isEmpty {
                print("\n\(t.paint("Params", .bold))")
                for (key, value) in run.params.sorted(by: { $0.key < $1.key }) { print("  \(key) = \(value)") }
            }
            if !run.metrics.isEmpty {
                print("\n\(t.paint("Metrics", .bold)) (latest values; the dashboard draws each series)")
                for metric in run.metrics {
                    print("  \(metric.key) = \(String(format: "%.6g", metric.value))  (step \(metric.step))")
                }
            }
        }
        if let note = run.note {
            print("\n\(t.paint("Note", .bold))")
            for line in note.split(separator: "\n", omittingEmptySubsequences: false) { print("  \(line)") }
        }
    }
}

func paint(_ status: RunStatus, _ t: Terminal) -> String {
    switch status {
    case .completed: t.paint(status.rawValue, .green)
    case .running: t.paint(status.rawValue, .cyan)
    case .cancelled: t.paint(status.rawValue, .yellow)
    case .failed, .crashed: t.paint(status.rawValue, .red)
    }
}

func paint(_ status: StepRunStatus, _ t: Terminal) -> String {
    switch status {
    case .completed: t.paint(status.rawValue, .green)
    case .cached: t.paint(status.rawValue, .blue)
    case .running: t.paint(status.rawValue, .cyan)
    case .skipped, .cancelled: t.paint(status.rawValue, .yellow)
    case .failed, .crashed: t.paint(status.rawValue, .red)
    }
}

extension RunsCommand {
    /// `step.parameter=value` from `--param`.
    static func condition(_ text: String) throws -> RunParameters.Condition {
        guard let condition = RunParameters.Condition(text) else {
            throw ValidationError("--param needs STEP.PARAMETER=VALUE, like train.rounds=50.")
        }
        return condition
    }

    struct Compare: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Parameters and metrics of runs side by side; rows that differ are marked.",
            discussion: "Example: sluice runs compare run-01a2 run-01a3 run-01a4")
        @Argument(help: "Two or more run IDs (unique prefixes work).") var runs: [String]
        @Flag(help: "Show every parameter, not only those that differ.") var all = false
        @Flag(help: "Print JSON.") var json = false

        struct Column: Encodable {
            var run: String
            var status: String
            var parameters: [String: String]
            var metrics: [String: Double]
        }

        @OptionGroup var stackOption: StackOption

        func run() async throws {
            guard runs.count >= 2 else { throw ValidationError("give at least two runs to compare.") }
            let workspace = try await Workspace.open(create: false, stack: stackOption.name)
            var columns: [Column] = []
            for reference in runs {
                let run = try await workspace.requireRun(reference)
                columns.append(
                    Column(
                        run: run.id.description, status: run.status.rawValue,
                        parameters: try await RunParameters.values(of: run.id, in: workspace.metadata),
                        metrics: try await RunParameters.metrics(of: run.id, in: workspace.metadata)))
            }
            if json { return print(try jsonString(columns)) }
            let t = Terminal.standardOutput
            func differs(_ values: [String?]) -> Bool { Set(values.map { $0 ?? "–" }).count > 1 }
            var rows: [[String]] = [["status", ""] + columns.map(\.status)]
            let parameterKeys = Set(columns.flatMap { $0.parameters.keys }).sorted()
            for key in parameterKeys {
                let values = columns.map { $0.parameters[key] }
                guard all || differs(values) else { continue }
                rows.append([key, differs(values) ? "*" : ""] + values.map { $0 ?? "–" })
            }
            let metricKeys = Set(columns.flatMap { $0.metrics.keys }).sorted()
            for key in metricKeys {
                let values = columns.map { $0.metrics[key].map { String(format: "%.4g", $0) } }
                rows.append([key, differs(values) ? "*" : ""] + values.map { $0 ?? "–" })
            }
            print(renderTable(["", "≠"] + columns.map { String($0.run.prefix(20)) }, rows, terminal: t))
            if !all {
                print("(\(parameterKeys.count) parameters; those equal in every run are hidden: --all shows them)")
            }
        }
    }
}

extension RunsCommand {
    /// `runs wait`: follows a run to its end.
    struct Wait: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Wait for a run to end, showing its steps; exit with how it ended.",
            discussion: """
                Follows a run started anywhere: on this machine, on Slurm (the submitting process may be gone), or \
                by Airflow. Ctrl-C stops waiting; the run goes on. Exit status: 0 completed, 1 failed or crashed, \
                130 cancelled, 2 no such run, 3 --timeout passed first.
                Example: sluice run pipeline.yaml --detach && sluice runs wait RUN --file pipeline.yaml
                """)
        @Argument(help: "The run (ID or unique prefix).") var run: String
        @Option(help: "The YAML pipeline file, for runs of YAML pipelines on Slurm (to end a run whose last job died).")
        var file: String?
        @Option(help: "Give up after this many seconds (exit status 3).") var timeout: Double?
        @OptionGroup var stackOption: StackOption

        func run() async throws {
            let workspace = try await Workspace.open(create: false, stack: stackOption.name)
            let record = try await workspace.requireRun(run)
            let engine = workspace.engine(pipelineFile: file)
            let pipeline = try? await StepCommand.pipeline(of: record, file: file, workspace: workspace)
            let reporter = RunReporter(terminal: .standardError)
            let deadline = timeout.map { ContinuousClock.now + .milliseconds(Int($0 * 1000)) }
            // The stack's orchestrator follows a run it was handed (and finishes one whose last job died); any
            // other run is followed through its records.
            let owner = record.owner.externalOrchestrator == engine.orchestrator.name ? engine.orchestrator : nil
            let follow = Task {
                if let owner {
                    try await owner.follow(
                        record.id, pipeline: pipeline, engine: engine, observer: reporter, cancelsRun: false)
                } else {
                    try await engine.follow(record.id, observer: reporter)
                }
            }
            let result: RunResult
            if let deadline {
                let timer = Task {
                    try await Task.sleep(until: deadline)
                    follow.cancel()
                }
                defer { timer.cancel() }
                do {
                    result = try await follow.value
                } catch is CancellationError {
                    printError("run \(record.id) is still running after \(timeout!) s")
                    throw ExitCode(ExitStatus.timedOut.rawValue)
                }
            } else {
                result = try await follow.value
            }
            await workspace.stack.close()
            RunCommand.printSummary(result, workspace: workspace)
            try RunCommand.requireCompleted(result.run)
        }
    }

    /// `runs cancel`: stops a running run wherever it runs.
    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Cancel a running run: its Slurm jobs (scancel), or the process running it on this machine.",
            discussion: """
                A run on Slurm has its jobs cancelled and is recorded cancelled, steps that never ran among it; \
                a run of this machine is sent Ctrl-C (SIGINT) and recorded cancelled by its own process. Exit \
                status: 0 cancelled, 1 it ended otherwise meanwhile, 2 no such run or it is not running.
                """)
        @Argument(help: "The run (ID or unique prefix).") var run: String
        @Option(help: "The YAML pipeline file, for runs of YAML pipelines on Slurm.") var file: String?
        @OptionGroup var stackOption: StackOption

        func run() async throws {
            let workspace = try await Workspace.open(create: false, stack: stackOption.name)
            let record = try await workspace.requireRun(run)
            guard record.status == .running else {
                throw CLIError(
                    problem: "run \(record.id) is not running: it \(record.status.rawValue).",
                    fix: "list running runs with `sluice runs list --status running`.")
            }
            let ended: Run
            switch record.owner.externalOrchestrator {
            case .some(let scheduler) where Orchestrators.detaching.contains(scheduler):
                let engine = workspace.engine(pipelineFile: file)
                guard engine.orchestrator.name == scheduler else {
                    throw CLIError(
                        problem: "run \(record.id) runs on \(scheduler), but stack '\(workspace.stack.name)' is not a "
                            + "\(scheduler) stack, so its jobs cannot be cancelled from here.",
                        fix:
                            "run `sluice runs cancel \(record.id) --stack STACK` with the \(scheduler) stack it ran on."
                    )
                }
                let pipeline = try await StepCommand.pipeline(of: record, file: file, workspace: workspace)
                guard
                    let cancelled = try await engine.orchestrator.cancel(record.id, pipeline: pipeline, engine: engine)
                else {
                    throw CLIError(
                        problem: "\(scheduler) did not cancel run \(record.id).",
                        fix: "cancel its jobs with the cluster's own commands, then `sluice runs finish \(record.id)`.")
                }
                ended = cancelled
            case .some(let scheduler):
                throw CLIError(
                    problem: "run \(record.id) is run by \(scheduler), which Sluice does not stop.",
                    fix: "stop it in \(scheduler) (mark the DAG run failed), then `sluice runs finish \(record.id)`.")
            case nil:
                guard record.owner.host == ProcessOwner.current.host else {
                    throw CLIError(
                        problem: "run \(record.id) runs on host \(record.owner.host), not this one.",
                        fix: "run `sluice runs cancel \(record.id)` on \(record.owner.host), or press Ctrl-C there.")
                }
                guard !record.owner.isKnownDead, kill(record.owner.pid, SIGINT) == 0 else {
                    throw CLIError(
                        problem: "the process of run \(record.id) (pid \(record.owner.pid)) is gone.",
                        fix: "`sluice runs list` records it crashed; nothing is left to cancel.")
                }
                var latest = record
                let deadline = ContinuousClock.now + .seconds(60)
                while latest.status == .running, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(100))
                    latest = try await workspace.metadata.run(record.id) ?? latest
                }
                ended = latest
            }
            await workspace.stack.close()
            print("run \(ended.id) \(ended.status.rawValue)" + (ended.error.map { ": \($0)" } ?? ""))
            guard ended.status == .cancelled else { throw ExitCode(ExitStatus.failed.rawValue) }
        }
    }
}

extension RunsCommand.List {
    /// `--filter`, `--order-by`, `--deleted`: the tracking store's search, over pipeline and tracked runs alike.
    func search(_ workspace: Workspace) async throws {
        var clauses = try RunSearchFilter(parsing: filter ?? "").clauses
        if let pipeline { clauses.append(.init(.attribute(.pipeline), .equal, .string(pipeline))) }
        if let status {
            clauses.append(.init(.attribute(.status), .equal, .string(status.rawValue)))
        }
        guard parameters.isEmpty else {
            throw ValidationError(
                "--param cannot be combined with --filter: write it in the filter (params.train.rounds = '50').")
        }
        let search = RunSearch(
            filter: RunSearchFilter(clauses: clauses), orderBy: try orderBy.map { try RunOrder(parsing: $0) },
            lifecycle: deleted ? .deleted : .active, maxResults: limit)
        let runs = try await workspace.stack.tracking.searchRuns(search).items
        if json { return print(try jsonString(runs)) }
        guard !runs.isEmpty else {
            return print(deleted ? "No deleted runs." : "No runs match that filter.")
        }
        let t = Terminal.standardOutput
        // The first ordered metric (or, without one, the filter's first) gets a column.
        let shown: String? =
            search.orderBy.lazy.compactMap { order -> String? in
                if case .metric(let key) = order.entity { return key }
                return nil
            }.first
            ?? clauses.lazy.compactMap { clause -> String? in
                if case .metric(let key) = clause.entity { return key }
                return nil
            }.first
        let rows = runs.map { run -> [String] in
            var row = [
                run.id, run.name, run.pipeline, paint(run.status, t), formatDate(run.startedAt),
                formatDuration((run.endedAt ?? Date()).timeIntervalSince(run.startedAt)), run.user, run.kind.rawValue,
            ]
            if let shown {
                row.append(run.metrics.first { $0.key == shown }.map { String(format: "%.6g", $0.value) } ?? "–")
            }
            return row
        }
        var headers = ["RUN", "NAME", "PIPELINE", "STATUS", "STARTED", "DURATION", "USER", "KIND"]
        if let shown { headers.append(shown.uppercased()) }
        print(renderTable(headers, rows, terminal: t))
    }
}

extension RunsCommand {
    /// `sluice runs tag RUN KEY=VALUE… [--remove KEY…]`.
    struct Tag: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set or remove tags on a run (pipeline or tracked).",
            discussion: """
                Tags are searchable: `sluice runs list --filter "tags.team = 'fraud'"`.

                Examples:
                  sluice runs tag run-0193c4 team=fraud reviewed=yes
                  sluice runs tag run-0193c4 --remove reviewed
                """)
        @Argument(help: "A run ID or a unique prefix of one.") var run: String
        @Argument(help: ArgumentHelp("Tags to set.", valueName: "key=value")) var tags: [String] = []
        @Option(name: .customLong("remove"), help: ArgumentHelp("A tag to remove (repeatable).", valueName: "key"))
        var removed: [String] = []
        @OptionGroup var stackOption: StackOption

        func run() async throws {
            let pairs = try tags.map { text -> KeyValue in
                guard let equals = text.firstIndex(of: "="), equals != text.startIndex else {
                    throw ValidationError("write each tag as key=value, not '\(text)'.")
                }
                return KeyValue(String(text[..<equals]), String(text[text.index(after: equals)...]))
            }
            guard !pairs.isEmpty || !removed.isEmpty else {
                throw ValidationError("give tags to set (key=value) or --remove KEY.")
            }
            let workspace = try await Workspace.open(create: false, stack: stackOption.name)
            let record = try await workspace.requireRun(run)
            if !pairs.isEmpty { try await workspace.stack.tracking.log(RunLogBatch(tags: pairs), to: record.id) }
            for key in removed { try await workspace.stack.tracking.deleteTag(key, ofRun: record.id) }
            let tags = try await workspace.stack.tracking.trackedRun(record.id)?.tags ?? [:]
            let shown = tags.filter { !$0.key.hasPrefix("mlflow.") }.sorted { $0.key < $1.key }
            print(
                "\(record.id): "
                    + (shown.isEmpty ? "no tags" : shown.map { "\($0.key)=\($0.value)" }.joined(separator: "  ")))
        }
    }

    /// `sluice runs note RUN TEXT` (or `--file`, or `-` for standard input).
    struct Note: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a Markdown note on a run (shown by `runs show` and the dashboard).",
            discussion: """
                The note is the run's `mlflow.note.content` tag, so MLflow's client and UI see it too. An empty note
                removes it.

                Examples:
                  sluice runs note run-0193c4 "Best so far: **AUC 0.93** on the March data."
                  sluice runs note run-0193c4 --file notes.md
                """)
        @Argument(help: "A run ID or a unique prefix of one.") var run: String
        @Argument(help: "The note, in Markdown ('-' reads standard input).") var text: String?
        @Option(help: "Read the note from this file.") var file: String?
        @OptionGroup var stackOption: StackOption

        func run() async throws {
            let note: String
            if let file {
                do {
                    note = try String(contentsOfFile: file, encoding: .utf8)
                } catch {
                    throw CLIError(
                        problem: "cannot read the note from \(file): \(error.localizedDescription).",
                        fix: "check the path.")
                }
            } else if text == "-" {
                note = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
            } else if let text {
                note = text
            } else {
                throw ValidationError("give the note as an argument, with --file, or '-' to read standard input.")
            }
            let workspace = try await Workspace.open(create: false, stack: stackOption.name)
            let record = try await workspace.requireRun(run)
            if note.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
                if try await workspace.stack.tracking.trackedRun(record.id)?.note != nil {
                    try await workspace.stack.tracking.deleteTag(TrackedRun.noteTag, ofRun: record.id)
                }
                return print("\(record.id): note removed")
            }
            try await workspace.stack.tracking.log(
                RunLogBatch(tags: [KeyValue(TrackedRun.noteTag, note)]), to: record.id)
            print("\(record.id): note saved (\(note.count) characters)")
        }
    }

    /// `sluice runs rename RUN NAME`.
    struct Rename: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Give a run a name (its ID stays).")
        @Argument(help: "A run ID or a unique prefix of one.") var run: String
        @Argument(help: "The new name.") var name: String
        @OptionGroup var stackOption: StackOption

        func run() async throws {
            guard !name.trimmingCharacters(in: .whitespaces).isEmpty else {
                throw ValidationError("give a name that is not empty.")
            }
            let workspace = try await Workspace.open(create: false, stack: stackOption.name)
            let record = try await workspace.requireRun(run)
            _ = try await workspace.stack.tracking.updateTrackedRun(record.id, status: nil, endedAt: nil, name: name)
            print("\(record.id) is now named '\(name)'")
        }
    }

    /// `sluice runs delete RUN…`.
    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete runs: they leave lists and searches and stay restorable.",
            discussion: """
                A deleted run's records stay; `sluice gc` removes its artifacts once the retention period has passed,
                except those a registered model's lineage needs. `sluice runs restore` brings it back before that.
                """)
        @Argument(help: "Run IDs or unique prefixes.") var runs: [String]
        @OptionGroup var stackOption: StackOption

        func run() async throws {
            guard !runs.isEmpty else { throw ValidationError("give the runs to delete.") }
            let workspace = try await Workspace.open(create: false, stack: stackOption.name)
            for reference in runs {
                let record = try await workspace.requireRun(reference)
                guard record.status.isFinal else {
                    throw CLIError(
                        problem: "run \(record.id) is still running.",
                        fix: "cancel it first (`sluice runs cancel \(record.id)`), then delete it.")
                }
                try await workspace.stack.tracking.setRunDeleted(record.id, true)
                print("deleted \(record.id) (restore with `sluice runs restore \(record.id)`)")
            }
        }
    }

    /// `sluice runs restore RUN…`.
    struct Restore: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Bring deleted runs back.")
        @Argument(help: "Run IDs (list deleted ones with `sluice runs list --deleted`).") var runs: [String]
        @OptionGroup var stackOption: StackOption

        func run() async throws {
            guard !runs.isEmpty else { throw ValidationError("give the runs to restore.") }
            let workspace = try await Workspace.open(create: false, stack: stackOption.name)
            for reference in runs {
                let record = try await workspace.requireRun(reference)
                try await workspace.stack.tracking.setRunDeleted(record.id, false)
                print("restored \(record.id)")
            }
        }
    }
}
