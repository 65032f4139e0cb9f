import ArgumentParser
import Foundation
import SluiceCore

extension RunStatus: ExpressibleByArgument {}

/// `sluice runs`: the run history.
struct RunsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runs", abstract: "List and inspect runs.", subcommands: [List.self, Show.self],
        defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List runs, newest first.")
        @Option(help: "Only runs of this pipeline.") var pipeline: String?
        @Option(help: "Only runs with this status.") var status: RunStatus?
        @Option(help: "At most this many runs.") var limit = 20
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let workspace = try Workspace.open(create: false)
            let runs = try await workspace.metadata.runs(RunFilter(pipeline: pipeline, status: status, limit: limit))
            if json { return print(try jsonString(runs)) }
            let t = Terminal.standardOutput
            guard !runs.isEmpty else { return print("No runs yet. Start one with `sluice run`.") }
            let rows = runs.map { run in
                [
                    run.id, run.pipeline, paint(run.status, t), formatDate(run.startedAt), formatDuration(run.duration),
                    run.environment.gitCommit.map {
                        String($0.prefix(8)) + (run.environment.gitDirty == true ? "+" : "")
                    } ?? "-",
                    run.environment.user,
                ]
            }
            print(renderTable(["RUN", "PIPELINE", "STATUS", "STARTED", "DURATION", "GIT", "USER"], rows, terminal: t))
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a run: environment, config, steps, outputs.")
        @Argument(help: "A run ID or a unique prefix of one.") var run: String
        @Flag(help: "Print only the fully resolved run config (YAML).") var config = false
        @Flag(help: "Print JSON.") var json = false

        struct Details: Encodable {
            var run: Run
            var steps: [StepDetails]
        }
        struct StepDetails: Encodable {
            var stepRun: StepRun
            var outputs: [String: ArtifactRecord]
            var metrics: [MetricRecord]
        }

        func run() async throws {
            let workspace = try Workspace.open(create: false)
            let record = try await workspace.requireRun(run)
            if config { return print(record.config, terminator: "") }
            let stepRuns = try await workspace.metadata.stepRuns(ofRun: record.id)
            var steps: [StepDetails] = []
            for stepRun in stepRuns {
                steps.append(
                    StepDetails(
                        stepRun: stepRun, outputs: try await workspace.metadata.outputs(ofStepRun: stepRun.id),
                        metrics: try await workspace.metadata.metrics(ofStepRun: stepRun.id)))
            }
            if json { return print(try jsonString(Details(run: record, steps: steps))) }

            let t = Terminal.standardOutput
            let e = record.environment
            print("\(t.paint("Run", .bold)) \(record.id)  \(paint(record.status, t))")
            print("  pipeline  \(record.pipeline)")
            print("  started   \(formatDate(record.startedAt))   duration \(formatDuration(record.duration))")
            print("  by        \(e.user)@\(e.host)   \(e.os)")
            print("  code      git \(e.gitCommit ?? "none")\(e.gitDirty == true ? " (uncommitted changes)" : "")")
            print("  binary    \(e.binaryPath ?? "?")  \(e.binaryHash.map { String($0.prefix(23)) } ?? "")")
            print("  swift     \(e.swiftVersion)   sluice \(e.sluiceVersion)")
            if let error = record.error { print("  \(t.paint("error", .red))     \(error)") }
            print("")
            let rows = steps.map { step -> [String] in
                let s = step.stepRun
                let outputs = step.outputs.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.id)" }.joined(
                    separator: " ")
                let note = s.status == .cached ? "from \(s.cachedFrom ?? "?")" : (s.error ?? "")
                return [s.stepName, paint(s.status, t), s.duration.map(formatDuration) ?? "-", outputs, note]
            }
            print(renderTable(["STEP", "STATUS", "TIME", "OUTPUTS", "NOTE"], rows, terminal: t))
            for step in steps where !step.metrics.isEmpty || !step.stepRun.properties.isEmpty {
                let properties = step.stepRun.properties.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
                let latest = Dictionary(step.metrics.map { ($0.name, $0.value) }, uniquingKeysWith: { $1 })
                let metrics = latest.sorted { $0.key < $1.key }.map { "\($0.key)=\(String(format: "%.6g", $0.value))" }
                print("  \(step.stepRun.stepName): " + (properties + metrics).joined(separator: "  "))
            }
            print("\nResolved config: sluice runs show \(record.id) --config")
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
