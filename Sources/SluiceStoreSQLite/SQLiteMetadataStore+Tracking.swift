import Foundation
import GRDB
import SluiceCore
import SluiceStoreSQL

/// Tracked runs, experiments, params, tags, metric series and search over SQLite (the v7 tables).
extension SQLiteMetadataStore: TrackingStore {
    // MARK: Shared with the pipeline-run writes

    /// The experiment named `name`, created when missing (each pipeline is one); returns its ID.
    @discardableResult
    static func ensureExperiment(named name: String, _ db: Database) throws -> Int64 {
        if let id = try Int64.fetchOne(
            db, sql: "SELECT id FROM experiments WHERE name = ?", arguments: [name])
        {
            return id
        }
        let id = (try Int64.fetchOne(db, sql: "SELECT MAX(id) FROM experiments") ?? 0) + 1
        let now = Date().timeIntervalSince1970
        try db.execute(
            sql: "INSERT INTO experiments VALUES (?, ?, ?, 'active', ?, ?)",
            arguments: [id, name, "mlflow-artifacts:/\(id)", now, now])
        return id
    }

    /// A pipeline step's parameters as its run's params (the first value of a key stays).
    static func insertParams(_ params: [String: String], run: RunID, _ db: Database) throws {
        for (key, value) in params {
            try db.cachedStatement(sql: "INSERT OR IGNORE INTO run_params (run_id, key, value) VALUES (?, ?, ?)")
                .execute(arguments: [run, key, value])
        }
    }

    /// Appends points to their series and moves each key's latest value forward.
    static func insertPoints(_ points: [MetricPoint], run: RunID, _ db: Database) throws {
        let history = try db.cachedStatement(
            sql: "INSERT INTO run_metrics (run_id, key, value, is_nan, timestamp, step) VALUES (?, ?, ?, ?, ?, ?)")
        let latest = try db.cachedStatement(
            sql: """
                INSERT INTO run_latest_metrics (run_id, key, value, is_nan, timestamp, step) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT(run_id, key) DO UPDATE SET value = excluded.value, is_nan = excluded.is_nan,
                    timestamp = excluded.timestamp, step = excluded.step
                WHERE (excluded.step, excluded.timestamp, excluded.value) > (step, timestamp, value)
                """)
        for p in points {
            let nan = p.value.isNaN
            let value = nan ? 0 : TrackingValidation.stored(p.value)
            let arguments: StatementArguments = [run, p.key, value, nan ? 1 : 0, p.timestamp, p.step]
            try history.execute(arguments: arguments)
            try latest.execute(arguments: arguments)
        }
    }

    /// A step's metrics as its run's points, keyed `step.metric`.
    static func points(_ metrics: [MetricRecord], step: String) -> [MetricPoint] {
        metrics.map {
            MetricPoint(
                key: "\(step).\($0.name)", value: $0.value,
                timestamp: Int64(($0.loggedAt.timeIntervalSince1970 * 1000).rounded()), step: Int64($0.step ?? 0))
        }
    }

    // MARK: Experiments

    public func createExperiment(name: String, artifactLocation: String?, tags: [String: String]) async throws
        -> Experiment
    {
        try TrackingValidation.experimentName(name)
        let id: Int64 = try write { db in
            if try Int64.fetchOne(db, sql: "SELECT id FROM experiments WHERE name = ?", arguments: [name]) != nil {
                throw TrackingError(.resourceAlreadyExists, "Experiment '\(name)' already exists.")
            }
            let id = (try Int64.fetchOne(db, sql: "SELECT MAX(id) FROM experiments") ?? 0) + 1
            let now = Date().timeIntervalSince1970
            try db.execute(
                sql: "INSERT INTO experiments VALUES (?, ?, ?, 'active', ?, ?)",
                arguments: [id, name, artifactLocation ?? "mlflow-artifacts:/\(id)", now, now])
            for (key, value) in tags {
                try db.execute(
                    sql: "INSERT INTO experiment_tags VALUES (?, ?, ?)", arguments: [id, key, value])
            }
            return id
        }
        guard let experiment = try await experiment(id: String(id)) else { throw TrackingError.noExperiment("\(id)") }
        return experiment
    }

    public func experiment(id: String) async throws -> Experiment? {
        guard let number = Int64(id) else { return nil }
        return try read { db in try Self.experiments(ids: [number], db).first }
    }

    public func experiment(named name: String) async throws -> Experiment? {
        try read { db in
            guard let id = try Int64.fetchOne(db, sql: "SELECT id FROM experiments WHERE name = ?", arguments: [name])
            else { return nil }
            return try Self.experiments(ids: [id], db).first
        }
    }

    public func experiments(_ search: ExperimentSearch) async throws -> TrackingPage<Experiment> {
        let offset = try PageToken.offset(search.pageToken)
        var sql = SearchSQL(dialect: .sqlite)
        let statement = sql.experimentIDs(search, offset: offset)
        let items = try read { db in
            let ids = try Int64.fetchAll(db, sql: statement, arguments: Self.arguments(sql.arguments))
            return try Self.experiments(ids: ids, db)
        }
        return TrackingPage(
            items: items,
            nextPageToken: items.count == search.maxResults ? PageToken.make(offset: offset + items.count) : nil)
    }

    public func renameExperiment(id: String, to name: String) async throws {
        try TrackingValidation.experimentName(name)
        try write { db in
            let number = try Self.requireExperiment(id, db)
            if let other = try Int64.fetchOne(db, sql: "SELECT id FROM experiments WHERE name = ?", arguments: [name]),
                other != number
            {
                throw TrackingError(.resourceAlreadyExists, "Experiment '\(name)' already exists.")
            }
            try db.execute(
                sql: "UPDATE experiments SET name = ?, updated_at = ? WHERE id = ?",
                arguments: [name, Date().timeIntervalSince1970, number])
        }
    }

    public func setExperimentDeleted(id: String, _ deleted: Bool) async throws {
        try write { db in
            let number = try Self.requireExperiment(id, db)
            if deleted, number == 0 {
                throw TrackingError(
                    .invalidParameterValue, "Cannot delete the default experiment '0'. This is an internal experiment.")
            }
            let now = Date().timeIntervalSince1970
            // When it was deleted: runs deleted with it (at that moment or later) come back on restore.
            let previous =
                try Double.fetchOne(db, sql: "SELECT updated_at FROM experiments WHERE id = ?", arguments: [number])
                ?? now
            try db.execute(
                sql: "UPDATE experiments SET lifecycle_stage = ?, updated_at = ? WHERE id = ?",
                arguments: [deleted ? "deleted" : "active", now, number])
            // Its runs go (and come back) with it; runs deleted on their own stay deleted on restore.
            if deleted {
                try db.execute(
                    sql: "UPDATE runs SET deleted_at = ? WHERE experiment_id = ? AND deleted_at IS NULL",
                    arguments: [now, number])
            } else {
                try db.execute(
                    sql: "UPDATE runs SET deleted_at = NULL WHERE experiment_id = ? AND deleted_at >= ?",
                    arguments: [number, previous])
            }
        }
    }

    public func setExperimentTag(id: String, key: String, value: String) async throws {
        try TrackingValidation.tag(KeyValue(key, value))
        try write { db in
            let number = try Self.requireExperiment(id, db, active: true)
            try db.execute(
                sql: "INSERT OR REPLACE INTO experiment_tags VALUES (?, ?, ?)", arguments: [number, key, value])
        }
    }

    // MARK: Runs

    public func createTrackedRun(_ start: TrackedRunStart) async throws -> TrackedRun {
        for tag in start.tags { try TrackingValidation.tag(tag) }
        let id = RecordID.make("run", at: start.startedAt)
        let owner = start.owner ?? ProcessOwner.remote
        let environment =
            start.environment
            ?? RunEnvironment(
                user: start.user, host: "", os: "", swiftVersion: "", sluiceVersion: RunEnvironment.sluiceVersion)
        let name =
            start.name.flatMap { $0.isEmpty ? nil : $0 }
            ?? start.tags.last(where: { $0.key == TrackedRun.nameTag })?.value ?? RunNames.generate()
        try write { db in
            guard
                let row = try Row.fetchOne(
                    db, sql: "SELECT name, lifecycle_stage FROM experiments WHERE id = ?",
                    arguments: [Int64(start.experimentID) ?? -1])
            else { throw TrackingError.noExperiment(start.experimentID) }
            guard (row["lifecycle_stage"] as String) == "active" else {
                throw TrackingError(
                    .invalidState,
                    "The experiment \(start.experimentID) must be in the 'active' state. Current state is deleted.")
            }
            let experimentName: String = row["name"]
            try db.execute(
                sql: "INSERT INTO pipelines (name, first_seen) VALUES (?, ?) ON CONFLICT(name) DO NOTHING",
                arguments: [experimentName, Date().timeIntervalSince1970])
            let e = environment
            try db.execute(
                sql: """
                    INSERT INTO runs (id, pipeline, status, config, user, host, os, swift_version, sluice_version,
                        git_commit, git_dirty, binary_path, binary_hash, arguments, owner_host, owner_boot, owner_pid,
                        owner_start, started_at, ended_at, error, triggered_by, kind, name, experiment_id)
                    VALUES (?, ?, 'running', '', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL,
                        'tracked', ?, ?)
                    """,
                arguments: [
                    id, experimentName, start.user, e.host, e.os, e.swiftVersion, e.sluiceVersion, e.gitCommit,
                    e.gitDirty, e.binaryPath, e.binaryHash, Self.jsonText(e.arguments), owner.host, owner.bootID,
                    Int64(owner.pid), Int64(bitPattern: owner.startTicks), start.startedAt.timeIntervalSince1970,
                    name, Int64(start.experimentID),
                ])
            var tags = start.tags.filter { $0.key != TrackedRun.nameTag }
            tags.append(KeyValue(TrackedRun.nameTag, name))
            try Self.insertTags(tags, run: id, db)
        }
        guard let run = try await trackedRun(id) else { throw TrackingError.noRun(id) }
        return run
    }

    public func trackedRun(_ idOrPrefix: String) async throws -> TrackedRun? {
        try await reconcileCrashedRuns()
        return try read { db in
            if let exact = try Self.trackedRuns(ids: [idOrPrefix], db).first { return exact }
            guard idOrPrefix.count >= 4, let row = try Self.uniqueRun(idOrPrefix, db) else { return nil }
            return try Self.trackedRuns(ids: [row], db).first
        }
    }

    public func updateTrackedRun(_ id: RunID, status: RunStatus?, endedAt: Date?, name: String?) async throws
        -> TrackedRun
    {
        try write { db in
            let row = try Self.requireRun(id, db, active: true)
            if let status {
                guard (row["kind"] as String) == RunKind.tracked.rawValue else {
                    throw TrackingError(
                        .invalidParameterValue,
                        "Run '\(id)' is a pipeline run: its status is the run engine's",
                        hint: "cancel it with `sluice runs cancel` instead.")
                }
                let end: Double? = status.isFinal ? (endedAt ?? Date()).timeIntervalSince1970 : nil
                try db.execute(
                    sql: "UPDATE runs SET status = ?, ended_at = COALESCE(?, ended_at) WHERE id = ?",
                    arguments: [status.rawValue, end, id])
                if !status.isFinal {
                    try db.execute(sql: "UPDATE runs SET ended_at = NULL WHERE id = ?", arguments: [id])
                }
            } else if let endedAt {
                try db.execute(
                    sql: "UPDATE runs SET ended_at = ? WHERE id = ?", arguments: [endedAt.timeIntervalSince1970, id])
            }
            if let name, !name.isEmpty {
                try db.execute(sql: "UPDATE runs SET name = ? WHERE id = ?", arguments: [name, id])
                try Self.insertTags([KeyValue(TrackedRun.nameTag, name)], run: id, db)
            }
        }
        guard let run = try await trackedRun(id) else { throw TrackingError.noRun(id) }
        return run
    }

    public func setRunDeleted(_ id: RunID, _ deleted: Bool) async throws {
        try write { db in
            _ = try Self.requireRun(id, db, active: false)
            try db.execute(
                sql: "UPDATE runs SET deleted_at = ? WHERE id = ?",
                arguments: [deleted ? Date().timeIntervalSince1970 : nil, id])
        }
    }

    public func log(_ batch: RunLogBatch, to run: RunID) async throws {
        try TrackingValidation.batch(batch)
        try write { db in
            _ = try Self.requireRun(run, db, active: true)
            for param in batch.params {
                if let existing = try String.fetchOne(
                    db, sql: "SELECT value FROM run_params WHERE run_id = ? AND key = ?", arguments: [run, param.key])
                {
                    guard existing == param.value else {
                        throw TrackingValidation.changedParam(param, old: existing, run: run)
                    }
                    continue
                }
                try db.cachedStatement(sql: "INSERT INTO run_params (run_id, key, value) VALUES (?, ?, ?)")
                    .execute(arguments: [run, param.key, param.value])
            }
            try Self.insertTags(batch.tags, run: run, db)
            if let name = batch.tags.last(where: { $0.key == TrackedRun.nameTag })?.value {
                try db.execute(sql: "UPDATE runs SET name = ? WHERE id = ?", arguments: [name, run])
            }
            try Self.insertPoints(batch.metrics, run: run, db)
        }
    }

    public func deleteTag(_ key: String, ofRun run: RunID) async throws {
        try write { db in
            _ = try Self.requireRun(run, db, active: true)
            try db.execute(sql: "DELETE FROM run_tags WHERE run_id = ? AND key = ?", arguments: [run, key])
            guard db.changesCount > 0 else {
                throw TrackingError(.resourceDoesNotExist, "No tag with name: \(key) in run with id \(run)")
            }
        }
    }

    public func logInputs(_ inputs: [DatasetInput], to run: RunID) async throws {
        try write { db in
            _ = try Self.requireRun(run, db, active: true)
            var position =
                try Int64.fetchOne(
                    db, sql: "SELECT COALESCE(MAX(position) + 1, 0) FROM run_inputs WHERE run_id = ?", arguments: [run])
                ?? 0
            for input in inputs {
                let duplicate = try Bool.fetchOne(
                    db, sql: "SELECT 1 FROM run_inputs WHERE run_id = ? AND name = ? AND digest = ? AND context IS ?",
                    arguments: [run, input.name, input.digest, input.context])
                if duplicate == true { continue }
                try db.execute(
                    sql: "INSERT INTO run_inputs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    arguments: [
                        run, position, input.name, input.digest, input.sourceType, input.source, input.schema,
                        input.profile, input.context, Self.jsonText(input.tags),
                    ])
                position += 1
            }
        }
    }

    public func metricHistory(ofRun run: RunID, key: String) async throws -> [MetricPoint] {
        try read { db in
            _ = try Self.requireRun(run, db, active: false)
            return try Row.fetchAll(
                db,
                sql: "SELECT * FROM run_metrics WHERE run_id = ? AND key = ? ORDER BY step, timestamp, rowid",
                arguments: [run, key]
            ).map(Self.point)
        }
    }

    public func searchRuns(_ search: RunSearch) async throws -> TrackingPage<TrackedRun> {
        try TrackingValidation.search(search)
        try await reconcileCrashedRuns()
        let offset = try PageToken.offset(search.pageToken)
        var sql = SearchSQL(dialect: .sqlite)
        let statement = sql.runIDs(search, offset: offset)
        let runs = try read { db in
            let ids = try String.fetchAll(db, sql: statement, arguments: Self.arguments(sql.arguments))
            return try Self.trackedRuns(ids: ids, db)
        }
        return TrackingPage(
            items: runs,
            nextPageToken: runs.count == search.maxResults ? PageToken.make(offset: offset + runs.count) : nil)
    }

    public func runsDeleted(before date: Date) async throws -> [RunID] {
        try read { db in
            try String.fetchAll(
                db, sql: "SELECT id FROM runs WHERE deleted_at IS NOT NULL AND deleted_at < ? ORDER BY deleted_at",
                arguments: [date.timeIntervalSince1970])
        }
    }

    // MARK: Documents

    public func putDocument(_ document: TrackingDocument) async throws {
        try write { db in
            try db.execute(
                sql: "INSERT OR REPLACE INTO tracking_documents VALUES (?, ?, ?, ?, ?)",
                arguments: [
                    document.kind, document.id, document.runID, document.body,
                    document.updatedAt.timeIntervalSince1970,
                ])
        }
    }

    public func document(kind: String, id: String) async throws -> TrackingDocument? {
        try read { db in
            try Row.fetchOne(
                db, sql: "SELECT * FROM tracking_documents WHERE kind = ? AND id = ?", arguments: [kind, id]
            ).map(Self.document)
        }
    }

    public func documents(kind: String, idPrefix: String) async throws -> [TrackingDocument] {
        try read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM tracking_documents WHERE kind = ? AND substr(id, 1, ?) = ? ORDER BY id",
                arguments: [kind, idPrefix.count, idPrefix]
            ).map(Self.document)
        }
    }

    @discardableResult
    public func deleteDocument(kind: String, id: String) async throws -> Bool {
        try write { db in
            try db.execute(sql: "DELETE FROM tracking_documents WHERE kind = ? AND id = ?", arguments: [kind, id])
            return db.changesCount > 0
        }
    }

    static func document(_ row: Row) -> TrackingDocument {
        TrackingDocument(
            kind: row["kind"], id: row["id"], runID: row["run_id"], body: row["body"],
            updatedAt: Date(timeIntervalSince1970: row["updated_at"]))
    }

    // MARK: Reading

    static func arguments(_ arguments: [SQLArgument]) -> StatementArguments {
        StatementArguments(
            arguments.map { argument -> (any DatabaseValueConvertible) in
                switch argument {
                case .text(let s): s
                case .double(let d): d
                case .integer(let i): i
                }
            })
    }

    static func experiments(ids: [Int64], _ db: Database) throws -> [Experiment] {
        guard !ids.isEmpty else { return [] }
        let marks = Array(repeating: "?", count: ids.count).joined(separator: ", ")
        var tags: [Int64: [String: String]] = [:]
        for row in try Row.fetchAll(
            db, sql: "SELECT * FROM experiment_tags WHERE experiment_id IN (\(marks))",
            arguments: StatementArguments(ids))
        {
            tags[row["experiment_id"], default: [:]][row["key"]] = row["value"]
        }
        let rows = try Row.fetchAll(
            db, sql: "SELECT * FROM experiments WHERE id IN (\(marks))", arguments: StatementArguments(ids))
        let byID = Dictionary(uniqueKeysWithValues: rows.map { (($0["id"] as Int64), $0) })
        return ids.compactMap { id in
            guard let row = byID[id] else { return nil }
            return Experiment(
                id: String(id), name: row["name"], artifactLocation: row["artifact_location"],
                deleted: (row["lifecycle_stage"] as String) == "deleted",
                createdAt: Date(timeIntervalSince1970: row["created_at"]),
                updatedAt: Date(timeIntervalSince1970: row["updated_at"]), tags: tags[id] ?? [:])
        }
    }

    /// Runs with their params, tags, latest metrics and inputs, in the order of `ids` (unknown IDs left out).
    static func trackedRuns(ids: [String], _ db: Database) throws -> [TrackedRun] {
        guard !ids.isEmpty else { return [] }
        let marks = Array(repeating: "?", count: ids.count).joined(separator: ", ")
        let arguments = StatementArguments(ids)
        let rows = try Row.fetchAll(
            db,
            sql: """
                SELECT r.id, r.experiment_id, r.name, r.kind, r.pipeline, r.status, r.user, r.started_at, r.ended_at,
                    r.deleted_at, e.artifact_location
                FROM runs r LEFT JOIN experiments e ON e.id = r.experiment_id WHERE r.id IN (\(marks))
                """, arguments: arguments)
        var params: [String: [String: String]] = [:]
        for row in try Row.fetchAll(
            db, sql: "SELECT run_id, key, value FROM run_params WHERE run_id IN (\(marks))", arguments: arguments)
        {
            params[row["run_id"], default: [:]][row["key"]] = row["value"]
        }
        var tags: [String: [String: String]] = [:]
        for row in try Row.fetchAll(
            db, sql: "SELECT run_id, key, value FROM run_tags WHERE run_id IN (\(marks))", arguments: arguments)
        {
            tags[row["run_id"], default: [:]][row["key"]] = row["value"]
        }
        var metrics: [String: [MetricPoint]] = [:]
        for row in try Row.fetchAll(
            db, sql: "SELECT * FROM run_latest_metrics WHERE run_id IN (\(marks)) ORDER BY key", arguments: arguments)
        {
            metrics[row["run_id"], default: []].append(point(row))
        }
        var inputs: [String: [DatasetInput]] = [:]
        for row in try Row.fetchAll(
            db, sql: "SELECT * FROM run_inputs WHERE run_id IN (\(marks)) ORDER BY run_id, position",
            arguments: arguments)
        {
            inputs[row["run_id"], default: []].append(
                DatasetInput(
                    name: row["name"], digest: row["digest"], sourceType: row["source_type"], source: row["source"],
                    schema: row["schema"], profile: row["profile"],
                    tags: (try? JSONDecoder().decode([KeyValue].self, from: Data((row["tags"] as String).utf8))) ?? []))
        }
        var byID: [String: TrackedRun] = [:]
        for row in rows {
            let id: String = row["id"]
            let experimentID = (row["experiment_id"] as Int64?).map(String.init) ?? Experiment.defaultID
            let location: String = row["artifact_location"] ?? "mlflow-artifacts:/\(experimentID)"
            var runTags = tags[id] ?? [:]
            let name: String = row["name"] ?? runTags[TrackedRun.nameTag] ?? id
            runTags[TrackedRun.nameTag] = runTags[TrackedRun.nameTag] ?? name
            byID[id] = TrackedRun(
                id: id, experimentID: experimentID, name: name,
                kind: RunKind(rawValue: row["kind"]) ?? .pipeline, pipeline: row["pipeline"],
                status: RunStatus(rawValue: row["status"]) ?? .failed, user: row["user"],
                startedAt: Date(timeIntervalSince1970: row["started_at"]),
                endedAt: (row["ended_at"] as Double?).map(Date.init(timeIntervalSince1970:)),
                artifactURI: "\(location)/\(id)/artifacts", deleted: row["deleted_at"] != nil,
                params: params[id] ?? [:], tags: runTags, metrics: metrics[id] ?? [], inputs: inputs[id] ?? [])
        }
        return ids.compactMap { byID[$0] }
    }

    static func point(_ row: Row) -> MetricPoint {
        MetricPoint(
            key: row["key"], value: (row["is_nan"] as Int64) != 0 ? .nan : row["value"], timestamp: row["timestamp"],
            step: row["step"])
    }

    static func insertTags(_ tags: [KeyValue], run: RunID, _ db: Database) throws {
        for tag in tags {
            try db.cachedStatement(sql: "INSERT OR REPLACE INTO run_tags (run_id, key, value) VALUES (?, ?, ?)")
                .execute(arguments: [run, tag.key, tag.value])
        }
    }

    static func requireExperiment(_ id: String, _ db: Database, active: Bool = false) throws -> Int64 {
        guard let number = Int64(id),
            let stage = try String.fetchOne(
                db, sql: "SELECT lifecycle_stage FROM experiments WHERE id = ?", arguments: [number])
        else { throw TrackingError.noExperiment(id) }
        if active, stage != "active" {
            throw TrackingError(
                .invalidState, "The experiment \(id) must be in the 'active' state. Current state is \(stage).")
        }
        return number
    }

    static func requireRun(_ id: RunID, _ db: Database, active: Bool) throws -> Row {
        guard let row = try Row.fetchOne(db, sql: "SELECT id, kind, deleted_at FROM runs WHERE id = ?", arguments: [id])
        else { throw TrackingError.noRun(id) }
        if active, row["deleted_at"] != nil {
            throw TrackingError(
                .invalidParameterValue, "The run \(id) must be in the 'active' state. Current state is deleted.",
                hint: "restore it first: `sluice runs restore \(id)`.")
        }
        return row
    }

    static func uniqueRun(_ prefix: String, _ db: Database) throws -> String? {
        let escaped = prefix.replacingOccurrences(of: "%", with: "").replacingOccurrences(of: "_", with: "")
        let ids = try String.fetchAll(
            db, sql: "SELECT id FROM runs WHERE id LIKE ? ORDER BY id LIMIT 6", arguments: [escaped + "%"]
        ).filter { $0.hasPrefix(prefix) }
        if ids.count > 1 { throw AmbiguousIDError(prefix: prefix, matches: ids) }
        return ids.first
    }

    static func jsonText<T: Encodable>(_ value: T) -> String {
        (try? canonicalJSON(value)).map { String(decoding: $0, as: UTF8.self) } ?? "null"
    }
}
