import ArgumentParser
import Foundation
import SluiceCore
import SluiceData
import Synchronization

/// The `sluice` command line: `sluice <noun> <verb>`.
package struct SluiceCommand: AsyncParsableCommand {
    package static var configuration: CommandConfiguration {
        let tool = toolCommands.withLock { $0 }
        // The `sluice` tool's own commands where it registered them, stand-ins that run it elsewhere.
        func command(_ name: String, _ delegate: any ParsableCommand.Type) -> any ParsableCommand.Type {
            tool.first { $0.configuration.commandName == name } ?? delegate
        }
        return CommandConfiguration(
            commandName: CommandLine.arguments.first.map { URL(fileURLWithPath: $0).lastPathComponent } ?? "sluice",
            abstract: "Reproducible, traceable ML pipelines.",
            version: RunEnvironment.sluiceVersion,
            subcommands: [
                InitCommand.self, RunCommand.self, RunsCommand.self, ArtifactsCommand.self, PipelinesCommand.self,
                DataCommand.self, DemoCommand.self, ModelsCommand.self, command("serve", ServeDelegate.self),
                ScoreCommand.self, command("profile", ProfileDelegate.self), command("ui", UIDelegate.self),
                TokensCommand.self, ManualCommand.self, ExportCommand.self, StackCommand.self, StoreCommand.self,
                StepCommand.self, GCCommand.self, ScheduleCommand.self, WatchCommand.self, FeaturesCommand.self,
                command("tracking", TrackingDelegate.self),
            ])
    }

    /// The commands the `sluice` tool links and pipeline executables do not (serve, ui, profile, tracking).
    private static let toolCommands = Mutex<[any ParsableCommand.Type]>([])

    /// Registers the `sluice` tool's own `serve`, `ui` and `profile` in place of the stand-ins that run the tool.
    package static func register(_ commands: [any ParsableCommand.Type]) {
        toolCommands.withLock { $0 = commands }
    }

    /// The `sluice` tool's `features serve` (the feature server links the model server), when it registered it.
    static var featuresServe: (any ParsableCommand.Type)? { featuresServeCommand.withLock { $0 } }
    private static let featuresServeCommand = Mutex<(any ParsableCommand.Type)?>(nil)

    /// Registers the `sluice` tool's `features serve` in place of the stand-in that runs the tool.
    package static func register(featuresServe command: any ParsableCommand.Type) {
        featuresServeCommand.withLock { $0 = command }
    }

    /// Whether this executable is the `sluice` tool (it registered the serving commands).
    static var isTool: Bool { !toolCommands.withLock { $0.isEmpty } }

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
