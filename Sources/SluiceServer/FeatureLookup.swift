import Foundation

/// Online feature lookups a server answers at `POST /v1/features/online`: the feature store implements it (the
/// server knows no store), so a server can embed it without the pipeline core.
public protocol FeatureLookup: Sendable {
    /// Answers one request body (JSON); a refusal is thrown as an error with an HTTP status
    /// (``SluiceErrors/HTTPRefusal``), which the server sends as `{"error": "..."}`.
    func lookup(json: Data) async throws -> FeatureLookupAnswer
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
