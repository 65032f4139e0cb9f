import Foundation
import Sluice
import SluiceComponents
import SluiceServer
import SluiceTesting
import Synchronization
import Testing

/// The runs of the project in `directory`, oldest first, as `runs list --json` prints them.
private func runs(_ executable: String, in directory: URL) async throws -> [Run] {
    let list = try await CommandProcess.run(executable, ["runs", "list", "--json", "--limit", "500"], in: directory)
    #expect(list.status == 0, "\(list.errors)")
    return try CommandProcess.jsonDecoder.decode([Run].self, from: Data(list.output.utf8)).reversed()
}

/// Waits until `condition` holds for the project's runs, failing after `timeout`.
private func waitForRuns(
    _ executable: String, in directory: URL, timeout: Duration = .seconds(300), process: CommandProcess,
    until condition: ([Run]) -> Bool
) async throws -> [Run] {
    let deadline = ContinuousClock.now + timeout
    while true {
        let current = try await runs(executable, in: directory)
        if condition(current) { return current }
        guard ContinuousClock.now < deadline, process.process.isRunning else {
            Issue.record(
                "runs never reached the expected state: \(current.map { ($0.id, $0.status) }); log:\n\(process.errors)")
            throw CancellationError()
        }
        try await Task.sleep(for: .milliseconds(200))
    }
}

/// Writes `text` into `folder/name` the way data lands: written beside it, then renamed into place.
private func arrive(_ text: String, as name: String, in folder: URL) throws {
    let staged = folder.deletingLastPathComponent().appending(path: ".\(name).partial")
    try Data(text.utf8).write(to: staged)
    #expect(rename(staged.path, folder.appending(path: name).path) == 0)
}

/// Requests to a model server one after another on a thread of its own (blocking sockets must not hold one of the
/// few threads Swift concurrency has on a 2-core machine), until finished.
final class SteadyLoad: Sendable {
    struct Answer: Sendable {
        var sent: Date
        /// When the answer came back: a request sent just before a promotion may be answered after it.
        var received: Date
        var status: Int
        var version: String
    }

    private let stop = Atomic<Bool>(false)
    private let answers = Mutex<[Answer]>([])
    private let done = DispatchSemaphore(value: 0)

    init(port: Int) {
        let thread = Thread { [self] in
            let record =
                #"{"instances":[{"island":"Biscoe","bill_length_mm":47.5,"bill_depth_mm":14.2,"flipper_length_mm":220,"body_mass_g":5200,"sex":"male","year":2008}]}"#
            while !stop.load(ordering: .relaxed) {
                let sent = Date()
                let response = try? LoopbackClient.request(
                    port: port, method: "POST", path: "/invocations", body: record)
                let answer = Answer(
                    sent: sent, received: Date(), status: response?.status ?? -1,
                    version: response?.headers["x-model-version"] ?? "")
                answers.withLock { $0.append(answer) }
                usleep(20_000)
            }
            done.signal()
        }
        thread.start()
    }

    /// Stops the requests and returns every answer, in order.
    func finish() -> [Answer] {
        stop.store(true, ordering: .relaxed)
        done.wait()
        return answers.withLock { $0 }
    }
}

@Suite("sluice schedule")
struct ScheduleCommandTests {
    @Test("a schedule starts runs as it comes due, never two at once, each recorded with its trigger")
    func runsOneAtATime() async throws {
        let directory = try TemporaryDirectory(prefix: "sluice-schedule")
        let gate = directory.path("gate")
        let service = try CommandProcess(
            "FixturePipelines", ["schedule", "crashy", "--cron", "* * * * * *", "--set", "wait.gate=\(gate.path)"],
            in: directory.url)
        try await service.waitForError(containing: "started (schedule: * * * * * *")
        // The schedule keeps coming due while the first run waits at its gate: merged into the next run.
        try await service.waitForError(containing: "a run is still going")
        try await Task.sleep(for: .seconds(1))
        #expect(try await runs("FixturePipelines", in: directory.url).count == 1)

        try Data().write(to: gate)
        let done = try await waitForRuns("FixturePipelines", in: directory.url, process: service) { runs in
            runs.filter { $0.status == .completed }.count >= 3
        }
        service.process.terminate()  // SIGTERM
        #expect(await service.wait() == 0)
        #expect(service.errors.contains("stopped"))
        let all = try await runs("FixturePipelines", in: directory.url)
        #expect(all.count >= done.count)
        for run in all {
            #expect(run.trigger.kind == .schedule, "\(run.id)")
            #expect(run.trigger.detail?.hasPrefix("* * * * * * (due 20") == true, "\(run.trigger)")
        }
        // One at a time: each run starts after the one before it ended.
        for (earlier, later) in zip(all, all.dropFirst()) {
            let end = try #require(earlier.endedAt)
            #expect(later.startedAt >= end, "\(later.id) started before \(earlier.id) ended")
        }
        // Runs after the first reuse its work.
        #expect(service.errors.contains("4 cached"))
    }

    @Test("SIGTERM during a run cancels it (recorded cancelled) and the service exits 0")
    func stopsCleanly() async throws {
        let directory = try TemporaryDirectory(prefix: "sluice-schedule")
        let service = try CommandProcess(
            "FixturePipelines",
            ["schedule", "crashy", "--cron", "* * * * * *", "--set", "wait.gate=\(directory.path("never").path)"],
            in: directory.url)
        try await service.waitForError(containing: "started (schedule:")
        service.process.terminate()
        #expect(await service.wait() == 0)
        #expect(service.errors.contains("stopping: no new runs"))
        let recorded = try await runs("FixturePipelines", in: directory.url)
        #expect(recorded.count == 1)
        #expect(recorded.first?.status == .cancelled)
    }

    @Test("Slurm resources asked for on a stack that runs steps here are noted at start, as `run` notes them")
    func resourcesNote() async throws {
        let directory = try TemporaryDirectory(prefix: "sluice-schedule")
        let service = try CommandProcess(
            "FixturePipelines",
            [
                "schedule", "crashy", "--cron", "0 3 * * *", "--set", "steps.wait.resources.cpus=2",
            ], in: directory.url)
        // Once the schedule is announced, the service handles SIGTERM.
        try await service.waitForError(containing: "next run at")
        service.process.terminate()
        #expect(await service.wait() == 0)
        #expect(service.errors.contains("note: steps.wait.resources asks a Slurm cluster"))
        #expect(service.errors.contains("stack 'local' runs steps in_process on this machine"))
    }

    @Test("a malformed cron expression stops the command at once with status 2 and how to write one")
    func malformed() async throws {
        let directory = try TemporaryDirectory(prefix: "sluice-schedule")
        let result = try await CommandProcess.run(
            "FixturePipelines", ["schedule", "crashy", "--cron", "0 25 * * *"], in: directory.url)
        #expect(result.status == 2)
        #expect(result.errors.contains("the hour field '25' has 25, out of range"))
        #expect(result.errors.contains("To fix:"))
    }
}

@Suite("sluice watch")
struct WatchCommandTests {
    static let examples = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appending(path: "Examples")

    @Test(
        "a burst of files makes one run recording the files; a run that cannot start is logged and watching goes on")
    func burstAndFailure() async throws {
        let directory = try TemporaryDirectory(prefix: "sluice-watch")
        let incoming = directory.path("incoming")
        try FileManager.default.createDirectory(at: incoming, withIntermediateDirectories: true)
        let pipeline = """
            pipeline: arrivals
            steps:
              ingest: {component: ingest_csv, parameters: {paths: [nowhere.csv]}}
              statistics: {component: statistics, inputs: {table: ingest.table}}
            """
        let file = directory.path("arrivals.yaml")
        try pipeline.write(to: file, atomically: true, encoding: .utf8)
        let service = try CommandProcess(
            "sluice", ["watch", "arrivals.yaml", "--path", "incoming", "--settle", "2s", "--poll", "100ms"],
            in: directory.url)
        try await service.waitForError(containing: "watching incoming")
        // Three files land together: polls may see them one by one, but none is quiet for the settle time.
        for (index, name) in ["a.csv", "b.csv", "c.csv"].enumerated() {
            try arrive("x,y\n\(index),\(index * 2)\n", as: name, in: incoming)
        }
        let first = try await waitForRuns("sluice", in: directory.url, process: service) {
            $0.count == 1 && $0[0].status.isFinal
        }
        #expect(first[0].status == .completed, "\(service.errors)")
        #expect(
            first[0].trigger
                == RunTrigger(
                    kind: .watch, detail: "incoming", files: ["incoming/a.csv", "incoming/b.csv", "incoming/c.csv"]))

        // The pipeline file breaks: the arrival is logged as not run, and the watch goes on.
        try "pipeline: [".write(to: file, atomically: true, encoding: .utf8)
        try arrive("x,y\n3,6\n", as: "d.csv", in: incoming)
        try await service.waitForError(containing: "could not start a run (watch: incoming")
        #expect(service.process.isRunning)
        try pipeline.write(to: file, atomically: true, encoding: .utf8)
        try arrive("x,y\n4,8\n", as: "e.csv", in: incoming)
        let second = try await waitForRuns("sluice", in: directory.url, process: service) {
            $0.count == 2 && $0[1].status.isFinal
        }
        #expect(second[1].status == .completed)
        #expect(second[1].trigger.files == ["incoming/e.csv"])
        // The folder is the dataset: every file in it is read.
        let shown = try await CommandProcess.run("sluice", ["runs", "show", second[1].id], in: directory.url)
        #expect(shown.output.contains("trigger   watch: incoming (1 file: e.csv)"), "\(shown.output)")
        let ingest = try await CommandProcess.run(
            "sluice", ["artifacts", "list", "--run", second[1].id, "--json"], in: directory.url)
        #expect(ingest.output.contains(#""files" : 5"#) || ingest.output.contains(#""files":5"#), "\(ingest.output)")

        service.process.terminate()
        #expect(await service.wait() == 0)
    }

    @Test(
        "three data arrivals: the first trains and promotes, a drifted one stops at validation, a good one is blessed and promoted, while serving never fails"
    )
    func threeArrivals() async throws {
        let directory = try TemporaryDirectory(prefix: "sluice-arrivals")
        let incoming = directory.path("incoming")
        try FileManager.default.createDirectory(at: incoming, withIntermediateDirectories: true)
        let yaml = try String(contentsOf: Self.examples.appending(path: "penguins.yaml"), encoding: .utf8)
            .replacingOccurrences(of: "promote: first", with: "promote: when_blessed")
        try yaml.write(to: directory.path("penguins.yaml"), atomically: true, encoding: .utf8)

        let lines = DemoData.penguinsCSV.split(separator: "\n").map(String.init)
        let header = lines[0]
        let rows = Array(lines.dropFirst())
        // Day 1: the measurements as published. Day 2: flipper length in tenths of a millimetre and a third of the
        // rows on an island never seen. Day 3: new measurements of the same kind: each length 0.1 mm nearer the
        // middle of its range (flipper 1 mm), each mass 5 g nearer, so no value leaves the range day 1 was trained on.
        func edited(_ edit: (Int, inout [String]) -> Void) -> String {
            ([header]
                + rows.enumerated().map { index, row in
                    var fields = row.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
                    edit(index, &fields)
                    return fields.joined(separator: ",")
                }).joined(separator: "\n")
        }
        let day1 = ([header] + rows).joined(separator: "\n")
        let day2 = edited { index, fields in
            if let millimetres = Int(fields[4]) { fields[4] = String(millimetres * 10) }
            if index % 3 == 0 { fields[1] = "Anvers" }
        }
        let middles = (2...5).map { column -> Double in
            let values = rows.compactMap { Double($0.split(separator: ",", omittingEmptySubsequences: false)[column]) }
            return (values.min()! + values.max()!) / 2
        }
        let day3 = edited { _, fields in
            for column in 2...5 {
                guard let value = Double(fields[column]) else { continue }
                let step = column == 5 ? 5.0 : (column == 4 ? 1.0 : 0.1)
                let moved = value < middles[column - 2] ? value + step : value - step
                fields[column] = column >= 4 ? String(Int(moved)) : String(format: "%.1f", moved)
            }
        }

        let watch = try CommandProcess(
            "sluice",
            [
                "watch", "penguins.yaml", "--path", "incoming", "--only-changed", "--settle", "500ms", "--poll",
                "100ms", "--set", "train.rounds=30", "--set", "train.max_depth=3",
            ], in: directory.url)
        try await watch.waitForError(containing: "watching incoming")
        try arrive(day1, as: "day1.csv", in: incoming)
        let first = try await waitForRuns("sluice", in: directory.url, process: watch) {
            $0.count == 1 && $0[0].status.isFinal
        }
        #expect(first[0].status == .completed, "\(watch.errors)")

        // A server follows the production stage from now on, under steady load.
        let server = try CommandProcess(
            "sluice", ["serve", "penguins@production", "--port", "0", "--poll-milliseconds", "100", "--no-access-log"],
            in: directory.url)
        let port = try await server.servingPort()
        let load = SteadyLoad(port: port)

        try arrive(day2, as: "day2.csv", in: incoming)
        let second = try await waitForRuns("sluice", in: directory.url, process: watch) {
            $0.count == 2 && $0[1].status.isFinal
        }
        #expect(second[1].status == .failed)
        let shown = try await CommandProcess.run("sluice", ["runs", "show", second[1].id], in: directory.url)
        #expect(shown.output.contains("validate") && shown.output.contains("skipped"), "\(shown.output)")
        #expect(watch.errors.contains("flipper_length_mm: [drift]"), "\(watch.errors)")
        #expect(watch.errors.contains("island: [unseen_categories]"), "\(watch.errors)")
        #expect(watch.errors.contains("what penguins@1 (dataset version"), "\(watch.errors)")

        try arrive(day3, as: "day3.csv", in: incoming)
        let third = try await waitForRuns("sluice", in: directory.url, process: watch) {
            $0.count == 3 && $0[2].status.isFinal
        }
        #expect(third[2].status == .completed, "\(watch.errors)")
        try await Task.sleep(for: .seconds(1))
        let answers = load.finish()

        struct History: Decodable {
            struct Change: Decodable {
                var version: Int
                var to: String
                var at: Date
                var reason: String
            }
            var stageChanges: [Change]
        }
        let history = try CommandProcess.jsonDecoder.decode(
            History.self,
            from: Data(
                try await CommandProcess.run("sluice", ["models", "show", "penguins", "--json"], in: directory.url)
                    .output.utf8))
        let promotions = history.stageChanges.filter { $0.to == "production" }
        #expect(promotions.map(\.version) == [1, 2])
        #expect(promotions.last?.reason.contains("run \(third[2].id)") == true)
        let promoted = try #require(promotions.last?.at)

        // Every request answered; penguins@1 until the promotion, penguins@2 from just after it, one switch.
        #expect(answers.count > 20)
        #expect(answers.allSatisfy { $0.status == 200 }, "\(answers.filter { $0.status != 200 }.prefix(3))")
        // Answered before the promotion was recorded: the old version (one sent before it may be answered after it
        // on a loaded machine, by either).
        #expect(answers.filter { $0.received < promoted }.allSatisfy { $0.version == "penguins@1" })
        #expect(answers.filter { $0.sent > promoted.addingTimeInterval(1) }.allSatisfy { $0.version == "penguins@2" })
        #expect(answers.contains { $0.version == "penguins@2" })
        let switches = zip(answers, answers.dropFirst()).filter { $0.version != $1.version }
        #expect(switches.count == 1)

        // Each run says which file started it.
        #expect(third.map(\.trigger.files) == [["incoming/day1.csv"], ["incoming/day2.csv"], ["incoming/day3.csv"]])

        server.process.terminate()
        watch.process.terminate()
        #expect(await server.wait() == 0)
        #expect(await watch.wait() == 0)
    }
}
