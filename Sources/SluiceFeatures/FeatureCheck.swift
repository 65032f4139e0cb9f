import Foundation
import SluiceCore
import SluiceData

extension FeatureDefinitions {
    /// Every mistake in the definitions that needs no data: unknown entities, sources, views and features, names that
    /// collide. Each names where it was written and the fix.
    public func structuralProblems() -> [FeatureError] {
        var problems: [FeatureError] = []
        for (name, view) in views.sorted(by: { $0.key < $1.key }) {
            let place = view.location.map { "\($0): " } ?? ""
            if entities[view.entity] == nil {
                let place = view.location(of: "entity").map { "\($0): " } ?? ""
                let guess = entities.keys.closest(to: view.entity).map { " Did you mean '\($0)'?" } ?? ""
                problems.append(
                    FeatureError(
                        problem: "\(place)view '\(name)' reads the unknown entity '\(view.entity)'.\(guess)",
                        fix: "declare it under `entities:` or use one of: \(list(entities.keys))."))
            }
            if sources[view.source] == nil {
                let place = view.location(of: "source").map { "\($0): " } ?? ""
                let guess = sources.keys.closest(to: view.source).map { " Did you mean '\($0)'?" } ?? ""
                problems.append(
                    FeatureError(
                        problem: "\(place)view '\(name)' reads the unknown source '\(view.source)'.\(guess)",
                        fix: "declare it under `sources:` or use one of: \(list(sources.keys))."))
            }
            if let entity = entities[view.entity] {
                for key in entity.joinKeys where view.featureNames.contains(key.name) {
                    problems.append(
                        FeatureError(
                            problem: "\(place)view '\(name)' has a feature named '\(key.name)', its entity's join key.",
                            fix: "leave join keys out of `features:`; every joined row carries them already."))
                }
            }
        }
        for (name, service) in services.sorted(by: { $0.key < $1.key }) {
            let place = service.location.map { "\($0): " } ?? ""
            var outputs: [String: String] = [:]
            for reference in service.features {
                guard let view = views[reference.view] else {
                    let guess = views.keys.closest(to: reference.view).map { " Did you mean '\($0)'?" } ?? ""
                    problems.append(
                        FeatureError(
                            problem: "\(place)service '\(name)' reads the unknown view '\(reference.view)'.\(guess)",
                            fix: "use one of: \(list(views.keys))."))
                    continue
                }
                let names = reference.feature == "*" ? view.featureNames : [reference.feature]
                if reference.feature != "*", !view.featureNames.contains(reference.feature) {
                    let guess = view.featureNames.closest(to: reference.feature).map { " Did you mean '\($0)'?" } ?? ""
                    problems.append(
                        FeatureError(
                            problem: "\(place)service '\(name)': view '\(reference.view)' has no feature "
                                + "'\(reference.feature)'.\(guess)",
                            fix: "use one of: \(view.featureNames.joined(separator: ", ")) (or \(reference.view):*)."))
                    continue
                }
                for feature in names {
                    if let earlier = outputs[feature], earlier != reference.view {
                        problems.append(
                            FeatureError(
                                problem: "\(place)service '\(name)' has two features named '\(feature)' (views "
                                    + "'\(earlier)' and '\(reference.view)').",
                                fix: "rename one in its view, so each column of a training set has one meaning."))
                    }
                    outputs[feature] = reference.view
                }
            }
        }
        return problems
    }

    /// Mistakes that need the sources' columns: missing columns, types that differ from the declared ones, timestamp
    /// columns that are not timestamps, aggregations over text.
    public func dataProblems(_ resolved: [String: ResolvedSource]) -> [FeatureError] {
        var problems: [FeatureError] = []
        for (name, view) in views.sorted(by: { $0.key < $1.key }) {
            guard let source = sources[view.source], let data = resolved[view.source] else { continue }
            let place = view.location.map { "\($0): " } ?? ""
            let sourcePlace = source.location.map { "\($0): " } ?? ""
            func missing(_ column: String, _ role: String, at part: String? = nil) -> FeatureError {
                let place = part.flatMap { view.location(of: $0) }.map { "\($0): " } ?? place
                let guess = data.columns.keys.closest(to: column).map { " Did you mean '\($0)'?" } ?? ""
                return FeatureError(
                    problem: "\(place)view '\(name)': the \(role) '\(column)' is not a column of source "
                        + "'\(view.source)' (\(data.origin)).\(guess)",
                    fix: "its columns are: \(list(data.columns.keys)).")
            }
            for (column, role) in [(source.timestamp, "timestamp"), (source.createdTimestamp, "created timestamp")] {
                guard let column else { continue }
                guard let type = data.columns[column] else {
                    problems.append(missing(column, role))
                    continue
                }
                if type != .timestamp {
                    problems.append(
                        FeatureError(
                            problem: "\(sourcePlace)source '\(view.source)': the \(role) column '\(column)' holds "
                                + "\(type.rawValue) values, not timestamps.",
                            fix: "point it at a column of ISO 8601 times (2024-03-01T12:00:00Z)."))
                }
            }
            if let entity = entities[view.entity] {
                for key in entity.joinKeys {
                    guard let type = data.columns[key.name] else {
                        problems.append(missing(key.name, "join key"))
                        continue
                    }
                    if !key.type.accepts(type) {
                        problems.append(
                            FeatureError(
                                problem: "\(place)view '\(name)': join key '\(key.name)' of entity '\(view.entity)' "
                                    + "is \(key.type.rawValue), but source '\(view.source)' holds \(type.rawValue).",
                                fix: "declare the key `\(type.rawValue)` under the entity, or fix the source."))
                    }
                }
            }
            for feature in view.features {
                guard let type = data.columns[feature.name] else {
                    problems.append(missing(feature.name, "feature", at: feature.name))
                    continue
                }
                if !feature.type.accepts(type) {
                    let place = view.location(of: feature.name).map { "\($0): " } ?? place
                    problems.append(
                        FeatureError(
                            problem: "\(place)view '\(name)': feature '\(feature.name)' is declared "
                                + "\(feature.type.rawValue), but source '\(view.source)' holds \(type.rawValue).",
                            fix: "declare it `\(type.rawValue)`, or fix the source."))
                }
            }
            for aggregation in view.aggregations {
                guard let column = aggregation.column else { continue }
                guard let type = data.columns[column] else {
                    problems.append(missing(column, "aggregated column", at: aggregation.name))
                    continue
                }
                let numeric = type == .float || type == .integer
                if aggregation.function != .last, aggregation.function != .count, !numeric {
                    let place = view.location(of: aggregation.name).map { "\($0): " } ?? place
                    problems.append(
                        FeatureError(
                            problem: "\(place)view '\(name)': aggregation '\(aggregation.name)' takes the "
                                + "\(aggregation.function.rawValue) of '\(column)', which holds \(type.rawValue) values.",
                            fix: "aggregate a numeric column, or use `last` or `count`."))
                }
            }
        }
        return problems
    }

    /// The type of each feature a view offers, given its source's columns.
    public func featureTypes(of view: FeatureView, source: ResolvedSource) -> [String: ColumnType] {
        var types: [String: ColumnType] = [:]
        for feature in view.features { types[feature.name] = feature.type.columnType }
        for aggregation in view.aggregations {
            let input = aggregation.column.flatMap { source.columns[$0] } ?? .float
            switch aggregation.function {
            case .count: types[aggregation.name] = .integer
            case .mean: types[aggregation.name] = .float
            case .sum: types[aggregation.name] = input == .integer ? .integer : .float
            case .min, .max, .last: types[aggregation.name] = input
            }
        }
        return types
    }

    /// The service's references with `*` expanded, in output order.
    public func expandedFeatures(of service: FeatureService) -> [FeatureService.Reference] {
        service.features.flatMap { reference -> [FeatureService.Reference] in
            guard reference.feature == "*", let view = views[reference.view] else { return [reference] }
            return view.featureNames.map { FeatureService.Reference(view: reference.view, feature: $0) }
        }
    }

    /// The service called `name`, or an error listing the services there are.
    public func requireService(_ name: String) throws -> FeatureService {
        guard let service = services[name] else {
            let guess = services.keys.closest(to: name).map { " Did you mean '\($0)'?" } ?? ""
            throw FeatureError(
                problem: "there is no feature service '\(name)'.\(guess)",
                fix: services.isEmpty
                    ? "declare one under `services:` in features.yaml." : "use one of: \(list(services.keys)).")
        }
        return service
    }

    /// The entity join keys a service's rows must carry, in first-use order.
    public func joinKeys(of service: FeatureService) -> [Entity.Column] {
        var keys: [Entity.Column] = []
        for reference in service.features {
            guard let view = views[reference.view], let entity = entities[view.entity] else { continue }
            for key in entity.joinKeys where !keys.contains(where: { $0.name == key.name }) { keys.append(key) }
        }
        return keys
    }
}

private func list(_ names: some Collection<String>) -> String {
    names.isEmpty ? "(none)" : names.sorted().joined(separator: ", ")
}
