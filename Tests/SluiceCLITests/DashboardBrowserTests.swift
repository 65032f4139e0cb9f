import Foundation
import SluiceTesting
import Testing

@Suite("sluice ui in a real browser")
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
            (["demo", "--set", "train.label=nosuchcolumn"], 1),
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
}
