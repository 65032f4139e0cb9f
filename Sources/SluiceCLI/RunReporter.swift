import Foundation
import SluiceCore
import Synchronization

/// Shows a run as it happens on standard error.
///
/// On a terminal: a line per finished step above a live block of running steps (elapsed time, progress
/// bar and rate), redrawn ten times a second. Elsewhere (CI logs, pipes): one plain line per state change.
final class RunReporter: RunObserver, Sendable {
    private let terminal: Terminal
    private let state = Mutex(State())
    private let write: @Sendable (String) -> Void

    struct Live {
        var since: Date
        var progress: StepProgress?
        var progressStart: (Date, Int)?
    }

    struct State {
        var running: [(String, Live)] = []
        var drawnLines = 0
        var total = 0
        var counts: [String: Int] = [:]
        var finished = false
        /// The state each step was last reported in: an observer that hears one twice (a Slurm run's cache hits
        /// are settled when it is submitted and read back from the records while it is followed) says it once.
        var last: [String: StepState] = [:]
    }

    init(
        terminal: Terminal = .standardError,
        write: @escaping @Sendable (String) -> Void = { printError($0, terminator: "") }
    ) {
        self.terminal = terminal
        self.write = write
    }

    func runStarted(_ run: Run, steps: [String]) {
        state.withLock { $0.total = steps.count }
        write(
            terminal.paint("▶ ", .cyan) + "run " + terminal.paint(run.id, .bold) + " of pipeline '\(run.pipeline)': "
                + "\(steps.count) step\(steps.count == 1 ? "" : "s") queued\n")
    }

    func stepChanged(_ step: String, to stepState: StepState) {
        state.withLock { state in
            guard state.last.updateValue(stepState, forKey: step) != stepState else { return }
            var line: String?
            switch stepState {
            case .queued:
                return
            case .running(let since):
                state.running.append((step, Live(since: since)))
                if !terminal.isInteractive { line = terminal.paint("  … ", .dim) + "\(step) running" }
            case .cached(let from):
                state.counts["cached", default: 0] += 1
                line =
                    terminal.paint("  ↺ ", .blue) + "\(step) " + terminal.paint("cached", .blue)
                    + terminal.paint(" (from \(from))", .dim)
            case .completed(let duration):
                state.counts["done", default: 0] += 1
                line = terminal.paint("  ✔ ", .green) + "\(step) done in \(formatDuration(duration))"
            case .failed(let reason):
                state.counts["failed", default: 0] += 1
                line = terminal.paint("  ✘ ", .red) + "\(step) " + terminal.paint("failed", .red, .bold) + ": \(reason)"
            case .skipped(let reason):
                state.counts["skipped", default: 0] += 1
                line = terminal.paint("  – ", .yellow) + "\(step) skipped: \(reason)"
            case .cancelled:
                state.counts["cancelled", default: 0] += 1
                line = terminal.paint("  ■ ", .yellow) + "\(step) cancelled"
            }
            if case .running = stepState {} else { state.running.removeAll { $0.0 == step } }
            redraw(&state, permanent: line)
        }
    }

    func stepProgressed(_ step: String, progress: StepProgress) {
        state.withLock { state in
            guard let index = state.running.firstIndex(where: { $0.0 == step }) else { return }
            if state.running[index].1.progressStart == nil {
                state.running[index].1.progressStart = (Date(), progress.completed)
            }
            state.running[index].1.progress = progress
            if !terminal.isInteractive {
                // Plain logs get a line per 10% at most.
                guard let total = progress.total, total > 0 else { return }
                let decile = progress.completed * 10 / total
                let key = "\(step)#\(decile)"
                guard state.counts[key] == nil else { return }
                state.counts[key] = 1
                write(
                    "  … \(step) \(progress.completed * 100 / total)% (\(progress.completed)/\(total) \(progress.unit))\n"
                )
            }
        }
    }

    func runFinished(_ result: RunResult) {
        state.withLock { state in
            state.finished = true
            redraw(&state, permanent: nil)
        }
    }

    /// Redraws the live block; called every 100 ms on a terminal by ``tick()``.
    func tick() {
        guard terminal.isInteractive else { return }
        state.withLock { state in
            guard !state.finished else { return }
            redraw(&state, permanent: nil)
        }
    }

    private func redraw(_ state: inout State, permanent: String?) {
        guard terminal.isInteractive else {
            if let permanent { write(permanent + "\n") }
            return
        }
        var out = ""
        if state.drawnLines > 0 { out += "\u{1B}[\(state.drawnLines)A\u{1B}[J" }
        if let permanent { out += permanent + "\n" }
        state.drawnLines = 0
        if !state.finished {
            let spinner = Array("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")
            let frame = spinner[Int(Date().timeIntervalSince1970 * 10) % spinner.count]
            for (name, live) in state.running.prefix(12) {
                out +=
                    terminal.paint("  \(frame) ", .cyan) + "\(name) running "
                    + terminal.paint(formatDuration(Date().timeIntervalSince(live.since)), .dim)
                if let progress = live.progress { out += "  " + bar(progress, start: live.progressStart) }
                out += "\n"
                state.drawnLines += 1
            }
            if state.running.count > 12 {
                out += terminal.paint("  … and \(state.running.count - 12) more running\n", .dim)
                state.drawnLines += 1
            }
        }
        write(out)
    }

    private func bar(_ progress: StepProgress, start: (Date, Int)?) -> String {
        var text = ""
        if let total = progress.total, total > 0 {
            let fraction = min(1, Double(progress.completed) / Double(total))
            let width = 24
            let filled = Int(fraction * Double(width))
            text += "[" + String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled) + "] "
            text += String(format: "%3.0f%% ", fraction * 100)
        }
        text += "\(progress.completed)\(progress.total.map { "/\($0)" } ?? "") \(progress.unit)"
        if let (startDate, startCount) = start {
            let elapsed = Date().timeIntervalSince(startDate)
            if elapsed > 0.2 {
                text += String(format: " %.0f/s", Double(progress.completed - startCount) / elapsed)
            }
        }
        return terminal.paint(text, .dim)
    }
}
