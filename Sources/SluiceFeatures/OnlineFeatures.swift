import Foundation
import SluiceCore
import SluiceData
import SluiceErrors

/// Online lookups of materialized features: entity keys in, each feature's value and status out (present, missing,
/// or expired by the view's TTL at the time of the lookup). The Swift API behind `POST /v1/features/online` and
/// behind models served from entity keys.
public struct OnlineFeatures: Sendable {
    /// The definitions (views, their entities, TTLs and services).
    public let definitions: FeatureDefinitions
    /// Where the values are.
    public let online: any OnlineStore

    /// Creates lookups over `online` with `definitions`.
    public init(definitions: FeatureDefinitions, online: any OnlineStore) {
        self.definitions = definitions
        self.online = online
    }

    /// A feature's state for one entity.
    public enum Status: String, Sendable, Codable {
        /// The value is there and within the view's TTL.
        case present
        /// The store has no value (no row for the entity, or the row has none for this feature).
        case missing
        /// The newest row is older than the view's TTL.
        case expired
    }

    /// One looked-up value.
    public enum Value: Sendable, Equatable {
        case number(Double)
        case integer(Int64)
        case text(String)
        case boolean(Bool)

        /// The value as JSON text.
        public var json: String {
            switch self {
            case .number(let value): JSONText.number(value)
            case .integer(let value): "\(value)"
            case .text(let value): JSONText.quoted(value)
            case .boolean(let value): value ? "true" : "false"
            }
        }

        /// The value as a number, when it is one.
        public var double: Double? {
            switch self {
            case .number(let value): value
            case .integer(let value): Double(value)
            case .boolean(let value): value ? 1 : 0
            case .text: nil
            }
        }
    }

    /// One entity's feature: its value (nil unless present), status and the source row's event time.
    public struct Result: Sendable, Equatable {
        public var value: Value?
        public var status: Status
        /// Microseconds since 1970 of the row the value came from (nil for aggregations and missing values).
        public var eventTime: Int64?

        /// Creates a result.
        public init(value: Value?, status: Status, eventTime: Int64? = nil) {
            self.value = value
            self.status = status
            self.eventTime = eventTime
        }
    }

    /// What a lookup found: per entity, each reference's result; and whether the store had values of the entity in
    /// any of the views.
    public struct Lookup: Sendable, Equatable {
        /// Rows are entities, columns the references in order.
        public var results: [[Result]]
        /// Per entity, whether any view had a record of it.
        public var known: [Bool]
    }

    /// The features of `references` for each entity: `keys` maps each join key the views need to one value per
    /// entity (as text: `42`, `ann`). A count or sum over a window with no events is 0, as in a training join.
    /// - Throws: ``FeatureRequestError`` when a key column is missing or the columns' lengths differ.
    public func lookup(_ references: [FeatureService.Reference], keys: [String: [String]], now: Date = Date())
        async throws -> Lookup
    {
        let count = keys.values.first?.count ?? 0
        guard keys.values.allSatisfy({ $0.count == count }) else {
            throw FeatureRequestError("every entity key column must have the same number of values")
        }
        let nowMicros = Int64(now.timeIntervalSince1970 * 1_000_000)
        // Counts and sums of empty windows are 0 (what the training join gives an entity without events).
        let empty = references.map { reference -> Result in
            let aggregation = definitions.views[reference.view]?.aggregations.first { $0.name == reference.feature }
            switch aggregation?.function {
            case .count?: return Result(value: .integer(0), status: .present)
            case .sum?: return Result(value: .number(0), status: .present)
            default: return Result(value: nil, status: .missing)
            }
        }
        var results = [[Result]](repeating: empty, count: count)
        var known = [Bool](repeating: false, count: count)
        var byView: [String: [Int]] = [:]
        for (index, reference) in references.enumerated() { byView[reference.view, default: []].append(index) }
        for (viewName, columns) in byView {
            guard let view = definitions.views[viewName], let entity = definitions.entities[view.entity] else {
                throw FeatureRequestError("unknown feature view '\(viewName)'")
            }
            var parts: [[String]] = []
            for key in entity.joinKeys {
                guard let values = keys[key.name] else {
                    throw FeatureRequestError(
                        "entities lack '\(key.name)', the join key of entity '\(view.entity)' (view '\(viewName)')")
                }
                parts.append(values)
            }
            let entityKeys = (0..<count).map { row in OnlineKey.text(parts.map { $0[row] }) }
            let records = try await online.read(view: viewName, keys: entityKeys)
            let ttl = view.ttl.map { $0 * 1_000_000 }
            let asOf = Set(view.features.map(\.name))
            for (row, record) in records.enumerated() {
                guard let record else { continue }
                known[row] = true
                let values = OnlineValues.decode(record.values)
                let time = record.eventTime == .min ? nil : record.eventTime
                let expired = ttl.map { ttl in time.map { nowMicros - $0 > ttl } ?? false } ?? false
                for column in columns {
                    let name = references[column].feature
                    let isColumn = asOf.contains(name)
                    guard let value = values[name] else { continue }
                    if isColumn && expired {
                        results[row][column] = Result(value: nil, status: .expired, eventTime: time)
                    } else {
                        results[row][column] = Result(value: value, status: .present, eventTime: isColumn ? time : nil)
                    }
                }
            }
        }
        return Lookup(results: results, known: known)
    }
}

/// A bad online lookup request: answered 400 with the reason.
public struct FeatureRequestError: Error, HTTPRefusal, CustomStringConvertible {
    public var message: String
    /// Creates the error.
    public init(_ message: String) { self.message = message }
    public var httpStatus: Int { 400 }
    public var httpMessage: String { message }
    public var description: String { message }
}

extension OnlineFeatures {
    /// Answers a `POST /v1/features/online` body:
    ///
    /// ```json
    /// {"feature_service": "churn", "entities": {"customer_id": [1, 2]}}
    /// {"features": ["customer_orders:orders_7d"], "entities": {"customer_id": [1]}}
    /// ```
    /// with the join keys and then each feature as a column: `{"metadata": {"feature_names": [...]}, "results":
    /// [{"values": [...], "statuses": [...], "event_timestamps": [...]}, ...]}`.
    /// - Throws: ``FeatureRequestError`` (400) naming what is wrong with the request.
    public func answer(json body: Data, now: Date = Date()) async throws -> (json: String, entities: Int) {
        guard let object = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] else {
            throw FeatureRequestError(
                "the body must be a JSON object with \"entities\" and \"feature_service\" or \"features\"")
        }
        for key in object.keys where !["entities", "feature_service", "features", "full_feature_names"].contains(key) {
            throw FeatureRequestError(
                "unknown field '\(key)'; a lookup has \"entities\" and \"feature_service\" or \"features\"")
        }
        var references: [FeatureService.Reference]
        if let name = object["feature_service"] as? String {
            guard let service = definitions.services[name] else {
                throw FeatureRequestError(
                    "no feature service '\(name)' (services: \(definitions.services.keys.sorted().joined(separator: ", ")))"
                )
            }
            references = definitions.expandedFeatures(of: service)
        } else if let list = object["features"] as? [String] {
            references = try list.map { text in
                let parts = text.split(separator: ":").map(String.init)
                guard parts.count == 2, let view = definitions.views[parts[0]] else {
                    throw FeatureRequestError("'\(text)' is not VIEW:FEATURE of a known view")
                }
                guard parts[1] == "*" || view.featureNames.contains(parts[1]) else {
                    throw FeatureRequestError("view '\(parts[0])' has no feature '\(parts[1])'")
                }
                return FeatureService.Reference(view: parts[0], feature: parts[1])
            }
            references = definitions.expandedFeatures(of: FeatureService(features: references))
        } else {
            throw FeatureRequestError(
                "name the features: \"feature_service\": NAME or \"features\": [\"VIEW:FEATURE\"]")
        }
        guard let entities = object["entities"] as? [String: Any], !entities.isEmpty else {
            throw FeatureRequestError("\"entities\" must map each join key to a list of values")
        }
        var keys: [String: [String]] = [:]
        var keyJSON: [String: [String]] = [:]
        for (name, value) in entities {
            let list = (value as? [Any]) ?? [value]
            var texts: [String] = []
            var jsons: [String] = []
            for item in list {
                switch item {
                case let text as String:
                    texts.append(text)
                    jsons.append(JSONText.quoted(text))
                case let number as NSNumber where number.doubleValue == number.doubleValue.rounded():
                    texts.append(String(number.int64Value))
                    jsons.append(String(number.int64Value))
                default:
                    throw FeatureRequestError("entity key '\(name)' values must be integers or strings")
                }
            }
            keys[name] = texts
            keyJSON[name] = jsons
        }
        let rows = try await lookup(references, keys: keys, now: now).results
        let keyNames = definitions.joinKeys(of: FeatureService(features: references)).map(\.name).filter {
            keys[$0] != nil
        }
        // One string, grown in place: a lookup of 50 features writes a few hundred pieces.
        var json = #"{"metadata":{"feature_names":["#
        json.reserveCapacity(64 + references.count * (48 + rows.count * 40))
        for (index, name) in (keyNames + references.map(\.feature)).enumerated() {
            if index > 0 { json += "," }
            json += JSONText.quoted(name)
        }
        json += #"]},"results":["#
        var first = true
        for name in keyNames {
            if !first { json += "," }
            first = false
            json += #"{"values":["#
            json += keyJSON[name]!.joined(separator: ",")
            json += #"],"statuses":["#
            for row in rows.indices { json += row == 0 ? #""present""# : #","present""# }
            json += "]}"
        }
        var formatted: [Int64: String] = [:]
        for index in references.indices {
            if !first { json += "," }
            first = false
            json += #"{"values":["#
            for row in rows.indices {
                if row > 0 { json += "," }
                json += rows[row][index].value?.json ?? "null"
            }
            json += #"],"statuses":["#
            for row in rows.indices {
                json += row == 0 ? "\"" : ",\""
                json += rows[row][index].status.rawValue
                json += "\""
            }
            json += #"],"event_timestamps":["#
            for row in rows.indices {
                if row > 0 { json += "," }
                if let micros = rows[row][index].eventTime {
                    if let text = formatted[micros] {
                        json += text
                    } else {
                        let text = "\"" + isoTime(micros) + "\""
                        formatted[micros] = text
                        json += text
                    }
                } else {
                    json += "null"
                }
            }
            json += "]}"
        }
        json += "]}"
        return (json, rows.count)
    }
}

/// ISO 8601 UTC text of microseconds since 1970 (`2026-05-02T10:00:00Z`, with `.ffffff` when not whole seconds),
/// computed directly (Foundation's formatter costs more than the rest of a lookup).
func isoTime(_ micros: Int64) -> String {
    let seconds = micros >= 0 ? micros / 1_000_000 : (micros - 999_999) / 1_000_000
    let fraction = micros - seconds * 1_000_000
    let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
    let clock = seconds - days * 86_400
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468
    let era = (z >= 0 ? z : z - 146_096) / 146_097
    let dayOfEra = z - era * 146_097
    let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
    let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
    let monthIndex = (5 * dayOfYear + 2) / 153
    let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
    let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
    let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
    func two(_ value: Int64) -> String { value < 10 ? "0\(value)" : "\(value)" }
    var text = "\(year)-\(two(month))-\(two(day))T\(two(clock / 3600)):\(two(clock / 60 % 60)):\(two(clock % 60))"
    if fraction != 0 {
        let digits = String(fraction)
        text += "." + String(repeating: "0", count: 6 - digits.count) + digits
    }
    return text + "Z"
}
