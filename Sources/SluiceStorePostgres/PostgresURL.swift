import Foundation
import Logging
import PostgresNIO
import SluiceCore
import SluiceErrors

/// A `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE` URL, taken apart.
public struct PostgresURL: Sendable, Equatable {
    /// The login role.
    public var user: String
    /// A password written into the URL (discouraged: use `password_env` or `password_file`).
    public var password: String?
    /// The server's host name or address.
    public var host: String
    /// The server's port (5432 when left out).
    public var port: Int
    /// The database.
    public var database: String

    /// Whether `text` is a PostgreSQL URL at all.
    public static func isPostgres(_ text: String) -> Bool {
        text.hasPrefix("postgres://") || text.hasPrefix("postgresql://")
    }

    /// Parses a URL.
    /// - Throws: ``ConfigError`` saying which part is missing.
    public init(_ text: String) throws {
        guard Self.isPostgres(text), let components = URLComponents(string: text), let host = components.host,
            !host.isEmpty
        else {
            throw ConfigError(
                problem: "'\(Self.redacting(text))' is not a PostgreSQL URL.",
                fix: "write postgres://USER@HOST:PORT/DATABASE (the password in password_env or password_file).")
        }
        guard let user = components.user, !user.isEmpty else {
            throw ConfigError(
                problem: "the PostgreSQL URL '\(Self.redacting(text))' names no user.",
                fix: "write postgres://USER@\(host)/DATABASE.")
        }
        let database = String(components.path.drop { $0 == "/" })
        guard !database.isEmpty else {
            throw ConfigError(
                problem: "the PostgreSQL URL '\(Self.redacting(text))' names no database.",
                fix: "end it with /DATABASE, as in postgres://\(user)@\(host)/sluice.")
        }
        self.user = user.removingPercentEncoding ?? user
        self.password = components.password.map { $0.removingPercentEncoding ?? $0 }
        self.host = host
        self.port = components.port ?? 5432
        self.database = database
    }

    /// The URL without its password, for records, logs and messages.
    public var display: String { "postgres://\(user)@\(host):\(port)/\(database)" }

    /// `text` with any password between `:` and `@` replaced by `***`.
    public static func redacting(_ text: String) -> String {
        guard let at = text.lastIndex(of: "@"), let scheme = text.range(of: "://") else { return text }
        let credentials = text[scheme.upperBound..<at]
        guard let colon = credentials.firstIndex(of: ":") else { return text }
        return String(text[..<colon]) + ":***" + String(text[at...])
    }
}

/// The PostgreSQL store could not be reached or refused a statement: which server, what it said, what to check.
public struct PostgresStoreError: SluiceError {
    /// The server and database, without the password.
    public var location: String
    /// What the driver or server said.
    public var underlying: any Error
    /// Whether this happened while connecting and migrating.
    public var opening: Bool

    public var problem: String {
        (opening ? "cannot open the metadata store \(location): " : "the metadata store \(location) failed: ")
            + Self.reason(underlying)
    }

    public var fix: String {
        "check that the PostgreSQL server is running and reachable, that the role and database exist and the "
            + "password (password_env or password_file in .sluice/stack.yaml) is right; then run the command again."
    }

    /// Unusable when the store cannot be opened (a setting to correct); a failure when it breaks during work.
    public var exitStatus: SluiceErrors.ExitStatus { opening ? .unusableInput : .failed }

    /// What went wrong, from PostgresNIO's error: the server's message and SQLSTATE, or the connection failure.
    /// (`PSQLError`'s own description hides both on purpose; neither holds the password.)
    static func reason(_ error: any Error) -> String {
        guard let error = error as? PSQLError else { return "\(error)" }
        if let message = error.serverInfo?[.message] {
            return message + (error.serverInfo?[.sqlState].map { " (SQLSTATE \($0))" } ?? "")
        }
        if let inner = error.underlying { return "\(error.code): \(inner)" }
        return "\(error.code)"
    }
}

/// Creating and dropping databases on a server, for tests and benchmarks that want a fresh store each time.
public enum PostgresDatabases {
    /// Creates database `name` on the server `url` names (the URL's role needs CREATEDB); returns its URL.
    public static func create(_ name: String, on url: String, password: String? = nil) async throws -> String {
        let target = try PostgresURL(url)
        try await admin(target, password: password) { client in
            try await client.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \"\(name)\""))
        }
        return "postgres://\(target.user)@\(target.host):\(target.port)/\(name)"
    }

    /// Drops database `name` (closing its other connections first).
    public static func drop(_ name: String, on url: String, password: String? = nil) async throws {
        try await admin(try PostgresURL(url), password: password) { client in
            try await client.query(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \"\(name)\" WITH (FORCE)"))
        }
    }

    static func admin(
        _ target: PostgresURL, password: String?, _ body: (PostgresClient) async throws -> Void
    ) async throws {
        let client = PostgresClient(
            configuration: PostgresClient.Configuration(
                host: target.host, port: target.port, username: target.user, password: password ?? target.password,
                database: target.database, tls: .disable),
            backgroundLogger: {
                var logger = Logger(label: "sluice.postgres.admin")
                logger.logLevel = .error
                return logger
            }())
        let runner = await client.running()
        defer { runner.cancel() }
        do {
            try await body(client)
        } catch {
            throw PostgresStoreError(location: target.display, underlying: error, opening: false)
        }
    }
}

extension PostgresClient {
    /// Starts `run()` in a task and returns once that task has begun it: a query right after would otherwise lease a
    /// connection before `run()` flips the client's running flag, and postgres-nio warns on every command ("Trying
    /// to lease connection from `PostgresClient`, but `PostgresClient.run()` hasn't been called yet").
    func running() async -> Task<Void, Never> {
        let (started, signal) = AsyncStream<Void>.makeStream()
        let task = Task {
            signal.finish()
            await self.run()
        }
        for await _ in started {}
        // `run()` sets the flag first thing, without suspending; give its task the moment to get there.
        await Task.yield()
        return task
    }
}
