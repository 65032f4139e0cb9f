import Foundation
import SluiceCLI
@_exported import SluiceCore
@_exported import SluiceData
@_exported import SluiceStack

/// The entry point of an executable built on Sluice: `await Sluice.main(pipelines: [myPipeline])` gives it
/// the whole `sluice` command line (`run`, `runs`, `artifacts`, `pipelines`, `init`).
public enum Sluice {
    /// Runs the command line with these pipelines and materializers, then exits with the command's status.
    public static func main(
        pipelines: [Pipeline], materializers: MaterializerRegistry = .standard,
        arguments: [String] = Array(CommandLine.arguments.dropFirst())
    ) async -> Never {
        let status = await SluiceCommand.run(arguments: arguments, pipelines: pipelines, materializers: materializers)
        exit(status)
    }
}
