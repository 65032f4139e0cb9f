import Foundation
import SluiceCore
import SluiceData
import SluiceML
import SluiceServer
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

    @Test(
        "a model trained from the service is served from entity keys alone: the in-process bundle's predictions on the joined rows, bit for bit"
    )
    func servedFromEntityKeys() async throws {
        let directory = try await Self.project(customers: 300)
        #expect(try await sluice(["features", "apply"], in: directory).status == 0)
        let run = try await sluice(["run", "churn.yaml"], in: directory)
        #expect(run.status == 0, "\(run.errors)")
        let when = "2026-07-15T00:00:00Z"
        let materialize = try await sluice(["features", "materialize", "--until", when], in: directory)
        #expect(materialize.status == 0, "\(materialize.errors)")
        #expect(materialize.output.contains("view customer_orders:"), "\(materialize.output)")

        // The in-process answer: the bundle on the rows the training join gives at the watermark.
        let customers = Array(1...40)
        try ("customer_id,event_timestamp\n" + customers.map { "\($0),\(when)" }.joined(separator: "\n") + "\n")
            .write(to: directory.path("rows.csv"), atomically: true, encoding: .utf8)
        let join = try await sluice(
            ["features", "join", "rows.csv", "--service", "churn", "-o", "joined.arrow"], in: directory)
        #expect(join.status == 0, "\(join.errors)")
        let joined = try TableFile(contentsOf: directory.path("joined.arrow")).readAll()
        let export = try await sluice(["models", "export", "churn@production", "-o", "bundle.json"], in: directory)
        #expect(export.status == 0, "\(export.errors)")
        let bundle = try ModelBundle.load(try Data(contentsOf: directory.path("bundle.json")))
        let service = try #require(bundle.signature.features)
        #expect(service.service == "churn")
        #expect(service.entityKeys.map(\.name) == ["customer_id"])
        #expect(bundle.card.contains("Served from the feature service"))
        let local = try bundle.predict(joined)

        let server = try CommandProcess(
            "sluice", ["serve", "churn@production", "--port", "0", "--no-access-log"], in: directory.url)
        let port = try await server.servingPort()
        let metadata = try LoopbackClient.request(port: port, method: "GET", path: "/v2/models/churn")
        #expect(
            metadata.body.contains(#""inputs":[{"name":"customer_id","datatype":"INT64","shape":[-1]}]"#),
            "\(metadata.body)")
        let body =
            #"{"inputs":[{"name":"customer_id","datatype":"INT64","shape":[\#(customers.count)],"data":[\#(customers.map(String.init).joined(separator: ","))]}]}"#
        let answer = try LoopbackClient.request(port: port, method: "POST", path: "/v2/models/churn/infer", body: body)
        #expect(answer.status == 200, "\(answer.body)")
        // Numbers read with Double(String) (correctly rounded; Foundation's JSON parser here is not).
        let marker = #""name":"probabilities","shape":[\#(customers.count),2],"datatype":"FP64","data":["#
        let tail = try #require(answer.body.range(of: marker).map { answer.body[$0.upperBound...] })
        let probabilities = tail.prefix { $0 != "]" }.split(separator: ",").compactMap { Double(String($0)) }
        let differing = probabilities.indices.filter { probabilities[$0].bitPattern != local.values[$0].bitPattern }
        #expect(
            probabilities.count == local.values.count && differing.isEmpty,
            "\(differing.prefix(4).map { i in "\(i): \(probabilities[i]) vs \(local.values[i]) row \(joined.columns.map { $0.string(i / 2) ?? "-" })" })"
        )
        let unknown = try LoopbackClient.request(
            port: port, method: "POST", path: "/v2/models/churn/infer",
            body: #"{"inputs":[{"name":"customer_id","datatype":"INT64","shape":[1],"data":[99999]}]}"#)
        #expect(unknown.status == 404)
        #expect(unknown.body.contains("customer_id=99999"), "\(unknown.body)")
        let metrics = try LoopbackClient.request(port: port, method: "GET", path: "/metrics")
        #expect(metrics.body.contains("sluice_feature_lookup_duration_seconds_count 2"), "\(metrics.body)")
        server.process.terminate()
        #expect(await server.wait() == 0)

        // The feature server answers the same values, with a status each.
        let features = try CommandProcess(
            "sluice", ["features", "serve", "--port", "0", "--no-access-log"], in: directory.url)
        let featurePort = try await features.servingPort()
        let lookup = try LoopbackClient.request(
            port: featurePort, method: "POST", path: "/v1/features/online",
            body: #"{"feature_service": "churn", "entities": {"customer_id": [3, 99999]}}"#)
        #expect(lookup.status == 200, "\(lookup.body)")
        let parsed = try JSONSerialization.jsonObject(with: Data(lookup.body.utf8)) as? [String: Any]
        let names = (parsed?["metadata"] as? [String: Any])?["feature_names"] as? [String] ?? []
        let results = parsed?["results"] as? [[String: Any]] ?? []
        let spend = try #require(names.firstIndex(of: "spend_30d"))
        let plan = try #require(names.firstIndex(of: "plan"))
        #expect((results[plan]["statuses"] as? [String]) == ["present", "missing"])
        #expect((results[plan]["values"] as? [Any])?.first as? String == joined["plan"]!.string(2))
        #expect((results[spend]["statuses"] as? [String]) == ["present", "present"], "an empty window's sum is 0")
        // (Foundation's JSON parser here may be off in the last bit: compared within 1e-9.)
        let served = try #require((results[spend]["values"] as? [Any])?.first as? Double)
        #expect(abs(served - joined["spend_30d"]!.double(2)!) < 1e-9)
        features.process.terminate()
        #expect(await features.wait() == 0)

        // The dashboard's features page: definitions, freshness, and the training set with the model trained on it.
        let ui = try CommandProcess("sluice", ["ui", "--port", "0"], in: directory.url)
        let uiPort = try await ui.servingPort()
        let page = try LoopbackClient.request(port: uiPort, method: "GET", path: "/features")
        #expect(page.status == 200)
        #expect(page.body.contains(#"data-definition="view/customer_orders""#), "\(page.body)")
        #expect(page.body.contains(#"data-view="customer_orders""#))
        #expect(page.body.contains("2026-07-15"), "the watermark")
        #expect(page.body.contains(#"<a href="/models/churn">churn@1</a>"#), "the model trained on the training set")
        let api = try LoopbackClient.request(port: uiPort, method: "GET", path: "/api/features")
        let overview = try JSONSerialization.jsonObject(with: Data(api.body.utf8)) as? [String: Any]
        let sets = overview?["trainingSets"] as? [[String: Any]] ?? []
        #expect(sets.count == 1)
        #expect((sets.first?["service"] as? String)?.hasPrefix("churn@") == true)
        #expect((sets.first?["models"] as? [String]) == ["churn@1"])
        ui.process.terminate()
        #expect(await ui.wait() == 0)
    }

    @Test("Examples/features/run.sh runs the whole example from a fresh copy: apply, train, materialize, serve by key")
    func exampleRuns() async throws {
        let directory = try TemporaryDirectory(prefix: "sluice-features-example")
        for name in ["run.sh", "generate.py", "features.yaml", "churn.yaml"] {
            try FileManager.default.copyItem(at: Self.example.appending(path: name), to: directory.path(name))
        }
        let sluice = try CommandProcess.executable("sluice").path
        let run = try await CommandProcess.run(
            "/usr/bin/env", ["bash", directory.path("run.sh").path], in: directory.url,
            environment: ["SLUICE": sluice, "TMPDIR": directory.url.path])
        #expect(run.status == 0, "\(run.output)\n\(run.errors)")
        #expect(run.output.contains("== the example worked"), "\(run.output)")
        #expect(run.output.contains(#""model_name": "churn""#), "the printed answer names the model")
    }
}
