import Foundation
import SluiceCore

extension FeatureDefinitions {
    /// The definition files of the project at `directory`: `features.yaml` and every `features/*.yaml`, sorted.
    public static func files(in directory: URL) -> [URL] {
        var files: [URL] = []
        for name in ["features.yaml", "features.yml"] {
            let url = directory.appending(path: name)
            if FileManager.default.fileExists(atPath: url.path) { files.append(url) }
        }
        let folder = directory.appending(path: "features")
        if let names = try? FileManager.default.contentsOfDirectory(atPath: folder.path) {
            for name in names.sorted() where name.hasSuffix(".yaml") || name.hasSuffix(".yml") {
                files.append(folder.appending(path: name))
            }
        }
        return files
    }

    /// Reads and merges definition files; a name defined twice is refused with both places.
    /// - Throws: ``ConfigError`` with file:line:column and the fix, for any mistake in a file.
    public static func load(_ files: [URL], relativeTo directory: URL? = nil) throws -> FeatureDefinitions {
        guard !files.isEmpty else {
            throw ConfigError(
                problem: "no feature definitions: no features.yaml and no features/*.yaml here.",
                fix: "write features.yaml in the project's directory (see docs/features.md).")
        }
        var merged = FeatureDefinitions()
        for file in files {
            let text: String
            do {
                text = try String(contentsOf: file, encoding: .utf8)
            } catch {
                throw ConfigError(
                    problem: "cannot read '\(file.path)' (\(error.localizedDescription)).", fix: "check it.")
            }
            let shown = directory.map { display(file, relativeTo: $0) } ?? file.path
            let one = try parse(text, source: shown)
            try merge(one.entities, into: &merged.entities, kind: "entity", location: \.location)
            try merge(one.sources, into: &merged.sources, kind: "source", location: \.location)
            try merge(one.views, into: &merged.views, kind: "view", location: \.location)
            try merge(one.services, into: &merged.services, kind: "service", location: \.location)
        }
        return merged
    }

    private static func display(_ file: URL, relativeTo directory: URL) -> String {
        let base = directory.standardizedFileURL.path + "/"
        let path = file.standardizedFileURL.path
        return path.hasPrefix(base) ? String(path.dropFirst(base.count)) : path
    }

    private static func merge<T>(
        _ new: [String: T], into all: inout [String: T], kind: String, location: KeyPath<T, SourceLocation?>
    ) throws {
        for (name, value) in new {
            if let earlier = all[name] {
                let first = earlier[keyPath: location].map { "\($0)" } ?? "another file"
                let second = value[keyPath: location].map { "\($0): " } ?? ""
                throw ConfigError(
                    problem: "\(second)the \(kind) '\(name)' is defined twice (first at \(first)).",
                    fix: "keep one definition, or rename one of them.")
            }
            all[name] = value
        }
    }

    /// Parses one definition file's text; `source` names it in errors.
    public static func parse(_ text: String, source: String) throws -> FeatureDefinitions {
        let tree = try ConfigValue.parseYAML(text, source: source)
        var definitions = FeatureDefinitions()
        guard let sections = tree.entries else {
            throw ConfigError(
                problem: "\(place(tree, source))a feature definition file is a mapping of `entities:`, `sources:`, "
                    + "`views:` and `services:`.",
                fix: "see docs/features.md for an example.")
        }
        for (key, value) in sections {
            switch key {
            case "entities":
                for (name, body) in try mapping(value, "entities", source) {
                    definitions.entities[name] = try entity(name, body, source)
                }
            case "sources":
                for (name, body) in try mapping(value, "sources", source) {
                    definitions.sources[name] = try featureSource(name, body, source)
                }
            case "views":
                for (name, body) in try mapping(value, "views", source) {
                    definitions.views[name] = try view(name, body, source)
                }
            case "services":
                for (name, body) in try mapping(value, "services", source) {
                    definitions.services[name] = try service(name, body, source)
                }
            default:
                throw unknown(key, path: "", value, known: ["entities", "sources", "views", "services"], source)
            }
        }
        return definitions
    }

    // MARK: - Sections

    private static func entity(_ name: String, _ body: ConfigValue, _ source: String) throws -> Entity {
        try checkName(name, body, "entity", source)
        var keys: [Entity.Column] = []
        for (key, value) in try mapping(body, "entities.\(name)", source) {
            switch key {
            case "join_keys":
                for (column, typeValue) in try mapping(value, "entities.\(name).join_keys", source) {
                    let type = try featureType(typeValue, "entities.\(name).join_keys.\(column)", source)
                    guard type == .integer || type == .string else {
                        throw ConfigError(
                            problem: "\(place(typeValue, source))the join key '\(column)' of entity '\(name)' is "
                                + "\(type.rawValue); join keys are integer or string.",
                            fix: "declare it `integer` or `string`.")
                    }
                    keys.append(Entity.Column(name: column, type: type))
                }
            default: throw unknown(key, path: "entities.\(name)", value, known: ["join_keys"], source)
            }
        }
        guard !keys.isEmpty else {
            throw ConfigError(
                problem: "\(place(body, source))entity '\(name)' has no join keys.",
                fix: "write `join_keys: {COLUMN: integer}` (or string).")
        }
        return Entity(joinKeys: keys, location: body.location)
    }

    private static func featureSource(_ name: String, _ body: ConfigValue, _ source: String) throws -> FeatureSource {
        try checkName(name, body, "source", source)
        let path = "sources.\(name)"
        var paths: [String] = []
        var pipeline: String?
        var step: String?
        var output = "table"
        var run: String?
        var timestamp: String?
        var created: String?
        for (key, value) in try mapping(body, path, source) {
            switch key {
            case "path": paths.append(try string(value, "\(path).path", source))
            case "paths":
                guard case .array(let items) = value.kind, !items.isEmpty else {
                    throw ConfigError(
                        problem: "\(place(value, source))'\(path).paths' must be a list of files or globs.",
                        fix: "write `paths: [data/a.csv, data/b/*.csv]`.")
                }
                paths += try items.map { try string($0, "\(path).paths", source) }
            case "pipeline": pipeline = try string(value, "\(path).pipeline", source)
            case "step": step = try string(value, "\(path).step", source)
            case "output": output = try string(value, "\(path).output", source)
            case "run": run = try string(value, "\(path).run", source)
            case "timestamp": timestamp = try string(value, "\(path).timestamp", source)
            case "created_timestamp": created = try string(value, "\(path).created_timestamp", source)
            default:
                throw unknown(
                    key, path: path, value,
                    known: ["path", "paths", "pipeline", "step", "output", "run", "timestamp", "created_timestamp"],
                    source)
            }
        }
        guard let timestamp else {
            throw ConfigError(
                problem: "\(place(body, source))source '\(name)' has no `timestamp:` (its event-time column).",
                fix: "write `timestamp: COLUMN`, the column saying when each row's values became true.")
        }
        let origin: FeatureSource.Origin
        switch (paths.isEmpty, pipeline) {
        case (false, nil): origin = .files(paths)
        case (true, let pipeline?):
            guard let step else {
                throw ConfigError(
                    problem: "\(place(body, source))source '\(name)' names a pipeline but no `step:`.",
                    fix: "write `step: STEP`, the step whose table output feeds the views.")
            }
            origin = .pipeline(name: pipeline, step: step, output: output, run: run == "latest" ? nil : run)
        case (false, .some):
            throw ConfigError(
                problem: "\(place(body, source))source '\(name)' has both files and a pipeline.",
                fix: "keep either `path:`/`paths:` or `pipeline:` and `step:`.")
        case (true, nil):
            throw ConfigError(
                problem: "\(place(body, source))source '\(name)' says neither which files nor which pipeline step.",
                fix: "write `path: data/events.csv` (CSV or Arrow, globs allowed) or `pipeline: P` with `step: S`.")
        }
        return FeatureSource(origin: origin, timestamp: timestamp, createdTimestamp: created, location: body.location)
    }

    private static func view(_ name: String, _ body: ConfigValue, _ source: String) throws -> FeatureView {
        try checkName(name, body, "view", source)
        let path = "views.\(name)"
        var view = FeatureView(entity: "", source: "", location: body.location)
        for (key, value) in try mapping(body, path, source) {
            switch key {
            case "entity":
                view.entity = try string(value, "\(path).entity", source)
                view.locations["entity"] = value.location
            case "source":
                view.source = try string(value, "\(path).source", source)
                view.locations["source"] = value.location
            case "ttl": view.ttl = try duration(value, "\(path).ttl", source)
            case "features":
                for (feature, typeValue) in try mapping(value, "\(path).features", source) {
                    try checkName(feature, typeValue, "feature", source)
                    view.locations[feature] = typeValue.location
                    view.features.append(
                        .init(name: feature, type: try featureType(typeValue, "\(path).features.\(feature)", source)))
                }
            case "aggregations":
                guard case .array(let items) = value.kind else {
                    throw ConfigError(
                        problem: "\(place(value, source))'\(path).aggregations' must be a list.",
                        fix: "write `- {name: N, function: sum, column: C, window: 7d}` per aggregation.")
                }
                view.aggregations = try items.map { try aggregation($0, "\(path).aggregations", source) }
                for (item, aggregation) in zip(items, view.aggregations) {
                    view.locations[aggregation.name] = item.location
                }
            default:
                throw unknown(
                    key, path: path, value, known: ["entity", "source", "ttl", "features", "aggregations"], source)
            }
        }
        for (field, text) in [("entity", view.entity), ("source", view.source)] where text.isEmpty {
            throw ConfigError(
                problem: "\(place(body, source))view '\(name)' has no `\(field):`.",
                fix: "write `\(field): NAME`, one of the file's \(field == "entity" ? "entities" : "sources").")
        }
        guard !view.featureNames.isEmpty else {
            throw ConfigError(
                problem: "\(place(body, source))view '\(name)' has no features and no aggregations.",
                fix: "write `features: {COLUMN: TYPE}` or `aggregations:`.")
        }
        var seen = Set<String>()
        for feature in view.featureNames where !seen.insert(feature).inserted {
            throw ConfigError(
                problem: "\(place(body, source))view '\(name)' names the feature '\(feature)' twice.",
                fix: "give each feature and aggregation its own name.")
        }
        return view
    }

    private static func aggregation(_ body: ConfigValue, _ path: String, _ source: String) throws -> Aggregation {
        var name: String?
        var function: Aggregation.Function?
        var column: String?
        var window: Int64?
        for (key, value) in try mapping(body, path, source) {
            switch key {
            case "name": name = try string(value, "\(path).name", source)
            case "function":
                let text = try string(value, "\(path).function", source)
                guard let parsed = Aggregation.Function(rawValue: text) else {
                    let names = Aggregation.Function.allCases.map(\.rawValue)
                    let guess = names.closest(to: text).map { " Did you mean '\($0)'?" } ?? ""
                    throw ConfigError(
                        problem: "\(place(value, source))unknown aggregation function '\(text)'.\(guess)",
                        fix: "use one of \(names.joined(separator: ", ")).")
                }
                function = parsed
            case "column": column = try string(value, "\(path).column", source)
            case "window": window = try duration(value, "\(path).window", source)
            default: throw unknown(key, path: path, value, known: ["name", "function", "column", "window"], source)
            }
        }
        guard let function, let window else {
            throw ConfigError(
                problem: "\(place(body, source))an aggregation needs `function:` and `window:`.",
                fix: "write `{name: spend_7d, function: sum, column: amount, window: 7d}`.")
        }
        guard function == .count || column != nil else {
            throw ConfigError(
                problem: "\(place(body, source))a \(function.rawValue) aggregation needs `column:`.",
                fix: "name the source column it aggregates (listed under the view's `features:`).")
        }
        let resolved = name ?? "\(column ?? "events")_\(function.rawValue)_\(DurationText.text(window))"
        return Aggregation(name: resolved, function: function, column: column, window: window)
    }

    private static func service(_ name: String, _ body: ConfigValue, _ source: String) throws -> FeatureService {
        try checkName(name, body, "service", source)
        var list = body
        var missingEntity = FeatureService.MissingEntity.refuse
        if let entries = body.entries {
            for (key, value) in entries where key != "features" {
                guard key == "missing_entity" else {
                    throw unknown(key, path: "services.\(name)", value, known: ["features", "missing_entity"], source)
                }
                let text = try string(value, "services.\(name).missing_entity", source)
                guard let policy = FeatureService.MissingEntity(rawValue: text) else {
                    throw ConfigError(
                        problem: "\(place(value, source))'services.\(name).missing_entity' is '\(text)'.",
                        fix:
                            "write `refuse` (a request for an unknown entity is refused) or `missing` (it is predicted "
                            + "with the features missing).")
                }
                missingEntity = policy
            }
            list = body["features"] ?? ConfigValue(.array([]), at: body.location)
        }
        guard case .array(let items) = list.kind, !items.isEmpty else {
            throw ConfigError(
                problem: "\(place(list, source))service '\(name)' must list `view:feature` references.",
                fix: "write `\(name): [VIEW:FEATURE, VIEW:*]`.")
        }
        let references = try items.map { item -> FeatureService.Reference in
            let text = try string(item, "services.\(name)", source)
            let parts = text.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw ConfigError(
                    problem: "\(place(item, source))'\(text)' in service '\(name)' is not `view:feature`.",
                    fix: "write VIEW:FEATURE, or VIEW:* for every feature of the view.")
            }
            return FeatureService.Reference(view: String(parts[0]), feature: String(parts[1]))
        }
        return FeatureService(features: references, missingEntity: missingEntity, location: list.location)
    }

    // MARK: - Values

    private static func place(_ value: ConfigValue?, _ source: String) -> String {
        value?.location.map { "\($0): " } ?? "\(source): "
    }

    private static func mapping(_ value: ConfigValue, _ path: String, _ source: String) throws
        -> [(key: String, value: ConfigValue)]
    {
        if case .null = value.kind { return [] }
        guard let entries = value.entries else {
            throw ConfigError(
                problem: "\(place(value, source))'\(path)' must be a mapping, not \(value.kindDescription).",
                fix: "write `\(path.split(separator: ".").last ?? ""):` followed by indented `name: value` lines.")
        }
        return entries
    }

    private static func string(_ value: ConfigValue, _ path: String, _ source: String) throws -> String {
        guard case .string(let text) = value.kind, !text.isEmpty else {
            throw ConfigError(
                problem: "\(place(value, source))'\(path)' must be text, not \(value.kindDescription).",
                fix: "write a name or path there.")
        }
        return text
    }

    private static func featureType(_ value: ConfigValue, _ path: String, _ source: String) throws -> FeatureType {
        let names = FeatureType.allCases.map(\.rawValue)
        guard case .string(let text) = value.kind, let type = FeatureType(rawValue: text) else {
            let guess: String
            if case .string(let text) = value.kind, let near = names.closest(to: text) {
                guess = " Did you mean '\(near)'?"
            } else {
                guess = ""
            }
            throw ConfigError(
                problem: "\(place(value, source))'\(path)' must be a type, not \(value.kindDescription).\(guess)",
                fix: "use one of \(names.joined(separator: ", ")).")
        }
        return type
    }

    private static func duration(_ value: ConfigValue, _ path: String, _ source: String) throws -> Int64 {
        if case .string(let text) = value.kind, let seconds = DurationText.seconds(text) { return seconds }
        throw ConfigError(
            problem: "\(place(value, source))'\(path)' must be a duration like 1h, 7d or 30d, not "
                + "\(value.kindDescription).",
            fix: "write a whole number followed by s, m, h, d or w.")
    }

    private static func checkName(_ name: String, _ value: ConfigValue, _ kind: String, _ source: String) throws {
        let allowed = name.unicodeScalars.allSatisfy {
            CharacterSet.alphanumerics.contains($0) || $0 == "_" || $0 == "-"
        }
        guard allowed, !name.isEmpty else {
            throw ConfigError(
                problem: "\(place(value, source))the \(kind) name '\(name)' may hold only letters, digits, _ and -.",
                fix: "rename it (a colon or dot would make `view:feature` references ambiguous).")
        }
    }

    private static func unknown(
        _ key: String, path: String, _ value: ConfigValue, known: [String], _ source: String
    ) -> ConfigError {
        let guess = known.closest(to: key).map { " Did you mean '\($0)'?" } ?? ""
        let full = path.isEmpty ? key : "\(path).\(key)"
        return ConfigError(
            problem: "\(place(value, source))unknown key '\(full)'.\(guess)",
            fix: "use one of \(known.joined(separator: ", ")); unknown keys are refused, not ignored.")
    }
}
