import ArgumentParser
import Foundation
import SluiceCore
import SluiceData

/// The `sluice` command line: `sluice <noun> <verb>`.
package struct SluiceCommand: AsyncParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: CommandLine.arguments.first.map { URL(fileURLWithPath: $0).lastPathComponent } ?? "sluice",
        abstract: "Reproducible, traceable ML pipelines.",
        version: RunEnvironment.sluiceVersion,
        subcommands: [
            InitCommand.self, RunCommand.self, RunsCommand.self, ArtifactsCommand.self, PipelinesCommand.self,
            DataCommand.self, DemoCommand.self, ModelsCommand.self, ServeCommand.self, ScoreCommand.self,
            ProfileCommand.self, UICommand.self, TokensCommand.self, ManualCommand.self, ExportCommand.self,
            StackCommand.self, StoreCommand.self, StepCommand.self, GCCommand.self, ScheduleCommand.self,
            WatchCommand.self,
        ])

    package init() {}

    /// Parses the command line and runs the command with these pipelines and materializers, printing errors in
    /// Sluice's "what, then how to fix" form; returns the exit status.
    package static func run(
        arguments: [String]? = nil, pipelines: [Pipeline] = [],
        materializers: MaterializerRegistry = MaterializerRegistry()
    ) async -> Int32 {
        await Catalog.$current.withValue(Catalog(pipelines: pipelines, materializers: materializers)) {
            await execute(arguments: arguments)
        }
    }

    private static func execute(arguments: [String]?) async -> Int32 {
        do {
            let given = arguments ?? Array(CommandLine.arguments.dropFirst())
            if given.starts(with: ["step", "run"]),
                let request = StepCommand.RunStep.StepRequest(orchestratorArguments: Array(given.dropFirst(2)))
            {
                try await StepCommand.RunStep.execute(request)
                return 0
            }
            var command = try parseAsRoot(arguments)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            return 0
        } catch let error as any SluiceError {
            report("\(error)")
            return error.exitStatus.rawValue
        } catch {
            let code = exitCode(for: error)
            if code.rawValue != 0, !(error is ExitCode) {
                // ArgumentParser's own messages (usage errors) already say what to do; a usage mistake is
                // unusable input, status 2, like every other one (not ArgumentParser's 64).
                if code == .validationFailure {
                    printError(fullMessage(for: error))
                    return ExitStatus.unusableInput.rawValue
                } else {
                    report(fullMessage(for: error))
                }
            } else if code.rawValue == 0, !(error is ExitCode) {
                print(fullMessage(for: error))  // --help, --version
            }
            return code.rawValue
        }
    }

    private static func report(_ message: String) {
        printError(Terminal.standardError.paint("error: ", .red, .bold) + message)
    }
}
