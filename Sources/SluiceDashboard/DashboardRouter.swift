import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdAuth
import Logging
import Mustache
import ServiceLifecycle
import SluiceCore
import SluiceML
import SluiceTracking
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The routes: every page, API call, action and live stream, and what it answers with.
extension Dashboard {
    // MARK: Routes

    func router() -> Router<DashboardContext> {
        let router = Router(context: DashboardContext.self)
        router.add(middleware: ErrorPages(dashboard: self))
        router.add(middleware: TokenAuthenticator(tokens: tokens, required: configuration.requireTokens))
        router.add(middleware: AccessGate(required: configuration.requireTokens))

        // MLflow's tracking protocol: writes need a write token where tokens are required.
        MLflowProtocol<DashboardContext>(
            store: tracking, artifacts: data.artifacts,
            canWrite: { _, context in context.identity?.canWrite == true }
        ).register(on: router)
        router.get("health") { _, _ in "OK" }
        if configuration.trackingOnly { return router }

        router.get("/") { _, _ in Self.redirect("/runs") }
        router.get("favicon.ico") { _, _ in Self.asset(Assets.icon, type: "image/svg+xml") }
        router.get("static/dashboard.css") { _, _ in Self.asset(Assets.css, type: "text/css; charset=utf-8") }
        router.get("static/dashboard.js") { _, _ in
            Self.asset(Assets.javascript, type: "text/javascript; charset=utf-8")
        }
        router.get("login") { request, _ in
            try self.page(
                "login", title: "Sign in",
                [
                    "text": "This dashboard needs an access token.",
                    "next": Self.safeNext(request.uri.queryParameters.get("next")),
                ])
        }
        router.post("login") { request, context in try await self.login(request, context: context) }

        // Pages
        router.get("runs") { request, _ in try await self.runsPage(request) }
        router.get("runs/{run}") { _, context in try await self.runPage(context.parameters.require("run")) }
        router.get("runs/{run}/steps/{step}") { _, context in
            try await self.stepPage(context.parameters.require("run"), context.parameters.require("step"))
        }
        router.get("runs/{run}/steps/{step}/log") { _, context in
            try await self.wholeLog(context.parameters.require("run"), context.parameters.require("step"))
        }
        router.post("runs/{run}/cancel") { _, context in
            try Self.requireWrite(context)
            let run = try context.parameters.require("run")
            let message = try await self.cancel(run)
            return try self.page(
                "message", title: "Cancelling",
                ["heading": "Cancelling run", "text": message, "back": "/runs/\(run)", "backLabel": "Back to the run"])
        }
        router.post("runs/{run}/tags") { request, context in
            try Self.requireWrite(context)
            let run = try context.parameters.require("run")
            let form = try await Self.form(request, context: context)
            try await self.changeTags(
                run, set: form["key"].map { [$0: form["value"] ?? ""] } ?? [:],
                remove: form["remove"].map { [$0] } ?? [])
            return Self.redirect("/runs/\(Self.pathComponent(run))")
        }
        router.post("runs/{run}/note") { request, context in
            try Self.requireWrite(context)
            let run = try context.parameters.require("run")
            let form = try await Self.form(request, context: context, limit: 64 * 1024)
            try await self.saveNote(run, form["note"] ?? "")
            return Self.redirect("/runs/\(Self.pathComponent(run))")
        }
        router.get("parallel") { request, _ in try await self.parallelPage(request) }
        router.get("artifacts/{artifact}") { _, context in
            try await self.artifactPage(context.parameters.require("artifact"))
        }
        router.get("artifacts/{artifact}/view") { _, context in
            try await self.artifactView(context.parameters.require("artifact"))
        }
        router.get("artifacts/{artifact}/download") { _, context in
            try await self.download(context.parameters.require("artifact"))
        }
        router.get("artifacts/{artifact}/lineage") { _, context in
            try await self.lineagePage(context.parameters.require("artifact"))
        }
        router.get("models") { _, _ in
            try self.page(
                "models", title: "Models", nav: "Models",
                ["models": try await self.data.metadata.registeredModels().map(Self.modelRow)])
        }
        router.get("models/{model}") { request, context in
            try await self.modelPage(
                context.parameters.require("model"), notice: request.uri.queryParameters.get("notice"))
        }
        router.post("models/{model}/versions/{version}/stage") { request, context in
            try Self.requireWrite(context)
            let model = try context.parameters.require("model")
            let version = try context.parameters.require("version", as: Int.self)
            let form = try await Self.form(request, context: context)
            guard let stage = form["stage"].flatMap(ModelStage.init(rawValue:)) else {
                throw DashboardError.badRequest(
                    "choose a stage: one of \(ModelStage.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            let moved = try await self.data.metadata.moveModelVersion(
                model, version: version, to: stage,
                expecting: try await self.expectation(
                    model, moving: version, production: form["expected_production"], stage: form["expected_stage"]),
                by: context.identity?.name ?? Viewer.local.name, reason: try Self.reason(form["reason"]))
            return Self.redirect(
                "/models/\(Self.pathComponent(model))?notice="
                    + Self.queryValue("Moved v\(moved.version) to \(moved.stage.rawValue)."))
        }
        router.post("models/{model}/rollback") { request, context in
            try Self.requireWrite(context)
            let model = try context.parameters.require("model")
            let form = try await Self.form(request, context: context)
            let restored = try await self.data.metadata.rollback(
                model, expectedProduction: try Self.expectedRollback(form["expected_production"]),
                by: context.identity?.name ?? Viewer.local.name, reason: try Self.reason(form["reason"]))
            return Self.redirect(
                "/models/\(Self.pathComponent(model))?notice="
                    + Self.queryValue("Rolled back: v\(restored.version) is in production again."))
        }
        router.get("compare") { request, _ in try await self.comparePage(request) }
        router.get("datasets") { _, _ in
            try self.page(
                "datasets", title: "Datasets", nav: "Datasets", Pages.datasets(try await self.data.datasets()))
        }
        router.get("features") { _, _ in
            try self.page(
                "features", title: "Features", nav: "Features", Pages.features(try await self.data.features()))
        }

        // Live updates
        router.get("events/runs") { _, _ in
            self.events { try await self.runsFingerprint() }
        }
        router.get("events/runs/{run}") { _, context in
            let run = try context.parameters.require("run")
            return self.events { try await self.runFingerprint(run) }
        }

        // The JSON API
        router.get("api/runs") { request, _ in Self.json(try await self.data.runs(try Self.runQuery(request))) }
        router.get("api/runs/search") { request, _ in
            let page = try await self.data.tracking.searchRuns(try Self.runSearch(request))
            return Self.json(SearchAPI(runs: page.items, nextPageToken: page.nextPageToken))
        }
        router.post("api/runs/{run}/tags") { request, context in
            try Self.requireWrite(context)
            let run = try context.parameters.require("run")
            let body = try JSONValue.parse(Data(buffer: try await request.body.collect(upTo: 1 << 20)))
            var set: [String: String] = [:]
            for (key, value) in body["set"]?.object ?? [:] { set[key] = value.text ?? "" }
            try await self.changeTags(run, set: set, remove: (body["remove"]?.array ?? []).compactMap(\.text))
            return Self.json(try await self.data.tracking.trackedRun(run)?.tags ?? [:])
        }
        router.post("api/runs/{run}/note") { request, context in
            try Self.requireWrite(context)
            let run = try context.parameters.require("run")
            let body = try JSONValue.parse(Data(buffer: try await request.body.collect(upTo: 1 << 20)))
            try await self.saveNote(run, body["note"]?.text ?? "")
            return Self.json(["note": try await self.data.tracking.trackedRun(run)?.note ?? ""])
        }
        router.get("api/runs/{run}") { _, context in
            let run = try context.parameters.require("run")
            guard let details = try await self.data.run(run) else {
                throw DashboardError.notFound("no run matches '\(run)'")
            }
            return Self.json(details)
        }
        router.get("api/runs/{run}/steps/{step}") { _, context in
            let (details, step) = try await self.requireStep(
                context.parameters.require("run"), context.parameters.require("step"))
            let stepRun = try await self.data.metadata.stepRun(step.id)
            let log = stepRun.flatMap { self.data.logTail($0) }
            return Self.json(StepAPI(run: details.run, step: step, logTail: log?.text, logBytes: log?.size))
        }
        router.post("api/runs/{run}/cancel") { _, context in
            try Self.requireWrite(context)
            return Self.json(
                ["message": try await self.cancel(try context.parameters.require("run"))], status: .accepted)
        }
        router.get("api/artifacts/{artifact}") { _, context in
            Self.json(try await self.requireArtifact(context.parameters.require("artifact")))
        }
        router.get("api/artifacts/{artifact}/lineage") { request, context in
            let details = try await self.requireArtifact(context.parameters.require("artifact"))
            let depth = request.uri.queryParameters.get("depth").flatMap(Int.init)
            return Self.json(try await self.data.lineage(of: details.artifact, depth: depth))
        }
        router.get("api/models") { _, _ in Self.json(try await self.data.metadata.registeredModels()) }
        router.get("api/features") { _, _ in Self.json(try await self.data.features()) }
        router.get("api/models/{model}") { _, context in
            let model = try context.parameters.require("model")
            guard let details = try await self.data.model(model) else {
                throw DashboardError.notFound("no model named '\(model)'")
            }
            return Self.json(details)
        }
        router.post("api/models/{model}/versions/{version}/stage") { request, context in
            try Self.requireWrite(context)
            let body = try await request.decode(as: StageRequest.self, context: context)
            guard let stage = ModelStage(rawValue: body.stage) else {
                throw DashboardError.badRequest(
                    "unknown stage '\(body.stage)': use one of \(ModelStage.allCases.map(\.rawValue).joined(separator: ", "))"
                )
            }
            let model = try context.parameters.require("model")
            let version = try context.parameters.require("version", as: Int.self)
            return Self.json(
                try await self.data.metadata.moveModelVersion(
                    model, version: version, to: stage,
                    expecting: try await self.expectation(
                        model, moving: version, production: body.expectedProduction?.text,
                        stage: body.expectedStage),
                    by: context.identity?.name ?? Viewer.local.name, reason: try Self.reason(body.reason)))
        }
        router.post("api/models/{model}/rollback") { request, context in
            try Self.requireWrite(context)
            let body = try await request.decode(as: RollbackRequest.self, context: context)
            return Self.json(
                try await self.data.metadata.rollback(
                    try context.parameters.require("model"),
                    expectedProduction: try Self.expectedRollback(body.expectedProduction?.text),
                    by: context.identity?.name ?? Viewer.local.name, reason: try Self.reason(body.reason)))
        }
        router.get("api/compare") { request, _ in
            let runs = Self.runList(request)
            guard runs.count >= 2 else { throw DashboardError.badRequest("give at least two runs: ?runs=A,B") }
            return Self.json(try await self.data.compare(runs))
        }
        router.get("api/datasets") { _, _ in Self.json(try await self.data.datasets()) }
        return router
    }

    struct StepAPI: Codable {
        var run: DashboardData.RunSummary
        var step: DashboardData.StepSummary
        var logTail: String?
        var logBytes: Int?
    }

    struct StageRequest: Decodable {
        var stage: String
        var reason: String?
        /// The production version the move was decided on: a number, or "none".
        var expectedProduction: VersionOrNone?
        /// The stage the moved version was seen in.
        var expectedStage: String?

        enum CodingKeys: String, CodingKey {
            case stage, reason
            case expectedProduction = "expected_production"
            case expectedStage = "expected_stage"
        }
    }

    struct RollbackRequest: Decodable {
        var reason: String?
        var expectedProduction: VersionOrNone?

        enum CodingKeys: String, CodingKey {
            case reason
            case expectedProduction = "expected_production"
        }
    }

    /// A JSON version number or the string "none".
    struct VersionOrNone: Decodable {
        var text: String

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let number = try? container.decode(Int.self) {
                text = String(number)
            } else {
                text = try container.decode(String.self)
            }
        }
    }

    /// What a stage form or request expects: the fields it sent (the state its page showed), and for those it left
    /// out, what the registry holds now.
    func expectation(_ model: String, moving version: Int, production: String?, stage: String?) async throws
        -> StageExpectation
    {
        var expected: Int??
        if let production, !production.isEmpty {
            guard let parsed = StageExpectation.productionVersion(parsing: production) else {
                throw DashboardError.badRequest(
                    "expected_production must be a version number or \"none\", not '\(production)'")
            }
            expected = parsed
        }
        var expectation = try await data.metadata.expectation(model, moving: version, production: expected)
        if let stage, !stage.isEmpty {
            guard let parsed = ModelStage(rawValue: stage) else {
                throw DashboardError.badRequest(
                    "expected_stage must be one of \(ModelStage.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            expectation.stage = parsed
        }
        return expectation
    }

    /// The production version a rollback form or request expects to replace, if it names one.
    static func expectedRollback(_ text: String?) throws -> Int? {
        guard let text, !text.isEmpty else { return nil }
        guard let parsed = StageExpectation.productionVersion(parsing: text), let version = parsed else {
            throw DashboardError.badRequest("expected_production must be the version number in production")
        }
        return version
    }
}
