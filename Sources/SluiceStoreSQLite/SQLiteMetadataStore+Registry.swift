import Foundation
import GRDB
import SluiceCore

extension SQLiteMetadataStore: ModelRegistry {
    public func registerModelVersion(
        model: String, artifactID: String, runID: String?, createdBy: String, metrics: [String: Double],
        datasetVersion: String?
    ) async throws -> ModelVersion {
        try write { db in
            try Self.insertNextVersion(
                model: model, artifactID: artifactID, runID: runID, createdBy: createdBy, metrics: metrics,
                datasetVersion: datasetVersion, db)
        }
    }

    public func registerModelVersionIfNew(
        model: String, artifactID: String, contentHash: String?, runID: String?, createdBy: String,
        metrics: [String: Double], datasetVersion: String?
    ) async throws -> (version: ModelVersion, isNew: Bool) {
        try write { db in
            // In the same IMMEDIATE transaction as the insert: a concurrent registration of the same bytes waits.
            if let row = try Row.fetchOne(
                db,
                sql: """
                    SELECT mv.* FROM model_versions mv LEFT JOIN artifacts a ON a.id = mv.artifact_id
                    WHERE mv.model = ? AND (mv.artifact_id = ? OR a.content_hash = ?)
                    ORDER BY mv.version DESC LIMIT 1
                    """, arguments: [model, artifactID, contentHash])
            {
                return (Self.version(row), false)
            }
            let version = try Self.insertNextVersion(
                model: model, artifactID: artifactID, runID: runID, createdBy: createdBy, metrics: metrics,
                datasetVersion: datasetVersion, db)
            return (version, true)
        }
    }

    public func registeredModels() async throws -> [RegisteredModel] {
        RegistryRules.summaries(try read { db in try Self.versions(db, model: nil) })
    }

    public func modelVersions(_ model: String) async throws -> [ModelVersion] {
        try read { db in try Self.versions(db, model: model) }
    }

    public func moveModelVersion(
        _ model: String, version: Int, to stage: ModelStage, expecting expected: StageExpectation, by: String,
        reason: String
    ) async throws -> ModelVersion {
        let known = try await registeredModels()
        // One IMMEDIATE transaction (GRDB's kind for writes): other processes' writers wait, so the expectation is
        // checked against the stages this move replaces.
        return try write { db in
            let current = try Self.versions(db, model: model)
            guard !current.isEmpty else { throw RegistryRules.unknownModel(model, known: known) }
            let (updated, changes) = try RegistryRules.move(
                current, model: model, version: version, to: stage, expecting: expected, by: by, reason: reason,
                at: Date(), latestChange: { try Self.changes(db, model: model, latestOnly: true).last })
            // Archive the old production version first: the unique index allows one production row per model.
            for record in updated {
                try db.execute(
                    sql: "UPDATE model_versions SET stage = ? WHERE model = ? AND version = ?",
                    arguments: [record.stage.rawValue, model, record.version])
            }
            for change in changes { try Self.insert(change, db) }
            return updated.last!
        }
    }

    public func stageChanges(_ model: String) async throws -> [StageChange] {
        try read { db in try Self.changes(db, model: model, latestOnly: false) }
    }

    private static func changes(_ db: Database, model: String, latestOnly: Bool) throws -> [StageChange] {
        let sql =
            latestOnly
            ? "SELECT * FROM stage_changes WHERE model = ? ORDER BY id DESC LIMIT 1"
            : "SELECT * FROM stage_changes WHERE model = ? ORDER BY id"
        return try Row.fetchAll(db, sql: sql, arguments: [model]).map { row in
            StageChange(
                model: row["model"], version: row["version"],
                from: ModelStage(rawValue: row["from_stage"]) ?? .none,
                to: ModelStage(rawValue: row["to_stage"]) ?? .none,
                at: Date(timeIntervalSince1970: row["at"]), by: row["by"], reason: row["reason"])
        }
    }

    public func attachProfile(_ model: String, version: Int, profile: Data, uri: String) async throws {
        guard try await modelVersion(model, version: version) != nil else {
            throw RegistryError(
                problem: "model '\(model)' has no version \(version)", fix: "profile a registered version.")
        }
        try write { db in
            try db.execute(
                sql: """
                    INSERT INTO model_profiles (model, version, uri, profile, created_at) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT(model, version) DO UPDATE SET uri = excluded.uri, profile = excluded.profile,
                        created_at = excluded.created_at
                    """,
                arguments: [
                    model, version, uri, String(decoding: profile, as: UTF8.self), Date().timeIntervalSince1970,
                ])
        }
    }

    public func profile(_ model: String, version: Int) async throws -> (json: Data, uri: String)? {
        try read { db in
            try Row.fetchOne(
                db, sql: "SELECT uri, profile FROM model_profiles WHERE model = ? AND version = ?",
                arguments: [model, version]
            ).map { row in (Data((row["profile"] as String).utf8), row["uri"] as String) }
        }
    }

    public func importModel(_ versions: [ModelVersion], changes: [StageChange]) async throws {
        try write { db in
            try RegistryRules.checkImport(versions, existing: try Self.versions(db, model: versions.first?.model))
            for version in versions { try Self.insert(version, db) }
            for change in changes { try Self.insert(change, db) }
        }
    }

    /// Inserts the model's next version in stage `none`, inside the caller's write transaction.
    private static func insertNextVersion(
        model: String, artifactID: String, runID: String?, createdBy: String, metrics: [String: Double],
        datasetVersion: String?, _ db: Database
    ) throws -> ModelVersion {
        let next =
            (try Int.fetchOne(db, sql: "SELECT MAX(version) FROM model_versions WHERE model = ?", arguments: [model])
                ?? 0) + 1
        let version = ModelVersion(
            model: model, version: next, artifactID: artifactID, runID: runID, stage: .none, createdAt: Date(),
            createdBy: createdBy, metrics: metrics, datasetVersion: datasetVersion)
        try insert(version, db)
        return version
    }

    private static func insert(_ v: ModelVersion, _ db: Database) throws {
        try db.execute(
            sql: """
                INSERT INTO model_versions
                    (model, version, artifact_id, run_id, stage, created_at, created_by, metrics, dataset_version)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                v.model, v.version, v.artifactID, v.runID, v.stage.rawValue, v.createdAt.timeIntervalSince1970,
                v.createdBy, String(decoding: try JSONEncoder.sorted.encode(v.metrics), as: UTF8.self),
                v.datasetVersion,
            ])
    }

    private static func insert(_ change: StageChange, _ db: Database) throws {
        try db.execute(
            sql: """
                INSERT INTO stage_changes (model, version, from_stage, to_stage, at, by, reason)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                change.model, change.version, change.from.rawValue, change.to.rawValue,
                change.at.timeIntervalSince1970, change.by, change.reason,
            ])
    }

    private static func versions(_ db: Database, model: String?) throws -> [ModelVersion] {
        let rows =
            try model.map {
                try Row.fetchAll(
                    db, sql: "SELECT * FROM model_versions WHERE model = ? ORDER BY version DESC", arguments: [$0])
            } ?? Row.fetchAll(db, sql: "SELECT * FROM model_versions ORDER BY model, version DESC")
        return rows.map(version)
    }

    private static func version(_ row: Row) -> ModelVersion {
        let metricsJSON: String = row["metrics"]
        return ModelVersion(
            model: row["model"], version: row["version"], artifactID: row["artifact_id"], runID: row["run_id"],
            stage: ModelStage(rawValue: row["stage"]) ?? .none,
            createdAt: Date(timeIntervalSince1970: row["created_at"]), createdBy: row["created_by"],
            metrics: (try? JSONDecoder().decode([String: Double].self, from: Data(metricsJSON.utf8))) ?? [:],
            datasetVersion: row["dataset_version"])
    }
}

extension JSONEncoder {
    /// Sorted keys, for stable stored JSON.
    static var sorted: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }
}
