import Foundation
import SluiceML
import SluiceServer
import SluiceTesting
import Testing

@Suite("sluice demo and sluice models")
struct DemoAndModelsTests {
    @Test("sluice demo trains and registers the penguins model, and a second run is served from the cache")
    func demoTwice() async throws {
        let directory = try TemporaryDirectory(prefix: "sluice-demo")
        let first = try await CommandProcess.run("sluice", ["demo"], in: directory.url, environment: ["NO_COLOR": "1"])
        #expect(first.status == 0, "\(first.errors)")
        #expect(first.output.contains("completed"))
        #expect(first.output.contains("9 done"))
        #expect(first.output.contains("registered: penguins@1, stage production"))
        #expect(first.output.contains("island = Biscoe"))
        #expect(first.output.contains("sluice models show penguins"))
        #expect(FileManager.default.fileExists(atPath: directory.path(".sluice/demo/penguins.csv").path))

        let second = try await CommandProcess.run(
            "sluice", ["demo"], in: directory.url, environment: ["NO_COLOR": "1"])
        #expect(second.status == 0, "\(second.errors)")
        // penguins@1 is in production now: schema and validate check the data against what it was trained on
        // (the same data: the same schema and report), and everything after them is reused.
        #expect(second.output.contains("3 done, 6 cached"), "\(second.output)")
        #expect(second.output.contains("already registered: penguins@1"))
        #expect(second.output.contains("within 0.0200 of baseline"))
    }

    @Test("models list, show, promote, rollback and export work on the demo's registry")
    func modelsCommands() async throws {
        let directory = try TemporaryDirectory(prefix: "sluice-models")
        let env = ["NO_COLOR": "1", "USER": "tester"]
        #expect(try await CommandProcess.run("sluice", ["demo"], in: directory.url, environment: env).status == 0)
        // A second version: fewer rounds re-trains, is blessed against version 1, and is registered.
        let retrain = try await CommandProcess.run(
            "sluice", ["demo", "--set", "train.rounds=10"], in: directory.url, environment: env)
        #expect(retrain.status == 0, "\(retrain.errors)")
        #expect(retrain.output.contains("registered: penguins@2, stage none"))

        // Experiments: filter runs by a parameter value, compare them side by side.
        let filtered = try await CommandProcess.run(
            "sluice", ["runs", "list", "--param", "train.rounds=10", "--json"], in: directory.url)
        struct Listed: Decodable { var id: String }
        let matching = try JSONDecoder().decode([Listed].self, from: Data(filtered.output.utf8))
        #expect(matching.count == 1)
        let all = try JSONDecoder().decode(
            [Listed].self,
            from: Data(
                try await CommandProcess.run("sluice", ["runs", "list", "--json"], in: directory.url).output.utf8))
        #expect(all.count == 2)
        let compare = try await CommandProcess.run(
            "sluice", ["runs", "compare", all[0].id, all[1].id], in: directory.url, environment: env)
        #expect(compare.status == 0, "\(compare.errors)")
        let roundsLine = compare.output.split(separator: "\n").first { $0.hasPrefix("train.rounds") }
        #expect(roundsLine?.contains("*") == true)
        #expect(roundsLine?.contains("10") == true && roundsLine?.contains("50") == true)
        #expect(compare.output.contains("evaluate.accuracy"))

        let list = try await CommandProcess.run("sluice", ["models", "list"], in: directory.url, environment: env)
        #expect(list.output.contains("penguins"))
        let listed = try JSONDecoder().decode(
            [ListedModel].self,
            from: Data(
                try await CommandProcess.run("sluice", ["models", "list", "--json"], in: directory.url).output.utf8))
        #expect(listed.first?.latestVersion == 2)
        #expect(listed.first?.productionVersion == 1)

        let promote = try await CommandProcess.run(
            "sluice", ["models", "promote", "penguins", "2", "--reason", "smaller model"], in: directory.url,
            environment: env)
        #expect(promote.status == 0, "\(promote.errors)")
        #expect(promote.output.contains("penguins@2 is now in production"))
        let show = try await CommandProcess.run(
            "sluice", ["models", "show", "penguins"], in: directory.url, environment: env)
        #expect(show.output.contains("v1 production → archived  by tester: replaced by version 2"))
        #expect(show.output.contains("v2 none → production  by tester: smaller model"))

        let rollback = try await CommandProcess.run(
            "sluice", ["models", "rollback", "penguins", "--reason", "check"], in: directory.url, environment: env)
        #expect(rollback.output.contains("penguins@1 is back in production"))

        // A move decided on a state that no longer holds is refused (exit 4) and changes nothing.
        let stale = try await CommandProcess.run(
            "sluice", ["models", "promote", "penguins", "2", "--expect-production", "2", "--to", "staging"],
            in: directory.url, environment: env)
        #expect(stale.status == 4, "\(stale.errors)")
        #expect(
            stale.errors.contains(
                "expected v2 in production and v2 in archived, found v1 in production, v2 in archived"))
        #expect(stale.errors.contains("by tester at ") && stale.errors.contains(": check). Nothing was changed."))
        #expect(stale.errors.contains("To fix: look at `sluice models show penguins`"))
        let staleRollback = try await CommandProcess.run(
            "sluice", ["models", "rollback", "penguins", "--expect-production", "2"], in: directory.url,
            environment: env)
        #expect(staleRollback.status == 4, "\(staleRollback.errors)")
        let unreadable = try await CommandProcess.run(
            "sluice", ["models", "promote", "penguins", "2", "--expect-production", "two"], in: directory.url,
            environment: env)
        #expect(unreadable.status == 2 && unreadable.errors.contains("a version number or 'none'"))
        let expected = try await CommandProcess.run(
            "sluice", ["models", "promote", "penguins", "2", "--expect-production", "1", "--reason", "again"],
            in: directory.url, environment: env)
        #expect(expected.status == 0, "\(expected.errors)")
        #expect(expected.output.contains("penguins@2 is now in production (v1 archived)"))
        _ = try await CommandProcess.run(
            "sluice", ["models", "rollback", "penguins", "--expect-production", "v2"], in: directory.url,
            environment: env)
        let check = try await CommandProcess.run("sluice", ["store", "check"], in: directory.url, environment: env)
        #expect(check.status == 0, "\(check.output)\(check.errors)")
        #expect(check.output.contains("OK: 1 models"))

        let card = try await CommandProcess.run(
            "sluice", ["models", "show", "penguins@production"], in: directory.url, environment: env)
        #expect(card.output.contains("# Model card: penguins"))

        let file = directory.path("penguins.json")
        let export = try await CommandProcess.run(
            "sluice", ["models", "export", "penguins@production", "-o", file.path], in: directory.url, environment: env)
        #expect(export.status == 0, "\(export.errors)")
        let bundle = try ModelBundle.load(Data(contentsOf: file))
        #expect(bundle.name == "penguins")
        let prediction = try bundle.predict(rows: [
            [
                "island": .text("Dream"), "bill_length_mm": .number(49.0), "bill_depth_mm": .number(19.5),
                "flipper_length_mm": .number(196), "body_mass_g": .number(3800), "sex": .text("male"),
                "year": .number(2008),
            ]
        ])
        #expect(prediction.predictedClasses == [1])  // a Chinstrap

        let unknown = try await CommandProcess.run("sluice", ["models", "show", "pengiuns"], in: directory.url)
        #expect(unknown.status == 2, "an unknown model name is unusable input")
        #expect(unknown.errors.contains("did you mean 'penguins'"))
    }

    @Test("sluice run FILE.yaml runs a YAML pipeline of built-in components; a wiring mistake exits 2 with the line")
    func yamlPipeline() async throws {
        let directory = try TemporaryDirectory(prefix: "sluice-yaml")
        #expect(try await CommandProcess.run("sluice", ["demo"], in: directory.url).status == 0)
        let example = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appending(path: "Examples/penguins.yaml")
        let file = directory.path("pipeline.yaml")
        try FileManager.default.copyItem(at: example, to: file)
        let run = try await CommandProcess.run(
            "sluice", ["run", "pipeline.yaml", "--set", "train.rounds=20"], in: directory.url,
            environment: ["NO_COLOR": "1"])
        #expect(run.status == 0, "\(run.errors)")
        #expect(run.output.contains("completed"))
        let broken = try String(contentsOf: file, encoding: .utf8).replacingOccurrences(
            of: "component: statistics", with: "component: statistic")
        try broken.write(to: file, atomically: true, encoding: .utf8)
        let failed = try await CommandProcess.run("sluice", ["run", "pipeline.yaml"], in: directory.url)
        #expect(failed.status == 2)
        #expect(failed.errors.contains("pipeline.yaml:13:"))
        #expect(failed.errors.contains("Did you mean 'statistics'?"))
        let components = try await CommandProcess.run("sluice", ["run", "--components"], in: directory.url)
        #expect(components.output.contains("evaluate: metrics overall and per slice"))
    }

    struct ListedModel: Decodable {
        var name: String
        var latestVersion: Int
        var productionVersion: Int?
    }
}

@Suite("sluice serve")
struct ServeCommandTests {
    @Test("sluice serve answers over HTTP, follows a promotion in the registry, and stops on SIGTERM")
    func serveFollowsPromotion() async throws {
        let directory = try TemporaryDirectory(prefix: "sluice-serve")
        #expect(try await CommandProcess.run("sluice", ["demo"], in: directory.url).status == 0)
        #expect(
            try await CommandProcess.run("sluice", ["demo", "--set", "train.rounds=10"], in: directory.url).status == 0)
        let server = try CommandProcess(
            "sluice", ["serve", "penguins@production", "--port", "0", "--poll-milliseconds", "100"], in: directory.url)
        let port = try await server.servingPort()
        let record =
            #"{"instances":[{"island":"Biscoe","bill_length_mm":47.5,"bill_depth_mm":14.2,"flipper_length_mm":220,"body_mass_g":5200,"sex":"male","year":2008}]}"#
        let first = try LoopbackClient.request(port: port, method: "POST", path: "/invocations", body: record)
        #expect(first.status == 200)
        #expect(first.headers["x-model-version"] == "penguins@1")
        #expect(first.body.contains(#""predictions":["Gentoo"]"#))
        let bad = try LoopbackClient.request(port: port, method: "POST", path: "/invocations", body: "{}")
        #expect(bad.status == 400)
        #expect(bad.body.contains(#""error":"#))

        let promote = try await CommandProcess.run(
            "sluice", ["models", "promote", "penguins", "2", "--reason", "test"], in: directory.url)
        #expect(promote.status == 0)
        var version = ""
        for _ in 0..<50 where version != "penguins@2" {
            try await Task.sleep(for: .milliseconds(100))
            version =
                try LoopbackClient.request(port: port, method: "POST", path: "/invocations", body: record)
                .headers["x-model-version"] ?? ""
        }
        #expect(version == "penguins@2")
        let metrics = try LoopbackClient.request(port: port, method: "GET", path: "/metrics")
        #expect(metrics.body.contains(#"sluice_model_info{model="penguins",version="penguins@2"} 1"#))

        let profile = try await CommandProcess.run(
            "sluice", ["profile", "penguins@2", "--samples", "200"], in: directory.url)
        #expect(profile.status == 0, "\(profile.errors)")
        #expect(profile.output.contains("single row over HTTP"))
        let shown = try await CommandProcess.run("sluice", ["models", "show", "penguins@2"], in: directory.url)
        #expect(shown.output.contains("Profile of penguins@2"))
        #expect(shown.output.contains("p99.9"))

        server.process.terminate()  // SIGTERM
        #expect(await server.wait() == 0)
        #expect(server.errors.contains("now serving penguins@2"))
    }
}
