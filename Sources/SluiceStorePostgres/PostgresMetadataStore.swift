// Over 400 lines: one statement per MetadataStore requirement on PostgreSQL, mirroring the SQLite store's file (the registry, tokens, migrations and statements are in their own files).
import Foundation
import Logging
import PostgresNIO
import SluiceCore

/// The team's metadata store and model registry on PostgreSQL: the same tables, migrations and semantics as the
/// SQLite store, over a connection pool, safe for many writers on many hosts.
///
/// Every change of several rows is one transaction; registering and moving model versions take a per-model
/// advisory lock, so concurrent promotions leave exactly one production version and a complete stage history.
/// The password never appears in ``location`` or in errors.
public final class PostgresMetadataStore: MetadataStore, Sendable {
    /// The server and database, without the password: `postgres://USER@HOST:PORT/DB`.
    public let location: String
    let client: PostgresClient
    /// Whether reads mark runs whose owner is gone as crashed (not in a process that runs one step of a run).
    let marksCrashedRuns: Bool
    private let runner: Task<Void, Never>
    /// Errors reach callers as thrown `PostgresStoreError`s; the driver's own chatter (a lease requested before the
    /// pool's run loop has started, which it waits for) stays off the user's terminal.
    let logger: Logger = {
        var logger = Logger(label: "sluice.store.postgres")
        logger.logLevel = .error
        return logger
    }()

    /// Connects to the database that `url` names (`postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`), creating and
    /// migrating the schema as needed. `password` overrides one in the URL.
    /// - Throws: ``PostgresStoreError`` naming the server and what to check.
    /// `marksCrashedRuns` false: reads never mark a run crashed (a process that runs one step of a run, perhaps in
    /// a container's PID namespace, is not the judge of its owner).
    public init(url: String, password: String? = nil, maximumConnections: Int = 8, marksCrashedRuns: Bool = true)
        async throws
    {
        self.marksCrashedRuns = marksCrashedRuns
        let target = try PostgresURL(url)
        location = target.display
        // One plain connection first: a wrong password or an unreachable server fails at once with the server's
        // reason, where the pool would retry behind a circuit breaker for a minute.
        var probe = PostgresConnection.Configuration(
            host: target.host, port: target.port, username: target.user, password: password ?? target.password,
            database: target.database, tls: .disable)
        probe.options.connectTimeout = .seconds(5)
        do {
            let connection = try await PostgresConnection.connect(
                configuration: probe, id: 0, logger: Logger(label: "sluice.postgres"))
            try await connection.close()
        } catch {
            throw PostgresStoreError(location: target.display, underlying: error, opening: true)
        }
        var configuration = PostgresClient.Configuration(
            host: target.host, port: target.port, username: target.user, password: password ?? target.password,
            database: target.database, tls: .disable)
        configuration.options.maximumConnections = maximumConnections
        configuration.options.connectTimeout = .seconds(5)
        configuration.options.keepAliveBehavior = nil
        let client = PostgresClient(configuration: configuration, backgroundLogger: Logger(label: "sluice.postgres"))
        self.client = client
        runner = await client.running()
        do {
            try await migrate()
        } catch {
            runner.cancel()
            let cause = (error as? PostgresStoreError)?.underlying ?? error
            throw PostgresStoreError(location: target.display, underlying: cause, opening: true)
        }
    }

    /// Closes the connection pool.
    public func close() async {
        runner.cancel()
        _ = await runner.value
    }

    deinit { runner.cancel() }

    /// The identifiers of the applied migrations, oldest first.
    public func appliedMigrations() async throws -> [String] {
        try await rows("SELECT id FROM sluice_migrations ORDER BY id") { try $0.string("id") }
    }

    /// Applies pending migrations in one transaction, serialized across processes by an advisory lock.
    func migrate() async throws {
        try await transaction { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(7331001)", logger: self.logger)
            try await connection.query(
                "CREATE TABLE IF NOT EXISTS sluice_migrations (id TEXT PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)",
                logger: self.logger)
            var applied: Set<String> = []
            for try await id in try await connection.query("SELECT id FROM sluice_migrations", logger: self.logger)
                .decode(String.self)
            {
                applied.insert(id)
            }
            for migration in PostgresMigrations.all where !applied.contains(migration.id) {
                for statement in migration.statements {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: self.logger)
                }
                let now = Date().timeIntervalSince1970
                try await connection.query(
                    "INSERT INTO sluice_migrations (id, applied_at) VALUES (\(migration.id), \(now))",
                    logger: self.logger)
            }
        }
    }

    // MARK: Access

    /// Runs `body` in a transaction on a pooled connection; errors name the store.
    func transaction<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        do {
            return try await client.withTransaction(logger: logger) { connection in try await body(connection) }
        } catch let error as RegistryError {
            throw error
        } catch let error as StageConflict {
            throw error
        } catch let error as TrackingError {
            throw error
        } catch let error as PostgresTransactionError {
            if let closure = error.closureError as? TrackingError { throw closure }
            if let closure = error.closureError as? RegistryError { throw closure }
            if let closure = error.closureError as? StageConflict { throw closure }
            throw PostgresStoreError(location: location, underlying: error.closureError ?? error, opening: false)
        } catch {
            throw PostgresStoreError(location: location, underlying: error, opening: false)
        }
    }

    /// Runs one statement.
    func execute(_ query: PostgresQuery) async throws {
        do {
            try await client.query(query, logger: logger)
        } catch {
            throw PostgresStoreError(location: location, underlying: error, opening: false)
        }
    }

    /// Runs a prepared statement (prepared on each connection once) and maps each row.
    func rows<S: PostgresPreparedStatement, T>(_ statement: S, _ map: (Row) throws -> T) async throws -> [T]
    where S.Row == PostgresRow {
        do {
            var result: [T] = []
            for try await row in try await client.execute(statement, logger: logger) {
                result.append(try map(Row(row.makeRandomAccess())))
            }
            return result
        } catch {
            throw PostgresStoreError(location: location, underlying: error, opening: false)
        }
    }

    /// Runs a query and maps each row.
    func rows<T>(_ query: PostgresQuery, _ map: (Row) throws -> T) async throws -> [T] {
        do {
            var result: [T] = []
            for try await row in try await client.query(query, logger: logger) {
                result.append(try map(Row(row.makeRandomAccess())))
            }
            return result
        } catch {
            throw PostgresStoreError(location: location, underlying: error, opening: false)
        }
    }

    // MARK: Writes

    public func registerPipeline(_ name: String) async throws {
        try await execute(
            """
            INSERT INTO pipelines (name, first_seen) VALUES (\(name), \(Date().timeIntervalSince1970))
            ON CONFLICT (name) DO NOTHING
            """)
    }

    public func insert(_ run: Run) async throws {
        let e = run.environment
        let o = run.owner
        try await execute(
            """
            INSERT INTO runs (id, pipeline, status, config, "user", host, os, swift_version, sluice_version,
                git_commit, git_dirty, binary_path, binary_hash, arguments, owner_host, owner_boot, owner_pid,
                owner_start, started_at, ended_at, error, triggered_by, kind, name)
            VALUES (\(run.id), \(run.pipeline), \(run.status.rawValue), \(run.config), \(e.user), \(e.host), \(e.os),
                \(e.swiftVersion), \(e.sluiceVersion), \(e.gitCommit), \(e.gitDirty), \(e.binaryPath),
                \(e.binaryHash), \(json(e.arguments)), \(o.host), \(o.bootID), \(Int(o.pid)),
                \(Int64(bitPattern: o.startTicks)), \(run.startedAt.timeIntervalSince1970),
                \(run.endedAt?.timeIntervalSince1970), \(run.error), \(run.trigger.storedJSON), \(run.kind.rawValue),
                \(run.name))
            """)
    }

    @discardableResult
    public func finishRun(_ id: RunID, status: RunStatus, endedAt: Date, error: String?) async throws -> Bool {
        try await rows(
            """
            UPDATE runs SET status = \(status.rawValue), ended_at = \(endedAt.timeIntervalSince1970), error = \(error)
            WHERE id = \(id) AND status = 'running' RETURNING id
            """
        ) { try $0.string("id") }.count > 0
    }

    public func updateEnvironment(_ id: RunID, _ e: RunEnvironment) async throws {
        try await execute(
            """
            UPDATE runs SET "user" = \(e.user), host = \(e.host), os = \(e.os), swift_version = \(e.swiftVersion),
                sluice_version = \(e.sluiceVersion), git_commit = \(e.gitCommit), git_dirty = \(e.gitDirty),
                binary_path = \(e.binaryPath), binary_hash = \(e.binaryHash), arguments = \(json(e.arguments))
            WHERE id = \(id)
            """)
    }

    // A step run's rows are written in one statement of data-modifying CTEs: atomic like a transaction, one round
    // trip instead of BEGIN, a statement per table and COMMIT. This is on every step's path.

    public func insert(_ stepRun: StepRun, inputs: [Event]) async throws {
        var batch = StatementBatch()
        batch.upsert(stepRun)
        batch.insert(inputs)
        try await execute(batch)
    }

    public func finishStepRun(_ stepRun: StepRun, metrics: [MetricRecord]) async throws {
        var batch = StatementBatch()
        batch.upsert(stepRun)
        batch.insert(metrics, for: stepRun.id)
        try await execute(batch)
    }

    public func completeStepRun(_ stepRun: StepRun, outputs: [ArtifactRecord], metrics: [MetricRecord]) async throws {
        _ = try await rows(CompleteStepRunStatement(stepRun: stepRun, outputs: outputs, metrics: metrics)) { $0 }
    }

    public func insertCachedStepRuns(_ records: [CachedStepRun]) async throws {
        // Chunks keep a statement well under PostgreSQL's 65,535 parameters.
        var start = 0
        while start < records.count {
            let chunk = records[start..<min(records.count, start + 200)]
            var batch = StatementBatch()
            batch.upsert(chunk.map(\.stepRun))
            batch.insert(chunk.flatMap(\.events))
            try await execute(batch)
            start += chunk.count
        }
    }

    private func execute(_ batch: StatementBatch) async throws {
        guard !batch.isEmpty else { return }
        try await execute(batch.query())
    }

    // MARK: Reads

    public func cacheHit(for cacheKey: CacheKey) async throws -> CacheHit? {
        try await hit(CacheHitStatement(key: cacheKey.rawValue))
    }

    public func cacheHitOrStart(_ stepRun: StepRun, inputs: [Event]) async throws -> CacheHit? {
        guard stepRun.cacheKey != nil, inputs.allSatisfy({ $0.stepRunID == stepRun.id && $0.kind == .input }) else {
            if let key = stepRun.cacheKey, let hit = try await cacheHit(for: key) { return hit }
            try await insert(stepRun, inputs: inputs)
            return nil
        }
        // One round trip: the lookup, and the step run's rows written only if it found nothing.
        return try await hit(CacheHitOrStartStatement(stepRun: stepRun, inputs: inputs))
    }

    /// Reads the rows of ``hitSelect`` into a cache hit, or `nil` when there are none.
    private func hit<S: PostgresPreparedStatement>(_ statement: S) async throws -> CacheHit?
    where S.Row == PostgresRow {
        let rows = try await rows(statement) { row in (try Self.stepRun(row), row) }
        guard let first = rows.first else { return nil }
        var outputs: [String: ArtifactRecord] = [:]
        for (_, row) in rows {
            guard let name = try row.optionalString("event_name") else { continue }
            outputs[name] = try Self.artifact(row, prefix: "a_")
        }
        return CacheHit(stepRun: first.0, outputs: outputs)
    }

    public func outputs(ofStepRun id: String) async throws -> [String: ArtifactRecord] {
        let pairs = try await rows(
            """
            SELECT e.name AS event_name, a.* FROM events e JOIN artifacts a ON a.id = e.artifact_id
            WHERE e.step_run_id = \(id) AND e.kind = 'output'
            """
        ) { row in (try row.string("event_name"), try Self.artifact(row)) }
        return Dictionary(pairs) { first, _ in first }
    }

    public func pipelines() async throws -> [PipelineRecord] {
        try await reconcileCrashedRuns()
        return try await rows(
            """
            SELECT p.name, p.first_seen, COUNT(r.id) AS run_count, MAX(r.started_at) AS last_run
            FROM pipelines p LEFT JOIN runs r ON r.pipeline = p.name AND r.kind = 'pipeline' AND r.deleted_at IS NULL
            WHERE NOT EXISTS (SELECT 1 FROM runs t WHERE t.pipeline = p.name AND t.kind = 'tracked')
                OR EXISTS (SELECT 1 FROM runs q WHERE q.pipeline = p.name AND q.kind = 'pipeline')
            GROUP BY p.name ORDER BY p.name
            """
        ) { row in
            PipelineRecord(
                name: try row.string("name"), firstSeen: Date(timeIntervalSince1970: try row.double("first_seen")),
                runCount: try row.int("run_count"),
                lastRunAt: try row.optionalDouble("last_run").map(Date.init(timeIntervalSince1970:)))
        }
    }

    public func runs(_ filter: RunFilter) async throws -> [Run] {
        try await reconcileCrashedRuns()
        var conditions: [String] = ["deleted_at IS NULL"]
        var binds = PostgresBindings()
        if let pipeline = filter.pipeline {
            binds.append(pipeline)
            conditions.append("pipeline = $\(binds.count)")
        }
        if let status = filter.status {
            binds.append(status.rawValue)
            conditions.append("status = $\(binds.count)")
        }
        binds.append(filter.limit)
        let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        return try await rows(
            PostgresQuery(
                unsafeSQL: "SELECT * FROM runs \(whereClause) ORDER BY started_at DESC, id DESC LIMIT $\(binds.count)",
                binds: binds), Self.run)
    }

    public func run(_ idOrPrefix: String) async throws -> Run? {
        try await reconcileCrashedRuns()
        return try await unique(idOrPrefix, table: "runs").map(Self.run)
    }

    public func stepRuns(ofRun id: RunID) async throws -> [StepRun] {
        try await reconcileCrashedRuns()
        return try await rows("SELECT * FROM step_runs WHERE run_id = \(id) ORDER BY seq", Self.stepRun)
    }

    public func stepRuns(ofRun id: RunID, steps: [String]) async throws -> [StepRun] {
        guard !steps.isEmpty else { return [] }
        try await reconcileCrashedRuns()
        return try await rows(
            "SELECT * FROM step_runs WHERE run_id = \(id) AND step_name = ANY(\(steps)) ORDER BY seq", Self.stepRun)
    }

    public func setProperties(_ properties: [String: PropertyValue], ofArtifact id: String) async throws {
        try await execute("UPDATE artifacts SET properties = \(json(properties)) WHERE id = \(id)")
    }

    public func stepRun(_ id: String) async throws -> StepRun? {
        try await reconcileCrashedRuns()
        return try await rows("SELECT * FROM step_runs WHERE id = \(id)", Self.stepRun).first
    }

    public func metrics(ofStepRun id: String) async throws -> [MetricRecord] {
        try await rows("SELECT * FROM metrics WHERE step_run_id = \(id) ORDER BY seq") { row in
            MetricRecord(
                name: try row.string("name"), value: try row.double("value"), step: try row.optionalInt("step"),
                loggedAt: Date(timeIntervalSince1970: try row.double("logged_at")))
        }
    }

    public func artifacts(_ filter: ArtifactFilter) async throws -> [ArtifactRecord] {
        var conditions: [String] = []
        var binds = PostgresBindings()
        var join = ""
        if let runID = filter.runID {
            join =
                "JOIN events e ON e.artifact_id = a.id AND e.kind = 'output' JOIN step_runs s ON s.id = e.step_run_id"
            binds.append(runID)
            conditions.append("s.run_id = $\(binds.count)")
        }
        if let name = filter.name {
            binds.append(name)
            conditions.append("a.name = $\(binds.count)")
        }
        binds.append(filter.limit)
        let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        return try await rows(
            PostgresQuery(
                unsafeSQL:
                    "SELECT DISTINCT a.* FROM artifacts a \(join) \(whereClause) ORDER BY a.created_at DESC, a.id DESC LIMIT $\(binds.count)",
                binds: binds)
        ) { try Self.artifact($0) }
    }

    public func artifact(_ idOrPrefix: String) async throws -> ArtifactRecord? {
        try await unique(idOrPrefix, table: "artifacts").map { try Self.artifact($0) }
    }

    public func events(ofArtifact id: String) async throws -> [Event] {
        try await rows("SELECT * FROM events WHERE artifact_id = \(id) ORDER BY seq", Self.event)
    }

    public func events(ofStepRun id: String) async throws -> [Event] {
        try await rows("SELECT * FROM events WHERE step_run_id = \(id) ORDER BY seq", Self.event)
    }

    /// Marks runs whose owning process is known to be gone (on this host) as crashed, with their running steps.
    func reconcileCrashedRuns() async throws {
        guard marksCrashedRuns else { return }
        let running = try await rows(
            "SELECT id, owner_host, owner_boot, owner_pid, owner_start FROM runs WHERE status = 'running'"
        ) { row in
            (
                id: try row.string("id"),
                owner: ProcessOwner(
                    host: try row.string("owner_host"), bootID: try row.string("owner_boot"),
                    pid: Int32(try row.int("owner_pid")),
                    startTicks: UInt64(bitPattern: Int64(try row.int("owner_start"))))
            )
        }
        let dead = running.filter { $0.owner.isKnownDead }.map(\.id)
        guard !dead.isEmpty else { return }
        let now = Date().timeIntervalSince1970
        try await transaction { connection in
            for id in dead {
                var crashed = false
                for try await _ in try await connection.query(
                    """
                    UPDATE runs SET status = 'crashed', ended_at = COALESCE(ended_at, \(now)),
                        error = COALESCE(error, 'the process running it stopped without finishing (killed or crashed)')
                    WHERE id = \(id) AND status = 'running' RETURNING id
                    """, logger: self.logger)
                {
                    crashed = true
                }
                // Only when the run above is crashed now: a run that ended meanwhile keeps its step runs as they are.
                guard crashed else { continue }
                try await connection.query(
                    """
                    UPDATE step_runs SET status = 'crashed', ended_at = COALESCE(ended_at, \(now))
                    WHERE run_id = \(id) AND status = 'running'
                    """, logger: self.logger)
            }
        }
    }

    // MARK: Row mapping

    private func unique(_ prefix: String, table: String) async throws -> Row? {
        if let exact = try await rows(
            PostgresQuery(unsafeSQL: "SELECT * FROM \(table) WHERE id = $1", binds: bind(prefix)), { $0 }
        )
        .first {
            return exact
        }
        let escaped = prefix.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%")
            .replacingOccurrences(of: "_", with: "\\_")
        let matches = try await rows(
            PostgresQuery(
                unsafeSQL: "SELECT * FROM \(table) WHERE id LIKE $1 ORDER BY id LIMIT 6", binds: bind(escaped + "%")),
            { $0 })
        if matches.count > 1 {
            throw AmbiguousIDError(prefix: prefix, matches: try matches.map { try $0.string("id") })
        }
        return matches.first
    }

    private func bind(_ value: String) -> PostgresBindings {
        var binds = PostgresBindings()
        binds.append(value)
        return binds
    }

    static func run(_ row: Row) throws -> Run {
        Run(
            id: try row.string("id"), pipeline: try row.string("pipeline"),
            status: RunStatus(rawValue: try row.string("status")) ?? .failed, config: try row.string("config"),
            environment: RunEnvironment(
                user: try row.string("user"), host: try row.string("host"), os: try row.string("os"),
                swiftVersion: try row.string("swift_version"), sluiceVersion: try row.string("sluice_version"),
                gitCommit: try row.optionalString("git_commit"), gitDirty: try row.optionalBool("git_dirty"),
                binaryPath: try row.optionalString("binary_path"), binaryHash: try row.optionalString("binary_hash"),
                arguments: decode([String].self, try row.string("arguments")) ?? []),
            owner: ProcessOwner(
                host: try row.string("owner_host"), bootID: try row.string("owner_boot"),
                pid: Int32(try row.int("owner_pid")), startTicks: UInt64(bitPattern: Int64(try row.int("owner_start")))),
            startedAt: Date(timeIntervalSince1970: try row.double("started_at")),
            endedAt: try row.optionalDouble("ended_at").map(Date.init(timeIntervalSince1970:)),
            error: try row.optionalString("error"),
            trigger: RunTrigger(storedJSON: try row.optionalString("triggered_by")),
            kind: RunKind(rawValue: try row.string("kind")) ?? .pipeline, name: try row.optionalString("name"))
    }

    static func stepRun(_ row: Row) throws -> StepRun {
        StepRun(
            id: try row.string("id"), runID: try row.string("run_id"), stepName: try row.string("step_name"),
            kind: try row.string("kind"), status: StepRunStatus(rawValue: try row.string("status")) ?? .failed,
            cacheKey: try row.optionalString("cache_key").map(CacheKey.init(rawValue:)),
            codeVersion: try row.int("code_version"), parameters: try row.string("parameters"),
            seed: UInt64(bitPattern: Int64(try row.int("seed"))),
            startedAt: try row.optionalDouble("started_at").map(Date.init(timeIntervalSince1970:)),
            endedAt: try row.optionalDouble("ended_at").map(Date.init(timeIntervalSince1970:)),
            error: try row.optionalString("error"), logPath: try row.optionalString("log_path"),
            cachedFrom: try row.optionalString("cached_from"),
            properties: decode([String: PropertyValue].self, try row.string("properties")) ?? [:])
    }

    static func artifact(_ row: Row, prefix: String = "") throws -> ArtifactRecord {
        ArtifactRecord(
            id: try row.string(prefix + "id"), name: try row.string(prefix + "name"),
            typeName: try row.string(prefix + "type_name"), uri: try row.string(prefix + "uri"),
            contentHash: try row.string(prefix + "content_hash"), size: Int64(try row.int(prefix + "size")),
            materializer: try row.string(prefix + "materializer"),
            materializerVersion: try row.int(prefix + "materializer_version"),
            properties: decode([String: PropertyValue].self, try row.string(prefix + "properties")) ?? [:],
            producerStepRunID: try row.string(prefix + "producer_step_run_id"),
            createdAt: Date(timeIntervalSince1970: try row.double(prefix + "created_at")))
    }

    static func event(_ row: Row) throws -> Event {
        Event(
            stepRunID: try row.string("step_run_id"), artifactID: try row.string("artifact_id"),
            kind: Event.Kind(rawValue: try row.string("kind")) ?? .input, name: try row.string("name"))
    }

    static func decode<T: Decodable>(_ type: T.Type, _ text: String?) -> T? {
        guard let text else { return nil }
        return try? JSONDecoder().decode(T.self, from: Data(text.utf8))
    }
}

/// Several inserts as one statement (`WITH c0 AS (INSERT …), c1 AS (INSERT …) SELECT 1`): PostgreSQL runs it
/// atomically and checks foreign keys when it ends, so rows may reference rows of another part.
struct StatementBatch {
    private var parts: [String] = []
    private var binds = PostgresBindings()

    /// Whether nothing was added.
    var isEmpty: Bool { parts.isEmpty }

    /// The statement: `WITH c0 AS (…), … SELECT 1`.
    func query() -> PostgresQuery {
        let ctes = parts.enumerated().map { "c\($0.offset) AS (\($0.element))" }
        return PostgresQuery(unsafeSQL: "WITH \(ctes.joined(separator: ", ")) SELECT 1", binds: binds)
    }

    /// Adds `INSERT INTO table (columns) VALUES (…), (…) suffix` with one row of values per element.
    mutating func insert(
        into table: String, _ columns: String, rows: Int, suffix: String = "",
        values: (inout PostgresBindings, Int) -> Void
    ) {
        guard rows > 0 else { return }
        let width = columns.split(separator: ",").count
        var tuples: [String] = []
        for row in 0..<rows {
            let first = binds.count + 1
            values(&binds, row)
            precondition(binds.count - first + 1 == width, "\(table): \(width) columns, other count of values")
            tuples.append("(\(parameters(from: first, count: width)))")
        }
        parts.append("INSERT INTO \(table) (\(columns)) VALUES \(tuples.joined(separator: ", ")) \(suffix)")
    }

    mutating func upsert(_ stepRun: StepRun) { upsert([stepRun]) }

    mutating func upsert(_ stepRuns: [StepRun]) {
        insert(into: "step_runs", stepRunColumns, rows: stepRuns.count, suffix: stepRunConflict) { binds, row in
            appendStepRun(stepRuns[row], to: &binds)
        }
    }

    mutating func insert(_ events: [Event]) {
        insert(into: "events", "step_run_id, artifact_id, kind, name", rows: events.count) { binds, row in
            binds.append(events[row].stepRunID)
            binds.append(events[row].artifactID)
            binds.append(events[row].kind.rawValue)
            binds.append(events[row].name)
        }
    }

    mutating func insert(_ metrics: [MetricRecord], for stepRunID: String) {
        insert(into: "metrics", "step_run_id, name, value, step, logged_at", rows: metrics.count) { binds, row in
            binds.append(stepRunID)
            binds.append(metrics[row].name)
            binds.append(metrics[row].value)
            binds.append(metrics[row].step)
            binds.append(metrics[row].loggedAt.timeIntervalSince1970)
        }
    }
}

/// A row read by column name.
struct Row {
    let row: PostgresRandomAccessRow
    init(_ row: PostgresRandomAccessRow) { self.row = row }

    func string(_ column: String) throws -> String { try row[column].decode(String.self) }
    func optionalString(_ column: String) throws -> String? { try row[column].decode(String?.self) }
    func int(_ column: String) throws -> Int { try row[column].decode(Int.self) }
    func optionalInt(_ column: String) throws -> Int? { try row[column].decode(Int?.self) }
    func double(_ column: String) throws -> Double { try row[column].decode(Double.self) }
    func optionalDouble(_ column: String) throws -> Double? { try row[column].decode(Double?.self) }
    func optionalBool(_ column: String) throws -> Bool? { try row[column].decode(Bool?.self) }
}

func json(_ properties: [String: PropertyValue]) -> String {
    properties.isEmpty ? "{}" : json(properties as [String: PropertyValue]?)
}

func json<T: Encodable>(_ value: T) -> String {
    (try? canonicalJSON(value)).map { String(decoding: $0, as: UTF8.self) } ?? "null"
}
