import Foundation
import Testing

@testable import SluiceCore

@Suite("One error protocol: problem, fix, exit status")
struct SluiceErrorTests {
    @Test("mistakes in input or usage exit with 2, failures of the work itself with 1, each with a fix")
    func exitStatuses() {
        let unusable: [any SluiceError] = [
            ConfigError(problem: "p", fix: "f"),
            PipelineValidationError(pipeline: "p", problems: ["a", "b"]),
            RegistryRules.unknownModel("pengiuns", known: []),
            AmbiguousIDError(prefix: "run-1", matches: ["run-10", "run-11"]),
        ]
        let failed: [any SluiceError] = [
            StoreFailure(message: "disk I/O error"),
            ArtifactWriteError(output: "o", step: "s", underlying: CocoaError(.fileWriteOutOfSpace)),
        ]
        #expect(unusable.allSatisfy { $0.exitStatus == .unusableInput })
        #expect(failed.allSatisfy { $0.exitStatus == .failed })
        for error in unusable + failed {
            #expect(!error.problem.isEmpty)
            #expect(!error.fix.isEmpty)
        }
        #expect(ExitStatus.unusableInput.rawValue == 2 && ExitStatus.failed.rawValue == 1)
        #expect(PipelineValidationError(pipeline: "p", problems: ["a"]).problem.contains("- a"))
    }
}
