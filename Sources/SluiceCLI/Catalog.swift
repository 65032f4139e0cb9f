import SluiceCore

/// The pipelines and materializers compiled into the executable running this command line, handed over by
/// `Sluice.main` for the duration of ``SluiceCommand/run(arguments:pipelines:materializers:)`` (a task-local
/// value, not global state: two command lines in one process, as tests run them, each see their own).
struct Catalog: Sendable {
    var pipelines: [Pipeline] = []
    var materializers = MaterializerRegistry()

    /// The catalog of the command line running in this task.
    @TaskLocal static var current = Catalog()

    static var pipelines: [Pipeline] { current.pipelines }
    static var materializers: MaterializerRegistry { current.materializers }
}
