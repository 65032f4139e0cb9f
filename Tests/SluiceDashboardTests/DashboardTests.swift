import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import SluiceCore
import SluiceML
import SluiceTesting
import Testing

@testable import SluiceDashboard

@Suite("Dashboard pages and API")
struct DashboardTests {
    @Test("the runs API lists runs newest first with millisecond timestamps and durations as numbers")
    func runsAPI() async throws {
        let fixture = try await DashboardFixture.make()
        try await fixture.test { client in
            let response = try await client.execute(uri: "/api/runs", method: .get)
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "application/json")
            let object = try response.json()
            let runs = try #require(object["runs"] as? [[String: Any]])
            #expect(
                runs.compactMap { $0["id"] as? String }
                    == [fixture.failed.run.id, fixture.other.run.id, fixture.cached.run.id, fixture.completed.run.id])
            let started = try #require(runs.first?["startedAt"] as? String)
            #expect(
                started.range(of: #"T\d{2}:\d{2}:\d{2}\.\d{3}Z$"#, options: .regularExpression) != nil, "\(started)")
            #expect(runs.first?["durationSeconds"] is Double)
            #expect(runs.first?["status"] as? String == "failed")
            #expect(object["hasMore"] as? Bool == false)
        }
    }

    @Test("runs are filtered by status, user and parameter value, and paginated")
    func runFilters() async throws {
        let fixture = try await DashboardFixture.make()
        let user = fixture.completed.run.environment.user
        try await fixture.test { client in
            func ids(_ query: String) async throws -> [String] {
                let response = try await client.execute(uri: "/api/runs?\(query)", method: .get)
                #expect(response.status == .ok, "\(query): \(response.text)")
                return try #require(response.json()["runs"] as? [[String: Any]]).compactMap { $0["id"] as? String }
            }
            #expect(try await ids("status=failed") == [fixture.failed.run.id])
            #expect(try await ids("param=train.rounds=8") == [fixture.other.run.id])
            #expect(
                try await ids("user=\(user)&per_page=2&page=2") == [fixture.cached.run.id, fixture.completed.run.id])
            #expect(try await ids("user=nobody-else").isEmpty)
            let page = try await client.execute(uri: "/runs?status=failed", method: .get)
            #expect(page.text.contains("data-run=\"\(fixture.failed.run.id)\""))
            #expect(!page.text.contains("data-run=\"\(fixture.completed.run.id)\""))
            let bad = try await client.execute(uri: "/api/runs?status=broken", method: .get)
            #expect(bad.status == .badRequest)
            #expect(bad.text.contains("unknown status 'broken'"))
            let badParam = try await client.execute(uri: "/runs?param=rounds", method: .get)
            #expect(badParam.status == .badRequest)
            #expect(badParam.text.contains("STEP.PARAMETER=VALUE"))
        }
    }

    @Test("a failed run's page draws its graph with each step's state, skipped steps still wired")
    func runGraph() async throws {
        let fixture = try await DashboardFixture.make()
        try await fixture.test { client in
            let response = try await client.execute(uri: "/runs/\(fixture.failed.run.id)", method: .get)
            #expect(response.status == .ok)
            let html = response.text
            #expect(html.contains(#"<g class="node failed" data-node="train""#))
            #expect(html.contains(#"<g class="node skipped" data-node="publish""#))
            #expect(html.contains(#"<g class="node cached" data-node="data""#))
            #expect(html.contains(#"data-from="train" data-to="publish""#), "the skipped step's edge")
            #expect(html.contains(#"data-from="data" data-to="report""#))
            #expect(html.contains("the training data ran out"))
            #expect(html.contains(#"href="/runs/\#(fixture.completed.run.id)/steps/data""#), "cached from the original")

            let api = try await client.execute(uri: "/api/runs/\(fixture.failed.run.id)", method: .get).json()
            let steps = try #require(api["steps"] as? [[String: Any]])
            let publish = try #require(steps.first { $0["name"] as? String == "publish" })
            #expect(publish["status"] as? String == "skipped")
            #expect(publish["upstream"] as? [String] == ["train"])
        }
    }

    @Test("a step page shows parameters, cache key, metrics, artifacts and the log's tail")
    func stepPage() async throws {
        let fixture = try await DashboardFixture.make()
        let run = fixture.other.run.id
        let train = try #require(fixture.other.stepRun("train"))
        try await fixture.test { client in
            let html = try await client.execute(uri: "/runs/\(run)/steps/train", method: .get).text
            #expect(html.contains(train.cacheKey!.rawValue))
            #expect(html.contains("&quot;rounds&quot; : 8"))
            #expect(
                html.contains(#"<tr data-metric="loss"><td>loss</td><td class="num">0.125</td><td class="num">8</td>"#))
            #expect(html.contains("trained 8 rounds"))
            #expect(html.contains("/artifacts/\(try fixture.artifact("train", of: fixture.other).id)"))
            let log = try await client.execute(uri: "/runs/\(run)/steps/train/log", method: .get)
            #expect(log.status == .ok)
            #expect(log.text.contains("trained 8 rounds"))
            let missing = try await client.execute(uri: "/runs/\(run)/steps/nope", method: .get)
            #expect(missing.status == .notFound)
            #expect(missing.text.contains("has no step named &#39;nope&#39;"))
        }
    }

    @Test("an HTML report is shown in a sandbox: its script cannot run in the dashboard's origin")
    func sandboxedReport() async throws {
        let fixture = try await DashboardFixture.make()
        let report = try fixture.artifact("report")
        try await fixture.test { client in
            let page = try await client.execute(uri: "/artifacts/\(report.id)", method: .get).text
            #expect(page.contains(#"<iframe class="report" id="report" sandbox="allow-scripts""#))
            #expect(!page.contains("stolen=1"), "the report's content is not inlined into the dashboard's page")
            let view = try await client.execute(uri: "/artifacts/\(report.id)/view", method: .get)
            #expect(view.status == .ok)
            let policy = try #require(view.headers[.contentSecurityPolicy])
            #expect(policy.hasPrefix("sandbox allow-scripts;"))
            #expect(!policy.contains("allow-same-origin"))
            #expect(view.headers[HTTPField.Name("X-Content-Type-Options")!] == "nosniff")
            let download = try await client.execute(uri: "/artifacts/\(report.id)/download", method: .get)
            #expect(download.headers[.contentDisposition]?.hasPrefix("attachment;") == true)
            #expect(download.text.contains("Report on 3 values"))
        }
    }

    @Test("no URL reads a file outside the project's stores")
    func pathTraversal() async throws {
        let fixture = try await DashboardFixture.make()
        let run = fixture.completed.run.id
        // A step run whose recorded log path points outside the log folder is not served either.
        var forged = try #require(fixture.completed.stepRun("train"))
        forged.logPath = "/etc/passwd"
        try await fixture.stack.metadata.finishStepRun(forged, metrics: [])
        try await fixture.test { client in
            for uri in [
                "/artifacts/..%2F..%2F..%2Fetc%2Fpasswd/download", "/artifacts/../../etc/passwd",
                "/static/..%2F..%2Fetc%2Fpasswd", "/static/../../../etc/passwd",
                "/runs/\(run)/steps/..%2F..%2F..%2F..%2Fetc%2Fpasswd/log", "/runs/..%2F..%2Fetc/steps/passwd/log",
                "/runs/\(run)/steps/train/log", "/artifacts/%2Fetc%2Fpasswd/view",
            ] {
                let response = try await client.execute(uri: uri, method: .get)
                #expect(response.status == .notFound || response.status == .badRequest, "\(uri): \(response.status)")
                #expect(!response.text.contains("root:"), "\(uri) leaked /etc/passwd")
            }
        }
    }

    @Test("models: versions with stages and metrics; promote and roll back from the page record who and why")
    func promoteAndRollback() async throws {
        let fixture = try await DashboardFixture.make()
        try await fixture.test { client in
            let page = try await client.execute(uri: "/models/churn", method: .get).text
            #expect(page.contains(#"<tr id="v1" data-version="1" data-stage="production">"#))
            #expect(page.contains(#"<tr id="v2" data-version="2" data-stage="none">"#))
            #expect(page.contains(#"<td class="num best">0.9300</td>"#))
            let promote = try await client.execute(
                uri: "/models/churn/versions/2/stage", method: .post,
                headers: [.contentType: "application/x-www-form-urlencoded"],
                body: ByteBuffer(string: "stage=production&reason=better+auc"))
            #expect(promote.status == .seeOther)
            let location = try #require(promote.headers[.location])
            let after = try await client.execute(uri: location, method: .get).text
            #expect(after.contains("Moved v2 to production."))
            #expect(after.contains(#"<tr id="v2" data-version="2" data-stage="production">"#))
            #expect(after.contains(#"<tr id="v1" data-version="1" data-stage="archived">"#))
            let rollback = try await client.execute(
                uri: "/models/churn/rollback", method: .post,
                headers: [.contentType: "application/x-www-form-urlencoded"], body: ByteBuffer(string: "reason=oops"))
            #expect(rollback.status == .seeOther)
            let history = try await fixture.stack.metadata.stageChanges("churn")
            #expect(history.contains { $0.version == 2 && $0.to == .production && $0.reason == "better auc" })
            #expect(history.last?.reason == "oops")
            #expect(history.last?.by.hasPrefix("dashboard:") == true)
            #expect(try await fixture.stack.metadata.productionVersion("churn")?.version == 1)
            let noReason = try await client.execute(
                uri: "/models/churn/rollback", method: .post,
                headers: [.contentType: "application/x-www-form-urlencoded"], body: ByteBuffer(string: "reason="))
            #expect(noReason.status == .badRequest)
            #expect(noReason.text.contains("say why"))
            let unknown = try await client.execute(uri: "/models/chrun", method: .get)
            #expect(unknown.status == .notFound)
            #expect(unknown.text.contains("did you mean &#39;churn&#39;?"))
        }
    }

    @Test("a stage form or API call decided on a page that is out of date is refused with 409, naming who moved what")
    func staleStageChange() async throws {
        let fixture = try await DashboardFixture.make()
        try await fixture.test { client in
            // The page is shown with v1 in production: its forms say so.
            let page = try await client.execute(uri: "/models/churn", method: .get).text
            #expect(page.contains(#"name="expected_production" value="1""#))
            #expect(page.contains(#"name="expected_stage" value="none""#))
            // Meanwhile a register step promotes v2.
            _ = try await fixture.stack.metadata.moveModelVersion(
                "churn", version: 2, to: .production, expecting: .production(1), by: "ci-bot",
                reason: "first blessed version (run r-9)")
            let form: HTTPFields = [.contentType: "application/x-www-form-urlencoded"]
            let archive = try await client.execute(
                uri: "/models/churn/versions/2/stage", method: .post, headers: form,
                body: ByteBuffer(string: "stage=archived&reason=stale&expected_production=1&expected_stage=none"))
            #expect(archive.status == .conflict)
            #expect(archive.text.contains("expected v1 in production and v2 in none, found v2 in production"))
            #expect(archive.text.contains("by ci-bot"))
            let rollback = try await client.execute(
                uri: "/models/churn/rollback", method: .post, headers: form,
                body: ByteBuffer(string: "reason=v1+misbehaves&expected_production=1"))
            #expect(rollback.status == .conflict)
            #expect(try await fixture.stack.metadata.productionVersion("churn")?.version == 2, "nothing changed")
            // The API answers the same in JSON; with the state as it is now the move goes through.
            let stale = try await client.execute(
                uri: "/api/models/churn/versions/1/stage", method: .post,
                body: ByteBuffer(string: #"{"stage":"production","reason":"back","expected_production":1}"#))
            #expect(stale.status == .conflict)
            #expect(stale.text.contains(#""error""#) && stale.text.contains("Nothing was changed."))
            let unreadable = try await client.execute(
                uri: "/api/models/churn/versions/1/stage", method: .post,
                body: ByteBuffer(string: #"{"stage":"production","reason":"back","expected_production":"two"}"#))
            #expect(unreadable.status == .badRequest)
            let fresh = try await client.execute(
                uri: "/api/models/churn/versions/1/stage", method: .post,
                body: ByteBuffer(string: #"{"stage":"production","reason":"back","expected_production":"v2"}"#))
            #expect(fresh.status == .ok, "\(fresh.text)")
            #expect(try await fixture.stack.metadata.productionVersion("churn")?.version == 1)
        }
        try await ModelRegistryContract.expectInvariants(fixture.stack.metadata)
    }

    @Test(
        "an unexpected error is a 500 naming the request ID, never the error's own text; known ones keep their status")
    func unexpectedErrors() {
        struct Leaky: Error, CustomStringConvertible {
            var description: String { "SQLITE_CORRUPT at /home/alice/secret/metadata.sqlite" }
        }
        let (status, message) = ErrorPages.describe(Leaky(), requestID: "req-42")
        #expect(status == .internalServerError)
        #expect(message == "internal error, request ID req-42 (the server's log has the details)")
        #expect(!message.contains("secret"))
        #expect(ErrorPages.describe(DashboardError.notFound("no run 'x'"), requestID: "r").0 == .notFound)
        let conflict = StageConflict(
            model: "m", version: 2, target: .production, expected: .production(1), production: 3, stage: .none,
            latestChange: nil)
        #expect(ErrorPages.describe(conflict, requestID: "r").0 == .conflict)
    }

    @Test("a model card's names from data read as themselves on the dashboard: no emphasis, no markup")
    func modelCardText() {
        /// The text a reader sees: tags dropped, character references decoded.
        func visible(_ html: String) -> String {
            var text = html.replacingOccurrences(of: "<[^>]*>", with: "", options: .regularExpression)
            while let range = text.range(of: "&#[0-9]+;", options: .regularExpression) {
                let code = UInt32(text[range].dropFirst(2).dropLast())!
                text.replaceSubrange(range, with: String(Character(Unicode.Scalar(code)!)))
            }
            for (entity, character) in [("&lt;", "<"), ("&gt;", ">"), ("&quot;", "\""), ("&#39;", "'"), ("&amp;", "&")]
            {
                text = text.replacingOccurrences(of: entity, with: character)
            }
            return text
        }
        for name in ["bill_length_mm", #"_*[]<>&"'`$"#, "a**b**c", "x~~y~~", "__init__"] {
            let markdown = """
                # Model card: \(Markdown.escaped(name))

                Predicts **\(Markdown.escaped(name))**, one of 2 classes: \(Markdown.code(name)), `b`.

                | column | type |
                | --- | --- |
                | \(Markdown.escaped(name)) | float |

                By \(Markdown.escaped(name)) (accuracy): \(Markdown.escaped(name)) 0.900 (10 rows).

                """
            let html = Pages.modelCardPage(markdown: markdown, title: "card")
            let body = String(html[html.range(of: "<body>")!.upperBound...])
            for tag in ["<em>", "<del>", "<s>", "<a "] {
                #expect(!body.contains(tag), "\(name) became markup (\(tag)): \(body)")
            }
            #expect(body.components(separatedBy: "<strong>").count == 2, "only the one bold label: \(body)")
            let text = visible(body)
            #expect(text.contains("Model card: \(name)"), "\(name): \(text)")
            #expect(text.contains("Predicts \(name), one of 2 classes: \(name), b."), "\(name): \(text)")
            #expect(text.contains("By \(name) (accuracy): \(name) 0.900"), "\(name): \(text)")
        }
    }

    @Test("compare shows differing parameters and draws the per-iteration metric of each run")
    func compare() async throws {
        let fixture = try await DashboardFixture.make()
        let a = fixture.completed.run.id
        let b = fixture.other.run.id
        try await fixture.test { client in
            let html = try await client.execute(uri: "/compare?runs=\(a)&runs=\(b)", method: .get).text
            #expect(
                html.contains(#"<tr data-key="train.rounds" class="differs"><th>train.rounds</th><td>5</td><td>8</td>"#)
            )
            #expect(html.contains(#"<svg class="chart""#))
            #expect(html.contains(#"data-run="\#(a)""#) && html.contains(#"data-run="\#(b)""#))
            let api = try await client.execute(uri: "/api/compare?runs=\(a),\(b)", method: .get).json()
            #expect((api["differing"] as? [String])?.contains("train.rounds") == true)
            let series = try #require((api["series"] as? [String: Any])?["train.loss"] as? [String: [[String: Any]]])
            #expect(series[b]?.count == 8)
            let one = try await client.execute(uri: "/api/compare?runs=\(a)", method: .get)
            #expect(one.status == .badRequest)
        }
    }

    @Test("the lineage graph links an artifact to its producer and every consumer across runs")
    func lineage() async throws {
        let fixture = try await DashboardFixture.make()
        let data = try fixture.artifact("data")
        try await fixture.test { client in
            let graph = try await client.execute(uri: "/api/artifacts/\(data.id)/lineage", method: .get).json()
            let nodes = try #require(graph["nodes"] as? [[String: Any]])
            let consumerRuns = Set(
                nodes.filter { $0["label"] as? String == "train" }.compactMap { $0["runID"] as? String })
            #expect(consumerRuns.isSuperset(of: [fixture.completed.run.id, fixture.other.run.id]))
            let html = try await client.execute(uri: "/artifacts/\(data.id)/lineage", method: .get).text
            #expect(html.contains(#"class="node artifact root" data-node="\#(data.id)""#))
            #expect(html.contains(#"<a href="/runs/\#(fixture.completed.run.id)/steps/data">"#))
        }
    }

    @Test("the live stream sends a change event when a run's records change")
    func liveEvents() async throws {
        let fixture = try await DashboardFixture.make()
        let app = try Dashboard(
            stack: fixture.stack,
            configuration: DashboardConfiguration(
                host: "127.0.0.1", port: 0, requireTokens: false, pollInterval: .milliseconds(100))
        ).application()
        try await app.test(.live) { client in
            let port = try #require(client.port)
            let output = fixture.directory.path("events.txt")
            let curl = try Process.run(
                URL(fileURLWithPath: "/usr/bin/env"),
                arguments: [
                    "curl", "-sN", "--max-time", "60", "-o", output.path, "http://127.0.0.1:\(port)/events/runs",
                ])
            defer { if curl.isRunning { curl.terminate() } }
            func received(_ marker: String) async throws -> Bool {
                for _ in 0..<400 {
                    if let text = try? String(contentsOf: output, encoding: .utf8), text.contains(marker) {
                        return true
                    }
                    try await Task.sleep(for: .milliseconds(50))
                }
                return false
            }
            #expect(try await received(": connected"))
            _ = try await fixture.stack.engine().run(DashboardFixture.pipeline, config: RunConfig())
            #expect(try await received("event: change\ndata: 1"))
            curl.terminate()
            let events = try String(contentsOf: output, encoding: .utf8)
            #expect(events.hasPrefix("retry: 2000\n: connected\n\n"))
        }
    }

    @Test("datasets and model lists answer as JSON too; unknown records are 404 with the reason")
    func apiErrors() async throws {
        let fixture = try await DashboardFixture.make()
        try await fixture.test { client in
            let models = try await client.execute(uri: "/api/models", method: .get)
            #expect(models.text.contains(#""name":"churn""#))
            let missing = try await client.execute(uri: "/api/runs/run-nope", method: .get)
            #expect(missing.status == .notFound)
            #expect(try missing.json()["error"] as? String == "no run matches 'run-nope'")
            let artifact = try await client.execute(uri: "/api/artifacts/art-nope", method: .get)
            #expect(artifact.status == .notFound)
            let datasets = try await client.execute(uri: "/api/datasets", method: .get)
            #expect(datasets.status == .ok && datasets.text == "[]")
            let cancel = try await client.execute(uri: "/api/runs/\(fixture.completed.run.id)/cancel", method: .post)
            #expect(cancel.status == .conflict)
            #expect(cancel.text.contains("is not running"))
        }
    }
}

@Suite("Dashboard over the team's PostgreSQL store (a real server)")
struct DashboardPostgresTests {
    @Test("pages, lineage, promotion and tokens read and write a PostgreSQL store as they do SQLite")
    func postgres() async throws {
        let fixture = try await DashboardFixture.make(postgres: true)
        #expect(fixture.stack.metadataLocation.hasPrefix("postgres://"))
        let (writer, secret) = AccessToken.make(name: "ops", canWrite: true, createdBy: "test")
        try await fixture.stack.tokens.insertToken(writer)
        let auth: HTTPFields = [.authorization: "Bearer \(secret)", .contentType: "application/json"]
        try await fixture.test(requireTokens: true) { client in
            let runs = try await client.execute(uri: "/api/runs?status=failed", method: .get, headers: auth).json()
            #expect((runs["runs"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == [fixture.failed.run.id])
            let page = try await client.execute(uri: "/runs/\(fixture.failed.run.id)", method: .get, headers: auth)
            #expect(page.text.contains(#"<g class="node skipped" data-node="publish""#))
            let data = try fixture.artifact("data")
            let lineage = try await client.execute(
                uri: "/api/artifacts/\(data.id)/lineage", method: .get, headers: auth
            ).json()
            #expect((lineage["nodes"] as? [[String: Any]])?.count ?? 0 > 4)
            let promoted = try await client.execute(
                uri: "/api/models/churn/versions/2/stage", method: .post, headers: auth,
                body: ByteBuffer(string: #"{"stage":"production","reason":"team store"}"#))
            #expect(promoted.status == .ok, "\(promoted.text)")
            #expect(try await fixture.stack.metadata.productionVersion("churn")?.version == 2)
            #expect(try await client.execute(uri: "/api/runs", method: .get).status == .unauthorized)
        }
        await fixture.stack.close()
    }
}

@Suite("Dashboard access tokens")
struct DashboardAccessTests {
    @Test("with tokens required: no token is 401, a read token reads but cannot promote (403), revoked is 401")
    func tokens() async throws {
        let fixture = try await DashboardFixture.make()
        let (reader, readSecret) = AccessToken.make(name: "ci", canWrite: false, createdBy: "test")
        let (writer, writeSecret) = AccessToken.make(name: "ops", canWrite: true, createdBy: "test")
        try await fixture.stack.tokens.insertToken(reader)
        try await fixture.stack.tokens.insertToken(writer)
        try await fixture.test(requireTokens: true) { client in
            let anonymous = try await client.execute(uri: "/api/runs", method: .get)
            #expect(anonymous.status == .unauthorized)
            #expect(anonymous.headers[.wwwAuthenticate] == "Bearer")
            let page = try await client.execute(uri: "/runs/\(fixture.completed.run.id)", method: .get)
            #expect(page.status == .seeOther)
            #expect(page.headers[.location]?.hasPrefix("/login?next=") == true)
            #expect(try await client.execute(uri: "/static/dashboard.css", method: .get).status == .ok)
            let wrong = try await client.execute(
                uri: "/api/runs", method: .get, headers: [.authorization: "Bearer sluice_guess"])
            #expect(wrong.status == .unauthorized)

            let read: HTTPFields = [.authorization: "Bearer \(readSecret)", .contentType: "application/json"]
            #expect(try await client.execute(uri: "/api/runs", method: .get, headers: read).status == .ok)
            #expect(try await client.execute(uri: "/models/churn", method: .get, headers: read).status == .ok)
            let promote = try await client.execute(
                uri: "/api/models/churn/versions/2/stage", method: .post, headers: read,
                body: ByteBuffer(string: #"{"stage":"production","reason":"try"}"#))
            #expect(promote.status == .forbidden)
            #expect(promote.text.contains("--write"))

            let write: HTTPFields = [.authorization: "Bearer \(writeSecret)", .contentType: "application/json"]
            let promoted = try await client.execute(
                uri: "/api/models/churn/versions/2/stage", method: .post, headers: write,
                body: ByteBuffer(string: #"{"stage":"production","reason":"better"}"#))
            #expect(promoted.status == .ok, "\(promoted.text)")
            #expect(try await fixture.stack.metadata.stageChanges("churn").last?.by == "token:ops")

            _ = try await fixture.stack.tokens.revokeToken("ci", at: Date())
            #expect(try await client.execute(uri: "/api/runs", method: .get, headers: read).status == .unauthorized)

            // A browser signs in once: the cookie then opens pages.
            let login = try await client.execute(
                uri: "/login", method: .post, headers: [.contentType: "application/x-www-form-urlencoded"],
                body: ByteBuffer(string: "token=\(writeSecret)&next=%2Fmodels"))
            #expect(login.status == .seeOther)
            #expect(login.headers[.location] == "/models")
            let cookie = try #require(login.headers[.setCookie])
            #expect(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"))
            let cookieValue = String(cookie.prefix { $0 != ";" })
            #expect(
                try await client.execute(uri: "/models", method: .get, headers: [.cookie: cookieValue]).status == .ok)
            let refused = try await client.execute(
                uri: "/login", method: .post, headers: [.contentType: "application/x-www-form-urlencoded"],
                body: ByteBuffer(string: "token=\(readSecret)&next=%2F%2Fevil.example"))
            #expect(refused.status == .unauthorized, "a revoked token does not sign in")
        }
    }

    @Test("a state change from another site's page is refused, whatever the token")
    func crossSiteRefused() async throws {
        let fixture = try await DashboardFixture.make()
        try await fixture.test { client in
            let response = try await client.execute(
                uri: "/models/churn/rollback", method: .post,
                headers: [.contentType: "application/x-www-form-urlencoded", .origin: "http://evil.example"],
                body: ByteBuffer(string: "reason=gotcha"))
            #expect(response.status == .forbidden)
            #expect(try await fixture.stack.metadata.productionVersion("churn")?.version == 1)
        }
    }

    @Test("tokens are required by default beyond loopback, not on it")
    func defaults() {
        #expect(DashboardConfiguration(host: "127.0.0.1").requireTokens == false)
        #expect(DashboardConfiguration(host: "localhost").requireTokens == false)
        #expect(DashboardConfiguration(host: "0.0.0.0").requireTokens == true)
        #expect(DashboardConfiguration(host: "10.1.2.3").requireTokens == true)
        #expect(DashboardConfiguration(host: "127.0.0.1", requireTokens: true).requireTokens == true)
    }

    @Test("a sign-in redirect only goes to a path on this server")
    func safeNext() {
        #expect(Dashboard.safeNext("/runs/run-1") == "/runs/run-1")
        #expect(Dashboard.safeNext("//evil.example/x") == "/runs")
        #expect(Dashboard.safeNext("https://evil.example") == "/runs")
        #expect(Dashboard.safeNext(nil) == "/runs")
    }
}

@Suite("Dashboard graph layout")
struct GraphLayoutTests {
    @Test("columns follow the longest path from a source; rows are ordered to keep edges from crossing")
    func layout() {
        let layout = GraphLayout(
            nodes: ["a", "b", "c", "d", "e"].map {
                GraphLayout.Node(id: $0, label: $0, detail: "", style: "completed", link: nil, tooltip: $0)
            },
            edges: [("a", "b"), ("b", "c"), ("a", "c"), ("a", "e"), ("d", "e")])
        let placed = layout.place()
        #expect(placed["a"]?.column == 0 && placed["d"]?.column == 0)
        #expect(placed["b"]?.column == 1 && placed["e"]?.column == 1)
        #expect(placed["c"]?.column == 2, "the longest path a → b → c")
        #expect(placed["a"]!.row < placed["d"]!.row)
        #expect(placed["b"]!.row < placed["e"]!.row, "b follows a, e sits between a and d")
        let svg = layout.svg(id: "g")
        #expect(svg.components(separatedBy: #"<path class="edge""#).count == 6)
        #expect(svg.contains(#"data-from="a" data-to="c""#))
    }

    @Test("text placed in the graph is escaped")
    func escaping() {
        let layout = GraphLayout(
            nodes: [
                GraphLayout.Node(
                    id: "x", label: "<script>", detail: "a&b", style: "completed", link: "/runs/\"x", tooltip: "'")
            ], edges: [])
        let svg = layout.svg(id: "g")
        #expect(!svg.contains("<script>"))
        #expect(svg.contains("&lt;script&gt;") && svg.contains("a&amp;b") && svg.contains("/runs/&quot;x"))
    }
}
