import ArgumentParser
import Foundation
import SluiceCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The commands of the `sluice` tool that a pipeline executable does not link (the model server, the dashboard,
/// the profiler: Hummingbird, gRPC, NIO HTTP/2, Mustache): in a pipeline executable, each is a stand-in that runs
/// the `sluice` tool with the same arguments, in place of this process. The tool registers the real ones
/// (``SluiceCommand/register(_:)``), so `Sluice.main(pipelines:)` keeps giving every command while a step process
/// loads only what running a step needs.
enum ToolDelegation {
    /// The `sluice` tool: `SLUICE_TOOL`, else a `sluice` beside this executable, else one on `PATH`.
    static func tool(environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        if let path = environment["SLUICE_TOOL"], !path.isEmpty { return path }
        let beside = URL(fileURLWithPath: StepCommandLine.currentExecutable).deletingLastPathComponent()
            .appending(path: "sluice").path
        if FileManager.default.isExecutableFile(atPath: beside), beside != StepCommandLine.currentExecutable {
            return beside
        }
        for folder in (environment["PATH"] ?? "").split(separator: ":") {
            let path = "\(folder)/sluice"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    /// Replaces this process with `sluice COMMAND ARGUMENTS…`.
    /// - Throws: ``CLIError`` when there is no `sluice` tool to run, saying how to get one.
    static func exec(_ command: String, _ arguments: [String]) throws -> Never {
        guard let tool = tool() else {
            throw CLIError(
                problem: "`\(command)` is a command of the `sluice` tool, which this pipeline executable runs for it, "
                    + "and no `sluice` was found (SLUICE_TOOL, beside this executable, or on PATH).",
                fix: "install the tool (`Scripts/install.sh`, or `swift build -c release --product sluice`) and put "
                    + "it on PATH or name it in SLUICE_TOOL; or run `sluice \(command) …` yourself.")
        }
        let argv = ([tool, command] + arguments).map { strdup($0) } + [nil]
        execv(tool, argv)
        let reason = String(cString: strerror(errno))
        throw CLIError(
            problem: "could not run \(tool) for `\(command)`: \(reason).",
            fix: "check that \(tool) is the `sluice` tool and can be executed, or set SLUICE_TOOL to one that can.")
    }
}

/// `serve` in a pipeline executable: runs the `sluice` tool's.
struct ServeDelegate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve registered models over HTTP and gRPC (KServe V2): runs `sluice serve` with these arguments.")
    @Argument(parsing: .captureForPassthrough) var arguments: [String] = []
    func run() throws { try ToolDelegation.exec("serve", arguments) }
}

/// `ui` in a pipeline executable: runs the `sluice` tool's.
struct UIDelegate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ui", abstract: "Serve the web dashboard: runs `sluice ui` with these arguments.")
    @Argument(parsing: .captureForPassthrough) var arguments: [String] = []
    func run() throws { try ToolDelegation.exec("ui", arguments) }
}

/// `profile` in a pipeline executable: runs the `sluice` tool's.
struct ProfileDelegate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "profile",
        abstract: "Measure a model version's size, load time and latency: runs `sluice profile` with these arguments.")
    @Argument(parsing: .captureForPassthrough) var arguments: [String] = []
    func run() throws { try ToolDelegation.exec("profile", arguments) }
}

/// `features serve` in a pipeline executable: runs the `sluice` tool's.
struct FeaturesServeDelegate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve online feature lookups over HTTP: runs `sluice features serve` with these arguments.")
    @Argument(parsing: .captureForPassthrough) var arguments: [String] = []
    func run() throws { try ToolDelegation.exec("features", ["serve"] + arguments) }
}

/// `tracking` in a pipeline executable: runs the `sluice` tool's (MLflow's tracking protocol links the HTTP server).
struct TrackingDelegate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tracking",
        abstract: "Serve MLflow's tracking protocol on a headless host: runs `sluice tracking` with these arguments.")
    @Argument(parsing: .captureForPassthrough) var arguments: [String] = []
    func run() throws { try ToolDelegation.exec("tracking", arguments) }
}
