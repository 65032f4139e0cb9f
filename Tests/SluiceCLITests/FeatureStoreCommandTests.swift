import Foundation
import SluiceCore
import SluiceData
import SluiceTesting
import Testing

@Suite("sluice features")
struct FeatureStoreCommandTests {
    static let example = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appending(path: "Examples/features")

    /// A project holding a copy of the example's definitions, pipeline and generated data (`customers` customers).
    static func project(customers: Int = 400) async throws -> TemporaryDirectory {
        let directory = try TemporaryDirectory(prefix: "sluice-features")
        for name in ["generate.py", "features.yaml", "churn.yaml"] {
            try FileManager.default.copyItem(at: example.appending(path: name), to: directory.path(name))
        }
        let generated = try await CommandProcess.run(
            "/usr/bin/env", ["python3", "generate.py", String(customers)], in: directory.url)
        try #require(generated.status == 0, "\(generated.errors)")
        #expect(try await CommandProcess.run("sluice", ["init"], in: directory.url).status == 0)
        return directory
    }

    func sluice(_ arguments: [String], in directory: TemporaryDirectory) async throws -> (
        status: Int32, output: String, errors: String
    ) {
        try await CommandProcess.run("sluice", arguments, in: directory.url)
    }

    @Test(
        "plan shows new definitions; apply records them once; a change is planned, diffed and applied as a new version")
    func definitionsLifecycle() async throws {
        let directory = try await Self.project()
        let plan = try await sluice(["features", "plan"], in: directory)
        #expect(plan.status == 0, "\(plan.errors)")
        #expect(plan.output.contains("+ view customer_orders"))
        #expect(plan.output.contains("6 definitions would change, 0 unchanged."))

        let early = try await sluice(
            ["features", "join", "data/labels.csv", "--service", "churn", "-o", "t.arrow"], in: directory)
        #expect(early.status == 2)
        #expect(early.errors.contains("feature service 'churn' is not applied yet"), "\(early.errors)")

        let apply = try await sluice(["features", "apply"], in: directory)
        #expect(apply.status == 0, "\(apply.errors)")
        #expect(apply.output.contains("Applied in run run-"))
        let again = try await sluice(["features", "apply"], in: directory)
        #expect(again.output.contains("Nothing to apply"), "\(again.output)")
        let list = try await sluice(["features", "list"], in: directory)
        #expect(list.output.split(separator: "\n").filter { $0.hasSuffix("same") }.count == 6, "\(list.output)")

        // A longer TTL: the view and the service reading it get new versions; the entity and sources do not.
        let file = directory.path("features.yaml")
        let text = try String(contentsOf: file, encoding: .utf8)
        try text.replacingOccurrences(of: "ttl: 90d", with: "ttl: 120d").write(
            to: file, atomically: true, encoding: .utf8)
        let changed = try await sluice(["features", "plan"], in: directory)
        #expect(changed.output.contains("~ view customer_orders"), "\(changed.output)")
        #expect(changed.output.contains("~ service churn"))
        #expect(changed.output.contains("2 definitions would change, 4 unchanged."))
        let diff = try await sluice(["features", "diff", "customer_orders"], in: directory)
        #expect(
            diff.output.contains("-   \"ttl\" : 7776000")
                || diff.output.contains("- ") && diff.output.contains("7776000"))
        #expect(diff.output.contains("10368000"), "\(diff.output)")
        let stale = try await sluice(["features", "list"], in: directory)
        #expect(stale.output.contains("changed in files"))
        #expect(try await sluice(["features", "apply"], in: directory).status == 0)
        let show = try await sluice(["features", "show", "view/customer_orders"], in: directory)
        #expect(show.status == 0, "\(show.errors)")
        let versions = show.output.split(separator: "\n").filter { $0.contains("(run run-") }
        #expect(versions.count == 2, "\(show.output)")
        #expect(show.output.contains("spend_30d: float"))
        #expect(show.output.contains("orders_7d: integer"))
    }

    @Test("mistakes are refused with file:line:column and the fix, every one of them at once")
    func mistakesRefused() async throws {
        let directory = try await Self.project(customers: 30)
        try FileManager.default.createDirectory(at: directory.path("features"), withIntermediateDirectories: true)
        try """
        views:
          broken:
            entity: custmer
            source: orders
            features: {amount: integer, colour: string}
        """.write(to: directory.path("features/extra.yaml"), atomically: true, encoding: .utf8)
        let plan = try await sluice(["features", "plan"], in: directory)
        #expect(plan.status == 2)
        #expect(
            plan.errors.contains(
                "features/extra.yaml:3:13: view 'broken' reads the unknown entity 'custmer'. Did you mean 'customer'?"),
            "\(plan.errors)")
        #expect(plan.errors.contains("feature 'amount' is declared integer, but source 'orders' holds float"))
        #expect(plan.errors.contains("the feature 'colour' is not a column of source 'orders'"))
        try "views:\n  broken:\n    entity: customer\n    sauce: orders\n".write(
            to: directory.path("features/extra.yaml"), atomically: true, encoding: .utf8)
        let unknown = try await sluice(["features", "plan"], in: directory)
        #expect(unknown.status == 2)
        #expect(
            unknown.errors.contains(
                "features/extra.yaml:4:12: unknown key 'views.broken.sauce'. Did you mean 'source'?"),
            "\(unknown.errors)")
    }

    @Test("join gives each label row the features known at its time: a brute-force count over the orders agrees")
    func joinAgreesWithOrders() async throws {
        let directory = try await Self.project(customers: 150)
        #expect(try await sluice(["features", "apply"], in: directory).status == 0)
        let join = try await sluice(
            ["features", "join", "data/labels.csv", "--service", "churn", "-o", "training.arrow"], in: directory)
        #expect(join.status == 0, "\(join.errors)")
        #expect(join.output.contains("joined 450 rows with service churn"), "\(join.output)")
        let table = try TableFile(contentsOf: directory.path("training.arrow")).readAll()
        let orders = try CSVReader(files: [directory.path("data/orders.csv")]).readTable()
        let labels = try CSVReader(files: [directory.path("data/labels.csv")]).readTable()
        #expect(table.columnNames.prefix(3) == ["customer_id", "event_timestamp", "churned"])
        guard case .integer(let customers, _) = orders["customer_id"]!.storage,
            case .timestamp(let times, _) = orders["order_time"]!.storage,
            case .integer(let labelCustomers, _) = labels["customer_id"]!.storage,
            case .timestamp(let labelTimes, _) = labels["event_timestamp"]!.storage
        else {
            Issue.record("unexpected column types")
            return
        }
        let day: Int64 = 86_400_000_000
        for row in 0..<table.rowCount {
            let t = labelTimes[row]
            let mine = customers.indices.filter { customers[$0] == labelCustomers[row] && times[$0] <= t }
            #expect(table["orders_7d"]!.string(row) == String(mine.filter { times[$0] > t - 7 * day }.count))
            #expect(table["orders_90d"]!.string(row) == String(mine.filter { times[$0] > t - 90 * day }.count))
        }
    }

    @Test(
        "a pipeline trains from the feature service: versions in the training set's record, cached until a source changes, reproduced exactly"
    )
    func pipelineTrainsFromService() async throws {
        let directory = try await Self.project(customers: 300)
        #expect(try await sluice(["features", "apply"], in: directory).status == 0)
        let first = try await sluice(["run", "churn.yaml", "--json"], in: directory)
        #expect(first.status == 0, "\(first.errors)")
        let run = try CommandProcess.jsonDecoder.decode(Run.self, from: Data(first.output.utf8))
        let show = try await sluice(["runs", "show", run.id, "--json"], in: directory)
        #expect(show.output.contains("churn@"), "the training set names the service's version")
        #expect(show.output.contains("feature_sources"))
        #expect(show.output.contains("orders@sha256:"))

        let second = try await sluice(["run", "churn.yaml"], in: directory)
        #expect(
            second.errors.contains("training_set cached") || second.errors.contains("✔ training_set cached"),
            "\(second.errors)")
        let reproduce = try await sluice(["runs", "reproduce", run.id, "--file", "churn.yaml"], in: directory)
        #expect(reproduce.status == 0, "\(reproduce.errors)")
        #expect((reproduce.output + reproduce.errors).contains("all the same"))
        // New orders: the training set (and everything after it) is rebuilt.
        let orders = directory.path("data/orders.csv")
        let handle = try FileHandle(forWritingTo: orders)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("1,2026-08-01T10:00:00Z,2026-08-01T10:05:00Z,12.5,web\n".utf8))
        try handle.close()
        let third = try await sluice(["run", "churn.yaml"], in: directory)
        #expect(third.status == 0, "\(third.errors)")
        #expect(!third.errors.contains("training_set cached"), "\(third.errors)")

    }
}
