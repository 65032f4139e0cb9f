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

/// The handlers behind the routes: pages, actions (cancel, sign in) and live updates.
extension Dashboard {
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

    /// A search from `filter`, `order_by` (repeatable), `experiment_ids` (repeatable or comma-separated),
    /// `max_results`, `page_token` and `view` (`active`, `deleted`, `all`) query parameters.
    static func runSearch(_ request: Request) throws -> RunSearch {
        let q = request.uri.queryParameters
        do {
            let view = q.get("view").flatMap(LifecycleView.init(rawValue:)) ?? .active
            return RunSearch(
                experimentIDs: q.getAll("experiment_ids").flatMap { $0.split(separator: ",").map(String.init) },
                filter: try RunSearchFilter(parsing: q.get("filter") ?? ""),
                orderBy: try q.getAll("order_by").filter { !$0.isEmpty }.map { try RunOrder(parsing: $0) },
                lifecycle: view, maxResults: min(1000, max(1, q.get("max_results").flatMap(Int.init) ?? 100)),
                pageToken: q.get("page_token"))
        } catch let error as TrackingError {
            throw DashboardError.badRequest(error.message)
        }
    }

    /// Sets and removes tags of a run.
    func changeTags(_ run: String, set: [String: String], remove: [String]) async throws {
        guard let record = try await data.metadata.run(run) else {
            throw DashboardError.notFound("no run matches '\(run)'")
        }
        do {
            let tags = set.filter { !$0.key.isEmpty }.sorted { $0.key < $1.key }.map { KeyValue($0.key, $0.value) }
            if !tags.isEmpty { try await data.tracking.log(RunLogBatch(tags: tags), to: record.id) }
            for key in remove { try await data.tracking.deleteTag(key, ofRun: record.id) }
        } catch let error as TrackingError {
            throw DashboardError.badRequest(error.message)
        }
    }

    /// Saves (or, empty, removes) a run's note.
    func saveNote(_ run: String, _ note: String) async throws {
        guard let record = try await data.metadata.run(run) else {
            throw DashboardError.notFound("no run matches '\(run)'")
        }
        if note.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            if try await data.tracking.trackedRun(record.id)?.note != nil {
                try await data.tracking.deleteTag(TrackedRun.noteTag, ofRun: record.id)
            }
        } else {
            try await data.tracking.log(RunLogBatch(tags: [KeyValue(TrackedRun.noteTag, note)]), to: record.id)
        }
    }

    func parallelPage(_ request: Request) async throws -> Response {
        let q = request.uri.queryParameters
        let experiment = q.get("experiment").flatMap { $0.isEmpty ? nil : $0 }
        var search = try Self.runSearch(request)
        search.experimentIDs = experiment.map { [$0] } ?? []
        search.maxResults = 2000
        let runs = try await data.tracking.searchRuns(search).items
        let experiments = try await data.tracking.experiments(ExperimentSearch(maxResults: 500)).items
        return try page(
            "parallel", title: "Params against a metric", nav: "Parallel",
            Pages.parallel(
                runs, metric: q.get("metric"), filter: q.get("filter") ?? "", experiments: experiments,
                experiment: experiment))
    }

    func runsPage(_ request: Request) async throws -> Response {
        let query = try Self.runQuery(request)
        var page = try await data.runs(query)
        let filter = request.uri.queryParameters.get("filter") ?? ""
        let orderBy = request.uri.queryParameters.get("order_by") ?? ""
        if !filter.isEmpty || !orderBy.isEmpty {
            // The search language: pipeline and status from the selects join the filter.
            var search = try Self.runSearch(request)
            if let pipeline = query.pipeline {
                search.filter.clauses.append(.init(.attribute(.pipeline), .equal, .string(pipeline)))
            }
            if let status = query.status {
                search.filter.clauses.append(.init(.attribute(.status), .equal, .string(status.rawValue)))
            }
            search.maxResults = query.perPage + 1
            search.pageToken = PageToken.make(offset: (query.page - 1) * query.perPage)
            var found = try await data.tracking.searchRuns(search).items
            page.hasMore = found.count > query.perPage
            found = Array(found.prefix(query.perPage))
            var runs: [DashboardData.RunSummary] = []
            for run in found {
                if let record = try await data.metadata.run(run.id) { runs.append(DashboardData.RunSummary(record)) }
            }
            page.runs = runs
        }
        var context: [String: Any] = [
            "runs": page.runs.map(Pages.runRow), "page": page.page,
            "pipelines": page.pipelines.map { ["name": $0, "selected": $0 == query.pipeline] },
            "statuses": RunStatus.allCases.map { ["name": $0.rawValue, "selected": $0 == query.status] },
            "user": query.user ?? "", "param": request.uri.queryParameters.get("param") ?? "",
            "filter": filter, "orderBy": orderBy,
            "filtered": query.pipeline != nil || query.status != nil || query.user != nil || query.parameter != nil
                || !filter.isEmpty,
        ]
        func link(_ page: Int) -> String {
            var items: [String] = []
            for key in ["pipeline", "status", "user", "param", "per_page", "filter", "order_by"] {
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
        guard let secret = form["token"], let token = try await tokens.token(hash: AccessToken.hash(of: secret)),
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
}
