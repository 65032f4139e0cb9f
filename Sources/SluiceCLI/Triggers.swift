// Over 400 lines: `schedule` and `watch` share their service loop, trigger keys and reporting.
import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import SluiceComponents
import SluiceCore
import Synchronization

/// `sluice schedule PIPELINE --cron EXPR`: a long-running service that runs the pipeline whenever the schedule
/// comes due.
struct ScheduleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schedule",
        abstract: "Run a pipeline on a cron schedule (a long-running service; stops cleanly on SIGTERM or Ctrl-C).",
        discussion: """
            Each run is recorded with its trigger (the expression and the time it came due). Never two runs at \
            once: a time that comes due while a run is going starts one more run when it ends (--allow-overlap to \
            start it at once), and a run of the same pipeline started elsewhere is waited for. A run that cannot \
            start (a broken pipeline file, an unreachable store) is logged and the schedule keeps going. On \
            SIGTERM or Ctrl-C the run in progress is cancelled (recorded cancelled; the next run resumes from the \
            cache) and the service exits 0.
            Examples:
              sluice schedule penguins.yaml --cron "0 3 * * *"          (every day at 03:00, local time)
              sluice schedule prices --cron "*/15 8-18 * * mon-fri" --utc
              sluice schedule penguins.yaml --cron @hourly --set train.rounds=80
            """)

    @Argument(help: "The pipeline to run, or a YAML pipeline file (optional when the executable has only one).")
    var pipeline: String?
    @Option(
        help: ArgumentHelp(
            "When to run: minute hour day-of-month month day-of-week (a leading seconds field is also read), or @hourly, @daily, @weekly, @monthly, @yearly.",
            valueName: "expression"))
    var cron: String
    @Flag(help: "Read the schedule in UTC instead of this machine's time zone.") var utc = false
    @OptionGroup var runOptions: TriggeredRunOptions
    @OptionGroup var stackOption: StackOption

    func run() async throws {
        let schedule = try CronSchedule(cron, timeZone: utc ? TimeZone(identifier: "UTC")! : .current)
        let runner = try await TriggeredRunner.open(
            pipeline: pipeline, options: runOptions, stack: stackOption.name, ingest: nil)
        let log = runner.log
        let producer: TriggerService.Producer = { fire in
            var after = Date()
            let zone = schedule.timeZone.identifier
            guard let first = schedule.next(after: after) else { return }
            log.say("schedule \"\(schedule.expression)\" (\(zone)): next run at \(TriggerLog.stamp(first))")
            while true {
                guard let due = schedule.next(after: after) else { return }
                while Date() < due {
                    try await Task.sleep(for: .seconds(min(30, max(0.001, due.timeIntervalSinceNow))))
                }
                // A due time missed while the machine slept starts one run, not one per missed time.
                after = max(due, Date())
                fire(RunTrigger(kind: .schedule, detail: "\(schedule.expression) (due \(TriggerLog.stamp(due)))"))
            }
        }
        try await TriggerService(runner: runner, produce: producer, allowOverlap: runOptions.allowOverlap).start()
    }
}

/// `sluice watch PIPELINE --path DIR`: a long-running service that runs the pipeline on the data when files
/// arrive or change in a folder.
struct WatchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch",
        abstract: "Run a pipeline whenever data files arrive or change in a folder (a long-running service).",
        discussion: """
            Polls the folder for .csv files (at any depth; new files, and files whose size, time or inode changed) \
            and, once no file has changed for the settle time, starts one run for the whole burst. The pipeline's \
            CSV ingest step reads the folder (or, with --only-changed, just the files of the burst), so each \
            burst is a new dataset version that the pipeline validates against what the production model was \
            trained on. Files present when the watch starts count as arrived (their run comes from the cache when \
            nothing changed since) unless --skip-existing. Removing files starts no run. Never two runs at once: \
            files that arrive during a run start one more run when it ends (--allow-overlap to start it at once). \
            Each run records which files triggered it. A run that cannot start is logged and the watch keeps \
            going. SIGTERM or Ctrl-C cancels the run in progress (recorded cancelled) and exits 0.
            Examples:
              sluice watch penguins.yaml --path data/incoming
              sluice watch penguins.yaml --path data/incoming --only-changed --settle 30s
              sluice watch prices --path /shared/prices --step load --poll 10s
            """)

    @Argument(help: "The pipeline to run, or a YAML pipeline file (optional when the executable has only one).")
    var pipeline: String?
    @Option(help: "The folder to watch.") var path: String
    @Option(help: "How long the folder must be quiet before a run starts: 500ms, 5s, 2m.") var settle = "5s"
    @Option(help: "How often to look at the folder.") var poll = "1s"
    @Option(help: "The CSV ingest step that reads the folder (default: the pipeline's only one).")
    var step: String?
    @Flag(help: "Ingest only the files that arrived or changed in the burst, not the whole folder.")
    var onlyChanged = false
    @Flag(help: "Do not count the files already in the folder as arrived.") var skipExisting = false
    @OptionGroup var runOptions: TriggeredRunOptions
    @OptionGroup var stackOption: StackOption

    func run() async throws {
        let settle = try parseDuration(self.settle, option: "--settle")
        let poll = try parseDuration(self.poll, option: "--poll")
        guard poll > .zero else { throw ValidationError("--poll must be more than 0.") }
        let folder = path
        // The folder must exist now; one that goes away later is waited for.
        let existing = try FolderSnapshot(of: folder)
        let initial = skipExisting ? existing : FolderSnapshot(empty: folder)
        let (settleText, pollText) = (self.settle, self.poll)
        let runner = try await TriggeredRunner.open(
            pipeline: pipeline, options: runOptions, stack: stackOption.name,
            ingest: IngestOverride(step: step, folder: folder, onlyChanged: onlyChanged))
        let log = runner.log
        let workspace = runner.workspace
        let producer: TriggerService.Producer = { fire in
            var known = initial
            log.say(
                "watching \(folder) for .csv files (settle \(settleText), poll \(pollText)); "
                    + "pipeline '\(runner.pipelineName)', ingest step '\(runner.ingestStep ?? "-")'")
            let clock = ContinuousClock()
            var burst = Set<String>()
            var lastChange: ContinuousClock.Instant?
            var missing = false
            while true {
                do {
                    let now = try FolderSnapshot(of: folder)
                    if missing { log.say("\(folder) is back") }
                    missing = false
                    let changes = now.changes(since: known)
                    known = now
                    if !changes.isEmpty {
                        if burst.isEmpty && !changes.changed.isEmpty {
                            log.say(
                                "noticed \(Self.names(changes.changed)); starting a run once the folder is quiet "
                                    + "for \(settleText)")
                        }
                        if !changes.removed.isEmpty {
                            log.say("removed \(Self.names(changes.removed)) (removals alone start no run)")
                        }
                        burst.formUnion(changes.changed)
                        lastChange = clock.now
                    }
                } catch {
                    if !missing { log.say("cannot read \(folder): \(error); still watching") }
                    missing = true
                }
                if let last = lastChange, clock.now - last >= settle {
                    if !burst.isEmpty {
                        // Files removed again before the burst settled are not part of it.
                        let files = burst.filter { known.files[$0] != nil }.sorted()
                        if !files.isEmpty {
                            fire(
                                RunTrigger(
                                    kind: .watch, detail: workspace.display(folder),
                                    files: files.map { workspace.display($0) }))
                        }
                    }
                    burst = []
                    lastChange = nil
                }
                try await Task.sleep(for: poll)
            }
        }
        try await TriggerService(runner: runner, produce: producer, allowOverlap: runOptions.allowOverlap).start()
    }

    private static func names(_ paths: [String]) -> String {
        let shown = paths.prefix(3).map { ($0 as NSString).lastPathComponent }.joined(separator: ", ")
        return paths.count > 3 ? "\(shown) and \(paths.count - 3) more" : shown
    }
}

/// Run-config options shared by the trigger commands.
struct TriggeredRunOptions: ParsableArguments {
    @Option(name: .shortAndLong, help: "A YAML run config (not with a YAML pipeline, which is its own run config).")
    var config: String?
    @Option(
        name: .customLong("set"),
        help: ArgumentHelp("Override a setting for every run: STEP.PARAM=VALUE, seed=N…", valueName: "key=value"))
    var overrides: [String] = []
    @Flag(help: "Start a run for every trigger at once, even while another run of the pipeline is going.")
    var allowOverlap = false
}

/// Where a watch points the pipeline's CSV ingest step.
struct IngestOverride: Sendable {
    /// The step named with `--step`, or nil for the pipeline's only CSV ingest step.
    var step: String?
    var folder: String
    var onlyChanged: Bool
}

/// Runs the pipeline once per trigger, built afresh each time (so validation and promotion compare with the
/// registry as it is then); never throws: what fails is logged, and the service keeps going.
struct TriggeredRunner: Sendable {
    let request: PipelineRequest
    let workspace: Workspace
    let log: TriggerLog
    let ingest: IngestOverride?
    let pipelineName: String
    let ingestStep: String?
    let allowOverlap: Bool

    /// Opens the project's stack and checks the pipeline builds (and has the ingest step to point at the folder), so
    /// a mistake stops the command at start (exit status 2) instead of being logged at every trigger.
    static func open(
        pipeline: String?, options: TriggeredRunOptions, stack: String?, ingest: IngestOverride?
    ) async throws -> TriggeredRunner {
        let request = PipelineRequest(pipeline: pipeline, configPath: options.config, overrides: options.overrides)
        let (workspace, built, config) = try await request.open(stack: stack)
        if let note = RunCommand.resourcesNote(config, stack: workspace.stack) { printError(note) }
        var ingestStep: String?
        if let ingest {
            let ingests = built.stepNames.filter { built.stepKinds[$0] == IngestKind.name }
            if let named = ingest.step {
                guard built.stepNames.contains(named) else {
                    throw CLIError(
                        problem: "pipeline '\(built.name)' has no step named '\(named)'.",
                        fix: "name one of its steps with --step: \(built.stepNames.joined(separator: ", ")).")
                }
                ingestStep = named
            } else {
                guard ingests.count == 1 else {
                    throw CLIError(
                        problem: ingests.isEmpty
                            ? "pipeline '\(built.name)' has no CSV ingest step to point at \(ingest.folder)."
                            : "pipeline '\(built.name)' has several CSV ingest steps (\(ingests.joined(separator: ", "))).",
                        fix: ingests.isEmpty
                            ? "watch a pipeline whose data comes from an ingest_csv step, or name the step with --step."
                            : "say which one reads the watched folder with --step.")
                }
                ingestStep = ingests[0]
            }
        }
        // Not resolved here: the data it reads may not have arrived yet.
        return TriggeredRunner(
            request: request, workspace: workspace, log: TriggerLog(), ingest: ingest, pipelineName: built.name,
            ingestStep: ingestStep, allowOverlap: options.allowOverlap)
    }

    func engine() -> RunEngine { workspace.engine(pipelineFile: request.yamlFile) }

    /// The run config with the ingest step reading `paths`.
    func config(_ config: RunConfig, paths: [String]?) throws -> RunConfig {
        guard let ingestStep, let paths else { return config }
        var config = config
        let list = String(decoding: try JSONEncoder().encode(paths), as: UTF8.self)
        try config.apply(overrides: ["\(ingestStep).paths=\(list)"])
        return config
    }

    /// Runs the pipeline for `trigger` and logs how it ended.
    func run(_ trigger: RunTrigger) async {
        do {
            let (yaml, loaded) = try request.load()
            let pipeline = try await request.build(yaml, config: loaded, workspace: workspace)
            let paths = ingest.map { $0.onlyChanged ? trigger.files : [$0.folder] }
            let engine = engine()
            let resolved = try engine.resolve(pipeline, config: try config(loaded, paths: paths))
            if !allowOverlap { try await waitForOtherRuns(of: pipeline.name) }
            let result = try await engine.run(resolved, trigger: trigger, observer: TriggerLog.RunStart(log: log))
            let run = result.run
            var line = "run \(run.id) \(run.status.rawValue) in \(formatDuration(run.duration)): "
            line += RunCommand.stepCounts(result)
            if run.status != .completed, let error = run.error {
                // The whole report (a validation names every column and its distance), indented under the line.
                line += "; " + error.split(separator: "\n").joined(separator: "\n    ")
            }
            log.say(line)
        } catch is CancellationError {
            log.say("stopped before the run started")
        } catch {
            log.say(
                "could not start a run (\(trigger.summary)): \(error); still \(trigger.kind == .watch ? "watching" : "scheduled")"
            )
        }
    }

    /// Waits while a run of the pipeline started elsewhere (another terminal, another machine) is going.
    private func waitForOtherRuns(of pipeline: String) async throws {
        var announced: String?
        while let other = try await workspace.metadata.runs(RunFilter(pipeline: pipeline, status: .running, limit: 1))
            .first
        {
            if announced != other.id {
                log.say(
                    "run \(other.id) of '\(pipeline)' is going (pid \(other.owner.pid) on \(other.owner.host)); "
                        + "waiting for it to end")
                announced = other.id
            }
            try await Task.sleep(for: .seconds(1))
        }
    }
}

/// The step kind of the built-in CSV ingest, as pipelines record it (derived from the type, so a rename follows).
enum IngestKind {
    static let name = String(describing: IngestCSV.self)
}

/// A trigger's log: time-stamped lines on standard error, as a service manager (systemd, a container runtime)
/// collects them.
struct TriggerLog: Sendable {
    func say(_ message: String) {
        printError("\(Self.stamp(Date())) \(message)")
    }

    /// A time as `2026-12-03T03:00:00Z`.
    static func stamp(_ date: Date) -> String {
        date.formatted(.iso8601)
    }

    /// Logs each run's start with its ID and trigger.
    struct RunStart: RunObserver {
        let log: TriggerLog
        func runStarted(_ run: Run, steps: [String]) {
            log.say("run \(run.id) started (\(run.trigger.summary))")
        }
    }
}

/// The long-running service behind `schedule` and `watch`: a producer fires triggers, and runs start one at a
/// time (a trigger that fires during a run is merged into the next one) unless overlap is allowed. Stops on
/// SIGTERM or SIGINT through swift-service-lifecycle, cancelling the run in progress.
struct TriggerService: Service {
    /// Watches for its trigger and calls `fire` each time; runs until cancelled.
    typealias Producer = @Sendable (_ fire: @escaping @Sendable (RunTrigger) -> Void) async throws -> Void

    let runner: TriggeredRunner
    let produce: Producer
    let allowOverlap: Bool

    /// Runs the service in a group that shuts it down gracefully on SIGTERM and SIGINT.
    func start() async throws {
        var logger = Logger(label: "sluice.trigger")
        logger.logLevel = .warning
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [.init(service: self, successTerminationBehavior: .gracefullyShutdownGroup)],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        runner.log.say("stopped")
    }

    func run() async throws {
        let log = runner.log
        try await withGracefulShutdownHandler {
            do {
                try await cancelWhenGracefulShutdown { try await loop() }
            } catch is CancellationError {
                // Shutting down: the producer's sleep and the run in progress were cancelled, as asked.
            }
        } onGracefulShutdown: {
            log.say("stopping: no new runs; a run in progress is cancelled (the next run resumes from the cache)")
        }
    }

    private func loop() async throws {
        let pending = PendingTrigger()
        let (wakeups, wake) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let log = runner.log
        let allowOverlap = self.allowOverlap
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                defer { wake.finish() }
                try await produce { trigger in
                    if pending.add(trigger) && !allowOverlap {
                        log.say("a run is still going: \(trigger.summary) starts the next run when it ends")
                    }
                    wake.yield()
                }
            }
            for await _ in wakeups {
                // A stream finished by cancellation still hands out what it buffered: start nothing after shutdown.
                guard !Task.isCancelled, let trigger = pending.take() else { continue }
                if allowOverlap {
                    group.addTask {
                        await runner.run(trigger)
                        pending.finished()
                    }
                } else {
                    await runner.run(trigger)
                    pending.finished()
                }
            }
            try await group.waitForAll()
        }
    }
}

/// The trigger waiting to start the next run: triggers that fire while a run is going merge into one (the files
/// of every burst; the latest due time).
final class PendingTrigger: Sendable {
    private let state = Mutex<(next: RunTrigger?, running: Int)>((nil, 0))

    /// Adds `trigger`; returns whether a run is going (so it waits).
    func add(_ trigger: RunTrigger) -> Bool {
        state.withLock { state in
            if var next = state.next {
                next.files = Array(Set(next.files).union(trigger.files)).sorted()
                next.detail = trigger.detail
                state.next = next
            } else {
                state.next = trigger
            }
            return state.running > 0
        }
    }

    /// The merged trigger to run now, counted as running.
    func take() -> RunTrigger? {
        state.withLock { state in
            guard let next = state.next else { return nil }
            state.next = nil
            state.running += 1
            return next
        }
    }

    func finished() {
        state.withLock { $0.running -= 1 }
    }
}

/// Reads `500ms`, `5s`, `2m`, `1h`.
func parseDuration(_ text: String, option: String) throws -> Duration {
    let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
    for (unit, seconds) in units where text.hasSuffix(unit) {
        if let value = Double(text.dropLast(unit.count)), value >= 0, value.isFinite {
            return .milliseconds(Int64((value * seconds * 1000).rounded()))
        }
    }
    throw ValidationError("\(option) \(text): write a duration like 500ms, 5s, 2m or 1h.")
}
