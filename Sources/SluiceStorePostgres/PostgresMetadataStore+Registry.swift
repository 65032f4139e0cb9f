import Foundation
import PostgresNIO
import SluiceCore

extension PostgresMetadataStore: ModelRegistry {
    public func registerModelVersion(
        model: String, artifactID: String, runID: String?, createdBy: String, metrics: [String: Double],
        datasetVersion: String?
    ) async throws -> ModelVersion {
        try await transaction { connection in
            try await self.lock(model, connection)
            return try await self.insertNextVersion(
                model: model, artifactID: artifactID, runID: runID, createdBy: createdBy, metrics: metrics,
                datasetVersion: datasetVersion, connection)
        }
    }

    public func registerModelVersionIfNew(
        model: String, artifactID: String, contentHash: String?, runID: String?, createdBy: String,
        metrics: [String: Double], datasetVersion: String?
    ) async throws -> (version: ModelVersion, isNew: Bool) {
        try await transaction { connection in
            // Under the model's lock: a concurrent registration of the same bytes waits, then finds this one.
            try await self.lock(model, connection)
            for try await row in try await connection.query(
                """
                SELECT mv.* FROM model_versions mv LEFT JOIN artifacts a ON a.id = mv.artifact_id
                WHERE mv.model = \(model) AND (mv.artifact_id = \(artifactID) OR a.content_hash = \(contentHash))
                ORDER BY mv.version DESC LIMIT 1
                """, logger: self.logger)
            {
                return (try Self.modelVersion(Row(row.makeRandomAccess())), false)
            }
            let version = try await self.insertNextVersion(
                model: model, artifactID: artifactID, runID: runID, createdBy: createdBy, metrics: metrics,
                datasetVersion: datasetVersion, connection)
            return (version, true)
        }
    }

    public func registeredModels() async throws -> [RegisteredModel] {
        RegistryRules.summaries(
            try await rows("SELECT * FROM model_versions ORDER BY model, version DESC", Self.modelVersion))
    }

    public func modelVersions(_ model: String) async throws -> [ModelVersion] {
        try await rows(
            "SELECT * FROM model_versions WHERE model = \(model) ORDER BY version DESC", Self.modelVersion)
    }

    public func moveModelVersion(
        _ model: String, version: Int, to stage: ModelStage, expecting expected: StageExpectation, by: String,
        reason: String
    ) async throws -> ModelVersion {
        let known = try await registeredModels()
        return try await transaction { connection in
            // Serializes moves of one model across processes and hosts: each reads the stages the last one left
            // (READ COMMITTED: every statement after the lock sees what the previous holder committed), so the
            // expectation is checked against the stages this move replaces.
            try await self.lock(model, connection)
            var current: [ModelVersion] = []
            for try await row in try await connection.query(
                "SELECT * FROM model_versions WHERE model = \(model) ORDER BY version DESC", logger: self.logger)
            {
                current.append(try Self.modelVersion(Row(row.makeRandomAccess())))
            }
            guard !current.isEmpty else { throw RegistryRules.unknownModel(model, known: known) }
            var latest: StageChange?
            if !expected.holds(in: current, moving: version) {
                latest = try await self.latestChange(model, connection)
            }
            let (updated, changes) = try RegistryRules.move(
                current, model: model, version: version, to: stage, expecting: expected, by: by, reason: reason,
                at: Date(), latestChange: { latest })
            // Archive the old production version first: the unique index allows one production row per model.
            for record in updated {
                try await connection.query(
                    """
                    UPDATE model_versions SET stage = \(record.stage.rawValue)
                    WHERE model = \(model) AND version = \(record.version)
                    """, logger: self.logger)
            }
            for change in changes {
                try await connection.query(
                    """
                    INSERT INTO stage_changes (model, version, from_stage, to_stage, at, by, reason)
                    VALUES (\(model), \(change.version), \(change.from.rawValue), \(change.to.rawValue),
                        \(change.at.timeIntervalSince1970), \(change.by), \(change.reason))
                    """, logger: self.logger)
            }
            return updated.last!
        }
    }

    public func stageChanges(_ model: String) async throws -> [StageChange] {
        try await rows("SELECT * FROM stage_changes WHERE model = \(model) ORDER BY id", Self.stageChange)
    }

    /// A model's newest stage change, read on `connection` (inside the move's transaction).
    func latestChange(_ model: String, _ connection: PostgresConnection) async throws -> StageChange? {
        for try await row in try await connection.query(
            "SELECT * FROM stage_changes WHERE model = \(model) ORDER BY id DESC LIMIT 1", logger: logger)
        {
            return try Self.stageChange(Row(row.makeRandomAccess()))
        }
        return nil
    }

    static func stageChange(_ row: Row) throws -> StageChange {
        StageChange(
            model: try row.string("model"), version: try row.int("version"),
            from: ModelStage(rawValue: try row.string("from_stage")) ?? .none,
            to: ModelStage(rawValue: try row.string("to_stage")) ?? .none,
            at: Date(timeIntervalSince1970: try row.double("at")), by: try row.string("by"),
            reason: try row.string("reason"))
    }

    public func attachProfile(_ model: String, version: Int, profile: Data, uri: String) async throws {
        guard try await modelVersion(model, version: version) != nil else {
            throw RegistryError(
                problem: "model '\(model)' has no version \(version)", fix: "profile a registered version.")
        }
        let text = String(decoding: profile, as: UTF8.self)
        try await execute(
            """
            INSERT INTO model_profiles (model, version, uri, profile, created_at)
            VALUES (\(model), \(version), \(uri), \(text), \(Date().timeIntervalSince1970))
            ON CONFLICT (model, version) DO UPDATE SET uri = excluded.uri, profile = excluded.profile,
                created_at = excluded.created_at
            """)
    }

    public func profile(_ model: String, version: Int) async throws -> (json: Data, uri: String)? {
        try await rows(
            "SELECT uri, profile FROM model_profiles WHERE model = \(model) AND version = \(version)"
        ) { row in (Data(try row.string("profile").utf8), try row.string("uri")) }.first
    }

    public func importModel(_ versions: [ModelVersion], changes: [StageChange]) async throws {
        guard let model = versions.first?.model else { return }
        try await transaction { connection in
            try await self.lock(model, connection)
            var existing: [ModelVersion] = []
            for try await row in try await connection.query(
                "SELECT * FROM model_versions WHERE model = \(model)", logger: self.logger)
            {
                existing.append(try Self.modelVersion(Row(row.makeRandomAccess())))
            }
            try RegistryRules.checkImport(versions, existing: existing)
            for v in versions {
                try await connection.query(
                    """
                    INSERT INTO model_versions
                        (model, version, artifact_id, run_id, stage, created_at, created_by, metrics, dataset_version)
                    VALUES (\(v.model), \(v.version), \(v.artifactID), \(v.runID), \(v.stage.rawValue),
                        \(v.createdAt.timeIntervalSince1970), \(v.createdBy), \(json(v.metrics)), \(v.datasetVersion))
                    """, logger: self.logger)
            }
            for change in changes {
                try await connection.query(
                    """
                    INSERT INTO stage_changes (model, version, from_stage, to_stage, at, by, reason)
                    VALUES (\(change.model), \(change.version), \(change.from.rawValue), \(change.to.rawValue),
                        \(change.at.timeIntervalSince1970), \(change.by), \(change.reason))
                    """, logger: self.logger)
            }
        }
    }

    /// Inserts the model's next version in stage `none`; the caller holds the model's lock.
    private func insertNextVersion(
        model: String, artifactID: String, runID: String?, createdBy: String, metrics: [String: Double],
        datasetVersion: String?, _ connection: PostgresConnection
    ) async throws -> ModelVersion {
        var next = 1
        for try await latest in try await connection.query(
            "SELECT MAX(version) FROM model_versions WHERE model = \(model)", logger: logger
        ).decode(Int?.self) {
            next = (latest ?? 0) + 1
        }
        let version = ModelVersion(
            model: model, version: next, artifactID: artifactID, runID: runID, stage: .none, createdAt: Date(),
            createdBy: createdBy, metrics: metrics, datasetVersion: datasetVersion)
        try await connection.query(
            """
            INSERT INTO model_versions
                (model, version, artifact_id, run_id, stage, created_at, created_by, metrics, dataset_version)
            VALUES (\(model), \(next), \(artifactID), \(runID), \(ModelStage.none.rawValue),
                \(version.createdAt.timeIntervalSince1970), \(createdBy), \(json(metrics)), \(datasetVersion))
            """, logger: logger)
        return version
    }

    /// Takes the transaction-scoped advisory lock of one model's registry rows.
    func lock(_ model: String, _ connection: PostgresConnection) async throws {
        let key = "sluice.model." + model
        try await connection.query("SELECT pg_advisory_xact_lock(hashtext(\(key)))", logger: logger)
    }

    static func modelVersion(_ row: Row) throws -> ModelVersion {
        ModelVersion(
            model: try row.string("model"), version: try row.int("version"),
            artifactID: try row.string("artifact_id"), runID: try row.optionalString("run_id"),
            stage: ModelStage(rawValue: try row.string("stage")) ?? .none,
            createdAt: Date(timeIntervalSince1970: try row.double("created_at")),
            createdBy: try row.string("created_by"),
            metrics: decode([String: Double].self, try row.string("metrics")) ?? [:],
            datasetVersion: try row.optionalString("dataset_version"))
    }
}
