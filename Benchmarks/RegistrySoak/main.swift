// A soak of the registry and run records under concurrency: for a while (60 s by default), 16 writers, each with a
// store of its own (its own SQLite connections or PostgreSQL pool, as separate processes would have), mix
//   - training runs of the standard pipeline on the penguins data with `promote: when_blessed` (the register step's
//     conditional promotion, deciding again on a conflict),
//   - short runs of a three-step pipeline,
//   - manual promotions and stage moves expecting what was read (refused on a conflict),
//   - rollbacks expecting the production version read,
//   - gc (plan, then apply) of runs older than a few seconds,
//   - invariant checks while all of that goes on,
// then checks every invariant once more (StoreInvariants: at most one production version at every point of each
// model's history, "from" equal to the previous "to", version numbers without gaps, every ended run with one final
// status and no step still running) and prints operations per second. Build in release:
//
//   swift run -c release RegistrySoak --sqlite                    # a SQLite file in a temporary folder
//   swift run -c release RegistrySoak --postgres postgres://USER:PASSWORD@127.0.0.1:5433/postgres
//                                     # a fresh database on that server (the role needs CREATEDB)
//   Benchmarks/registry_soak.sh [--seconds 60]   # both, on a throwaway PostgreSQL server
import Foundation
import Sluice
import SluiceComponents
import SluiceML
import SluiceStorePostgres
import SluiceStoreSQLite

let arguments = CommandLine.arguments
func option(_ name: String) -> String? { arguments.firstIndex(of: name).map { arguments[$0 + 1] } }
let seconds = option("--seconds").flatMap(Double.init) ?? 60
let writers = option("--writers").flatMap(Int.init) ?? 16
let postgres = option("--postgres")
guard postgres != nil || arguments.contains("--sqlite") else {
    FileHandle.standardError.write(
        Data("usage: RegistrySoak --sqlite | --postgres URL [--seconds S] [--writers N]\n".utf8))
    exit(2)
}

let root = FileManager.default.temporaryDirectory.appending(path: "sluice-soak-\(UUID().uuidString.prefix(8))")
try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(at: root) }
let data = root.appending(path: "penguins.csv")
try Data(DemoData.penguinsCSV.utf8).write(to: data)

let databaseName = "soak_\(UUID().uuidString.prefix(8).lowercased())"
let databaseURL: String? =
    if let postgres { try await PostgresDatabases.create(databaseName, on: postgres) } else { nil }
let password = try postgres.flatMap { try PostgresURL($0).password }

/// A store of the writer's own: separate connections, as a separate process has.
@Sendable func openStore() async throws -> any MetadataStore & ModelRegistry {
    if let databaseURL {
        return try await PostgresMetadataStore(url: databaseURL, password: password, maximumConnections: 2)
    }
    return try SQLiteMetadataStore(path: root.appending(path: "metadata.sqlite").path)
}

/// Counts by operation, shared by the writers.
actor Tally {
    var done: [String: Int] = [:]
    var refused: [String: Int] = [:]
    var failedRuns = 0
    var violations: [String] = []
    var checks = 0

    func count(_ kind: String, refused isRefused: Bool = false) {
        if isRefused { refused[kind, default: 0] += 1 } else { done[kind, default: 0] += 1 }
    }
    func failedRun() { failedRuns += 1 }
    func checked(_ found: [String]) {
        checks += 1
        violations += found
    }
}

let tiny = Pipeline("tiny") { p in
    let a = p.step("a", version: 1) { context in Int(context.seed % 1_000) }
    let b = p.step("b", version: 1, a) { value, _ in value * 2 }
    p.step("c", version: 1, b) { value, _ in "value \(value)" }
}

let model = "penguins"
let tally = Tally()
let setup = try await openStore()
try await setup.registerPipeline("standard")
let deadline = Date().addingTimeInterval(seconds)
let started = Date()

try await withThrowingTaskGroup(of: Void.self) { group in
    for writer in 0..<writers {
        group.addTask {
            let store = try await openStore()
            let artifacts = try LocalArtifactStore(root: root.appending(path: "artifacts"))
            let engine = RunEngine(
                metadata: store, artifacts: artifacts, materializers: .standard,
                logDirectory: root.appending(path: "logs"), scratchDirectory: root.appending(path: "scratch"))
            var random = SeededRandom(seed: UInt64(writer) &* 0x9E37_79B9_7F4A_7C15 &+ 1)
            while Date() < deadline {
                let pick = Int(random.next() % 100)
                do {
                    switch pick {
                    case 0..<35:
                        var options = StandardPipeline.Options(model: model, paths: [data.path], label: "species")
                        options.promote = .whenBlessed
                        options.thresholds = [MetricThreshold(metric: "accuracy", atLeast: 0.5)]
                        options.rounds = 1 + Int(random.next() % 40)
                        options.maxDepth = 1 + Int(random.next() % 4)
                        let baseline = try await Baseline.production(of: model, registry: store, artifacts: artifacts)
                        let result = try await engine.run(
                            StandardPipeline.make(options, registry: store, baseline: baseline, artifacts: artifacts))
                        if result.run.status != .completed { await tally.failedRun() }
                        await tally.count("train+register")
                    case 35..<50:
                        var config = RunConfig()
                        config.seed = random.next()
                        let result = try await engine.run(tiny, config: config)
                        if result.run.status != .completed { await tally.failedRun() }
                        await tally.count("run")
                    case 50..<70, 70..<80:
                        let versions = try await store.modelVersions(model)
                        guard !versions.isEmpty else { continue }
                        let version = versions[Int(random.next() % UInt64(versions.count))].version
                        let stage: ModelStage =
                            pick < 70 ? .production : [.staging, .archived][Int(random.next() % 2)]
                        let kind = pick < 70 ? "promote" : "stage"
                        do {
                            _ = try await store.moveModelVersion(
                                model, version: version, to: stage,
                                expecting: try await store.expectation(model, moving: version), by: "writer\(writer)",
                                reason: "soak")
                            await tally.count(kind)
                        } catch is StageConflict {
                            await tally.count(kind, refused: true)
                        }
                    case 80..<90:
                        do {
                            _ = try await store.rollback(model, by: "writer\(writer)", reason: "soak")
                            await tally.count("rollback")
                        } catch is StageConflict {
                            await tally.count("rollback", refused: true)
                        }
                    case 90..<95:
                        let retention = Retention(olderThan: 5, keepLast: 3)
                        let plan = try await retention.plan(metadata: store)
                        _ = try await retention.apply(plan, metadata: store, artifacts: artifacts)
                        await tally.count("gc")
                    default:
                        await tally.checked(try await StoreInvariants.registryViolations(store))
                        await tally.count("check")
                    }
                } catch is RegistryError {
                    // Nothing to roll back to, or already in that stage: refused before any write.
                    await tally.count("refused by the rules")
                }
            }
            if let postgres = store as? PostgresMetadataStore { await postgres.close() }
        }
    }
    try await group.waitForAll()
}
let elapsed = Date().timeIntervalSince(started)

let registry = try await StoreInvariants.registryViolations(setup)
let records = try await StoreInvariants.runViolations(setup)
await tally.checked(registry + records)
let runs = try await setup.runs(RunFilter(limit: Int(Int32.max)))
let changes = try await setup.stageChanges(model)
let versions = try await setup.modelVersions(model)
let decidedAgain = changes.filter { $0.reason.contains("decided again after") }.count

print(
    "RegistrySoak: \(writers) writers for \(String(format: "%.0f", elapsed)) s on "
        + (postgres.map { "PostgreSQL at \(PostgresURL.redacting($0))" } ?? "SQLite (WAL)"))
let done = await tally.done
let refused = await tally.refused
var total = 0
for kind in Set(done.keys).union(refused.keys).sorted() {
    let count = done[kind, default: 0]
    total += count
    print(
        "  \(kind.padding(toLength: 22, withPad: " ", startingAt: 0)) \(String(format: "%6d", count)) done"
            + String(format: " %7.1f/s", Double(count) / elapsed)
            + (refused[kind].map { "  \($0) refused as conflicts" } ?? ""))
}
print(String(format: "  all operations          %6d      %7.1f/s", total, Double(total) / elapsed))
print(
    "  records: \(runs.count) runs (\(runs.filter { $0.status == .completed }.count) completed, "
        + "\(await tally.failedRuns) not completed), \(versions.count) versions, \(changes.count) stage changes, "
        + "\(decidedAgain) promotions decided again after a conflict")
let violations = await tally.violations
print("  invariant checks: \(await tally.checks), violations: \(violations.count)")
for line in violations.prefix(20) { print("    " + line) }
if let postgres {
    if let store = setup as? PostgresMetadataStore { await store.close() }
    try await PostgresDatabases.drop(databaseName, on: postgres)
}
exit(violations.isEmpty ? 0 : 1)
