import ArgumentParser
import Foundation
import SluiceCLI
import SluiceCore
import SluiceDashboard

/// `sluice ui`: the web dashboard over the project's stack.
struct UICommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ui",
        abstract: "Serve the web dashboard: runs, graphs, logs, artifacts, lineage, models, comparisons, datasets.",
        discussion: """
            Serves server-rendered pages over the project's stack (whichever metadata store and artifact store it
            names) and the same data as JSON under /api/. Pages of running runs update live.

            Bound to loopback (the default) it needs no token. Bound to any other address, every page and API call
            needs an access token (`sluice tokens create NAME`, `--write` for promote, roll back and cancel); a
            browser signs in once at /login. --require-token asks for tokens on loopback too.

            Examples:
              sluice ui
              sluice ui --host 0.0.0.0 --port 8090
              curl -s localhost:8090/api/runs | jq '.runs[0]'
            """)

    @Option(help: "The address to bind (loopback by default; 0.0.0.0 to accept other machines, with tokens).")
    var host = "127.0.0.1"
    @Option(help: "The port (0: any free port).") var port = 8090
    @Flag(help: "Ask for an access token even on loopback.") var requireToken = false

    @OptionGroup var stackOption: StackOption

    func run() async throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be from 0 to 65535") }
        let workspace = try await Workspace.open(create: false, stack: stackOption.name)
        let configuration = DashboardConfiguration(
            host: host, port: port, requireTokens: requireToken ? true : nil)
        if configuration.requireTokens, try await workspace.stack.tokens.tokens().allSatisfy({ $0.revokedAt != nil }) {
            printError(
                "note: this dashboard needs access tokens and the store has none yet: create one with "
                    + "`sluice tokens create NAME` (add --write to allow promote, roll back and cancel).")
        }
        let dashboard = try Dashboard(stack: workspace.stack, configuration: configuration)
        let host = host
        let tokens = configuration.requireTokens ? "access tokens required" : "no token needed on loopback"
        try await dashboard.run { port in
            printError("dashboard on http://\(host):\(port)  (\(tokens); JSON API at /api/)")
        }
    }
}
