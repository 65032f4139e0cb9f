/// One step of training, reported to a callback so a pipeline can draw a progress bar.
public struct TrainingProgress: Sendable, Equatable {
    /// The iteration (optimizer iteration or boosting round), from 1.
    public var iteration: Int
    /// The most iterations this training may take.
    public var maxIterations: Int
    /// The training loss after this iteration.
    public var loss: Double
    /// The evaluation metric's name and value, when there is an evaluation set.
    public var evalMetric: (name: String, value: Double)?
    /// Seconds since training began.
    public var elapsedSeconds: Double
    /// Training rows processed per second so far (rows × iterations / seconds).
    public var rowsPerSecond: Double

    public static func == (a: TrainingProgress, b: TrainingProgress) -> Bool {
        a.iteration == b.iteration && a.maxIterations == b.maxIterations && a.loss == b.loss
            && a.evalMetric?.name == b.evalMetric?.name && a.evalMetric?.value == b.evalMetric?.value
    }
}

/// Receives training progress; called on the training thread, so keep it quick.
public typealias TrainingCallback = @Sendable (TrainingProgress) -> Void

/// How an iterative optimizer ended.
public struct ConvergenceReport: Codable, Sendable, Equatable {
    /// Iterations taken.
    public var iterations: Int
    /// Whether a convergence criterion was met (rather than the iteration limit).
    public var converged: Bool
    /// Why it stopped, in words.
    public var reason: String
    /// The objective (mean loss plus penalty) at the end.
    public var finalObjective: Double
    /// The largest absolute gradient component at the end.
    public var gradientNorm: Double
}

/// Training cannot proceed, with what to do about it.
public struct TrainingError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What is wrong.
    public var problem: String
    /// What to do.
    public var fix: String
}
