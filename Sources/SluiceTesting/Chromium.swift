import Foundation

/// Headless Chromium from Debian, for tests that drive a real browser: installed with apt on first use (under a
/// machine-wide lock, once), so the test suite needs nothing installed beforehand.
public enum Chromium {
    /// The browser's launcher (`/usr/bin/chromium`, which reads `/etc/chromium.d`).
    public static let executable = "/usr/bin/chromium"

    /// The path of a working Chromium, installing it first when the machine has none.
    /// - Throws: ``SetupError`` with apt's output when the install fails.
    public static func installed() async throws -> String {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try installNow() }) }.start()
        }
    }

    private static func installNow() throws -> String {
        if FileManager.default.isExecutableFile(atPath: executable) { return executable }
        try withFileLock("/tmp/sluice-apt.lock") {
            if FileManager.default.isExecutableFile(atPath: executable) { return }
            let environment = ProcessInfo.processInfo.environment.merging(["DEBIAN_FRONTEND": "noninteractive"]) { $1 }
            for (arguments, what) in [
                (["apt-get", "update", "-qq"], "update apt's package lists"),
                (
                    [
                        "apt-get", "-o", "DPkg::Lock::Timeout=600", "install", "-y", "--no-install-recommends",
                        "chromium",
                    ], "install Chromium with apt"
                ),
            ] {
                let result = try runCommand(arguments, environment: environment)
                guard result.status == 0 else {
                    throw SetupError(
                        problem: "could not \(what) (`\(arguments.joined(separator: " "))` exited \(result.status)):\n"
                            + result.output,
                        fix: "install Debian's chromium package by hand (`apt-get install chromium`).")
                }
            }
        }
        return executable
    }
}
