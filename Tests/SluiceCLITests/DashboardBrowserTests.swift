import Foundation
import SluiceTesting
import Testing

@Suite("sluice ui and sluice tokens, as people and scripts use them")
struct DashboardBrowserTests {
    /// The Playwright script beside this file.
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appending(path: "dashboard_browser.py")

    @Test(
        "a project made by real runs reads right in Chromium: pages, click-through, promote, roll back, live runs"
    )
    func browser() async throws {
        let directory = try TemporaryDirectory(prefix: "sluice-ui")
        // The demo, the same again (cached), other settings (a second version), and a failed run.
        for (arguments, expected) in [
            (["demo"], Int32(0)), (["demo"], 0),
            (["demo", "--set", "train.rounds=20", "--set", "train.learning_rate=0.1"], 0),
            (["demo", "--set", "train.label=nosuchcolumn"], 1), (["profile", "penguins@1"], 0),
        ] {
            let result = try await CommandProcess.run("sluice", arguments, in: directory.url)
            #expect(result.status == expected, "sluice \(arguments.joined(separator: " ")): \(result.errors)")
        }
        let chromium = try await Chromium.installed()
        let python = try await PythonPackages.environment(
            modules: ["playwright"], packages: ["playwright"], set: "playwright")

        let ui = try CommandProcess("sluice", ["ui", "--port", "0"], in: directory.url)
        defer { ui.process.interrupt() }
        try await ui.waitForError(containing: "dashboard on http://127.0.0.1:")
        let line = ui.errors.split(separator: "\n").first { $0.contains("dashboard on http://127.0.0.1:") }!
        let port = try #require(Int(line.split(separator: ":").last!.prefix { $0.isNumber }))

        // SLUICE_UI_SCREENSHOTS=docs/dashboard keeps the screenshots (how the ones in docs/ were made).
        let shots =
            ProcessInfo.processInfo.environment["SLUICE_UI_SCREENSHOTS"].map { URL(fileURLWithPath: $0) }
            ?? directory.path("screenshots")
        let browser = try CommandProcess(
            "/usr/bin/env",
            [
                "python3", Self.script.path, "http://127.0.0.1:\(port)", directory.url.path,
                try CommandProcess.executable("sluice").path, chromium, shots.path,
            ], in: directory.url,
            environment: python.merging(["PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1"]) { $1 })
        let status = await browser.wait(timeout: .seconds(300))
        #expect(status == 0, "\(browser.output)\n\(browser.errors)")
        #expect(browser.output.contains("all checks passed"), "\(browser.output)")

        // Ctrl-C stops the dashboard promptly, even with a page's event stream open.
        ui.process.interrupt()
        #expect(await ui.wait(timeout: .seconds(20)) == 0, "\(ui.errors)")
    }

    @Test("a running run's page shows it running with a cancel button; cancelling from the dashboard stops it")
    func cancelFromDashboard() async throws {
        let directory = try TemporaryDirectory(prefix: "sluice-ui-cancel")
        let run = try CommandProcess(
            "FixturePipelines", ["run", "crashy", "--set", "wait.gate=\(directory.path("never").path)"],
            in: directory.url)
        defer { if run.process.isRunning { kill(run.process.processIdentifier, SIGKILL) } }
        try await run.waitForError(containing: "wait running")
        let ui = try CommandProcess("sluice", ["ui", "--port", "0"], in: directory.url)
        defer { ui.process.interrupt() }
        try await ui.waitForError(containing: "dashboard on http://127.0.0.1:")
        let line = ui.errors.split(separator: "\n").first { $0.contains("dashboard on http://127.0.0.1:") }!
        let base = "http://127.0.0.1:\(Int(line.split(separator: ":").last!.prefix { $0.isNumber })!)"

        func curl(_ arguments: [String]) async throws -> String {
            let result = try await CommandProcess.run(
                "/usr/bin/env", ["curl", "-s", "--max-time", "20"] + arguments, in: directory.url)
            #expect(result.status == 0, "curl \(arguments): \(result.errors)")
            return result.output
        }
        let runs = try await curl(["\(base)/api/runs"])
        let id = try #require(
            (try JSONSerialization.jsonObject(with: Data(runs.utf8)) as? [String: Any]).flatMap {
                ($0["runs"] as? [[String: Any]])?.first?["id"] as? String
            })
        let page = try await curl(["\(base)/runs/\(id)"])
        #expect(page.contains(#"<g class="node running" data-node="wait""#))
        #expect(page.contains(#"action="/runs/\#(id)/cancel""#))
        let cancel = try await curl(["-X", "POST", "-w", "%{http_code}", "\(base)/api/runs/\(id)/cancel"])
        #expect(cancel.hasSuffix("202"), "\(cancel)")
        #expect(await run.wait(timeout: .seconds(60)) == 130)
        let after = try await curl(["\(base)/api/runs/\(id)"])
        #expect(after.contains(#""status":"cancelled""#))
        let again = try await curl(["-X", "POST", "-w", "%{http_code}", "\(base)/api/runs/\(id)/cancel"])
        #expect(again.hasSuffix("409"), "a finished run cannot be cancelled: \(again)")
    }

    @Test("tokens are created (secret shown once), listed without secrets, revoked; mistakes exit 2 with a hint")
    func tokensCommand() async throws {
        let directory = try TemporaryDirectory(prefix: "sluice-tokens")
        #expect(try await CommandProcess.run("sluice", ["init"], in: directory.url).status == 0)
        let created = try await CommandProcess.run("sluice", ["tokens", "create", "ci", "--json"], in: directory.url)
        #expect(created.status == 0, "\(created.errors)")
        let token = try #require(
            (try JSONSerialization.jsonObject(with: Data(created.output.utf8)) as? [String: Any])?["token"] as? String)
        #expect(token.hasPrefix("sluice_") && token.count == 50)
        let writer = try await CommandProcess.run("sluice", ["tokens", "create", "ops", "--write"], in: directory.url)
        #expect(writer.status == 0 && writer.errors.contains("read-write token 'ops'"))
        let list = try await CommandProcess.run("sluice", ["tokens", "list"], in: directory.url)
        #expect(list.output.contains("ci") && list.output.contains("read-write"))
        #expect(!list.output.contains(token), "secrets are never listed")
        let duplicate = try await CommandProcess.run("sluice", ["tokens", "create", "ci"], in: directory.url)
        #expect(duplicate.status == 2)
        #expect(duplicate.errors.contains("already named 'ci'"))
        #expect(try await CommandProcess.run("sluice", ["tokens", "revoke", "ci"], in: directory.url).status == 0)
        let unknown = try await CommandProcess.run("sluice", ["tokens", "revoke", "opz"], in: directory.url)
        #expect(unknown.status == 2)
        #expect(unknown.errors.contains("Did you mean 'ops'?"))
        let all = try await CommandProcess.run("sluice", ["tokens", "list", "--all", "--json"], in: directory.url)
        let listed = try #require(try JSONSerialization.jsonObject(with: Data(all.output.utf8)) as? [[String: Any]])
        #expect(listed.count == 2 && listed.first { $0["name"] as? String == "ci" }?["revokedAt"] is String)
        #expect(
            try await CommandProcess.run("sluice", ["tokens", "create", "bad name"], in: directory.url).status == 2)
    }
}
