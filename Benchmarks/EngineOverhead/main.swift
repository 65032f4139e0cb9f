// Measures the run engine's own overhead: trivial steps, the real embedded stores (SQLite + local files),
// full environment capture. Prints medians; build in release:
//
//   swift run -c release EngineOverhead            # in-process figures and a whole-process cached run
//   swift run -c release EngineOverhead --quick    # fewer repetitions
//   swift run -c release EngineOverhead --lengths 10,100   # only these chains (and the fan-out)
//   swift run -c release EngineOverhead --postgres postgres://USER:PASSWORD@127.0.0.1:5433/DB
//                                   # the same on PostgreSQL: a fresh database per repetition (the role needs
//                                   # CREATEDB); Benchmarks/engine_overhead_postgres.sh starts a local server
//   swift run -c release EngineOverhead --process  # the process orchestrator: every fresh step a child process
//                                   # (`EngineOverhead cli step run …`); combines with --postgres
//   swift run -c release EngineOverhead --container IMAGE   # the process orchestrator with every step in a podman
//                                   # container of IMAGE (`EngineOverhead cli export container -o DIR --build
//                                   # --tag IMAGE` makes one); chains of 1, 10 and 100
//   swift run -c release EngineOverhead --slurm    # the slurm orchestrator on the cluster SLURM_CONF names: chains
//                                   # of 1, 10 and 50 steps, submission to completion, beside a bare chain of
//                                   # `sbatch --wrap true` jobs with the same dependencies; combines with --postgres
import Foundation
import Sluice
import SluiceOrchestrators
import SluiceStorePostgres

/// A chain of `length` steps, each adding one to its input.
func chain(_ length: Int) -> Pipeline {
    Pipeline("chain\(length)") { p in
        var last = p.step("s0", version: 1) { _ in 0 }
        for index in 1..<length {
            last = p.step("s\(index)", version: 1, last) { value, _ in value + 1 }
        }
    }
}

/// One source, `width` parallel steps, one step that reads them all back through a closure chain.
func fan(_ width: Int) -> Pipeline {
    Pipeline("fan\(width)") { p in
        let source = p.step("source", version: 1) { _ in 1 }
        var joined = p.step("join0", version: 1) { _ in 0 }
        for index in 0..<width {
            let branch = p.step("branch\(index)", version: 1, source) { value, _ in value + index }
            joined = p.step("join\(index + 1)", version: 1, joined, branch) { total, value, _ in total + value }
        }
    }
}

/// `--lengths 10,100` runs only those chains (a profile of one length).
let lengths =
    CommandLine.arguments.firstIndex(of: "--lengths").map {
        CommandLine.arguments[$0 + 1].split(separator: ",").compactMap { Int($0) }
    } ?? (CommandLine.arguments.contains("--container") ? [1, 10, 100] : [1, 10, 100, 1000])

let allPipelines: [(name: String, build: () -> Pipeline)] =
    lengths.map { length in ("chain\(length)", { chain(length) }) } + [
        ("chain50", { chain(50) }), ("fan100", { fan(100) }),
    ]
if let mode = CommandLine.arguments.dropFirst().first, mode == "cli" || mode.hasPrefix("cli-") {
    // The command line of this executable: the whole-process run below, and the step runs of --process. A step
    // process (`cli-NAME`) builds only the pipeline it runs, as a user's pipeline executable would.
    let only = mode.hasPrefix("cli-") ? String(mode.dropFirst(4)) : nil
    let pipelines = allPipelines.filter { only == nil || $0.name == only }.map { $0.build() }
    await Sluice.main(pipelines: pipelines, arguments: Array(CommandLine.arguments.dropFirst(2)))
}

let quick = CommandLine.arguments.contains("--quick")
let postgres = CommandLine.arguments.firstIndex(of: "--postgres").map { CommandLine.arguments[$0 + 1] }
let processOrchestrator = CommandLine.arguments.contains("--process")
let slurmOrchestrator = CommandLine.arguments.contains("--slurm")
let containerImage = CommandLine.arguments.firstIndex(of: "--container").map { CommandLine.arguments[$0 + 1] }
let repetitions = processOrchestrator || containerImage != nil ? (quick ? 3 : 5) : (quick ? 5 : 15)

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.count % 2 == 1
        ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

/// A fresh project directory with a fresh metadata store (the embedded SQLite file, or a new PostgreSQL database),
/// opened through its stack as `sluice run` opens it.
func engine(in directory: URL, pipeline: String = "") async throws -> RunEngine {
    var settings = StackSettings()
    if let postgres {
        let name = "sluice_bench_\(UInt32.random(in: 0...UInt32.max))"
        settings.metadataStore = try await PostgresDatabases.create(name, on: postgres)
        settings.passwordEnv = "SLUICE_BENCH_PASSWORD"
        setenv("SLUICE_BENCH_PASSWORD", try PostgresURL(postgres).password ?? "", 1)
    }
    if processOrchestrator { settings.orchestrator = "process" }
    if slurmOrchestrator { settings.orchestrator = "slurm" }
    if let containerImage {
        settings.orchestrator = "process"
        settings.container = containerImage
    }
    let project = try Project.create(at: directory, settings: settings)
    let stack = try await Stack.open(project: project)
    var engine = stack.engine(environment: {
        await RunEnvironment.capture(
            gitDirectory: directory, cacheDirectory: project.directory.appending(path: "cache"))
    })
    // Step processes run this benchmark's own `cli-PIPELINE` command (in a container: the image's entry point, this
    // executable, with the same command); podman and the image are found when a run starts.
    engine.stepCommand.executable = [StepCommandLine.currentExecutable, "cli-\(pipeline)"]
    if var slurm = engine.orchestrator as? SlurmOrchestrator {
        slurm.poll = .milliseconds(100)
        engine.orchestrator = slurm
    }
    return engine
}

func seconds(_ body: () async throws -> Void) async rethrows -> Double {
    let clock = ContinuousClock()
    let start = clock.now
    try await body()
    let elapsed = clock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
}

/// Median wall time of a fresh run (new store) and of a fully cached second run, in seconds.
func measure(_ pipeline: Pipeline, steps: Int) async throws -> (fresh: Double, cached: Double) {
    var fresh: [Double] = []
    var cached: [Double] = []
    let root = FileManager.default.temporaryDirectory.appending(path: "sluice-bench-\(UUID().uuidString.prefix(6))")
    defer { try? FileManager.default.removeItem(at: root) }
    for repetition in 0..<repetitions {
        let directory = root.appending(path: "\(repetition)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let engine = try await engine(in: directory, pipeline: pipeline.name)
        let resolved = try engine.resolve(pipeline, config: RunConfig())
        var status = RunStatus.running
        fresh.append(try await seconds { status = try await engine.run(resolved).run.status })
        precondition(status == .completed)
        var cachedCount = 0
        cached.append(
            try await seconds {
                cachedCount = try await engine.run(resolved).stepRuns.filter { $0.status == .cached }.count
            })
        precondition(cachedCount == steps, "expected a fully cached second run")
    }
    return (median(fresh), median(cached))
}

if slurmOrchestrator {
    try await slurmBenchmark()
    exit(0)
}

/// Runs a command to its end; returns its standard output.
func shell(_ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    precondition(process.terminationStatus == 0, "\(arguments.joined(separator: " ")) failed")
    return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
}

/// Chains on Slurm: a Sluice run (submission, every step a job, to the run recorded completed) beside a bare chain
/// of `sbatch --wrap true` jobs with the same dependencies (submission to the last job's end), in the same run.
func slurmBenchmark() async throws {
    let reps = quick ? 1 : 3
    print("Sluice on Slurm — \(ProcessInfo.processInfo.activeProcessorCount) cores, \(reps) repetitions, medians")
    print("cluster: SLURM_CONF=\(ProcessInfo.processInfo.environment["SLURM_CONF"] ?? "(default)")")
    print(
        "stores: \(postgres.map { "PostgreSQL at \(PostgresURL.redacting($0))" } ?? "SQLite") + local artifact store; "
            + "followed every 100 ms\n")
    print("steps   bare sbatch chain   per step    Sluice on Slurm   per step    ratio")
    let root = FileManager.default.temporaryDirectory.appending(
        path: "sluice-bench-slurm-\(UUID().uuidString.prefix(6))")
    defer { try? FileManager.default.removeItem(at: root) }
    for length in [1, 10, 50] {
        var bare: [Double] = []
        var ours: [Double] = []
        for repetition in 0..<reps {
            bare.append(
                try await seconds {
                    var previous: String?
                    for _ in 0..<length {
                        var arguments = ["sbatch", "--parsable", "--job-name=bench-bare", "--output=/dev/null"]
                        if let previous {
                            arguments += ["--dependency=afterok:\(previous)", "--kill-on-invalid-dep=yes"]
                        }
                        previous = try shell(arguments + ["--wrap", "true"])
                    }
                    while !(try shell(["squeue", "-h", "--name=bench-bare", "-o", "%i"])).isEmpty {
                        try await Task.sleep(for: .milliseconds(100))
                    }
                })
            let directory = root.appending(path: "\(length)-\(repetition)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let pipeline = chain(length)
            let engine = try await engine(in: directory, pipeline: pipeline.name)
            let resolved = try engine.resolve(pipeline, config: RunConfig())
            var status = RunStatus.running
            ours.append(try await seconds { status = try await engine.run(resolved).run.status })
            precondition(status == .completed, "the run on Slurm did not complete")
        }
        let (b, o) = (median(bare), median(ours))
        print(
            String(
                format: "%5d   %13.2f s   %7.3f s   %13.2f s   %7.3f s   %5.2f×", length, b, b / Double(length), o,
                o / Double(length), o / b))
    }
}

print(
    "Sluice engine overhead — \(ProcessInfo.processInfo.activeProcessorCount) cores, \(repetitions) repetitions, medians"
)
print(
    "stores: \(postgres.map { "PostgreSQL at \(PostgresURL.redacting($0))" } ?? "SQLite (WAL, synchronous=NORMAL)")"
        + " + local artifact store; environment capture on (git, binary hash)")
print(
    "orchestrator: "
        + (containerImage.map { "process, every fresh step run in a podman container of \($0)\n" }
            ?? (processOrchestrator
                ? "process (every fresh step run a child process: `EngineOverhead cli step run …`)\n"
                : "in-process\n"))
)
print("pipeline          steps   fresh run   per step   cached run   per step")
var freshPoints: [(Double, Double)] = []
var cachedPoints: [(Double, Double)] = []
for length in lengths {
    let (fresh, cached) = try await measure(chain(length), steps: length)
    freshPoints.append((Double(length), fresh))
    cachedPoints.append((Double(length), cached))
    print(
        String(
            format: "chain %-10d %6d  %8.2f ms  %6.3f ms  %8.2f ms   %6.3f ms", length, length, fresh * 1000,
            fresh * 1000 / Double(length), cached * 1000, cached * 1000 / Double(length)))
}
let fanSteps = 2 * 100 + 2
let (fanFresh, fanCached) = try await measure(fan(100), steps: fanSteps)
print(
    String(
        format: "fan-out 1→100→1   %6d  %8.2f ms  %6.3f ms  %8.2f ms   %6.3f ms", fanSteps, fanFresh * 1000,
        fanFresh * 1000 / Double(fanSteps), fanCached * 1000, fanCached * 1000 / Double(fanSteps)))

/// Least-squares line through (steps, seconds): slope = cost per step, intercept = fixed cost per run.
func fit(_ points: [(Double, Double)]) -> (slope: Double, intercept: Double) {
    let n = Double(points.count)
    let mx = points.map(\.0).reduce(0, +) / n
    let my = points.map(\.1).reduce(0, +) / n
    let sxy = points.reduce(0) { $0 + ($1.0 - mx) * ($1.1 - my) }
    let sxx = points.reduce(0) { $0 + ($1.0 - mx) * ($1.0 - mx) }
    return (sxy / sxx, my - sxy / sxx * mx)
}
let freshFit = fit(freshPoints)
let cachedFit = fit(cachedPoints)
print(
    String(
        format: "\nlinear fit over chains: fresh %.3f ms/step + %.2f ms/run; cached %.3f ms/step + %.2f ms/run",
        freshFit.slope * 1000, freshFit.intercept * 1000, cachedFit.slope * 1000, cachedFit.intercept * 1000))

// Where a step's time goes: one store round trip (a cache lookup that misses), the floor of every store call.
do {
    let directory = FileManager.default.temporaryDirectory.appending(
        path: "sluice-bench-rt-\(UUID().uuidString.prefix(6))")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let store = try await engine(in: directory).metadata
    let key = CacheKey(rawValue: "sha256:missing")
    _ = try await store.cacheHit(for: key)
    var samples: [Double] = []
    for _ in 0..<2_000 {
        let start = ContinuousClock.now
        _ = try await store.cacheHit(for: key)
        let elapsed = ContinuousClock.now - start
        samples.append(Double(elapsed.components.attoseconds) / 1e18 + Double(elapsed.components.seconds))
    }
    print(
        String(
            format: "one store round trip (a cache lookup that misses), median of 2000: %.3f ms", median(samples) * 1000
        ))
}

// A fully cached 10-step run as a whole process, the way a user runs it (start-up, store open, run, summary).
let executable = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
let project = FileManager.default.temporaryDirectory.appending(path: "sluice-bench-cli-\(UUID().uuidString.prefix(6))")
try FileManager.default.createDirectory(at: project, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(at: project) }
func runProcess() throws -> Double {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = ["cli", "run", "chain10"]
    process.currentDirectoryURL = project
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    let start = Date()
    try process.run()
    process.waitUntilExit()
    precondition(process.terminationStatus == 0, "the CLI run failed")
    return Date().timeIntervalSince(start)
}
_ = try runProcess()  // fills the cache
let wholeProcess = median(try (0..<repetitions).map { _ in try runProcess() })
print(
    String(
        format: "whole process, fully cached 10-step run (`run chain10`, embedded SQLite store): %.1f ms",
        wholeProcess * 1000))
