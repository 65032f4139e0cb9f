import Foundation
import Ink
import SluiceCore
import SluiceData

/// Turns the dashboard's data into the values its templates render: text formatted for people, links, graphs.
enum Pages {
    /// A value for a template section: the value, or `false` (no section) when there is none. An optional put in
    /// a `[String: Any]` as it is would render as "nil".
    static func present(_ value: Any?) -> Any { value ?? false }

    static func date(_ date: Date?) -> String {
        guard let date else { return "–" }
        return date.formatted(
            Date.ISO8601FormatStyle(timeZone: .gmt).year().month().day().dateSeparator(.dash).time(
                includingFractionalSeconds: false
            ).timeSeparator(.colon)
        ).replacingOccurrences(of: "T", with: " ") + " UTC"
    }

    static func iso(_ date: Date) -> String {
        date.formatted(RecordJSON.dateFormat)
    }

    static func duration(_ seconds: Double?) -> String {
        guard let seconds else { return "–" }
        if seconds < 1 { return String(format: "%.0f ms", seconds * 1000) }
        if seconds < 60 { return String(format: "%.1f s", seconds) }
        let minutes = Int(seconds) / 60
        if minutes < 60 { return "\(minutes) min \(Int(seconds) % 60) s" }
        return "\(minutes / 60) h \(minutes % 60) min"
    }

    static func number(_ value: Double) -> String {
        if value == value.rounded() && abs(value) < 1e12 { return String(Int(value)) }
        return String(format: "%.4g", value)
    }

    static func git(_ run: DashboardData.RunSummary) -> String { run.gitCommit.map { String($0.prefix(10)) } ?? "–" }

    static func runRow(_ run: DashboardData.RunSummary) -> [String: Any] {
        [
            "id": run.id, "pipeline": run.pipeline, "status": run.status.rawValue, "trigger": run.trigger,
            "started": date(run.startedAt), "startedISO": iso(run.startedAt), "duration": duration(run.durationSeconds),
            "user": run.user, "git": git(run), "dirty": run.gitDirty == true,
        ]
    }

    // MARK: Run

    static func run(_ details: DashboardData.RunDetails, cancellable: Bool) -> [String: Any] {
        var context = runRow(details.run)
        context["host"] = details.run.host
        context["error"] = details.run.error
        context["cancellable"] = cancellable
        context["config"] = details.config
        context["graph"] = runGraph(details).svg(id: "dag")
        context["steps"] = details.steps.map { step -> [String: Any] in
            [
                "run": details.run.id, "name": step.name, "kind": step.kind, "status": step.status.rawValue,
                "duration": duration(step.durationSeconds), "cachedFromRun": Pages.present(step.cachedFromRun),
                "outputs": step.outputs.map { ["id": $0.id, "slot": $0.slot] },
            ]
        }
        let e = details.environment
        var environment: [(String, String)] = [
            ("user", e.user), ("host", e.host), ("os", e.os), ("swift", e.swiftVersion), ("sluice", e.sluiceVersion),
            ("git commit", (e.gitCommit ?? "–") + (e.gitDirty == true ? " (uncommitted changes)" : "")),
        ]
        if let binary = e.binaryPath { environment.append(("binary", binary)) }
        if let hash = e.binaryHash { environment.append(("binary hash", hash)) }
        if !e.arguments.isEmpty { environment.append(("arguments", e.arguments.joined(separator: " "))) }
        context["environment"] = environment.map { ["key": $0.0, "value": $0.1] }
        context["hasSteps"] = !details.steps.isEmpty
        context["isPipeline"] = details.tracking?.kind != .tracked
        if let tracked = details.tracking {
            context["name"] = tracked.name
            context["kind"] = tracked.kind.rawValue
            context["tags"] = tracked.tags.filter { !$0.key.hasPrefix("mlflow.") }.sorted { $0.key < $1.key }.map {
                ["key": $0.key, "value": $0.value]
            }
            context["noteText"] = tracked.note ?? ""
            context["noteHTML"] = tracked.note.map(noteHTML) ?? ""
            context["params"] = tracked.params.sorted { $0.key < $1.key }.map { ["key": $0.key, "value": $0.value] }
            context["metrics"] = tracked.metrics.map {
                ["key": $0.key, "value": String(format: "%.6g", $0.value), "step": $0.step]
            }
            context["hasParams"] = !tracked.params.isEmpty
            context["hasMetrics"] = !tracked.metrics.isEmpty
            context["hasInputs"] = !tracked.inputs.isEmpty
            context["inputs"] = tracked.inputs.map {
                ["name": $0.name, "digest": $0.digest, "context": $0.context ?? ""]
            }
        }
        context["charts"] = details.series.sorted { $0.key < $1.key }.map { key, points in
            [
                "name": key,
                "svg": LineChart(
                    title: key,
                    series: [LineChart.Series(name: details.run.id, points: points.map { (Double($0.step), $0.value) })]
                ).svg(),
            ]
        }
        return context
    }

    /// A run's note as HTML: its Markdown rendered, any HTML in it shown as text (a note is anyone's input).
    static func noteHTML(_ markdown: String) -> String {
        let escaped = markdown.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
        return MarkdownParser().html(from: escaped)
    }

    // MARK: Parallel coordinates

    static func parallel(
        _ runs: [TrackedRun], metric: String?, filter: String, experiments: [Experiment], experiment: String?
    ) -> [String: Any] {
        let metricNames = Set(runs.flatMap { $0.metrics.map(\.key) }).sorted()
        let chosen = metric.flatMap { metricNames.contains($0) ? $0 : nil } ?? metricNames.first
        var context: [String: Any] = [
            "filter": filter, "count": runs.count,
            "metrics": metricNames.map { ["name": $0, "selected": $0 == chosen] },
            "experiments": experiments.map { ["id": $0.id, "name": $0.name, "selected": $0.id == experiment] },
        ]
        guard let chosen else { return context }
        // Params that vary between the runs, up to eight.
        let keys = Set(runs.flatMap(\.params.keys)).sorted().filter { key in
            Set(runs.map { $0.params[key] ?? "" }).count > 1
        }.prefix(8)
        let lines = runs.compactMap { run -> ParallelCoordinates.Line? in
            guard let value = run.metrics.first(where: { $0.key == chosen })?.value else { return nil }
            return ParallelCoordinates.Line(run: run.id, label: run.name, params: run.params, metric: value)
        }
        context["chart"] = ParallelCoordinates(params: Array(keys), metric: chosen, lines: lines).svg()
        context["plotted"] = lines.count
        return context
    }

    /// The run's steps left to right, coloured by state; each box links to its step page.
    static func runGraph(_ details: DashboardData.RunDetails) -> GraphLayout {
        let names = Set(details.steps.map(\.name))
        let nodes = details.steps.map { step in
            GraphLayout.Node(
                id: step.name, label: step.name,
                detail: step.status == .cached
                    ? "cached" + (step.cachedFromRun.map { " · \(String($0.suffix(8)))" } ?? "")
                    : "\(step.status.rawValue)\(step.durationSeconds.map { " · " + duration($0) } ?? "")",
                style: step.status.rawValue, link: "/runs/\(details.run.id)/steps/\(step.name)",
                tooltip: "\(step.name) (\(step.kind)): \(step.status.rawValue)" + (step.error.map { "\n\($0)" } ?? ""))
        }
        let edges = details.steps.flatMap { step in
            step.upstream.filter(names.contains).map { (from: $0, to: step.name) }
        }
        return GraphLayout(nodes: nodes, edges: edges)
    }

    // MARK: Step

    static func step(
        _ step: DashboardData.StepSummary, run: DashboardData.RunSummary, log: (text: String, size: Int)?
    ) -> [String: Any] {
        var context: [String: Any] = [
            "runID": run.id, "id": step.id, "name": step.name, "kind": step.kind, "status": step.status.rawValue,
            "started": date(step.startedAt), "ended": date(step.endedAt), "duration": duration(step.durationSeconds),
            "cacheKey": step.cacheKey ?? "–", "seed": String(step.seed),
            "cachedFromRun": Pages.present(step.cachedFromRun),
            "upstream": Pages.present(step.upstream.isEmpty ? nil : step.upstream.joined(separator: ", ")),
            "error": Pages.present(step.error), "parameters": prettyJSON(step.parameters),
            "inputs": step.inputs.map(link), "outputs": step.outputs.map(link),
        ]
        var metrics: [[String: Any]] = []
        for name in Set(step.metrics.map(\.name)).sorted() {
            let points = step.metrics.filter { $0.name == name }
            metrics.append(["name": name, "value": number(points.last!.value), "points": points.count])
        }
        context["metrics"] = metrics
        context["hasMetrics"] = !metrics.isEmpty
        context["properties"] = step.properties.sorted { $0.key < $1.key }.map {
            ["key": $0.key, "value": $0.value.description]
        }
        context["hasProperties"] = !step.properties.isEmpty
        if let log {
            context["log"] = log.text
            context["logNote"] =
                log.size > log.text.utf8.count
                ? "The last \(DashboardData.bytes(Int64(log.text.utf8.count))) of \(DashboardData.bytes(Int64(log.size)))."
                : "\(DashboardData.bytes(Int64(log.size)))."
        }
        return context
    }

    static func link(_ artifact: DashboardData.ArtifactLink) -> [String: Any] {
        [
            "slot": artifact.slot, "id": artifact.id, "typeName": artifact.typeName,
            "size": DashboardData.bytes(artifact.size),
        ]
    }

    static func prettyJSON(_ text: String) -> String {
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed]),
            let data = try? JSONSerialization.data(
                withJSONObject: object,
                options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes, .fragmentsAllowed])
        else { return text }
        return String(decoding: data, as: UTF8.self)
    }

    // MARK: Artifact

    static func artifact(_ details: DashboardData.ArtifactDetails, data: DashboardData) -> [String: Any] {
        let a = details.artifact
        var context: [String: Any] = [
            "id": a.id, "name": a.name, "typeName": a.typeName, "contentHash": a.contentHash,
            "size": DashboardData.bytes(a.size), "uri": a.uri,
            "materializer": "\(a.materializer) v\(a.materializerVersion)", "created": date(a.createdAt),
            "properties": a.properties.sorted { $0.key < $1.key }.map {
                ["key": $0.key, "value": $0.value.description]
            },
            "hasProperties": !a.properties.isEmpty,
            "consumers": details.consumers.map {
                ["runID": $0.runID, "stepName": $0.stepName, "status": $0.status.rawValue]
            },
            "modelVersions": details.modelVersions.map { label in
                ["label": label, "model": String(label.split(separator: "@").first ?? "")]
            },
        ]
        if let producer = details.producer {
            context["producer"] = ["runID": producer.runID, "stepName": producer.stepName]
        }
        switch details.visualization {
        case .report?:
            context["sandboxed"] = true
            context["sandboxTitle"] = "Report"
        case .modelCard?:
            context["sandboxed"] = true
            context["sandboxTitle"] = "Model card"
        case .table?:
            if let preview = try? data.tablePreview(a) {
                context["table"] = [
                    "schema": zip(preview.columns, preview.types).map { ["name": $0, "type": $1] },
                    "columns": preview.columns, "rows": preview.rows, "shown": preview.rows.count,
                    "totalRows": preview.totalRows,
                ]
            }
        case .anomalies?:
            if let content = try? data.content(a),
                let validation = try? JSONDecoder().decode(Validation.self, from: content)
            {
                context["anomalies"] = [
                    "verdict": validation.passed ? "passed" : "\(validation.anomalies.count) anomalies",
                    "reference": Pages.present(validation.reference),
                    "items": validation.anomalies.map {
                        ["column": $0.column, "kind": $0.kind.rawValue, "description": $0.description]
                    },
                    "drift": validation.drift.sorted { $0.key < $1.key }.map {
                        ["key": $0.key, "value": String(format: "%.4f", $0.value)]
                    },
                    "hasDrift": !validation.drift.isEmpty,
                ]
            }
        case .json?:
            if let content = try? data.content(a) {
                let text = String(decoding: content.prefix(256 * 1024), as: UTF8.self)
                context["json"] = content.count > 256 * 1024 ? text + "\n…" : prettyJSON(text)
            }
        case nil: break
        }
        return context
    }

    /// A model card's Markdown as a standalone HTML page (shown sandboxed).
    static func modelCardPage(markdown: String, title: String) -> String {
        let body = MarkdownParser().html(from: inkEscapes(markdown))
        return """
            <!doctype html><html lang="en"><head><meta charset="utf-8"><title>\(HTML.escape(title))</title>
            <style>body{font:14px/1.5 system-ui,"DejaVu Sans",sans-serif;margin:16px 24px;color:#1f2937}
            table{border-collapse:collapse}td,th{border:1px solid #e5e7eb;padding:4px 8px}code,pre{font-family:monospace}
            </style></head><body>\(body)</body></html>
            """
    }

    /// CommonMark's backslash escapes (`bill\_length\_mm`, as ``Markdown/escaped(_:)`` writes them) as numeric
    /// character references, which Ink passes through: Ink drops the backslash but still reads the character as
    /// markup. Code spans and fenced blocks are copied as they are (escapes mean nothing there).
    static func inkEscapes(_ markdown: String) -> String {
        var out = ""
        var inFence = false
        for (index, line) in markdown.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if index > 0 { out.append("\n") }
            if line.hasPrefix("```") { inFence.toggle() }
            if inFence || line.hasPrefix("```") {
                out += line
                continue
            }
            var characters = line[...]
            while let character = characters.first {
                if character == "`" {
                    // A code span runs to the next run of as many backticks; without one the backticks are text.
                    let fence = characters.prefix { $0 == "`" }
                    let rest = characters.dropFirst(fence.count)
                    if let close = rest.firstRange(of: fence) {
                        out += characters[..<close.upperBound]
                        characters = characters[close.upperBound...]
                    } else {
                        out += fence
                        characters = rest
                    }
                } else if character == "\\", let next = characters.dropFirst().first, next.isASCII,
                    next.isPunctuation || next.isSymbol
                {
                    out += "&#\(next.unicodeScalars.first!.value);"
                    characters = characters.dropFirst(2)
                } else {
                    out.append(character)
                    characters = characters.dropFirst()
                }
            }
        }
        return out
    }

    // MARK: Lineage

    static func lineageGraph(_ graph: DashboardData.LineageGraph) -> GraphLayout {
        let nodes = graph.nodes.map { node -> GraphLayout.Node in
            if node.kind == "artifact" {
                return GraphLayout.Node(
                    id: node.id, label: node.label, detail: node.detail,
                    style: node.id == graph.root ? "artifact root" : "artifact", link: "/artifacts/\(node.id)",
                    tooltip: "artifact \(node.id): \(node.label), \(node.detail)")
            }
            if node.kind == "model" {
                let name = String(node.label.split(separator: "@").first ?? "")
                let version = String(node.label.split(separator: "@").last ?? "")
                return GraphLayout.Node(
                    id: node.id, label: node.label, detail: "stage: \(node.detail)",
                    style: "model stage-\(node.detail)",
                    link: "/models/\(name)#v\(version)", tooltip: "model version \(node.label), \(node.detail)")
            }
            return GraphLayout.Node(
                id: node.id, label: node.label, detail: node.runID ?? "", style: node.status ?? "completed",
                link: "/runs/\(node.runID ?? "")/steps/\(node.label)",
                tooltip: "step \(node.label) of run \(node.runID ?? "?"): \(node.status ?? "")")
        }
        return GraphLayout(nodes: nodes, edges: graph.edges.map { (from: $0.from, to: $0.to) })
    }

    // MARK: Models

    static func model(_ details: DashboardData.ModelDetails, notice: String?) -> [String: Any] {
        // The best value of each metric is marked; for losses and errors the lowest is best.
        var best: [String: Double] = [:]
        for name in details.metricNames {
            let values = details.versions.compactMap { $0.version.metrics[name] }
            let lowerIsBetter = ["loss", "error", "rmse", "mae", "mse", "logloss"].contains { name.contains($0) }
            best[name] = lowerIsBetter ? values.min() : values.max()
        }
        // Every stage form carries the state it was shown with, so a move that another one overtook is refused (409).
        let expectedProduction =
            details.versions.first { $0.version.stage == .production }.map { String($0.version.version) } ?? "none"
        let versions = details.versions.map { entry -> [String: Any] in
            let v = entry.version
            return [
                "model": v.model, "version": v.version, "stage": v.stage.rawValue, "created": date(v.createdAt),
                "createdBy": v.createdBy, "runID": Pages.present(v.runID), "artifactID": v.artifactID,
                "short": v.runID.map { String($0.suffix(8)) } ?? "",
                "metrics": details.metricNames.map { name -> [String: Any] in
                    guard let value = v.metrics[name] else { return ["value": "–", "best": false] }
                    return [
                        "value": String(format: "%.4f", value),
                        "best": details.versions.count > 1 && value == best[name],
                    ]
                },
                "size": entry.profile?["bundleBytes"].map { DashboardData.bytes(Int64($0)) } ?? "–",
                "load": entry.profile?["loadMilliseconds"].map { String(format: "%.1f", $0) } ?? "–",
                "memory": entry.profile?["residentBytes"].map { DashboardData.bytes(Int64($0)) } ?? "–",
                "throughput": entry.profile.flatMap { profile in
                    profile.filter { $0.key.hasPrefix("rowsPerSecond.") }.max { a, b in
                        (Int(a.key.dropFirst(14)) ?? 0) < (Int(b.key.dropFirst(14)) ?? 0)
                    }.map { String(format: "%.0f", $0.value) }
                } ?? "–",
                "p50": entry.profile?["inProcess.p50"].map { String(format: "%.1f", $0) } ?? "–",
                "p99": entry.profile?["inProcess.p99"].map { String(format: "%.1f", $0) } ?? "–",
                "stages": ModelStage.allCases.filter { $0 != v.stage }.map(\.rawValue),
                "expectedProduction": expectedProduction,
            ]
        }
        let shown = details.versions.first { $0.version.stage == .production } ?? details.versions.first
        return [
            "name": details.name, "metricNames": details.metricNames, "versions": versions,
            "hasProduction": details.versions.contains { $0.version.stage == .production },
            "expectedProduction": expectedProduction,
            "notice": Pages.present(notice),
            "history": details.stageChanges.reversed().map {
                [
                    "at": date($0.at), "version": $0.version, "from": $0.from.rawValue, "to": $0.to.rawValue,
                    "by": $0.by, "reason": $0.reason,
                ]
            },
            "card": Pages.present(shown.map { ["version": $0.version.version, "artifactID": $0.version.artifactID] }),
        ]
    }

    // MARK: Compare

    static func compare(_ comparison: DashboardData.Comparison, showAll: Bool, query: String) -> [String: Any] {
        let columns = comparison.columns
        let differing = Set(comparison.differing)
        let parameterKeys = Set(columns.flatMap(\.parameters.keys)).sorted().filter {
            showAll || differing.contains($0)
        }
        let metricKeys = Set(columns.flatMap(\.metrics.keys)).sorted()
        var charts: [[String: Any]] = []
        for (name, byRun) in comparison.series.sorted(by: { $0.key < $1.key }) {
            let series = columns.compactMap { column -> LineChart.Series? in
                guard let points = byRun[column.run.id], points.count > 1 else { return nil }
                return LineChart.Series(name: column.run.id, points: points.map { (Double($0.step), $0.value) })
            }
            guard !series.isEmpty else { continue }
            charts.append(["name": name, "svg": LineChart(title: name, series: series).svg()])
        }
        return [
            "hasColumns": !columns.isEmpty,
            "columns": columns.map { ["id": $0.run.id, "status": $0.run.status.rawValue] },
            "span": columns.count + 1, "showAll": showAll, "allLink": "/compare?\(query)&all=1",
            "parameters": parameterKeys.map { key in
                ["key": key, "differs": differing.contains(key), "values": columns.map { $0.parameters[key] ?? "–" }]
            },
            "metrics": metricKeys.map { key in
                [
                    "key": key, "differs": differing.contains(key),
                    "values": columns.map { $0.metrics[key].map { String(format: "%.4g", $0) } ?? "–" },
                ]
            },
            "charts": charts,
        ]
    }

    // MARK: Datasets

    static func datasets(_ datasets: [DashboardData.DatasetVersion]) -> [String: Any] {
        [
            "datasets": datasets.map { d -> [String: Any] in
                [
                    "version": d.version, "short": String(d.version.prefix(16)), "artifactID": d.artifactID,
                    "firstSeen": date(d.firstSeen), "rows": d.rows.map(String.init) ?? "–",
                    "columns": d.schema.map { String($0.split(separator: ",").count) } ?? "–",
                    "statisticsArtifact": Pages.present(d.statisticsArtifact), "runs": d.runs,
                    "models": d.models.map { ["label": $0, "name": String($0.split(separator: "@").first ?? "")] },
                ]
            }
        ]
    }

    // MARK: Features

    static func features(_ overview: DashboardData.FeatureOverview) -> [String: Any] {
        func versionName(_ text: String) -> [String: Any] {
            let parts = text.split(separator: "@", maxSplits: 1).map(String.init)
            return ["name": parts[0], "version": parts.count > 1 ? String(parts[1].prefix(19)) : ""]
        }
        return [
            "definitions": overview.definitions.map { d -> [String: Any] in
                [
                    "kind": d.kind, "name": d.name, "version": d.version, "appliedAt": date(d.appliedAt),
                    "appliedBy": d.appliedBy, "runID": d.runID, "history": d.versions.joined(separator: " → "),
                    "changes": d.versions.count - 1,
                ]
            },
            "materializations": overview.materializations.map { m -> [String: Any] in
                [
                    "view": m.view, "watermark": m.watermark ?? "–", "at": m.at.map(date) ?? "–",
                    "rows": m.rowsWritten.map(String.init) ?? "–", "runID": m.runID, "store": m.store ?? "–",
                ]
            },
            "trainingSets": overview.trainingSets.map { t -> [String: Any] in
                [
                    "artifactID": t.artifactID, "runID": t.runID, "pipeline": t.pipeline,
                    "createdAt": date(t.createdAt),
                    "service": versionName(t.service), "views": t.views.map(versionName),
                    "sources": t.sources.map(versionName),
                    "models": t.models.map { ["label": $0, "name": String($0.split(separator: "@").first ?? "")] },
                ]
            },
        ]
    }
}
