import Foundation
import Synchronization

/// A real Redis server for tests, on 127.0.0.1 (a free port, no persistence, data in a temporary folder), stopped
/// when the test process exits. Installs Debian's `redis-server` with apt when it is missing.
public final class TestRedis: Sendable {
    /// `redis://127.0.0.1:PORT`.
    public let url: String
    private let folder: String
    private let pidFile: String

    private static let sharedServer = Mutex<Result<TestRedis, SetupError>?>(nil)

    /// The server tests share, started on first use (each test uses its own database number or key names).
    /// - Throws: ``SetupError`` saying which step failed and what it printed.
    public static func shared() throws -> TestRedis {
        try sharedServer.withLock { state in
            if state == nil {
                do {
                    state = .success(try TestRedis())
                } catch let error as SetupError {
                    state = .failure(error)
                } catch {
                    state = .failure(SetupError(problem: "\(error)", fix: "see the error above."))
                }
            }
            return try state!.get()
        }
    }

    /// ``shared()`` from async code, started on a thread of its own (installing and starting a server blocks).
    public static func started() async throws -> TestRedis { try await onOwnThread { try shared() } }

    private static let databases = Atomic<Int>(0)

    /// A URL of a database no other test of this process uses (Redis has 16).
    public func freshDatabase() -> String {
        "\(url)/\(Self.databases.add(1, ordering: .relaxed).newValue % 16)"
    }

    init() throws {
        try aptInstall(["redis-server"], unlessPresent: ["/usr/bin/redis-server"], what: "Redis")
        let port = try TestPostgres.freePort()
        folder = "/tmp/sluice-test-redis-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        pidFile = folder + "/redis.pid"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try TestPostgres.check(
            [
                "/usr/bin/redis-server", "--port", String(port), "--bind", "127.0.0.1", "--dir", folder, "--save", "",
                "--appendonly", "no", "--daemonize", "yes", "--pidfile", pidFile, "--logfile", folder + "/redis.log",
            ], "start Redis")
        url = "redis://127.0.0.1:\(port)"
        // Ready once it accepts connections.
        for _ in 0..<100 {
            let socket = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            close(socket)
            if connected == 0 { break }
            usleep(50_000)
        }
        let pidFile = self.pidFile
        let folder = self.folder
        atexit_b {
            if let pid = try? String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(
                in: .whitespacesAndNewlines),
                let number = Int32(pid)
            {
                kill(number, SIGTERM)
            }
            try? FileManager.default.removeItem(atPath: folder)
        }
    }
}

/// Runs `body` when the process exits (a closure may capture values, unlike `atexit`'s C function pointer).
private func atexit_b(_ body: @escaping @Sendable () -> Void) {
    exitHandlers.withLock { handlers in
        if handlers.isEmpty { atexit { exitHandlers.withLock { $0 }.forEach { $0() } } }
        handlers.append(body)
    }
}

private let exitHandlers = Mutex<[@Sendable () -> Void]>([])
