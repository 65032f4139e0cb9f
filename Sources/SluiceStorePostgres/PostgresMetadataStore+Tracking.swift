import Foundation
import PostgresNIO
import SluiceCore
import SluiceStoreSQL

/// Tracked runs, experiments, params, tags, metric series and search on PostgreSQL (the v7 tables); pipeline runs'
/// params and metrics arrive through the migration's triggers.
extension PostgresMetadataStore: TrackingStore {
    /// Runs `statement` on `connection` and maps each row.
    func rows<T>(_ connection: PostgresConnection, _ query: PostgresQuery, _ map: (Row) throws -> T) async throws
        -> [T]
    {
        var result: [T] = []
        for try await row in try await connection.query(query, logger: logger) {
            result.append(try map(Row(row.makeRandomAccess())))
        }
        return result
    }

    static func query(_ sql: String, _ arguments: [SQLArgument]) -> PostgresQuery {
        var binds = PostgresBindings()
        for argument in arguments {
            switch argument {
            case .text(let s): binds.append(s)
            case .double(let d): binds.append(d)
            case .integer(let i): binds.append(i)
            }
        }
        return PostgresQuery(unsafeSQL: sql, binds: binds)
    }

    // MARK: Experiments

    public func createExperiment(name: String, artifactLocation: String?, tags: [String: String]) async throws
        -> Experiment
    {
        try TrackingValidation.experimentName(name)
        let id: Int64 = try await transaction { connection in
            let taken = try await self.rows(connection, "SELECT id FROM experiments WHERE name = \(name)") {
                try $0.int("id")
            }
            guard taken.isEmpty else {
                throw TrackingError(.resourceAlreadyExists, "Experiment '\(name)' already exists.")
            }
            let id = try await self.rows(connection, "SELECT nextval('experiment_ids') AS id") {
                Int64(try $0.int("id"))
            }[0]
            let now = Date().timeIntervalSince1970
            let location = artifactLocation ?? "mlflow-artifacts:/\(id)"
            try await connection.query(
                """
                INSERT INTO experiments (id, name, artifact_location, created_at, updated_at)
                VALUES (\(id), \(name), \(location), \(now), \(now))
                """, logger: self.logger)
            for (key, value) in tags {
                try await connection.query(
                    "INSERT INTO experiment_tags VALUES (\(id), \(key), \(value))", logger: self.logger)
            }
            return id
        }
        guard let experiment = try await experiment(id: String(id)) else { throw TrackingError.noExperiment("\(id)") }
        return experiment
    }

    public func experiment(id: String) async throws -> Experiment? {
        guard let number = Int64(id) else { return nil }
        return try await experiments(ids: [number]).first
    }

    public func experiment(named name: String) async throws -> Experiment? {
        let ids = try await rows("SELECT id FROM experiments WHERE name = \(name)") { Int64(try $0.int("id")) }
        return try await experiments(ids: ids).first
    }

    public func experiments(_ search: ExperimentSearch) async throws -> TrackingPage<Experiment> {
        let offset = try PageToken.offset(search.pageToken)
        var sql = SearchSQL(dialect: .postgres)
        let statement = sql.experimentIDs(search, offset: offset)
        let ids = try await rows(Self.query(statement, sql.arguments)) { Int64(try $0.int("id")) }
        let items = try await experiments(ids: ids)
        return TrackingPage(
            items: items,
            nextPageToken: items.count == search.maxResults ? PageToken.make(offset: offset + items.count) : nil)
    }

    public func renameExperiment(id: String, to name: String) async throws {
        try TrackingValidation.experimentName(name)
        try await transaction { connection in
            let number = try await self.requireExperiment(id, connection)
            let other = try await self.rows(connection, "SELECT id FROM experiments WHERE name = \(name)") {
                Int64(try $0.int("id"))
            }
            if let other = other.first, other != number {
                throw TrackingError(.resourceAlreadyExists, "Experiment '\(name)' already exists.")
            }
            try await connection.query(
                "UPDATE experiments SET name = \(name), updated_at = \(Date().timeIntervalSince1970) WHERE id = \(number)",
                logger: self.logger)
        }
    }

    public func setExperimentDeleted(id: String, _ deleted: Bool) async throws {
        try await transaction { connection in
            let number = try await self.requireExperiment(id, connection)
            if deleted, number == 0 {
                throw TrackingError(
                    .invalidParameterValue,
                    "Cannot delete the default experiment '0'. This is an internal experiment.")
            }
            let stage = deleted ? "deleted" : "active"
            let previous =
                try await self.rows(connection, "SELECT updated_at FROM experiments WHERE id = \(number)") {
                    try $0.double("updated_at")
                }.first ?? 0
            let now = Date().timeIntervalSince1970
            try await connection.query(
                "UPDATE experiments SET lifecycle_stage = \(stage), updated_at = \(now) WHERE id = \(number)",
                logger: self.logger)
            if deleted {
                try await connection.query(
                    "UPDATE runs SET deleted_at = \(now) WHERE experiment_id = \(number) AND deleted_at IS NULL",
                    logger: self.logger)
            } else {
                try await connection.query(
                    "UPDATE runs SET deleted_at = NULL WHERE experiment_id = \(number) AND deleted_at >= \(previous)",
                    logger: self.logger)
            }
        }
    }

    public func setExperimentTag(id: String, key: String, value: String) async throws {
        try TrackingValidation.tag(KeyValue(key, value))
        try await transaction { connection in
            let number = try await self.requireExperiment(id, connection, active: true)
            try await connection.query(
                """
                INSERT INTO experiment_tags VALUES (\(number), \(key), \(value))
                ON CONFLICT (experiment_id, key) DO UPDATE SET value = excluded.value
                """, logger: self.logger)
        }
    }

    // MARK: Runs

    public func createTrackedRun(_ start: TrackedRunStart) async throws -> TrackedRun {
        for tag in start.tags { try TrackingValidation.tag(tag) }
        let id = RecordID.make("run", at: start.startedAt)
        let o = start.owner ?? ProcessOwner.remote
        let e =
            start.environment
            ?? RunEnvironment(
                user: start.user, host: "", os: "", swiftVersion: "", sluiceVersion: RunEnvironment.sluiceVersion)
        let name =
            start.name.flatMap { $0.isEmpty ? nil : $0 }
            ?? start.tags.last(where: { $0.key == TrackedRun.nameTag })?.value ?? RunNames.generate()
        let experiment = Int64(start.experimentID) ?? -1
        try await transaction { connection in
            let found = try await self.rows(
                connection, "SELECT name, lifecycle_stage FROM experiments WHERE id = \(experiment)"
            ) { (try $0.string("name"), try $0.string("lifecycle_stage")) }
            guard let (experimentName, stage) = found.first else {
                throw TrackingError.noExperiment(start.experimentID)
            }
            guard stage == "active" else {
                throw TrackingError(
                    .invalidState,
                    "The experiment \(start.experimentID) must be in the 'active' state. Current state is deleted.")
            }
            let now = Date().timeIntervalSince1970
            try await connection.query(
                "INSERT INTO pipelines (name, first_seen) VALUES (\(experimentName), \(now)) ON CONFLICT (name) DO NOTHING",
                logger: self.logger)
            try await connection.query(
                """
                INSERT INTO runs (id, pipeline, status, config, "user", host, os, swift_version, sluice_version,
                    git_commit, git_dirty, binary_path, binary_hash, arguments, owner_host, owner_boot, owner_pid,
                    owner_start, started_at, kind, name, experiment_id)
                VALUES (\(id), \(experimentName), 'running', '', \(start.user), \(e.host), \(e.os), \(e.swiftVersion),
                    \(e.sluiceVersion), \(e.gitCommit), \(e.gitDirty), \(e.binaryPath), \(e.binaryHash),
                    \(json(e.arguments)), \(o.host), \(o.bootID), \(Int(o.pid)), \(Int64(bitPattern: o.startTicks)),
                    \(start.startedAt.timeIntervalSince1970), 'tracked', \(name), \(experiment))
                """, logger: self.logger)
            var tags = start.tags.filter { $0.key != TrackedRun.nameTag }
            tags.append(KeyValue(TrackedRun.nameTag, name))
            try await self.insertTags(tags, run: id, connection)
        }
        guard let run = try await trackedRun(id) else { throw TrackingError.noRun(id) }
        return run
    }

    public func trackedRun(_ idOrPrefix: String) async throws -> TrackedRun? {
        try await reconcileCrashedRuns()
        if let exact = try await trackedRuns(ids: [idOrPrefix]).first { return exact }
        guard idOrPrefix.count >= 4, let run = try await run(idOrPrefix) else { return nil }
        return try await trackedRuns(ids: [run.id]).first
    }

    public func updateTrackedRun(_ id: RunID, status: RunStatus?, endedAt: Date?, name: String?) async throws
        -> TrackedRun
    {
        try await transaction { connection in
            let kind = try await self.requireRun(id, connection, active: true)
            if let status {
                guard kind == RunKind.tracked.rawValue else {
                    throw TrackingError(
                        .invalidParameterValue, "Run '\(id)' is a pipeline run: its status is the run engine's",
                        hint: "cancel it with `sluice runs cancel` instead.")
                }
                let end: Double? = status.isFinal ? (endedAt ?? Date()).timeIntervalSince1970 : nil
                try await connection.query(
                    "UPDATE runs SET status = \(status.rawValue), ended_at = \(end) WHERE id = \(id)",
                    logger: self.logger)
            } else if let endedAt {
                try await connection.query(
                    "UPDATE runs SET ended_at = \(endedAt.timeIntervalSince1970) WHERE id = \(id)", logger: self.logger)
            }
            if let name, !name.isEmpty {
                try await connection.query("UPDATE runs SET name = \(name) WHERE id = \(id)", logger: self.logger)
                try await self.insertTags([KeyValue(TrackedRun.nameTag, name)], run: id, connection)
            }
        }
        guard let run = try await trackedRun(id) else { throw TrackingError.noRun(id) }
        return run
    }

    public func setRunDeleted(_ id: RunID, _ deleted: Bool) async throws {
        try await transaction { connection in
            _ = try await self.requireRun(id, connection, active: false)
            let at: Double? = deleted ? Date().timeIntervalSince1970 : nil
            try await connection.query("UPDATE runs SET deleted_at = \(at) WHERE id = \(id)", logger: self.logger)
        }
    }

    public func log(_ batch: RunLogBatch, to run: RunID) async throws {
        try TrackingValidation.batch(batch)
        try await transaction { connection in
            _ = try await self.requireRun(run, connection, active: true)
            if !batch.params.isEmpty {
                // Inserted where new; a key already logged with another value is refused (and nothing is written).
                let keys = batch.params.map(\.key)
                let values = batch.params.map(\.value)
                let clashes = try await self.rows(
                    connection,
                    """
                    WITH new AS (SELECT * FROM unnest(\(keys)::text[], \(values)::text[]) AS n(key, value)),
                    ins AS (INSERT INTO run_params (run_id, key, value) SELECT \(run), key, value FROM new
                        ON CONFLICT (run_id, key) DO NOTHING)
                    SELECT new.key, new.value, p.value AS old FROM new JOIN run_params p
                        ON p.run_id = \(run) AND p.key = new.key WHERE p.value <> new.value
                    """
                ) { (try $0.string("key"), try $0.string("value"), try $0.string("old")) }
                if let (key, value, old) = clashes.first {
                    throw TrackingValidation.changedParam(KeyValue(key, value), old: old, run: run)
                }
            }
            try await self.insertTags(batch.tags, run: run, connection)
            if let name = batch.tags.last(where: { $0.key == TrackedRun.nameTag })?.value {
                try await connection.query("UPDATE runs SET name = \(name) WHERE id = \(run)", logger: self.logger)
            }
            if !batch.metrics.isEmpty {
                let keys = batch.metrics.map(\.key)
                let values = batch.metrics.map { $0.value.isNaN ? 0 : TrackingValidation.stored($0.value) }
                let nans = batch.metrics.map { Int64($0.value.isNaN ? 1 : 0) }
                let times = batch.metrics.map(\.timestamp)
                let steps = batch.metrics.map(\.step)
                try await connection.query(
                    """
                    WITH new AS (SELECT * FROM unnest(\(keys)::text[], \(values)::float8[], \(nans)::int8[],
                            \(times)::int8[], \(steps)::int8[]) WITH ORDINALITY AS n(key, value, is_nan, ts, step, pos)),
                    h AS (INSERT INTO run_metrics (run_id, key, value, is_nan, timestamp, step)
                        SELECT \(run), key, value, is_nan, ts, step FROM new ORDER BY pos)
                    INSERT INTO run_latest_metrics AS l (run_id, key, value, is_nan, timestamp, step)
                    SELECT DISTINCT ON (key) \(run), key, value, is_nan, ts, step FROM new
                        ORDER BY key, step DESC, ts DESC, value DESC
                    ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value, is_nan = excluded.is_nan,
                        timestamp = excluded.timestamp, step = excluded.step
                    WHERE (excluded.step, excluded.timestamp, excluded.value) > (l.step, l.timestamp, l.value)
                    """, logger: self.logger)
            }
        }
    }

    public func deleteTag(_ key: String, ofRun run: RunID) async throws {
        try await transaction { connection in
            _ = try await self.requireRun(run, connection, active: true)
            let deleted = try await self.rows(
                connection, "DELETE FROM run_tags WHERE run_id = \(run) AND key = \(key) RETURNING key"
            ) { try $0.string("key") }
            guard !deleted.isEmpty else {
                throw TrackingError(.resourceDoesNotExist, "No tag with name: \(key) in run with id \(run)")
            }
        }
    }

    public func logInputs(_ inputs: [DatasetInput], to run: RunID) async throws {
        try await transaction { connection in
            _ = try await self.requireRun(run, connection, active: true)
            var position =
                try await self.rows(
                    connection, "SELECT COALESCE(MAX(position) + 1, 0) AS next FROM run_inputs WHERE run_id = \(run)"
                ) { try $0.int("next") }.first ?? 0
            for input in inputs {
                let duplicate = try await self.rows(
                    connection,
                    """
                    SELECT 1 AS one FROM run_inputs WHERE run_id = \(run) AND name = \(input.name)
                        AND digest = \(input.digest) AND context IS NOT DISTINCT FROM \(input.context)
                    """
                ) { try $0.int("one") }
                if !duplicate.isEmpty { continue }
                try await connection.query(
                    """
                    INSERT INTO run_inputs VALUES (\(run), \(position), \(input.name), \(input.digest),
                        \(input.sourceType), \(input.source), \(input.schema), \(input.profile), \(input.context),
                        \(json(input.tags)))
                    """, logger: self.logger)
                position += 1
            }
        }
    }

    public func metricHistory(ofRun run: RunID, key: String) async throws -> [MetricPoint] {
        guard try await trackedRuns(ids: [run]).first != nil else { throw TrackingError.noRun(run) }
        return try await rows(
            "SELECT * FROM run_metrics WHERE run_id = \(run) AND key = \(key) ORDER BY step, timestamp, seq",
            Self.point)
    }

    public func searchRuns(_ search: RunSearch) async throws -> TrackingPage<TrackedRun> {
        try TrackingValidation.search(search)
        try await reconcileCrashedRuns()
        let offset = try PageToken.offset(search.pageToken)
        var sql = SearchSQL(dialect: .postgres)
        let statement = sql.runIDs(search, offset: offset)
        let ids = try await rows(Self.query(statement, sql.arguments)) { try $0.string("id") }
        let runs = try await trackedRuns(ids: ids)
        return TrackingPage(
            items: runs,
            nextPageToken: runs.count == search.maxResults ? PageToken.make(offset: offset + runs.count) : nil)
    }

    public func runsDeleted(before date: Date) async throws -> [RunID] {
        try await rows(
            """
            SELECT id FROM runs WHERE deleted_at IS NOT NULL AND deleted_at < \(date.timeIntervalSince1970)
            ORDER BY deleted_at
            """
        ) { try $0.string("id") }
    }

    // MARK: Documents

    public func putDocument(_ document: TrackingDocument) async throws {
        try await execute(
            """
            INSERT INTO tracking_documents VALUES (\(document.kind), \(document.id), \(document.runID), \(document.body),
                \(document.updatedAt.timeIntervalSince1970))
            ON CONFLICT (kind, id) DO UPDATE SET run_id = excluded.run_id, body = excluded.body,
                updated_at = excluded.updated_at
            """)
    }

    public func document(kind: String, id: String) async throws -> TrackingDocument? {
        try await rows("SELECT * FROM tracking_documents WHERE kind = \(kind) AND id = \(id)", Self.document).first
    }

    public func documents(kind: String, idPrefix: String) async throws -> [TrackingDocument] {
        try await rows(
            """
            SELECT * FROM tracking_documents WHERE kind = \(kind) AND starts_with(id, \(idPrefix))
            ORDER BY id
            """, Self.document)
    }

    @discardableResult
    public func deleteDocument(kind: String, id: String) async throws -> Bool {
        try await !rows(
            "DELETE FROM tracking_documents WHERE kind = \(kind) AND id = \(id) RETURNING id", { try $0.string("id") }
        ).isEmpty
    }

    static func document(_ row: Row) throws -> TrackingDocument {
        TrackingDocument(
            kind: try row.string("kind"), id: try row.string("id"), runID: try row.optionalString("run_id"),
            body: try row.string("body"), updatedAt: Date(timeIntervalSince1970: try row.double("updated_at")))
    }

    // MARK: Reading

    func experiments(ids: [Int64]) async throws -> [Experiment] {
        guard !ids.isEmpty else { return [] }
        var tags: [Int64: [String: String]] = [:]
        for (id, key, value) in try await rows(
            "SELECT * FROM experiment_tags WHERE experiment_id = ANY(\(ids))",
            { (Int64(try $0.int("experiment_id")), try $0.string("key"), try $0.string("value")) })
        {
            tags[id, default: [:]][key] = value
        }
        let found = try await rows("SELECT * FROM experiments WHERE id = ANY(\(ids))") { row in
            let id = Int64(try row.int("id"))
            return Experiment(
                id: String(id), name: try row.string("name"), artifactLocation: try row.string("artifact_location"),
                deleted: try row.string("lifecycle_stage") == "deleted",
                createdAt: Date(timeIntervalSince1970: try row.double("created_at")),
                updatedAt: Date(timeIntervalSince1970: try row.double("updated_at")), tags: tags[id] ?? [:])
        }
        let byID = Dictionary(found.map { ($0.id, $0) }) { first, _ in first }
        return ids.compactMap { byID[String($0)] }
    }

    func trackedRuns(ids: [String]) async throws -> [TrackedRun] {
        guard !ids.isEmpty else { return [] }
        var params: [String: [String: String]] = [:]
        for (run, key, value) in try await rows(
            "SELECT run_id, key, value FROM run_params WHERE run_id = ANY(\(ids))",
            { (try $0.string("run_id"), try $0.string("key"), try $0.string("value")) })
        {
            params[run, default: [:]][key] = value
        }
        var tags: [String: [String: String]] = [:]
        for (run, key, value) in try await rows(
            "SELECT run_id, key, value FROM run_tags WHERE run_id = ANY(\(ids))",
            { (try $0.string("run_id"), try $0.string("key"), try $0.string("value")) })
        {
            tags[run, default: [:]][key] = value
        }
        var metrics: [String: [MetricPoint]] = [:]
        for (run, point) in try await rows(
            "SELECT * FROM run_latest_metrics WHERE run_id = ANY(\(ids)) ORDER BY key",
            { (try $0.string("run_id"), try Self.point($0)) })
        {
            metrics[run, default: []].append(point)
        }
        var inputs: [String: [DatasetInput]] = [:]
        for (run, input) in try await rows(
            "SELECT * FROM run_inputs WHERE run_id = ANY(\(ids)) ORDER BY run_id, position",
            { row in
                (
                    try row.string("run_id"),
                    DatasetInput(
                        name: try row.string("name"), digest: try row.string("digest"),
                        sourceType: try row.string("source_type"), source: try row.string("source"),
                        schema: try row.optionalString("schema"), profile: try row.optionalString("profile"),
                        tags: Self.decode([KeyValue].self, try row.string("tags")) ?? [])
                )
            })
        {
            inputs[run, default: []].append(input)
        }
        let found = try await rows(
            """
            SELECT r.id, r.experiment_id, r.name, r.kind, r.pipeline, r.status, r."user", r.started_at, r.ended_at,
                r.deleted_at, e.artifact_location
            FROM runs r LEFT JOIN experiments e ON e.id = r.experiment_id WHERE r.id = ANY(\(ids))
            """
        ) { row -> TrackedRun in
            let id = try row.string("id")
            let experimentID = try row.optionalInt("experiment_id").map(String.init) ?? Experiment.defaultID
            let location = try row.optionalString("artifact_location") ?? "mlflow-artifacts:/\(experimentID)"
            var runTags = tags[id] ?? [:]
            let name = try row.optionalString("name") ?? runTags[TrackedRun.nameTag] ?? id
            runTags[TrackedRun.nameTag] = runTags[TrackedRun.nameTag] ?? name
            return TrackedRun(
                id: id, experimentID: experimentID, name: name,
                kind: RunKind(rawValue: try row.string("kind")) ?? .pipeline, pipeline: try row.string("pipeline"),
                status: RunStatus(rawValue: try row.string("status")) ?? .failed, user: try row.string("user"),
                startedAt: Date(timeIntervalSince1970: try row.double("started_at")),
                endedAt: try row.optionalDouble("ended_at").map(Date.init(timeIntervalSince1970:)),
                artifactURI: "\(location)/\(id)/artifacts", deleted: try row.optionalDouble("deleted_at") != nil,
                params: params[id] ?? [:], tags: runTags, metrics: metrics[id] ?? [], inputs: inputs[id] ?? [])
        }
        let byID = Dictionary(found.map { ($0.id, $0) }) { first, _ in first }
        return ids.compactMap { byID[$0] }
    }

    static func point(_ row: Row) throws -> MetricPoint {
        MetricPoint(
            key: try row.string("key"), value: try row.int("is_nan") != 0 ? .nan : try row.double("value"),
            timestamp: Int64(try row.int("timestamp")), step: Int64(try row.int("step")))
    }

    func insertTags(_ tags: [KeyValue], run: RunID, _ connection: PostgresConnection) async throws {
        guard !tags.isEmpty else { return }
        // The last value of a key in one call wins, as one after another would.
        var latest: [String: String] = [:]
        for tag in tags { latest[tag.key] = tag.value }
        let keys = Array(latest.keys)
        let values = keys.map { latest[$0]! }
        try await connection.query(
            """
            INSERT INTO run_tags (run_id, key, value) SELECT \(run), key, value
            FROM unnest(\(keys)::text[], \(values)::text[]) AS n(key, value)
            ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value
            """, logger: logger)
    }

    func requireExperiment(_ id: String, _ connection: PostgresConnection, active: Bool = false) async throws -> Int64 {
        guard let number = Int64(id),
            let stage = try await rows(
                connection, "SELECT lifecycle_stage FROM experiments WHERE id = \(number)",
                { try $0.string("lifecycle_stage") }
            ).first
        else { throw TrackingError.noExperiment(id) }
        if active, stage != "active" {
            throw TrackingError(
                .invalidState, "The experiment \(id) must be in the 'active' state. Current state is \(stage).")
        }
        return number
    }

    /// The run's kind; throws when it does not exist (or is deleted, when `active`).
    func requireRun(_ id: RunID, _ connection: PostgresConnection, active: Bool) async throws -> String {
        guard
            let (kind, deleted) = try await rows(
                connection, "SELECT kind, deleted_at FROM runs WHERE id = \(id) FOR UPDATE",
                { (try $0.string("kind"), try $0.optionalDouble("deleted_at")) }
            ).first
        else { throw TrackingError.noRun(id) }
        if active, deleted != nil {
            throw TrackingError(
                .invalidParameterValue, "The run \(id) must be in the 'active' state. Current state is deleted.",
                hint: "restore it first: `sluice runs restore \(id)`.")
        }
        return kind
    }
}
