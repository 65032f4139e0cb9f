import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdAuth
import Logging
import Mustache
import ServiceLifecycle
import SluiceCore
import SluiceML
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// How `sluice ui` serves: where it binds, and whether every request needs an access token.
public struct DashboardConfiguration: Sendable {
    /// The address to bind (`127.0.0.1` by default).
    public var host: String
    /// The port (0: any free port).
    public var port: Int
    /// Whether every page and API call needs a token. Defaults to true for any address other than loopback.
    public var requireTokens: Bool
    /// How often live pages check the store for changes.
    public var pollInterval: Duration

    /// Creates a configuration; `requireTokens` nil means "when bound beyond loopback".
    public init(
        host: String = "127.0.0.1", port: Int = 8090, requireTokens: Bool? = nil,
        pollInterval: Duration = .milliseconds(500)
    ) {
        self.host = host
        self.port = port
        self.requireTokens = requireTokens ?? !Self.isLoopback(host)
        self.pollInterval = pollInterval
    }

    /// Whether an address only accepts connections from this machine.
    public static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}

/// The team's window onto a stack: runs and their graphs, steps and logs, artifacts with their pictures, lineage,
/// models with promotion and rollback, run comparison and datasets, as server-rendered pages (live while runs
/// change) and the same data as JSON under `/api/`.
public struct Dashboard: Sendable {
    let data: DashboardData
    let configuration: DashboardConfiguration
    let stackLabel: String
    let library: MustacheLibrary
    let logger: Logger

    /// A dashboard over `stack`'s metadata store, model registry and artifact store.
    public init(stack: Stack, configuration: DashboardConfiguration = DashboardConfiguration()) throws {
        self.init(
            metadata: stack.metadata, artifacts: stack.artifacts,
            logDirectory: stack.workDirectory.appending(path: "logs"),
            stackLabel: "stack \(stack.name) · \(stack.metadataLocation)", configuration: configuration)
    }

    init(
        metadata: any MetadataStore & ModelRegistry, artifacts: any ArtifactStore, logDirectory: URL,
        stackLabel: String, configuration: DashboardConfiguration
    ) {
        data = DashboardData(metadata: metadata, artifacts: artifacts, logDirectory: logDirectory)
        self.configuration = configuration
        self.stackLabel = stackLabel
        // The templates are constants checked by the tests: failing to parse one is a bug, not an input error.
        library = try! Templates.library()
        var logger = Logger(label: "sluice.ui")
        logger.logLevel = .warning
        self.logger = logger
    }

    /// The HTTP application (for embedding and tests); `onRunning` receives the bound port.
    public func application(onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
        Application(
            router: router(),
            configuration: .init(
                address: .hostname(configuration.host, port: configuration.port), serverName: "sluice-ui"),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? 0) },
            logger: logger)
    }

    /// Serves until SIGINT or SIGTERM.
    public func run(onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        try await application(onRunning: onRunning).runService()
    }

    // MARK: Routes

    func router() -> Router<DashboardContext> {
        let router = Router(context: DashboardContext.self)
        router.add(middleware: ErrorPages(dashboard: self))
        router.add(middleware: TokenAuthenticator(metadata: data.metadata, required: configuration.requireTokens))
        router.add(middleware: AccessGate(required: configuration.requireTokens))

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

    // MARK: Pages

    static func runQuery(_ request: Request) throws -> DashboardData.RunQuery {
        let q = request.uri.queryParameters
        var query = DashboardData.RunQuery()
        query.pipeline = q.get("pipeline").flatMap { $0.isEmpty ? nil : $0 }
        if let status = q.get("status"), !status.isEmpty {
            guard let parsed = RunStatus(rawValue: status) else {
                throw DashboardError.badRequest(
                    "unknown status '\(status)': use one of \(RunStatus.allCases.map(\.rawValue).joined(separator: ", "))"
                )
            }
            query.status = parsed
        }
        query.user = q.get("user").flatMap { $0.isEmpty ? nil : $0 }
        if let text = q.get("param"), !text.isEmpty {
            guard let condition = RunParameters.Condition(text) else {
                throw DashboardError.badRequest("a parameter filter is STEP.PARAMETER=VALUE, like train.rounds=50")
            }
            query.parameter = condition
        }
        query.page = max(1, q.get("page").flatMap(Int.init) ?? 1)
        query.perPage = min(200, max(1, q.get("per_page").flatMap(Int.init) ?? 25))
        return query
    }

    func runsPage(_ request: Request) async throws -> Response {
        let query = try Self.runQuery(request)
        let page = try await data.runs(query)
        var context: [String: Any] = [
            "runs": page.runs.map(Pages.runRow), "page": page.page,
            "pipelines": page.pipelines.map { ["name": $0, "selected": $0 == query.pipeline] },
            "statuses": RunStatus.allCases.map { ["name": $0.rawValue, "selected": $0 == query.status] },
            "user": query.user ?? "", "param": request.uri.queryParameters.get("param") ?? "",
            "filtered": query.pipeline != nil || query.status != nil || query.user != nil || query.parameter != nil,
        ]
        func link(_ page: Int) -> String {
            var items: [String] = []
            for key in ["pipeline", "status", "user", "param", "per_page"] {
                if let value = request.uri.queryParameters.get(key), !value.isEmpty {
                    items.append("\(key)=\(Self.queryValue(value))")
                }
            }
            items.append("page=\(page)")
            return "/runs?" + items.joined(separator: "&")
        }
        if page.page > 1 { context["previous"] = link(page.page - 1) }
        if page.hasMore { context["next"] = link(page.page + 1) }
        return try self.page("runs", title: "Runs", nav: "Runs", live: "/events/runs", context)
    }

    func runPage(_ id: String) async throws -> Response {
        guard let details = try await data.run(id) else { throw DashboardError.notFound("no run matches '\(id)'") }
        let run = try await data.metadata.run(details.run.id)
        let cancellable = details.run.status == .running && run.map(Self.isLocal) == true
        return try page(
            "run", title: "Run \(details.run.id)", nav: "Runs", live: "/events/runs/\(details.run.id)",
            Pages.run(details, cancellable: cancellable))
    }

    func requireStep(_ run: String, _ step: String) async throws -> (
        DashboardData.RunDetails, DashboardData.StepSummary
    ) {
        guard let details = try await data.run(run) else { throw DashboardError.notFound("no run matches '\(run)'") }
        guard let summary = details.steps.last(where: { $0.name == step }) else {
            throw DashboardError.notFound("run \(details.run.id) has no step named '\(step)'")
        }
        return (details, summary)
    }

    func stepPage(_ run: String, _ step: String) async throws -> Response {
        let (details, summary) = try await requireStep(run, step)
        let stepRun = try await data.metadata.stepRun(summary.id)
        let log = stepRun.flatMap { data.logTail($0) }
        return try page(
            "step", title: "\(summary.name) · run \(details.run.id)", nav: "Runs",
            live: "/events/runs/\(details.run.id)", Pages.step(summary, run: details.run, log: log))
    }

    func wholeLog(_ run: String, _ step: String) async throws -> Response {
        let (_, summary) = try await requireStep(run, step)
        guard let stepRun = try await data.metadata.stepRun(summary.id), let url = data.logURL(stepRun) else {
            throw DashboardError.notFound("step '\(step)' of run \(run) wrote no log")
        }
        return try Self.file(url, type: "text/plain; charset=utf-8", download: nil)
    }

    func requireArtifact(_ id: String) async throws -> DashboardData.ArtifactDetails {
        guard let details = try await data.artifact(id) else {
            throw DashboardError.notFound("no artifact matches '\(id)'")
        }
        return details
    }

    func artifactPage(_ id: String) async throws -> Response {
        let details = try await requireArtifact(id)
        return try page(
            "artifact", title: "Artifact \(details.artifact.name)", nav: "Runs", Pages.artifact(details, data: data))
    }

    /// An HTML report or a model card, served with a sandboxing Content-Security-Policy: whatever the page holds
    /// runs in an opaque origin, never with the dashboard's cookies or API.
    func artifactView(_ id: String) async throws -> Response {
        let details = try await requireArtifact(id)
        let html: String
        let policy: String
        switch details.visualization {
        case .report?:
            html = String(decoding: try data.content(details.artifact), as: UTF8.self)
            policy =
                "sandbox allow-scripts; default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
                + "script-src 'unsafe-inline'; font-src data:"
        case .modelCard?:
            let bundle = try ModelBundle.load(try data.content(details.artifact))
            html = Pages.modelCardPage(markdown: bundle.card, title: "Model card: \(bundle.name)")
            policy = "sandbox; default-src 'none'; style-src 'unsafe-inline'"
        default:
            throw DashboardError.notFound(
                "artifact \(details.artifact.id) (\(details.artifact.typeName)) has no page view")
        }
        var response = Self.html(html)
        response.headers[.contentSecurityPolicy] = policy
        response.headers[.xContentTypeOptions] = "nosniff"
        return response
    }

    func download(_ id: String) async throws -> Response {
        let details = try await requireArtifact(id)
        let artifact = details.artifact
        let name = Self.downloadName(artifact)
        if let url = data.artifacts.url(for: artifact.uri) {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
                throw DashboardError.notFound("artifact \(artifact.id)'s content is gone from the artifact store")
            }
            if isDirectory.boolValue {
                throw DashboardError.conflict(
                    "artifact \(artifact.id) is a folder; copy it from the artifact store: \(artifact.uri)")
            }
            return try Self.file(url, type: "application/octet-stream", download: name)
        }
        var response = Self.bytes(try data.content(artifact), type: "application/octet-stream")
        response.headers[.contentDisposition] = "attachment; filename=\"\(name)\""
        return response
    }

    func lineagePage(_ id: String) async throws -> Response {
        let details = try await requireArtifact(id)
        let graph = try await data.lineage(of: details.artifact)
        return try page(
            "lineage", title: "Lineage of \(details.artifact.name)", nav: "Runs",
            [
                "id": details.artifact.id, "name": details.artifact.name,
                "graph": Pages.lineageGraph(graph).svg(id: "lineage", focus: graph.root),
            ])
    }

    func modelPage(_ name: String, notice: String?) async throws -> Response {
        guard let details = try await data.model(name) else {
            let known = try await data.metadata.registeredModels().map(\.name)
            throw DashboardError.notFound(
                "no model named '\(name)'" + (known.closest(to: name).map { "; did you mean '\($0)'?" } ?? ""))
        }
        return try page("model", title: "Model \(name)", nav: "Models", Pages.model(details, notice: notice))
    }

    static func runList(_ request: Request) -> [String] {
        request.uri.queryParameters.getAll("runs").flatMap { $0.split(separator: ",").map(String.init) }
            .filter { !$0.isEmpty }
    }

    func comparePage(_ request: Request) async throws -> Response {
        let runs = Self.runList(request)
        if runs.count < 2 {
            let recent = try await data.metadata.runs(RunFilter(limit: 30)).map(DashboardData.RunSummary.init)
            return try page(
                "compare", title: "Compare runs", nav: "Compare",
                ["recent": recent.map(Pages.runRow), "hasColumns": false])
        }
        let comparison = try await data.compare(runs)
        let query = runs.map { "runs=\(Self.queryValue($0))" }.joined(separator: "&")
        return try page(
            "compare", title: "Compare runs", nav: "Compare",
            Pages.compare(comparison, showAll: request.uri.queryParameters.get("all") == "1", query: query))
    }

    static func modelRow(_ model: RegisteredModel) -> [String: Any] {
        [
            "name": model.name, "versions": model.versions, "latestVersion": model.latestVersion,
            "productionVersion": Pages.present(model.productionVersion),
            "stagingVersion": Pages.present(model.stagingVersion),
        ]
    }

    // MARK: Actions

    /// Asks the process running `id` to stop, as Ctrl-C would: it records the run cancelled and stops its steps.
    func cancel(_ id: String) async throws -> String {
        guard let run = try await data.metadata.run(id) else { throw DashboardError.notFound("no run matches '\(id)'") }
        guard run.status == .running else {
            throw DashboardError.conflict("run \(run.id) is not running: it is \(run.status.rawValue)")
        }
        if let scheduler = run.owner.externalOrchestrator {
            throw DashboardError.conflict(
                "run \(run.id) is run by \(scheduler), not by a process of this machine: cancel it with "
                    + "`sluice runs cancel \(run.id)` (it cancels the run's \(scheduler) jobs, or says how to stop it)")
        }
        guard Self.isLocal(run) else {
            throw DashboardError.conflict(
                "run \(run.id) runs on \(run.owner.host), not on this dashboard's machine: stop it there (Ctrl-C)")
        }
        guard kill(run.owner.pid, SIGINT) == 0 else {
            throw DashboardError.conflict("could not signal run \(run.id)'s process \(run.owner.pid): errno \(errno)")
        }
        return "Asked run \(run.id) (process \(run.owner.pid)) to stop; it records itself cancelled."
    }

    static func isLocal(_ run: Run) -> Bool {
        let me = ProcessOwner.current
        return run.owner.host == me.host && run.owner.bootID == me.bootID && !run.owner.isKnownDead
    }

    func login(_ request: Request, context: DashboardContext) async throws -> Response {
        let form = try await Self.form(request, context: context)
        let next = Self.safeNext(form["next"])
        guard let secret = form["token"], let token = try await data.metadata.token(hash: AccessToken.hash(of: secret)),
            token.revokedAt == nil
        else {
            var response = try page(
                "login", title: "Sign in", ["text": "That token is not valid (unknown or revoked).", "next": next])
            response.status = .unauthorized
            return response
        }
        var response = Self.redirect(next)
        response.headers[.setCookie] =
            "\(TokenAuthenticator<DashboardContext>.cookie)=\(secret); Path=/; HttpOnly; SameSite=Strict"
        return response
    }

    /// A redirect target from a form: a path on this server, never another site.
    static func safeNext(_ next: String?) -> String {
        guard let next, next.hasPrefix("/"), !next.hasPrefix("//"), !next.contains("\\") else { return "/runs" }
        return next
    }

    static func requireWrite(_ context: DashboardContext) throws {
        guard context.identity?.canWrite == true else {
            throw DashboardError.forbidden(
                "this token may only read; promoting, rolling back and cancelling need a token made with "
                    + "`sluice tokens create NAME --write`")
        }
    }

    static func reason(_ text: String?) throws -> String {
        guard let text = text?.trimmingCharacters(in: .whitespacesAndNewlines), !text.isEmpty else {
            throw DashboardError.badRequest("say why (a reason is recorded with every stage change)")
        }
        return text
    }

    // MARK: Live

    func runsFingerprint() async throws -> String {
        try await data.metadata.runs(RunFilter(limit: 50)).map {
            "\($0.id):\($0.status.rawValue):\($0.endedAt?.timeIntervalSince1970 ?? 0)"
        }.joined(separator: ",")
    }

    func runFingerprint(_ id: String) async throws -> String {
        guard let run = try await data.metadata.run(id) else { return "" }
        var parts = ["\(run.status.rawValue)"]
        for stepRun in try await data.metadata.stepRuns(ofRun: run.id) {
            var part = "\(stepRun.stepName):\(stepRun.status.rawValue)"
            if stepRun.status == .running {
                let log = data.logDirectory.appending(path: "\(run.id)/\(stepRun.stepName).log")
                let size = (try? FileManager.default.attributesOfItem(atPath: log.path)[.size] as? Int) ?? 0
                part += ":\(size)"
            }
            parts.append(part)
        }
        return parts.joined(separator: ",")
    }

    /// Server-sent events: `change` whenever `fingerprint` changes, a comment every few seconds to notice a closed
    /// connection; ends when the client goes away.
    func events(_ fingerprint: @escaping @Sendable () async throws -> String) -> Response {
        let interval = configuration.pollInterval
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        return Response(
            status: .ok, headers: headers,
            body: ResponseBody { writer in
                var last = try await fingerprint()
                var count = 0
                var quiet = ContinuousClock.now
                try await writer.write(ByteBuffer(string: "retry: 2000\n: connected\n\n"))
                // A stream never ends on its own: the server stopping (Ctrl-C) ends it, rather than waiting for it.
                let stopping = Flag()
                let watcher = Task {
                    try? await gracefulShutdown()
                    stopping.set()
                }
                defer { watcher.cancel() }
                while !Task.isCancelled, !stopping.isSet {
                    try await Task.sleep(for: interval)
                    let now = try await fingerprint()
                    if now != last {
                        last = now
                        count += 1
                        try await writer.write(ByteBuffer(string: "event: change\ndata: \(count)\n\n"))
                        quiet = .now
                    } else if ContinuousClock.now - quiet > .seconds(5) {
                        try await writer.write(ByteBuffer(string: ": waiting\n\n"))
                        quiet = .now
                    }
                }
                try await writer.finish(nil)
            })
    }

    // MARK: Responses

    func page(
        _ template: String, title: String, nav: String? = nil, live: String? = nil, _ values: [String: Any]
    ) throws -> Response {
        var context = values
        context["title"] = title
        context["stack"] = stackLabel
        if let live { context["live"] = live }
        for item in ["Runs", "Models", "Datasets", "Compare"] { context["nav\(item)"] = item == nav ? "current" : "" }
        guard let html = library.render(context, withTemplate: template) else {
            throw DashboardError.notFound("no page template '\(template)'")
        }
        return Self.html(html)
    }

    static func html(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        var response = bytes(Data(text.utf8), type: "text/html; charset=utf-8")
        response.status = status
        return response
    }

    static func bytes(_ data: Data, type: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = type
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func asset(_ text: String, type: String) -> Response {
        var response = bytes(Data(text.utf8), type: type)
        response.headers[.cacheControl] = "max-age=300"
        return response
    }

    static let encoder: JSONEncoder = RecordJSON.encoder()

    static func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) -> Response {
        let data = (try? encoder.encode(value)) ?? Data(#"{"error":"could not encode the answer"}"#.utf8)
        var response = bytes(data, type: "application/json")
        response.status = status
        return response
    }

    static func redirect(_ location: String) -> Response {
        var headers = HTTPFields()
        headers[.location] = location
        return Response(status: .seeOther, headers: headers)
    }

    /// A file streamed in 64 KiB chunks (a table can be gigabytes).
    static func file(_ url: URL, type: String, download: String?) throws -> Response {
        let handle = try FileHandle(forReadingFrom: url)
        let size = Int((try? handle.seekToEnd()) ?? 0)
        try handle.seek(toOffset: 0)
        var headers = HTTPFields()
        headers[.contentType] = type
        if let download { headers[.contentDisposition] = "attachment; filename=\"\(download)\"" }
        return Response(
            status: .ok, headers: headers,
            body: ResponseBody(contentLength: size) { writer in
                defer { try? handle.close() }
                while let chunk = try handle.read(upToCount: 64 * 1024), !chunk.isEmpty {
                    try await writer.write(ByteBuffer(bytes: chunk))
                }
                try await writer.finish(nil)
            })
    }

    static func downloadName(_ artifact: ArtifactRecord) -> String {
        let safe = artifact.name.filter { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }
        let ext: String
        switch artifact.materializer {
        case "arrow-ipc": ext = ".arrow"
        case "json": ext = ".json"
        default: ext = DashboardData.shortType(artifact.typeName) == "FileArtifact" ? "" : ".bin"
        }
        return "\(safe.isEmpty ? "artifact" : safe)-\(artifact.id.suffix(8))\(ext)"
    }

    static func form(_ request: Request, context: DashboardContext) async throws -> [String: String] {
        let body = try await request.body.collect(upTo: 64 * 1024)
        var fields: [String: String] = [:]
        for pair in String(buffer: body).split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map {
                String($0).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? ""
            }
            if let key = parts.first { fields[key] = parts.count > 1 ? parts[1] : "" }
        }
        return fields
    }

    static func queryValue(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }

    static func pathComponent(_ text: String) -> String { queryValue(text) }
}

/// A flag one task sets and another reads.
final class Flag: Sendable {
    private let value = Mutex(false)
    var isSet: Bool { value.withLock { $0 } }
    func set() { value.withLock { $0 = true } }
}

/// Who is asking: the token's name and rights, or the local user when no token is required.
struct Viewer: Sendable, Equatable {
    var name: String
    var canWrite: Bool

    static let local = Viewer(
        name: "dashboard:" + (ProcessInfo.processInfo.environment["USER"] ?? "local"), canWrite: true)
}

/// The dashboard's request context: Hummingbird's, plus who is asking.
struct DashboardContext: AuthRequestContext, RequestContext {
    var coreContext: CoreRequestContextStorage
    var identity: Viewer?

    init(source: Source) {
        coreContext = .init(source: source)
        identity = nil
    }
}

extension HTTPField.Name {
    static let xContentTypeOptions = Self("X-Content-Type-Options")!
}
