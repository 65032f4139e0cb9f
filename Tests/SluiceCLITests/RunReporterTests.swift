import Foundation
import SluiceCore
import Synchronization
import Testing

@testable import SluiceCLI

@Suite("The run reporter")
struct RunReporterTests {
    @Test(
        "a step reported twice in the same state (a Slurm run's cache hits, at submission and when followed) prints once"
    )
    func repeatedStatesPrintOnce() {
        let lines = Mutex<[String]>([])
        let reporter = RunReporter(
            terminal: Terminal(fileDescriptor: -1, environment: ["NO_COLOR": "1"]),
            write: { text in lines.withLock { $0.append(text) } })
        for step in ["ingest", "statistics"] {
            reporter.stepChanged(step, to: .queued)
            reporter.stepChanged(step, to: .cached(from: "run-1"))
        }
        for step in ["ingest", "statistics"] { reporter.stepChanged(step, to: .cached(from: "run-1")) }
        reporter.stepChanged("train", to: .running(since: Date(timeIntervalSince1970: 1)))
        reporter.stepChanged("train", to: .completed(duration: 2))
        reporter.stepChanged("train", to: .completed(duration: 2))
        let text = lines.withLock { $0.joined() }
        #expect(text.components(separatedBy: "ingest cached").count == 2, "\(text)")
        #expect(text.components(separatedBy: "statistics cached").count == 2, "\(text)")
        #expect(text.components(separatedBy: "train done").count == 2, "\(text)")
    }
}
