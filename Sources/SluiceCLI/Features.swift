import ArgumentParser
import Foundation
import SluiceCore
import SluiceData
import SluiceFeatures

/// `sluice features`: the feature store's definitions, their versions, and point-in-time joins.
struct FeaturesCommand: AsyncParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: "features",
            abstract: "Feature definitions (features.yaml), their versions, and point-in-time correct training sets.",
            discussion: """
                Definitions live in features.yaml (or features/*.yaml) beside .sluice/: entities, sources, views
                (features as of a time within a TTL, aggregations over windows) and services (the features a model
                reads). `plan` checks them against the sources and shows what `apply` would record; `join` builds a
                training set as of each entity row's time. See docs/features.md.
                """,
            subcommands: [
                Plan.self, Apply.self, List.self, Show.self, Diff.self, Join.self, Materialize.self,
                SluiceCommand.featuresServe ?? FeaturesServeDelegate.self,
            ])
    }

    struct Plan: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the definitions against their sources and show what `apply` would change.")
        @OptionGroup var stackOption: StackOption

        func run() async throws {
            let features = try await FeatureWorkspace.open(stack: stackOption.name)
            let definitions = try await features.checkedDefinitions()
            let applied = try await features.registry.latest()
            let changes = DefinitionChange.between(applied?.definitions, AppliedDefinitions(definitions))
            printChanges(changes, verb: "would")
            if changes.contains(where: { $0.kind != .unchanged }) {
                print("Run `sluice features apply` to record these versions.")
            }
        }
    }

    struct Apply: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the definitions and record each one's content version, with who and when.")
        @OptionGroup var stackOption: StackOption

        func run() async throws {
            let features = try await FeatureWorkspace.open(stack: stackOption.name)
            let definitions = try await features.checkedDefinitions()
            let environment = await RunEnvironment.capture(
                gitDirectory: features.workspace.project.root, cacheDirectory: nil)
            let (changes, run) = try await features.registry.apply(definitions, environment: environment)
            printChanges(changes, verb: "")
            if let run {
                print("Applied in run \(run.id) by \(run.environment.user).")
            } else {
                print("Nothing to apply: the stored versions match the files.")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the applied definitions with their versions, and whether the files still match.")
        @Flag(help: "Print JSON.") var json = false
        @OptionGroup var stackOption: StackOption

        func run() async throws {
            let features = try await FeatureWorkspace.open(stack: stackOption.name)
            let history = try await features.registry.history()
            guard let latest = history.first else {
                if json { return print("[]") }
                return print("No feature definitions applied yet. Write features.yaml, then `sluice features apply`.")
            }
            let files = (try? features.definitions()).map(AppliedDefinitions.init)
            if json { return print(try jsonString(latest.definitions.definitions)) }
            var rows: [[String]] = []
            for definition in latest.definitions.definitions {
                // When this version was first applied: the oldest apply in the unbroken run of this version.
                var since = latest
                for apply in history {
                    guard apply.definitions[definition.definitionName]?.version == definition.version else { break }
                    since = apply
                }
                let state: String
                switch files?[definition.definitionName]?.version {
                case nil: state = files == nil ? "?" : "removed in files"
                case definition.version: state = "same"
                default: state = "changed in files"
                }
                rows.append([
                    definition.kind.rawValue, definition.name, definition.version, formatDate(since.run.startedAt),
                    since.run.environment.user, state,
                ])
            }
            for definition in files?.definitions ?? [] where latest.definitions[definition.definitionName] == nil {
                rows.append([definition.kind.rawValue, definition.name, definition.version, "-", "-", "not applied"])
            }
            print(
                renderTable(
                    ["KIND", "NAME", "VERSION", "APPLIED", "BY", "FILES"], rows, terminal: .standardOutput))
            let online = try await features.workspace.stack.openOnlineStore()
            let freshness = try await online.freshness()
            await online.close()
            print("")
            guard !freshness.isEmpty else {
                return print(
                    "Online store \(features.workspace.display(online.location)): nothing materialized yet "
                        + "(`sluice features materialize`).")
            }
            print("Online store \(features.workspace.display(online.location)):")
            print(
                renderTable(
                    ["VIEW", "VERSION", "WATERMARK", "MATERIALIZED", "ENTITIES", "AGE"],
                    freshness.map {
                        [
                            $0.view, $0.version, formatDate($0.watermark), formatDate($0.materializedAt),
                            String($0.entities),
                            formatAge(Date().timeIntervalSince($0.watermark)),
                        ]
                    }, terminal: .standardOutput))
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a definition: its content, its versions over time, and for a view its source's columns.")
        @Argument(help: "A definition's name, or KIND/NAME (view/customer_orders) when names repeat across kinds.")
        var name: String
        @OptionGroup var stackOption: StackOption

        func run() async throws {
            let features = try await FeatureWorkspace.open(stack: stackOption.name)
            let history = try await features.registry.history()
            let files = try? features.definitions()
            let known = Set((history.first?.definitions.definitions.map(\.definitionName) ?? []) + (files?.names ?? []))
            let target = try resolveName(name, among: known)
            let t = Terminal.standardOutput
            print("\(t.paint("\(target.kind.rawValue.capitalized) \(target.name)", .bold))")
            if let content = files?.content(of: target) {
                print("  in the files: version \(files!.version(of: target)!)")
                print(indented(prettyJSON(content), by: "    "))
            } else {
                print("  not in the files (removed)")
            }
            var lines: [String] = []
            var previous: String?
            for apply in history.reversed() {
                let version = apply.definitions[target]?.version
                guard version != previous else { continue }
                previous = version
                lines.append(
                    "  \(formatDate(apply.run.startedAt))  \(version ?? "removed")  by \(apply.run.environment.user)"
                        + "  (run \(apply.run.id))")
            }
            print("  applied versions, oldest first:")
            print(lines.isEmpty ? "    (never applied)" : lines.joined(separator: "\n"))
            if target.kind == .view, let files, let view = files.views[target.name],
                let source = files.sources[view.source]
            {
                let resolved = try await features.reader().read(view.source, source)
                print(
                    "  source \(view.source): \(resolved.origin), \(resolved.rowCount) rows, version \(resolved.version)"
                )
                let types = files.featureTypes(of: view, source: resolved)
                for name in view.featureNames { print("    \(name): \(types[name]?.rawValue ?? "?")") }
            }
        }
    }

    struct Diff: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show how the files differ from the applied definitions, line by line.")
        @Argument(help: "Only this definition (NAME or KIND/NAME).") var name: String?
        @OptionGroup var stackOption: StackOption

        func run() async throws {
            let features = try await FeatureWorkspace.open(stack: stackOption.name)
            let files = AppliedDefinitions(try features.definitions())
            let applied = try await features.registry.latest()?.definitions
            var changes = DefinitionChange.between(applied, files).filter { $0.kind != .unchanged }
            if let name {
                let target = try resolveName(
                    name,
                    among: Set(
                        files.definitions.map(\.definitionName) + (applied?.definitions ?? []).map(\.definitionName)))
                changes = changes.filter { $0.name == target }
            }
            guard !changes.isEmpty else { return print("No differences: the files match the applied definitions.") }
            let t = Terminal.standardOutput
            for change in changes {
                print(
                    t.paint("\(change.kind.rawValue) \(change.name) \(change.from ?? "-") → \(change.to ?? "-")", .bold)
                )
                let old = applied?[change.name].map { prettyJSON($0.content) } ?? ""
                let new = files[change.name].map { prettyJSON($0.content) } ?? ""
                for line in lineDiff(old, new) {
                    switch line.first {
                    case "+": print(t.paint(line, .green))
                    case "-": print(t.paint(line, .red))
                    default: print(line)
                    }
                }
            }
        }
    }

    struct Materialize: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Load each entity's latest feature values into the stack's online store, from the last watermark.",
            discussion: """
                Per view: entities with source rows after the view's watermark (or still inside an aggregation's
                window of it) are recomputed as of --until (default now) by the same point-in-time join as
                training sets, and written in one transaction; the watermark moves to --until. Two
                materializations of a view never interleave, and one that is stopped leaves the previous values.
                Recorded as a run of sluice.features.materialize, so `sluice runs list` shows who ran it and when.
                Example: sluice features materialize --view customer_orders --until 2026-06-30T00:00:00Z
                """)
        @Option(help: "Only this view (repeat for several; default: every view).") var view: [String] = []
        @Option(help: "Materialize up to this time (ISO 8601; default: now).") var until: String?
        @OptionGroup var stackOption: StackOption

        func run() async throws {
            let features = try await FeatureWorkspace.open(stack: stackOption.name)
            var end = Date()
            if let until {
                guard let parsed = parseInstant(until) else {
                    throw ValidationError("--until must be an ISO 8601 time like 2026-06-30T00:00:00Z, not '\(until)'.")
                }
                end = parsed
            }
            let online = try await features.workspace.stack.openOnlineStore()
            defer { Task { await online.close() } }
            let environment = await RunEnvironment.capture(
                gitDirectory: features.workspace.project.root, cacheDirectory: nil)
            let materialization = FeatureMaterialization(
                store: features.store, online: online,
                scratch: features.workspace.project.directory.appending(path: "features/scratch"))
            let start = ContinuousClock.now
            let (outcomes, run) = try await materialization.run(views: view, until: end, environment: environment)
            let seconds = (ContinuousClock.now - start) / .seconds(1)
            for outcome in outcomes {
                if outcome.upToDate {
                    print("view \(outcome.view): up to date (watermark \(formatDate(outcome.until)))")
                } else {
                    let from = outcome.from.map { "from \(formatDate($0)) " } ?? "in full "
                    print(
                        "view \(outcome.view): \(outcome.rowsWritten) entities written \(from)to \(formatDate(outcome.until)) "
                            + "(\(outcome.sourceRows) source rows read)")
                }
            }
            print(
                "materialized into \(features.workspace.display(online.location)) in \(String(format: "%.2f", seconds)) s "
                    + "(run \(run.id))")
        }
    }

    struct Join: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Build a training set: each entity row's features as of its timestamp, never later.",
            discussion: """
                ENTITY_ROWS (CSV or Arrow) holds the service's join keys and a timestamp per row; the output is an
                Arrow table file of those rows in their order, with each feature as of the row's time (the newest
                source row at or before it within the view's TTL, ties broken by created time, then source order)
                and windowed aggregations over the events before it. Larger than memory, the rows are joined in key
                buckets spilled to disk. The service must be applied as written (`sluice features apply`), so the
                versions printed are the ones recorded.
                Example: sluice features join labels.csv --service churn -o training.arrow
                """)
        @Argument(help: "Entity rows: a CSV or Arrow file with the join keys and a timestamp.") var entityRows: String
        @Option(help: "The feature service to join.") var service: String
        @Option(name: .shortAndLong, help: "The output Arrow file.") var output: String
        @Option(help: "The entity rows' timestamp column.") var timestampColumn = "event_timestamp"
        @Option(help: "Memory to hold rows in before spilling key buckets to disk, in MiB.") var memoryLimit = 768
        @OptionGroup var stackOption: StackOption

        func run() async throws {
            guard ["arrow", "feather"].contains(URL(fileURLWithPath: output).pathExtension.lowercased()) else {
                throw ValidationError("-o must name an .arrow file, not '\(output)'.")
            }
            let features = try await FeatureWorkspace.open(stack: stackOption.name)
            let prepared = try await features.prepareJoin(service: service)
            let scratch = features.workspace.project.directory.appending(path: "features/scratch/\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: scratch) }
            let entities = try entityTable(URL(fileURLWithPath: entityRows), scratch: scratch)
            var join = prepared.join
            join.timestampColumn = timestampColumn
            join.memoryLimit = memoryLimit << 20
            let start = ContinuousClock.now
            let interactive = Terminal.standardError.isInteractive
            let report = try join.run(
                entityRows: entities, output: URL(fileURLWithPath: output), scratch: scratch,
                progress: { if interactive { printError($0) } })
            let seconds = (ContinuousClock.now - start) / .seconds(1)
            print(
                "joined \(report.entityRows) rows with service \(service) (version \(prepared.serviceVersion)) in "
                    + "\(String(format: "%.2f", seconds)) s → \(output)")
            for view in report.views {
                var notes: [String] = []
                if view.duplicateKeyTimes > 0 {
                    notes.append(
                        "\(view.duplicateKeyTimes) repeated (key, time) rows resolved by created time, then order")
                }
                if view.rowsWithoutKeyOrTime > 0 {
                    notes.append("\(view.rowsWithoutKeyOrTime) rows without key or time skipped")
                }
                if view.futureRows > 0 { notes.append("\(view.futureRows) rows with future times") }
                if view.entityRowsWithoutKey > 0 {
                    notes.append("\(view.entityRowsWithoutKey) entity rows without key or time got no values")
                }
                if view.spilled { notes.append("\(view.buckets) key buckets spilled to disk") }
                print(
                    "  view \(view.view) (version \(prepared.viewVersions[view.view] ?? "?")): source \(view.source) "
                        + "version \(view.sourceVersion), \(view.featureRows) rows"
                        + (notes.isEmpty ? "" : "; " + notes.joined(separator: "; ")))
            }
        }
    }
}

/// An ISO 8601 instant (`2026-06-30T00:00:00Z`, fractional seconds allowed), or a date (midnight UTC).
func parseInstant(_ text: String) -> Date? {
    if let date = try? Date(text, strategy: .iso8601) { return date }
    if let date = try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)) { return date }
    return try? Date(text + "T00:00:00Z", strategy: .iso8601)
}

/// A duration as people read it: `45 s`, `12 min`, `3.5 h`, `2.0 d`.
func formatAge(_ seconds: TimeInterval) -> String {
    switch seconds {
    case ..<60: String(format: "%.0f s", seconds)
    case ..<3600: String(format: "%.0f min", seconds / 60)
    case ..<86_400: String(format: "%.1f h", seconds / 3600)
    default: String(format: "%.1f d", seconds / 86_400)
    }
}

/// Entity rows as a table file: Arrow as it is, CSV read into `scratch`.
func entityTable(_ url: URL, scratch: URL) throws -> TableFile {
    guard FileManager.default.fileExists(atPath: url.path) else {
        throw CLIError(problem: "no file at \(url.path).", fix: "give the entity rows' CSV or Arrow file.")
    }
    if ["arrow", "feather"].contains(url.pathExtension.lowercased()) { return try TableFile(contentsOf: url) }
    try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    let writer = try TableFileWriter(url: scratch.appending(path: "entity-rows.arrow"))
    let summary = try CSVReader(files: [url]).forEachChunk { try writer.append($0.table) }
    return try writer.finish(columnNames: summary.columnNames, columnTypes: summary.columnTypes)
}

/// The project's feature store beside its opened stack.
struct FeatureWorkspace {
    let workspace: Workspace
    let store: FeatureStore
    var registry: FeatureRegistry { store.registry }

    static func open(stack: String?) async throws -> FeatureWorkspace {
        let workspace = try await Workspace.open(create: false, stack: stack)
        return FeatureWorkspace(workspace: workspace, store: FeatureStore(workspace: workspace))
    }

    /// The definitions in the project's files.
    func definitions() throws -> FeatureDefinitions { try store.definitions() }

    func reader() -> FeatureSourceReader { store.reader }

    /// The definitions, checked; every problem is printed, and any ends the command with status 2.
    func checkedDefinitions() async throws -> FeatureDefinitions {
        let (definitions, problems) = try await store.check()
        guard problems.isEmpty else {
            for problem in problems.dropLast() { printError("error: \(problem)\n") }
            throw problems.last!
        }
        return definitions
    }

    func prepareJoin(service name: String) async throws -> PreparedJoin { try await store.prepareJoin(service: name) }
}

extension FeatureStore {
    /// The feature store of a workspace's project and stack.
    init(workspace: Workspace) {
        self.init(
            root: workspace.project.root, cache: workspace.project.directory.appending(path: "features"),
            metadata: workspace.metadata, artifacts: workspace.artifacts)
    }
}

/// `NAME` or `KIND/NAME` among known definitions.
func resolveName(_ text: String, among known: Set<DefinitionName>) throws -> DefinitionName {
    let parts = text.split(separator: "/", maxSplits: 1).map(String.init)
    let matches: [DefinitionName]
    if parts.count == 2, let kind = DefinitionName.Kind(rawValue: parts[0]) {
        matches = known.filter { $0.kind == kind && $0.name == parts[1] }.sorted()
    } else {
        matches = known.filter { $0.name == text }.sorted()
    }
    guard matches.count == 1 else {
        throw CLIError(
            problem: matches.isEmpty
                ? "no feature definition is called '\(text)'."
                : "'\(text)' names \(matches.map(\.description).joined(separator: " and ")).",
            fix: matches.isEmpty
                ? "list them with `sluice features list`."
                : "write KIND/NAME, like \(matches[0].kind.rawValue)/\(text).")
    }
    return matches[0]
}

/// Prints plan or apply changes: `+ view orders  3f2a…` (added), `~` changed, `-` removed; unchanged counted.
private func printChanges(_ changes: [DefinitionChange], verb: String) {
    let t = Terminal.standardOutput
    let unchanged = changes.filter { $0.kind == .unchanged }.count
    for change in changes where change.kind != .unchanged {
        switch change.kind {
        case .added: print(t.paint("+ \(change.name)  \(change.to!)  (new)", .green))
        case .changed: print(t.paint("~ \(change.name)  \(change.from!) → \(change.to!)", .yellow))
        case .removed: print(t.paint("- \(change.name)  \(change.from!)  (removed)", .red))
        case .unchanged: break
        }
    }
    let changed = changes.count - unchanged
    let prefix = verb.isEmpty ? "" : "\(verb) "
    print(
        "\(changed) definition\(changed == 1 ? "" : "s") \(prefix)change\(verb.isEmpty ? "d" : ""), \(unchanged) unchanged."
    )
}

private func prettyJSON(_ content: String) -> String {
    guard let object = try? JSONSerialization.jsonObject(with: Data(content.utf8)),
        let data = try? JSONSerialization.data(
            withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    else { return content }
    return String(decoding: data, as: UTF8.self)
}

private func indented(_ text: String, by prefix: String) -> String {
    text.split(separator: "\n", omittingEmptySubsequences: false).map { prefix + $0 }.joined(separator: "\n")
}

/// A line diff (longest common subsequence): lines prefixed `+ `, `- ` or two spaces.
func lineDiff(_ old: String, _ new: String) -> [String] {
    let a = old.isEmpty ? [] : old.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    let b = new.isEmpty ? [] : new.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    var lengths = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
    for i in stride(from: a.count - 1, through: 0, by: -1) {
        for j in stride(from: b.count - 1, through: 0, by: -1) {
            lengths[i][j] = a[i] == b[j] ? lengths[i + 1][j + 1] + 1 : max(lengths[i + 1][j], lengths[i][j + 1])
        }
    }
    var lines: [String] = []
    var i = 0
    var j = 0
    while i < a.count || j < b.count {
        if i < a.count, j < b.count, a[i] == b[j] {
            lines.append("  " + a[i])
            i += 1
            j += 1
        } else if j < b.count, i == a.count || lengths[i][j + 1] >= lengths[i + 1][j] {
            lines.append("+ " + b[j])
            j += 1
        } else {
            lines.append("- " + a[i])
            i += 1
        }
    }
    return lines
}
