import Foundation

/// Receives a run's progress as it happens: the CLI draws it, tests record it.
public protocol RunObserver: Sendable {
    /// The run has been recorded and its steps are queued.
    func runStarted(_ run: Run, steps: [String])
    /// A step changed state.
    func stepChanged(_ step: String, to state: StepState)
    /// A running step reported progress.
    func stepProgressed(_ step: String, progress: StepProgress)
    /// The run ended.
    func runFinished(_ result: RunResult)
}

extension RunObserver {
    public func runStarted(_ run: Run, steps: [String]) {}
    public func stepChanged(_ step: String, to state: StepState) {}
    public func stepProgressed(_ step: String, progress: StepProgress) {}
    public func runFinished(_ result: RunResult) {}
}

/// Where a step is in a run.
public enum StepState: Sendable, Equatable {
    case queued
    case running(since: Date)
    case cached(from: String)
    case completed(duration: TimeInterval)
    case failed(reason: String)
    case skipped(reason: String)
    case cancelled
}
