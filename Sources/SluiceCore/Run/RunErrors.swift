import Foundation
import SluiceErrors

/// A step run that cannot start: an unknown run or step, or an upstream output not written yet.
public struct StepRunError: SluiceError, Equatable {
    public var problem: String
    public var fix: String
    public var exitStatus: ExitStatus { .unusableInput }

    /// Creates the error.
    public init(problem: String, fix: String) {
        self.problem = problem
        self.fix = fix
    }

    static func unknownRun(_ id: String) -> StepRunError {
        StepRunError(problem: "no run matches '\(id)'.", fix: "list runs with `sluice runs list`.")
    }
}

/// A step that declares `usesRunSeed = false` drew from the run seed: its output would change with the seed while
/// its cache key would not.
public struct UndeclaredSeedError: Error, CustomStringConvertible {
    /// The step's name in the pipeline.
    public var step: String
    /// Its type.
    public var kind: String
}

/// A metadata store failure that stopped a run.
public struct StoreFailure: Error, CustomStringConvertible {
    /// What the store said.
    public var message: String
    public var description: String { "the metadata store failed: \(message)" }

    /// Creates the error from what the store said.
    public init(message: String) { self.message = message }
}

/// An output that could not be written to the artifact store.
public struct ArtifactWriteError: Error, CustomStringConvertible {
    public var output: String
    public var step: String
    public var underlying: Error
    public var description: String { "while saving artifact '\(output)' of step '\(step)': \(underlying)" }
}

/// An input artifact that could not be read back.
public struct ArtifactReadError: Error, CustomStringConvertible {
    public var artifact: ArtifactRecord
    public var underlying: Error
}
