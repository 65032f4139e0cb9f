import SluiceCore
import Synchronization

/// The pipelines and materializers compiled into this executable, handed over by `Sluice.main`.
public enum Catalog {
    private static let state = Mutex<(pipelines: [Pipeline], materializers: MaterializerRegistry)>(
        ([], MaterializerRegistry()))

    /// Registers what the CLI can run.
    public static func register(pipelines: [Pipeline], materializers: MaterializerRegistry) {
        state.withLock { $0 = (pipelines, materializers) }
    }

    static var pipelines: [Pipeline] { state.withLock { $0.pipelines } }
    static var materializers: MaterializerRegistry { state.withLock { $0.materializers } }
}
