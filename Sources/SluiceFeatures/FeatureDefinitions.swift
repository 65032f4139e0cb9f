import Crypto
import Foundation
import SluiceCore
import SluiceData

/// The project's feature definitions as written in `features.yaml` (or every `features/*.yaml`): entities, sources,
/// feature views and feature services, each with where it was written and a content version.
///
/// ```yaml
/// entities:
///   customer: {join_keys: {customer_id: integer}}
/// sources:
///   orders: {path: data/orders.csv, timestamp: order_time, created_timestamp: loaded_at}
/// views:
///   customer_orders:
///     entity: customer
///     source: orders
///     ttl: 30d
///     features: {amount: float, status: string}
///     aggregations:
///       - {name: orders_7d, function: count, window: 7d}
///       - {name: spend_30d, function: sum, column: amount, window: 30d}
/// services:
///   churn: [customer_orders:spend_30d, customer_orders:orders_7d, customer_orders:status]
/// ```
public struct FeatureDefinitions: Sendable, Equatable {
    /// Entities by name.
    public var entities: [String: Entity]
    /// Sources by name.
    public var sources: [String: FeatureSource]
    /// Feature views by name.
    public var views: [String: FeatureView]
    /// Feature services by name.
    public var services: [String: FeatureService]

    /// Creates definitions.
    public init(
        entities: [String: Entity] = [:], sources: [String: FeatureSource] = [:], views: [String: FeatureView] = [:],
        services: [String: FeatureService] = [:]
    ) {
        self.entities = entities
        self.sources = sources
        self.views = views
        self.services = services
    }

    /// Every definition as (kind, name), sorted: what `apply` records a version of.
    public var names: [DefinitionName] {
        (entities.keys.map { DefinitionName(kind: .entity, name: $0) }
            + sources.keys.map { DefinitionName(kind: .source, name: $0) }
            + views.keys.map { DefinitionName(kind: .view, name: $0) }
            + services.keys.map { DefinitionName(kind: .service, name: $0) }).sorted()
    }

    /// The canonical content of one definition (sorted-key JSON, no source locations): what its version hashes.
    public func content(of name: DefinitionName) -> String? {
        switch name.kind {
        case .entity: entities[name.name].map(Self.canonical)
        case .source: sources[name.name].map(Self.canonical)
        case .view: views[name.name].map(Self.canonical)
        case .service: services[name.name].map(Self.canonical)
        }
    }

    /// The content version of a definition: for a view, of it with its entity and source; for a service, of it with
    /// every view it reads. A change anywhere a definition reads from gives it a new version.
    public func version(of name: DefinitionName) -> String? {
        guard var text = content(of: name) else { return nil }
        switch name.kind {
        case .view:
            guard let view = views[name.name] else { return nil }
            text += "\n" + (content(of: DefinitionName(kind: .entity, name: view.entity)) ?? "")
            text += "\n" + (content(of: DefinitionName(kind: .source, name: view.source)) ?? "")
        case .service:
            guard let service = services[name.name] else { return nil }
            for view in Set(service.features.map(\.view)).sorted() {
                text += "\n" + (version(of: DefinitionName(kind: .view, name: view)) ?? "")
            }
        case .entity, .source: break
        }
        let digest = SHA256.hash(data: Data(text.utf8))
        return digest.map { String(format: "%02x", $0) }.joined().prefix(16).description
    }

    static func canonical<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(value)) ?? Data(), as: UTF8.self)
    }
}

/// Names one definition: its kind and name (`view customer_orders`).
public struct DefinitionName: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    /// The kinds of definition.
    public enum Kind: String, Sendable, Codable, CaseIterable, Comparable {
        case entity, source, view, service
        public static func < (a: Kind, b: Kind) -> Bool {
            allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
        }
    }
    public var kind: Kind
    public var name: String

    /// Creates a name.
    public init(kind: Kind, name: String) {
        self.kind = kind
        self.name = name
    }

    public static func < (a: DefinitionName, b: DefinitionName) -> Bool { (a.kind, a.name) < (b.kind, b.name) }
    public var description: String { "\(kind.rawValue) \(name)" }
}

/// What a feature's values are: the key and value types a definition may declare.
public enum FeatureType: String, Sendable, Codable, CaseIterable {
    case float, integer, boolean, string, timestamp

    /// The table column type.
    public var columnType: ColumnType {
        switch self {
        case .float: .float
        case .integer: .integer
        case .boolean: .boolean
        case .string: .string
        case .timestamp: .timestamp
        }
    }

    /// Whether a source column of `type` can feed a feature of this type (integers widen to floats).
    public func accepts(_ type: ColumnType) -> Bool {
        type == columnType || (self == .float && type == .integer)
    }
}

/// The thing features describe, identified by its join key columns (a customer by `customer_id`).
public struct Entity: Sendable, Equatable, Codable {
    /// Join key columns and their types, in order.
    public var joinKeys: [Column]
    /// Where it was written.
    public var location: SourceLocation?

    /// One join key column.
    public struct Column: Sendable, Equatable, Codable {
        public var name: String
        public var type: FeatureType
        /// Creates a key column.
        public init(name: String, type: FeatureType) {
            self.name = name
            self.type = type
        }
    }

    /// Creates an entity.
    public init(joinKeys: [Column], location: SourceLocation? = nil) {
        self.joinKeys = joinKeys
        self.location = location
    }

    enum CodingKeys: String, CodingKey { case joinKeys = "join_keys" }
    public static func == (a: Entity, b: Entity) -> Bool { a.joinKeys == b.joinKeys }
}

/// Where a view's rows come from: files (CSV or Arrow, paths or globs) or a pipeline step's table output, with the
/// column that says when each row's values became true.
public struct FeatureSource: Sendable, Equatable, Codable {
    /// What is read.
    public enum Origin: Sendable, Equatable, Codable {
        /// CSV or Arrow files, folders or glob patterns (relative to the project's directory).
        case files([String])
        /// The table a pipeline step wrote: in the newest completed run (`run` nil) or a pinned one.
        case pipeline(name: String, step: String, output: String, run: String?)
    }
    public var origin: Origin
    /// The event-timestamp column.
    public var timestamp: String
    /// The column that orders rows with the same key and event time (the later one wins), if any.
    public var createdTimestamp: String?
    /// Where it was written.
    public var location: SourceLocation?

    /// Creates a source.
    public init(origin: Origin, timestamp: String, createdTimestamp: String? = nil, location: SourceLocation? = nil) {
        self.origin = origin
        self.timestamp = timestamp
        self.createdTimestamp = createdTimestamp
        self.location = location
    }

    enum CodingKeys: String, CodingKey {
        case origin, timestamp
        case createdTimestamp = "created_timestamp"
    }
    public static func == (a: FeatureSource, b: FeatureSource) -> Bool {
        a.origin == b.origin && a.timestamp == b.timestamp && a.createdTimestamp == b.createdTimestamp
    }
}

/// A named group of features of one entity read from one source: columns as of a time (within the TTL) and
/// aggregations over windows of events before it.
public struct FeatureView: Sendable, Equatable, Codable {
    public var entity: String
    public var source: String
    /// How long a row's values stay valid after its event time, in seconds (nil: forever).
    public var ttl: Int64?
    /// Columns taken as of the lookup time: the newest row at or before it, within the TTL.
    public var features: [Feature]
    /// Aggregations over the events in a window ending at the lookup time.
    public var aggregations: [Aggregation]
    /// Where it was written.
    public var location: SourceLocation?
    /// Where each part was written: `entity`, `source`, `ttl`, and each feature or aggregation by name.
    public var locations: [String: SourceLocation] = [:]

    /// Where `part` was written, or the view's own place.
    public func location(of part: String) -> SourceLocation? { locations[part] ?? location }

    /// One column feature.
    public struct Feature: Sendable, Equatable, Codable {
        public var name: String
        public var type: FeatureType
        /// Creates a feature.
        public init(name: String, type: FeatureType) {
            self.name = name
            self.type = type
        }
    }

    /// Creates a view.
    public init(
        entity: String, source: String, ttl: Int64? = nil, features: [Feature] = [], aggregations: [Aggregation] = [],
        location: SourceLocation? = nil
    ) {
        self.entity = entity
        self.source = source
        self.ttl = ttl
        self.features = features
        self.aggregations = aggregations
        self.location = location
    }

    /// Every feature name the view offers (columns, then aggregations).
    public var featureNames: [String] { features.map(\.name) + aggregations.map(\.name) }

    enum CodingKeys: String, CodingKey { case entity, source, ttl, features, aggregations }
    public static func == (a: FeatureView, b: FeatureView) -> Bool {
        a.entity == b.entity && a.source == b.source && a.ttl == b.ttl && a.features == b.features
            && a.aggregations == b.aggregations
    }
}

/// An aggregation over the events of one key in the window `(t − window, t]` before each lookup time `t`.
public struct Aggregation: Sendable, Equatable, Codable {
    /// The functions.
    public enum Function: String, Sendable, Codable, CaseIterable {
        /// Events in the window (rows; with a column, rows where it has a value).
        case count
        /// Sum of the column's values (0 for an empty window).
        case sum
        /// Mean of the column's values (missing for an empty window).
        case mean
        /// Smallest value (missing for an empty window).
        case min
        /// Largest value (missing for an empty window).
        case max
        /// The newest value in the window (missing for an empty window).
        case last
    }
    /// The feature's name.
    public var name: String
    public var function: Function
    /// The source column aggregated (nil only for `count`).
    public var column: String?
    /// The window's length in seconds.
    public var window: Int64

    /// Creates an aggregation.
    public init(name: String, function: Function, column: String?, window: Int64) {
        self.name = name
        self.function = function
        self.column = column
        self.window = window
    }
}

/// A named list of `view:feature` references a model consumes.
public struct FeatureService: Sendable, Equatable, Codable {
    /// One reference.
    public struct Reference: Sendable, Hashable, Codable, CustomStringConvertible {
        public var view: String
        public var feature: String
        /// Creates a reference.
        public init(view: String, feature: String) {
            self.view = view
            self.feature = feature
        }
        public var description: String { "\(view):\(feature)" }
    }
    /// What a model server does for an entity the online store has no values for.
    public enum MissingEntity: String, Sendable, Codable, CaseIterable {
        /// Refuse the request, naming the key.
        case refuse
        /// Predict with the features missing (the training-time handling of missing values).
        case missing
    }

    /// The features, in output order (a view's `*` expanded when read).
    public var features: [Reference]
    /// What a model served from this service does for an unknown entity.
    public var missingEntity: MissingEntity
    /// Where it was written.
    public var location: SourceLocation?

    /// Creates a service.
    public init(features: [Reference], missingEntity: MissingEntity = .refuse, location: SourceLocation? = nil) {
        self.features = features
        self.missingEntity = missingEntity
        self.location = location
    }

    enum CodingKeys: String, CodingKey {
        case features
        case missingEntity = "missing_entity"
    }
    public static func == (a: FeatureService, b: FeatureService) -> Bool {
        a.features == b.features && a.missingEntity == b.missingEntity
    }
}

/// Durations as written in definitions: `90s`, `15m`, `1h`, `7d`, `2w`.
public enum DurationText {
    /// Seconds in `text`, or nil when it is not a duration.
    public static func seconds(_ text: String) -> Int64? {
        guard let unit = text.last, let number = Int64(text.dropLast()), number > 0 else { return nil }
        switch unit {
        case "s": return number
        case "m": return number * 60
        case "h": return number * 3600
        case "d": return number * 86_400
        case "w": return number * 7 * 86_400
        default: return nil
        }
    }

    /// The shortest text for `seconds` (`7d`, `36h`).
    public static func text(_ seconds: Int64) -> String {
        for (unit, size) in [("w", Int64(7 * 86_400)), ("d", 86_400), ("h", 3600), ("m", 60)]
        where seconds % size == 0 {
            return "\(seconds / size)\(unit)"
        }
        return "\(seconds)s"
    }
}
