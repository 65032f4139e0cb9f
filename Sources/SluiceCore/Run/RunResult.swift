import Foundation

/// What a run produced: its record, its step runs, and each step's output artifacts.
public struct RunResult: Sendable {
    /// The run's final record.
    public let run: Run
    /// Every step run, in the order they ended.
    public let stepRuns: [StepRun]
    /// Output artifacts by step name, then output name.
    public let outputs: [String: [String: ArtifactRecord]]
    let artifacts: any ArtifactStore
    let materializers: MaterializerRegistry

    /// The step run of the step called `name`.
    public func stepRun(_ name: String) -> StepRun? { stepRuns.first { $0.stepName == name } }

    /// Reads an output value back from the artifact store.
    public func value<T>(_ type: T.Type, step: String, output: String = "output") throws -> T {
        guard let record = outputs[step]?[output] else {
            throw CocoaError(
                .fileNoSuchFile,
                userInfo: [NSLocalizedDescriptionKey: "step '\(step)' has no output '\(output)' in this run"])
        }
        guard let materializer = materializers.materializer(for: T.self) else {
            preconditionFailure("no materializer for \(T.self)")
        }
        return try materializer.load(record.uri, from: artifacts) as! T
    }
}
