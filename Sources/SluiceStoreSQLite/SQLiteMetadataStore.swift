// Over 400 lines: one statement per MetadataStore requirement, kept with the schema they query (the registry and tokens are in their own files).
import Foundation
import GRDB
import SluiceCore

/// The embedded metadata store: one SQLite file through GRDB, in WAL mode, with versioned migrations.
///
/// Several processes may share one file: writers wait for each other (busy timeout), readers never block.
/// With ``Durability/power`` every commit is fsynced (`synchronous=FULL`); the default `process`
/// (`synchronous=NORMAL` in WAL mode) survives a killed process but may lose the last commits on power loss.
public final class SQLiteMetadataStore: MetadataStore {
    /// The database file.
    public let path: String
    /// A pool of connections (one writer, readers beside it), or one connection for a process that only runs a
    /// step (``init(path:durability:busyTimeout:singleConnection:marksCrashedRuns:)``).
    let pool: any DatabaseWriter
    /// Whether reads mark runs whose owner is gone as crashed (``init(path:durability:busyTimeout:singleConnection:marksCrashedRuns:)``).
    let marksCrashedRuns: Bool

    /// Opens (creating and migrating as needed) the store at `path`.
    /// - Parameter singleConnection: one connection for reads and writes instead of a pool: what a process that
    ///   runs one step run needs (`step run`). Opening a pool switches the file to WAL mode and checks it through
    ///   Foundation's file attributes, 1 ms of such a process; a file already in WAL mode stays in it.
    /// - Parameter marksCrashedRuns: whether reads of runs mark a running run whose owner is gone as crashed. A
    ///   process that runs one step of a run is not the judge of its owner: in a container it sees another PID
    ///   namespace, where the owner's PID does not exist, so it would mark a live run crashed.
    /// - Throws: a ``StoreOpenError`` saying what to do when the file cannot be opened.
    public init(
        path: String, durability: Durability = .process, busyTimeout: TimeInterval = 30, singleConnection: Bool = false,
        marksCrashedRuns: Bool = true
    ) throws {
        self.path = path
        self.marksCrashedRuns = marksCrashedRuns
        var configuration = Configuration()
        configuration.busyMode = .timeout(busyTimeout)
        configuration.foreignKeysEnabled = true
        let synchronous = durability == .power ? "FULL" : "NORMAL"
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = \(synchronous)")
        }
        do {
            try FileManager.default.createDirectory(
                at: URL(fileURLWithPath: path).deletingLastPathComponent(), withIntermediateDirectories: true)
            // Switching a new file to WAL needs a lock that SQLite may refuse at once (no busy wait) while another
            // process is creating the same file: opening is retried like migrating.
            pool = try Self.retrying(attempts: 10, onlyWhileBusy: true) { () throws -> any DatabaseWriter in
                singleConnection
                    ? try Self.singleConnection(path: path, configuration: configuration)
                    : try DatabasePool(path: path, configuration: configuration)
            }
            try Self.migrate(pool)
        } catch {
            throw StoreOpenError(path: path, underlying: error)
        }
    }

    /// One connection to `path` in WAL mode (a no-op question when the file is in it already, as every file a
    /// pool opened is).
    private static func singleConnection(path: String, configuration: Configuration) throws -> DatabaseQueue {
        let queue = try DatabaseQueue(path: path, configuration: configuration)
        let mode = try queue.writeWithoutTransaction { db in try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL") }
        guard mode == "wal" else {
            throw DatabaseError(message: "could not switch \(path) to WAL mode (it is in \(mode ?? "no") mode)")
        }
        return queue
    }

    /// Applies pending migrations; another process migrating at the same moment is waited for, not an error (a
    /// migrator that read the applied list just before the other committed fails, and its retry finds it done).
    static func migrate(_ pool: any DatabaseWriter) throws {
        try retrying(attempts: 5, onlyWhileBusy: false) { try Migrations.migrator.migrate(pool) }
    }

    /// Runs `body`, again after a growing pause while it fails (only because another connection holds the file's
    /// lock, when `onlyWhileBusy`), `attempts` times in all.
    static func retrying<T>(attempts: Int, onlyWhileBusy: Bool, _ body: () throws -> T) throws -> T {
        var attempt = 1
        while true {
            do {
                return try body()
            } catch  where attempt < attempts && (!onlyWhileBusy || isBusy(error)) {
                usleep(useconds_t(20_000 * attempt + Int.random(in: 0..<10_000)))
                attempt += 1
            }
        }
    }

    /// Whether `error` means another connection holds the file's lock.
    static func isBusy(_ error: any Error) -> Bool {
        guard let error = error as? DatabaseError else { return false }
        return error.resultCode == .SQLITE_BUSY || error.resultCode == .SQLITE_LOCKED
    }

    /// The identifiers of the applied migrations, oldest first.
    public func appliedMigrations() throws -> [String] {
        try pool.read { db in try Migrations.migrator.appliedMigrations(db) }
    }

    // MARK: Access

    // Reads and writes run synchronously on the calling thread. GRDB's async API hops to its own queue and
    // back for every call, which costs more than the statements themselves on this path (a step run is a few
    // short transactions); a blocked cooperative thread is bounded by the busy timeout.
    func write<T>(_ updates: (Database) throws -> T) throws -> T { try pool.write(updates) }
    func read<T>(_ value: (Database) throws -> T) throws -> T { try pool.read(value) }

    // MARK: Writes

    public func registerPipeline(_ name: String) async throws {
        try write { db in
            try db.execute(
                sql: "INSERT INTO pipelines (name, first_seen) VALUES (?, ?) ON CONFLICT(name) DO NOTHING",
                arguments: [name, Date().timeIntervalSince1970])
            try Self.ensureExperiment(named: name, db)
        }
    }

    public func insert(_ run: Run) async throws {
        try write { db in
            let e = run.environment
            let o = run.owner
            try db.execute(
                sql: """
                    INSERT INTO runs (id, pipeline, status, config, user, host, os, swift_version, sluice_version,
                        git_commit, git_dirty, binary_path, binary_hash, arguments, owner_host, owner_boot, owner_pid,
                        owner_start, started_at, ended_at, error, triggered_by, kind, name, experiment_id)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    run.id, run.pipeline, run.status.rawValue, run.config, e.user, e.host, e.os, e.swiftVersion,
                    e.sluiceVersion, e.gitCommit, e.gitDirty, e.binaryPath, e.binaryHash, json(e.arguments),
                    o.host, o.bootID, Int64(o.pid), Int64(bitPattern: o.startTicks),
                    run.startedAt.timeIntervalSince1970, run.endedAt?.timeIntervalSince1970, run.error,
                    run.trigger.storedJSON, run.kind.rawValue, run.name,
                    try Self.ensureExperiment(named: run.pipeline, db),
                ])
        }
    }

    @discardableResult
    public func finishRun(_ id: RunID, status: RunStatus, endedAt: Date, error: String?) async throws -> Bool {
        try write { db in
            try db.execute(
                sql: "UPDATE runs SET status = ?, ended_at = ?, error = ? WHERE id = ? AND status = 'running'",
                arguments: [status.rawValue, endedAt.timeIntervalSince1970, error, id])
            return db.changesCount > 0
        }
    }

    public func updateEnvironment(_ id: RunID, _ e: RunEnvironment) async throws {
        try write { db in
            try db.execute(
                sql: """
                    UPDATE runs SET user = ?, host = ?, os = ?, swift_version = ?, sluice_version = ?, git_commit = ?,
                        git_dirty = ?, binary_path = ?, binary_hash = ?, arguments = ? WHERE id = ?
                    """,
                arguments: [
                    e.user, e.host, e.os, e.swiftVersion, e.sluiceVersion, e.gitCommit, e.gitDirty, e.binaryPath,
                    e.binaryHash, json(e.arguments), id,
                ])
        }
    }

    public func insert(_ stepRun: StepRun, inputs: [Event]) async throws {
        try write { db in
            try Self.upsert(stepRun, db)
            try Self.insert(inputs, db)
            try Self.insertParams(
                RunParameters.values(ofStep: stepRun.stepName, parameters: stepRun.parameters), run: stepRun.runID, db)
        }
    }

    public func finishStepRun(_ stepRun: StepRun, metrics: [MetricRecord]) async throws {
        try write { db in
            try Self.upsert(stepRun, db)
            try Self.insert(metrics, for: stepRun, db)
        }
    }

    public func completeStepRun(_ stepRun: StepRun, outputs: [ArtifactRecord], metrics: [MetricRecord]) async throws {
        try write { db in
            try Self.upsert(stepRun, db)
            for a in outputs {
                try db.cachedStatement(
                    sql: """
                        INSERT INTO artifacts (id, name, type_name, uri, content_hash, size, materializer,
                            materializer_version, properties, producer_step_run_id, created_at)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """
                ).execute(
                    arguments: [
                        a.id, a.name, a.typeName, a.uri, a.contentHash, a.size, a.materializer, a.materializerVersion,
                        json(a.properties), a.producerStepRunID, a.createdAt.timeIntervalSince1970,
                    ])
            }
            try Self.insert(
                outputs.map { Event(stepRunID: stepRun.id, artifactID: $0.id, kind: .output, name: $0.name) }, db)
            try Self.insert(metrics, for: stepRun, db)
        }
    }

    public func insertCachedStepRuns(_ records: [CachedStepRun]) async throws {
        try write { db in
            for record in records {
                let stepRun = record.stepRun
                try Self.upsert(stepRun, db)
                try Self.insert(record.events, db)
                try Self.insertParams(
                    RunParameters.values(ofStep: stepRun.stepName, parameters: stepRun.parameters), run: stepRun.runID,
                    db)
                // The original's metrics are this run's too (as `runs compare` reads them).
                if let original = stepRun.cachedFrom {
                    let metrics = try Row.fetchAll(
                        db, sql: "SELECT * FROM metrics WHERE step_run_id = ? ORDER BY rowid", arguments: [original]
                    ).map(Self.metric)
                    try Self.insertPoints(Self.points(metrics, step: stepRun.stepName), run: stepRun.runID, db)
                }
            }
        }
    }

    private static func upsert(_ s: StepRun, _ db: Database) throws {
        try db.cachedStatement(
            sql: """
                INSERT INTO step_runs (id, run_id, step_name, kind, status, cache_key, code_version, parameters, seed,
                    started_at, ended_at, error, log_path, cached_from, properties)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(id) DO UPDATE SET status = excluded.status, ended_at = excluded.ended_at,
                    error = excluded.error, log_path = excluded.log_path, properties = excluded.properties
                """
        ).execute(
            arguments: [
                s.id, s.runID, s.stepName, s.kind, s.status.rawValue, s.cacheKey?.rawValue, s.codeVersion, s.parameters,
                Int64(bitPattern: s.seed), s.startedAt?.timeIntervalSince1970, s.endedAt?.timeIntervalSince1970,
                s.error, s.logPath, s.cachedFrom, json(s.properties),
            ])
    }

    private static func insert(_ events: [Event], _ db: Database) throws {
        for e in events {
            try db.cachedStatement(sql: "INSERT INTO events (step_run_id, artifact_id, kind, name) VALUES (?, ?, ?, ?)")
                .execute(arguments: [e.stepRunID, e.artifactID, e.kind.rawValue, e.name])
        }
    }

    private static func insert(_ metrics: [MetricRecord], for stepRun: StepRun, _ db: Database) throws {
        for m in metrics {
            try db.cachedStatement(
                sql: "INSERT INTO metrics (step_run_id, name, value, step, logged_at) VALUES (?, ?, ?, ?, ?)"
            ).execute(arguments: [stepRun.id, m.name, m.value, m.step, m.loggedAt.timeIntervalSince1970])
        }
        try insertPoints(points(metrics, step: stepRun.stepName), run: stepRun.runID, db)
    }

    static func metric(_ row: Row) -> MetricRecord {
        MetricRecord(
            name: row["name"], value: row["value"], step: row["step"],
            loggedAt: Date(timeIntervalSince1970: row["logged_at"]))
    }

    // MARK: Reads

    public func cacheHit(for cacheKey: CacheKey) async throws -> CacheHit? {
        try read { db in
            let statement = try db.cachedStatement(
                sql:
                    "SELECT * FROM step_runs WHERE cache_key = ? AND status = 'completed' ORDER BY ended_at DESC LIMIT 1"
            )
            guard let row = try Row.fetchOne(statement, arguments: [cacheKey.rawValue]) else { return nil }
            let stepRun = Self.stepRun(row)
            return CacheHit(stepRun: stepRun, outputs: try Self.outputs(ofStepRun: stepRun.id, db))
        }
    }

    public func outputs(ofStepRun id: String) async throws -> [String: ArtifactRecord] {
        try read { db in try Self.outputs(ofStepRun: id, db) }
    }

    private static func outputs(ofStepRun id: String, _ db: Database) throws -> [String: ArtifactRecord] {
        let statement = try db.cachedStatement(
            sql: """
                SELECT e.name AS event_name, a.* FROM events e JOIN artifacts a ON a.id = e.artifact_id
                WHERE e.step_run_id = ? AND e.kind = 'output'
                """)
        let rows = try Row.fetchAll(statement, arguments: [id])
        return Dictionary(uniqueKeysWithValues: rows.map { (($0["event_name"] as String), Self.artifact($0)) })
    }

    public func pipelines() async throws -> [PipelineRecord] {
        try await reconcileCrashedRuns()
        return try read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT p.name, p.first_seen, COUNT(r.id) AS run_count, MAX(r.started_at) AS last_run
                    FROM pipelines p LEFT JOIN runs r ON r.pipeline = p.name AND r.kind = 'pipeline'
                        AND r.deleted_at IS NULL
                    WHERE NOT EXISTS (SELECT 1 FROM runs t WHERE t.pipeline = p.name AND t.kind = 'tracked')
                        OR EXISTS (SELECT 1 FROM runs q WHERE q.pipeline = p.name AND q.kind = 'pipeline')
                    GROUP BY p.name ORDER BY p.name
                    """
            ).map { row in
                PipelineRecord(
                    name: row["name"], firstSeen: Date(timeIntervalSince1970: row["first_seen"]),
                    runCount: row["run_count"],
                    lastRunAt: (row["last_run"] as Double?).map(Date.init(timeIntervalSince1970:)))
            }
        }
    }

    public func runs(_ filter: RunFilter) async throws -> [Run] {
        try await reconcileCrashedRuns()
        return try read { db in
            var conditions: [String] = ["deleted_at IS NULL"]
            var arguments: StatementArguments = []
            if let pipeline = filter.pipeline {
                conditions.append("pipeline = ?")
                _ = arguments.append(contentsOf: [pipeline])
            }
            if let status = filter.status {
                conditions.append("status = ?")
                _ = arguments.append(contentsOf: [status.rawValue])
            }
            let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
            _ = arguments.append(contentsOf: [filter.limit])
            return try Row.fetchAll(
                db, sql: "SELECT * FROM runs \(whereClause) ORDER BY started_at DESC, id DESC LIMIT ?",
                arguments: arguments
            ).map(Self.run)
        }
    }

    public func run(_ idOrPrefix: String) async throws -> Run? {
        try await reconcileCrashedRuns()
        return try read { db in
            try Self.unique(idOrPrefix, table: "runs", db).map(Self.run)
        }
    }

    public func stepRuns(ofRun id: RunID) async throws -> [StepRun] {
        try await reconcileCrashedRuns()
        return try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM step_runs WHERE run_id = ? ORDER BY rowid", arguments: [id])
                .map(Self.stepRun)
        }
    }

    public func stepRuns(ofRun id: RunID, steps: [String]) async throws -> [StepRun] {
        guard !steps.isEmpty else { return [] }
        try await reconcileCrashedRuns()
        return try read { db in
            let marks = Array(repeating: "?", count: steps.count).joined(separator: ", ")
            return try Row.fetchAll(
                db, sql: "SELECT * FROM step_runs WHERE run_id = ? AND step_name IN (\(marks)) ORDER BY rowid",
                arguments: StatementArguments([id] + steps)
            ).map(Self.stepRun)
        }
    }

    public func setProperties(_ properties: [String: PropertyValue], ofArtifact id: String) async throws {
        try write { db in
            try db.execute(
                sql: "UPDATE artifacts SET properties = ? WHERE id = ?", arguments: [json(properties), id])
        }
    }

    public func stepRun(_ id: String) async throws -> StepRun? {
        try await reconcileCrashedRuns()
        return try read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM step_runs WHERE id = ?", arguments: [id]).map(Self.stepRun)
        }
    }

    public func metrics(ofStepRun id: String) async throws -> [MetricRecord] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM metrics WHERE step_run_id = ? ORDER BY rowid", arguments: [id])
                .map(Self.metric)
        }
    }

    public func artifacts(_ filter: ArtifactFilter) async throws -> [ArtifactRecord] {
        try read { db in
            var conditions: [String] = []
            var arguments: StatementArguments = []
            var join = ""
            if let runID = filter.runID {
                join =
                    "JOIN events e ON e.artifact_id = a.id AND e.kind = 'output' JOIN step_runs s ON s.id = e.step_run_id"
                conditions.append("s.run_id = ?")
                _ = arguments.append(contentsOf: [runID])
            }
            if let name = filter.name {
                conditions.append("a.name = ?")
                _ = arguments.append(contentsOf: [name])
            }
            let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
            _ = arguments.append(contentsOf: [filter.limit])
            return try Row.fetchAll(
                db,
                sql:
                    "SELECT DISTINCT a.* FROM artifacts a \(join) \(whereClause) ORDER BY a.created_at DESC, a.id DESC LIMIT ?",
                arguments: arguments
            ).map(Self.artifact)
        }
    }

    public func artifact(_ idOrPrefix: String) async throws -> ArtifactRecord? {
        try read { db in try Self.unique(idOrPrefix, table: "artifacts", db).map(Self.artifact) }
    }

    public func events(ofArtifact id: String) async throws -> [Event] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM events WHERE artifact_id = ? ORDER BY rowid", arguments: [id]).map(
                Self.event)
        }
    }

    public func events(ofStepRun id: String) async throws -> [Event] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM events WHERE step_run_id = ? ORDER BY rowid", arguments: [id]).map(
                Self.event)
        }
    }

    /// Marks runs whose owning process is gone as crashed, with their running step runs.
    func reconcileCrashedRuns() async throws {
        guard marksCrashedRuns else { return }
        let running = try read { db in
            try Row.fetchAll(
                db, sql: "SELECT id, owner_host, owner_boot, owner_pid, owner_start FROM runs WHERE status = 'running'")
        }
        let dead = running.filter { row in
            ProcessOwner(
                host: row["owner_host"], bootID: row["owner_boot"], pid: Int32(row["owner_pid"] as Int64),
                startTicks: UInt64(bitPattern: row["owner_start"] as Int64)
            ).isKnownDead
        }.map { $0["id"] as String }
        guard !dead.isEmpty else { return }
        let now = Date().timeIntervalSince1970
        try write { db in
            for id in dead {
                try db.execute(
                    sql: """
                        UPDATE runs SET status = 'crashed', ended_at = COALESCE(ended_at, ?),
                            error = COALESCE(error, 'the process running it stopped without finishing (killed or crashed)')
                        WHERE id = ? AND status = 'running'
                        """, arguments: [now, id])
                // Only when the run above is crashed now: a run that ended meanwhile keeps its step runs as they are.
                guard db.changesCount > 0 else { continue }
                try db.execute(
                    sql:
                        "UPDATE step_runs SET status = 'crashed', ended_at = COALESCE(ended_at, ?) WHERE run_id = ? AND status = 'running'",
                    arguments: [now, id])
            }
        }
    }

    // MARK: Row mapping

    private static func unique(_ prefix: String, table: String, _ db: Database) throws -> Row? {
        if let exact = try Row.fetchOne(db, sql: "SELECT * FROM \(table) WHERE id = ?", arguments: [prefix]) {
            return exact
        }
        let escaped = prefix.replacingOccurrences(of: "%", with: "").replacingOccurrences(of: "_", with: "")
        let rows = try Row.fetchAll(
            db, sql: "SELECT * FROM \(table) WHERE id LIKE ? ORDER BY id LIMIT 6", arguments: [escaped + "%"])
        let matches = rows.filter { ($0["id"] as String).hasPrefix(prefix) }
        if matches.count > 1 { throw AmbiguousIDError(prefix: prefix, matches: matches.map { $0["id"] }) }
        return matches.first
    }

    static func run(_ row: Row) -> Run {
        Run(
            id: row["id"], pipeline: row["pipeline"], status: RunStatus(rawValue: row["status"]) ?? .failed,
            config: row["config"],
            environment: RunEnvironment(
                user: row["user"], host: row["host"], os: row["os"], swiftVersion: row["swift_version"],
                sluiceVersion: row["sluice_version"], gitCommit: row["git_commit"], gitDirty: row["git_dirty"],
                binaryPath: row["binary_path"], binaryHash: row["binary_hash"],
                arguments: decode([String].self, row["arguments"]) ?? []),
            owner: ProcessOwner(
                host: row["owner_host"], bootID: row["owner_boot"], pid: Int32(row["owner_pid"] as Int64),
                startTicks: UInt64(bitPattern: row["owner_start"] as Int64)),
            startedAt: Date(timeIntervalSince1970: row["started_at"]),
            endedAt: (row["ended_at"] as Double?).map(Date.init(timeIntervalSince1970:)), error: row["error"],
            trigger: RunTrigger(storedJSON: row["triggered_by"]),
            kind: (row["kind"] as String?).flatMap(RunKind.init(rawValue:)) ?? .pipeline, name: row["name"])
    }

    static func stepRun(_ row: Row) -> StepRun {
        StepRun(
            id: row["id"], runID: row["run_id"], stepName: row["step_name"], kind: row["kind"],
            status: StepRunStatus(rawValue: row["status"]) ?? .failed,
            cacheKey: (row["cache_key"] as String?).map(CacheKey.init(rawValue:)), codeVersion: row["code_version"],
            parameters: row["parameters"], seed: UInt64(bitPattern: row["seed"] as Int64),
            startedAt: (row["started_at"] as Double?).map(Date.init(timeIntervalSince1970:)),
            endedAt: (row["ended_at"] as Double?).map(Date.init(timeIntervalSince1970:)), error: row["error"],
            logPath: row["log_path"], cachedFrom: row["cached_from"],
            properties: decode([String: PropertyValue].self, row["properties"]) ?? [:])
    }

    static func artifact(_ row: Row) -> ArtifactRecord {
        ArtifactRecord(
            id: row["id"], name: row["name"], typeName: row["type_name"], uri: row["uri"],
            contentHash: row["content_hash"], size: row["size"], materializer: row["materializer"],
            materializerVersion: row["materializer_version"],
            properties: decode([String: PropertyValue].self, row["properties"]) ?? [:],
            producerStepRunID: row["producer_step_run_id"], createdAt: Date(timeIntervalSince1970: row["created_at"]))
    }

    static func event(_ row: Row) -> Event {
        Event(
            stepRunID: row["step_run_id"], artifactID: row["artifact_id"],
            kind: Event.Kind(rawValue: row["kind"]) ?? .input,
            name: row["name"])
    }

    private static func decode<T: Decodable>(_ type: T.Type, _ text: String?) -> T? {
        guard let text else { return nil }
        return try? JSONDecoder().decode(T.self, from: Data(text.utf8))
    }
}

private func json(_ properties: [String: PropertyValue]) -> String {
    properties.isEmpty ? "{}" : json(properties as [String: PropertyValue]?)
}

private func json<T: Encodable>(_ value: T) -> String {
    (try? canonicalJSON(value)).map { String(decoding: $0, as: UTF8.self) } ?? "null"
}

/// A metadata store file that could not be opened, with what to try.
public struct StoreOpenError: Error, CustomStringConvertible {
    /// The database file.
    public var path: String
    /// What SQLite said.
    public var underlying: Error
}

extension StoreOpenError: SluiceError {
    public var problem: String { "cannot open the metadata store at \(path): \(underlying)" }
    public var fix: String {
        "check that the folder is writable and the file is a Sluice store, or point `metadata_store` in "
            + ".sluice/stack.yaml elsewhere."
    }
    public var exitStatus: ExitStatus { .unusableInput }
}
