import Foundation
import SluiceCore

/// An engine over a temporary artifact store and the given metadata store (in memory by default).
public struct TestEngine: Sendable {
    /// The engine.
    public let engine: RunEngine
    /// The folder holding the artifact store, logs and scratch space.
    public let directory: TemporaryDirectory

    /// Creates the engine.
    public init(
        metadata: any MetadataStore = InMemoryMetadataStore(),
        materializers: MaterializerRegistry = MaterializerRegistry()
    ) throws {
        directory = try TemporaryDirectory(prefix: "sluice-engine")
        engine = RunEngine(
            metadata: metadata, artifacts: try LocalArtifactStore(root: directory.path("artifacts")),
            materializers: materializers, logDirectory: directory.path("logs"),
            scratchDirectory: directory.path("scratch"))
    }

    /// The metadata store.
    public var metadata: any MetadataStore { engine.metadata }

    /// Runs `pipeline` with `config`.
    public func run(_ pipeline: Pipeline, config: RunConfig = RunConfig(), observer: (any RunObserver)? = nil)
        async throws -> RunResult
    {
        try await engine.run(pipeline, config: config, observer: observer)
    }
}
