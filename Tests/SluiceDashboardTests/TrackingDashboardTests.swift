import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import SluiceCore
import SluiceTesting
import Testing

@testable import SluiceDashboard

@Suite("Tracked runs on the dashboard")
struct TrackingDashboardTests {
    /// Three tracked runs in experiment `fraud` with a loss series, params and an AUC each.
    static func trackedRuns(_ fixture: DashboardFixture) async throws -> [RunID] {
        let tracker = Tracker(stack: fixture.stack)
        var ids: [RunID] = []
        for (index, (learner, auc)) in [("gbdt", 0.91), ("linear", 0.78), ("gbdt", 0.95)].enumerated() {
            let id = try await tracker.run(experiment: "fraud", name: "trial-\(index)") { run in
                try await run.log(params: ["learner": learner, "depth": "\(index + 3)"])
                for round in 0..<5 { try await run.log(metric: "loss", 1.0 / Double(round + 1 + index), step: round) }
                try await run.log(metric: "auc", auc)
                return run.id
            }
            ids.append(id)
        }
        return ids
    }

    @Test(
        "a tracked run's page shows its params, metrics, loss curve, tags and rendered note, HTML in the note as text")
    func runPage() async throws {
        let fixture = try await DashboardFixture.make()
        let ids = try await Self.trackedRuns(fixture)
        try await fixture.stack.tracking.log(
            RunLogBatch(tags: [
                KeyValue("team", "fraud"), KeyValue(TrackedRun.noteTag, "**Best** so far <script>alert(1)</script>"),
            ]), to: ids[2])
        try await fixture.test { client in
            let page = try await client.execute(uri: "/runs/\(ids[2])", method: .get)
            #expect(page.status == .ok)
            #expect(page.text.contains("trial-2 · tracked run"))
            #expect(page.text.contains(#"<tr data-metric="auc"><td>auc</td><td class="num">0.95</td>"#))
            #expect(page.text.contains(#"<figure class="chart" data-metric="loss">"#))
            #expect(page.text.contains(#"<tr data-tag="team"><td>team</td><td>fraud</td>"#))
            #expect(page.text.contains("<strong>Best</strong> so far &lt;script&gt;"))
            #expect(!page.text.contains("<script>alert(1)</script>"))
            #expect(!page.text.contains("<h2>Graph</h2>"))
            // A pipeline run keeps its graph and gets the tags and note section too.
            let pipeline = try await client.execute(uri: "/runs/\(fixture.completed.run.id)", method: .get)
            #expect(pipeline.text.contains("<h2>Graph</h2>") && pipeline.text.contains(#"id="note-form""#))
        }
    }

    @Test("tags and notes are edited from the page and the API, with a write token where tokens are required")
    func editing() async throws {
        let fixture = try await DashboardFixture.make()
        let ids = try await Self.trackedRuns(fixture)
        let (reader, readSecret) = AccessToken.make(name: "ci", canWrite: false, createdBy: "test")
        let (writer, writeSecret) = AccessToken.make(name: "ops", canWrite: true, createdBy: "test")
        try await fixture.stack.tokens.insertToken(reader)
        try await fixture.stack.tokens.insertToken(writer)
        try await fixture.test(requireTokens: true) { client in
            let read: HTTPFields = [.authorization: "Bearer \(readSecret)", .contentType: "application/json"]
            let write: HTTPFields = [.authorization: "Bearer \(writeSecret)", .contentType: "application/json"]
            let refused = try await client.execute(
                uri: "/api/runs/\(ids[0])/tags", method: .post, headers: read,
                body: ByteBuffer(string: #"{"set": {"team": "ads"}}"#))
            #expect(refused.status == .forbidden)
            let tagged = try await client.execute(
                uri: "/api/runs/\(ids[0])/tags", method: .post, headers: write,
                body: ByteBuffer(string: #"{"set": {"team": "ads", "stage": "review"}}"#))
            #expect(tagged.status == .ok, "\(tagged.text)")
            let removed = try await client.execute(
                uri: "/api/runs/\(ids[0])/tags", method: .post, headers: write,
                body: ByteBuffer(string: #"{"remove": ["stage"]}"#))
            #expect(removed.status == .ok)
            let noted = try await client.execute(
                uri: "/api/runs/\(fixture.completed.run.id)/note", method: .post, headers: write,
                body: ByteBuffer(string: #"{"note": "checked by *ops*"}"#))
            #expect(noted.status == .ok)
            var form = write
            form[.contentType] = "application/x-www-form-urlencoded"
            let viaForm = try await client.execute(
                uri: "/runs/\(ids[1])/tags", method: .post, headers: form,
                body: ByteBuffer(string: "key=owner&value=ada"))
            #expect(viaForm.status == .seeOther)
            let badKey = try await client.execute(
                uri: "/runs/\(ids[1])/tags", method: .post, headers: form,
                body: ByteBuffer(string: "key=a%2F..%2Fb&value=x"))
            #expect(badKey.status == .badRequest)
        }
        #expect(try await fixture.stack.tracking.trackedRun(ids[0])?.tags["team"] == "ads")
        #expect(try await fixture.stack.tracking.trackedRun(ids[0])?.tags["stage"] == nil)
        #expect(try await fixture.stack.tracking.trackedRun(ids[1])?.tags["owner"] == "ada")
        #expect(try await fixture.stack.tracking.trackedRun(fixture.completed.run.id)?.note == "checked by *ops*")
    }

    @Test("the search API and the runs page filter with MLflow's syntax; a bad filter is a 400 naming the column")
    func search() async throws {
        let fixture = try await DashboardFixture.make()
        let ids = try await Self.trackedRuns(fixture)
        try await fixture.test { client in
            let found = try await client.execute(
                uri:
                    "/api/runs/search?filter=\(Dashboard.queryValue("metrics.auc > 0.8 and params.learner = 'gbdt'"))&order_by=\(Dashboard.queryValue("metrics.auc DESC"))",
                method: .get)
            #expect(found.status == .ok, "\(found.text)")
            let runs = try #require(try found.json()["runs"] as? [[String: Any]])
            #expect(runs.compactMap { $0["id"] as? String } == [ids[2], ids[0]])
            let page = try await client.execute(
                uri: "/runs?filter=\(Dashboard.queryValue("params.learner = 'linear'"))", method: .get)
            #expect(page.text.contains("data-run=\"\(ids[1])\"") && !page.text.contains("data-run=\"\(ids[0])\""))
            let bad = try await client.execute(
                uri: "/api/runs/search?filter=\(Dashboard.queryValue("metrics.auc >> 1"))", method: .get)
            #expect(bad.status == .badRequest)
            #expect(bad.text.contains("column 14"))
        }
    }

    @Test("compare overlays tracked runs' loss curves; the params page draws runs against a metric")
    func compareAndParallel() async throws {
        let fixture = try await DashboardFixture.make()
        let ids = try await Self.trackedRuns(fixture)
        try await fixture.test { client in
            let compare = try await client.execute(uri: "/compare?runs=\(ids[0])&runs=\(ids[1])", method: .get)
            #expect(compare.status == .ok)
            #expect(compare.text.contains("learner") && compare.text.contains("<svg"))
            let experiment = try #require(try await fixture.stack.tracking.experiment(named: "fraud"))
            let parallel = try await client.execute(
                uri: "/parallel?experiment=\(experiment.id)&metric=auc", method: .get)
            #expect(parallel.status == .ok)
            #expect(parallel.text.contains(#"<figure class="chart" id="parallel">"#))
            for id in ids { #expect(parallel.text.contains(#"data-run="\#(id)""#)) }
            #expect(parallel.text.contains(">learner</text>") && parallel.text.contains(">auc</text>"))
        }
    }
}
