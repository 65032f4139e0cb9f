import ArgumentParser
import Foundation
import SluiceCLI
import SluiceCore
import SluiceDashboard

/// `sluice tracking`: MLflow's tracking protocol without the dashboard's pages.
struct TrackingCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tracking",
        abstract: "Serve MLflow's tracking protocol, so `mlflow` client code records into this project's store.",
        subcommands: [Serve.self])

    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Serve MLflow's tracking REST protocol and artifact proxy on a headless host.",
            discussion: """
                Answers /api/2.0/mlflow/… (experiments, runs, metrics, params, tags, logged models) and
                /api/2.0/mlflow-artifacts/… (uploads kept in the stack's artifact store) over the stack's metadata
                store, SQLite or PostgreSQL. Point the mlflow client at it:

                  export MLFLOW_TRACKING_URI=http://127.0.0.1:5000
                  python train.py            # mlflow.start_run(), log_metric(), autolog() … unchanged

                `sluice ui` serves the same protocol beside its pages. Bound beyond loopback every call needs an access
                token (`sluice tokens create NAME --write`), which the client sends from MLFLOW_TRACKING_TOKEN.
                """)

        @Option(help: "The address to bind (loopback by default; 0.0.0.0 to accept other machines, with tokens).")
        var host = "127.0.0.1"
        @Option(help: "The port (0: any free port).") var port = 5000
        @Flag(help: "Ask for an access token even on loopback.") var requireToken = false

        @OptionGroup var stackOption: StackOption

        func run() async throws {
            guard (0...65535).contains(port) else { throw ValidationError("--port must be from 0 to 65535") }
            let workspace = try await Workspace.open(create: false, stack: stackOption.name)
            let configuration = DashboardConfiguration(
                host: host, port: port, requireTokens: requireToken ? true : nil, trackingOnly: true)
            if configuration.requireTokens,
                try await workspace.stack.tokens.tokens().allSatisfy({ $0.revokedAt != nil })
            {
                printError(
                    "note: this server needs access tokens and the store has none yet: create one with "
                        + "`sluice tokens create NAME --write` and export it as MLFLOW_TRACKING_TOKEN.")
            }
            let server = try Dashboard(stack: workspace.stack, configuration: configuration)
            let host = host
            try await server.run { port in
                printError(
                    "MLflow tracking protocol on http://\(host):\(port)  (MLFLOW_TRACKING_URI=http://\(host):\(port))")
            }
        }
    }
}
