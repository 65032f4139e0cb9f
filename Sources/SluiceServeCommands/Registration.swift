import ArgumentParser
import SluiceCLI

/// The `sluice` tool's commands that serve (the model server, the dashboard, the profiler): the only part of the
/// command line that links Hummingbird, gRPC, NIO HTTP/2 and Mustache. Pipeline executables leave them out and run
/// the `sluice` tool for them; the tool registers them before it parses its arguments.
public enum SluiceServeCommands {
    /// Puts `serve`, `ui`, `profile` and `tracking` in the command line in place of the stand-ins that run the `sluice` tool.
    public static func register() {
        SluiceCommand.register([ServeCommand.self, UICommand.self, ProfileCommand.self, TrackingCommand.self])
        SluiceCommand.register(featuresServe: FeaturesServeCommand.self)
    }
}
