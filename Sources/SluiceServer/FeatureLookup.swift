import Foundation
import SluiceML

/// Online feature lookups a server answers at `POST /v1/features/online`: the feature store implements it (the
/// server knows no store), so a server can embed it without the pipeline core.
public protocol FeatureLookup: Sendable {
    /// Answers one request body (JSON); a refusal is thrown as an error with an HTTP status
    /// (``SluiceErrors/HTTPRefusal``), which the server sends as `{"error": "..."}`.
    func lookup(json: Data) async throws -> FeatureLookupAnswer

    /// The values of `features` (`view:feature`) for each entity `keys` names (join key → one value per entity, as
    /// text): a model served from a feature service fills its inputs with them.
    func fetch(_ features: [String], keys: [String: [String]]) async throws -> FetchedFeatures
}

/// Feature values for a batch of entities: one column per feature (a missing or expired value is missing), and
/// whether the store had any values for each entity.
public struct FetchedFeatures: Sendable {
    /// Per feature, one value per entity.
    public var columns: [[RawValue]]
    /// Per entity, whether the store knew it.
    public var known: [Bool]

    /// Creates the values.
    public init(columns: [[RawValue]], known: [Bool]) {
        self.columns = columns
        self.known = known
    }
}

/// What a lookup answered: the JSON body, and how many entities it read (for metrics).
public struct FeatureLookupAnswer: Sendable {
    /// The response body.
    public var json: String
    /// Entities looked up.
    public var entities: Int

    /// Creates an answer.
    public init(json: String, entities: Int) {
        self.json = json
        self.entities = entities
    }
}
