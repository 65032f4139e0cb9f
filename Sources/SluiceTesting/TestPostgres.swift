import Foundation
import Synchronization

/// A real PostgreSQL 15 server for tests, on 127.0.0.1 (a free port, a cluster in a temporary folder; `fsync` off,
/// so commits survive a stopped server but not a crashed machine),
/// stopped when the test process exits. Installs Debian's `postgresql-15` with apt when it is missing, so the test
/// suite needs nothing set up beforehand. ``shared`` serves most tests (each makes its own database); a test that
/// stops its server starts one of its own.
public final class TestPostgres: Sendable {
    /// The superuser's password (password authentication over TCP, as a team server would have it).
    public static let password = "sluice-test-secret"
    /// `postgres://postgres:PASSWORD@127.0.0.1:PORT/postgres`, a superuser URL (it may create databases).
    public let adminURL: String
    private let data: String
    private let folder: String

    private static let sharedServer = Mutex<Result<TestPostgres, SetupError>?>(nil)
    private static let running = Mutex<[TestPostgres]>([])

    /// The server most tests share, started on first use.
    /// - Throws: ``SetupError`` saying which step failed and what it printed.
    public static func shared() throws -> TestPostgres {
        try sharedServer.withLock { state in
            if state == nil {
                do {
                    state = .success(try TestPostgres())
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
    public static func started() async throws -> TestPostgres { try await onOwnThread { try shared() } }

    /// The shared server's superuser URL.
    public static func adminURL() throws -> String { try shared().adminURL }

    static let binaries = "/usr/lib/postgresql/15/bin"

    /// Starts a new server.
    public init() throws {
        try aptInstall(["postgresql-15"], unlessPresent: ["\(Self.binaries)/initdb"], what: "PostgreSQL 15")
        let directory = URL(fileURLWithPath: "/tmp/sluice-test-pg-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        folder = directory.path
        data = directory.appending(path: "data").path
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let passwordFile = directory.appending(path: "password").path
        try Data(Self.password.utf8).write(to: URL(fileURLWithPath: passwordFile))
        if getuid() == 0 {
            try Self.check(["chown", "-R", "postgres:postgres", directory.path], "give the cluster folder to postgres")
        }
        try Self.check(
            Self.asServer([
                "\(Self.binaries)/initdb", "-D", data, "-U", "postgres", "--pwfile=\(passwordFile)", "-E", "UTF8",
                "--locale=C.UTF-8", "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync",
            ]), "initialise a PostgreSQL cluster")
        let port = try Self.freePort()
        let settings = """

            listen_addresses = '127.0.0.1'
            port = \(port)
            unix_socket_directories = '\(directory.path)'
            fsync = off
            full_page_writes = off
            max_connections = 300

            """
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: "\(data)/postgresql.conf"))
        handle.seekToEndOfFile()
        handle.write(Data(settings.utf8))
        try handle.close()
        adminURL = "postgres://postgres:\(Self.password)@127.0.0.1:\(port)/postgres"
        try start()
        Self.running.withLock { servers in
            if servers.isEmpty { atexit { TestPostgres.running.withLock { $0 }.forEach { $0.stop() } } }
            servers.append(self)
        }
    }

    static func asServer(_ command: [String]) -> [String] {
        getuid() == 0 ? ["runuser", "-u", "postgres", "--"] + command : command
    }

    func start() throws {
        try Self.check(
            Self.asServer([
                "\(Self.binaries)/pg_ctl", "-D", data, "-l", "\(folder)/server.log", "-w", "-t", "60", "start",
            ]), "start PostgreSQL")
    }

    /// Stops the server at once (as a crash or a pulled cable would) and removes its cluster.
    func stop() {
        _ = try? runCommand(
            Self.asServer(["\(Self.binaries)/pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"]),
            environment: ProcessInfo.processInfo.environment)
        try? FileManager.default.removeItem(atPath: folder)
    }

    /// Stops the server abruptly, runs `whileDown`, and starts it again on the same port.
    public func restart(whileDown: () async throws -> Void) async throws {
        try Self.check(
            Self.asServer(["\(Self.binaries)/pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"]), "stop PostgreSQL")
        try await whileDown()
        try start()
    }

    static func check(_ arguments: [String], _ what: String, environment extra: [String: String] = [:]) throws {
        let result = try runCommand(
            arguments, environment: ProcessInfo.processInfo.environment.merging(extra) { $1 })
        guard result.status == 0 else {
            throw SetupError(
                problem: "could not \(what) (`\(arguments.joined(separator: " "))` exited \(result.status)):\n"
                    + result.output,
                fix: "run the same command by hand to see why.")
        }
    }

    /// A TCP port on 127.0.0.1 that nothing listens on now.
    public static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SetupError(problem: "socket() failed", fix: "check the machine's limits.") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard bound else { throw SetupError(problem: "no free port on 127.0.0.1", fix: "free a port.") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
