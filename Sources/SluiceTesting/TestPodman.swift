import Foundation

/// Podman for tests: installs Debian's `podman` and `runc` with apt when they are missing (runc because crun
/// refuses some hosts' cgroup layout), so the container tests need nothing set up beforehand.
public enum TestPodman {
    /// Installs podman and runc when missing; returns podman's path.
    /// - Throws: ``SetupError`` saying what apt printed.
    public static func install() throws -> String {
        let needed = ["/usr/bin/podman", "/usr/sbin/runc"]
        if !needed.allSatisfy({ FileManager.default.isExecutableFile(atPath: $0) }) {
            try withFileLock("/tmp/sluice-apt.lock") {
                if needed.allSatisfy({ FileManager.default.isExecutableFile(atPath: $0) }) { return }
                try TestPostgres.check(["apt-get", "update", "-qq"], "update apt's package lists")
                try TestPostgres.check(
                    [
                        "apt-get", "-o", "DPkg::Lock::Timeout=600", "install", "-y", "--no-install-recommends",
                        "podman", "runc", "uidmap",
                    ], "install podman and runc with apt", environment: ["DEBIAN_FRONTEND": "noninteractive"])
            }
        }
        return "/usr/bin/podman"
    }

    /// ``install()`` from async code, on a thread of its own (apt blocks for as long as it takes).
    public static func installed() async throws -> String { try await onOwnThread { try install() } }

    /// Runs podman with `arguments`; returns its status and output.
    public static func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        try runCommand(["/usr/bin/podman"] + arguments, environment: ProcessInfo.processInfo.environment)
    }
}
