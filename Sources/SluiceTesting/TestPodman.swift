import Foundation

/// Podman for tests: installs Debian's `podman` and `runc` with apt when they are missing (runc because crun
/// refuses some hosts' cgroup layout), so the container tests need nothing set up beforehand.
public enum TestPodman {
    /// Installs podman and runc when missing; returns podman's path.
    /// - Throws: ``SetupError`` saying what apt printed.
    public static func install() throws -> String {
        try aptInstall(
            ["podman", "runc", "uidmap"], unlessPresent: ["/usr/bin/podman", "/usr/sbin/runc"], what: "podman and runc")
        return "/usr/bin/podman"
    }

    /// ``install()`` from async code, on a thread of its own (apt blocks for as long as it takes).
    public static func installed() async throws -> String { try await onOwnThread { try install() } }

    /// Runs podman with `arguments`; returns its status and output.
    public static func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        try runCommand(["/usr/bin/podman"] + arguments, environment: ProcessInfo.processInfo.environment)
    }
}
