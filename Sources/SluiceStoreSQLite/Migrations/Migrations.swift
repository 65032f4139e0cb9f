import Foundation
import GRDB
import SluiceCore

/// The schema, as versioned migrations. Never edit a shipped migration: add the next one.
enum Migrations {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: pipelines, runs, step runs, artifacts, events, metrics") { db in
            try db.execute(
                sql: """
                    CREATE TABLE pipelines (
                        name TEXT PRIMARY KEY,
                        first_seen REAL NOT NULL);
                    CREATE TABLE runs (
                        id TEXT PRIMARY KEY,
                        pipeline TEXT NOT NULL REFERENCES pipelines(name),
                        status TEXT NOT NULL,
                        config TEXT NOT NULL,
                        user TEXT NOT NULL, host TEXT NOT NULL, os TEXT NOT NULL,
                        swift_version TEXT NOT NULL, sluice_version TEXT NOT NULL,
                        git_commit TEXT, git_dirty INTEGER, binary_path TEXT, binary_hash TEXT,
                        arguments TEXT NOT NULL,
                        owner_host TEXT NOT NULL, owner_boot TEXT NOT NULL,
                        owner_pid INTEGER NOT NULL, owner_start INTEGER NOT NULL,
                        started_at REAL NOT NULL, ended_at REAL, error TEXT);
                    CREATE INDEX runs_by_pipeline ON runs(pipeline, started_at);
                    CREATE INDEX runs_by_status ON runs(status);
                    CREATE TABLE step_runs (
                        id TEXT PRIMARY KEY,
                        run_id TEXT NOT NULL REFERENCES runs(id),
                        step_name TEXT NOT NULL, kind TEXT NOT NULL, status TEXT NOT NULL,
                        cache_key TEXT, code_version INTEGER NOT NULL, parameters TEXT NOT NULL,
                        seed INTEGER NOT NULL,
                        started_at REAL, ended_at REAL, error TEXT, log_path TEXT,
                        cached_from TEXT REFERENCES step_runs(id),
                        properties TEXT NOT NULL);
                    CREATE INDEX step_runs_by_run ON step_runs(run_id);
                    CREATE INDEX step_runs_by_cache_key ON step_runs(cache_key, status);
                    CREATE TABLE artifacts (
                        id TEXT PRIMARY KEY,
                        name TEXT NOT NULL, type_name TEXT NOT NULL, uri TEXT NOT NULL,
                        content_hash TEXT NOT NULL, size INTEGER NOT NULL,
                        materializer TEXT NOT NULL, materializer_version INTEGER NOT NULL,
                        properties TEXT NOT NULL,
                        producer_step_run_id TEXT NOT NULL REFERENCES step_runs(id),
                        created_at REAL NOT NULL);
                    CREATE INDEX artifacts_by_hash ON artifacts(content_hash);
                    CREATE INDEX artifacts_by_producer ON artifacts(producer_step_run_id);
                    CREATE TABLE events (
                        step_run_id TEXT NOT NULL REFERENCES step_runs(id),
                        artifact_id TEXT NOT NULL REFERENCES artifacts(id),
                        kind TEXT NOT NULL CHECK (kind IN ('input', 'output')),
                        name TEXT NOT NULL,
                        PRIMARY KEY (step_run_id, kind, name));
                    CREATE INDEX events_by_artifact ON events(artifact_id, kind);
                    CREATE TABLE metrics (
                        step_run_id TEXT NOT NULL REFERENCES step_runs(id),
                        name TEXT NOT NULL, value REAL NOT NULL, step INTEGER, logged_at REAL NOT NULL);
                    CREATE INDEX metrics_by_step_run ON metrics(step_run_id);
                    """)
        }
        migrator.registerMigration("v2: model registry") { db in
            try db.execute(
                sql: """
                    CREATE TABLE model_versions (
                        model TEXT NOT NULL, version INTEGER NOT NULL,
                        artifact_id TEXT NOT NULL, run_id TEXT,
                        stage TEXT NOT NULL CHECK (stage IN ('none', 'staging', 'production', 'archived')),
                        created_at REAL NOT NULL, created_by TEXT NOT NULL,
                        metrics TEXT NOT NULL, dataset_version TEXT,
                        PRIMARY KEY (model, version));
                    CREATE UNIQUE INDEX one_production_version ON model_versions(model) WHERE stage = 'production';
                    CREATE TABLE stage_changes (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        model TEXT NOT NULL, version INTEGER NOT NULL,
                        from_stage TEXT NOT NULL, to_stage TEXT NOT NULL,
                        at REAL NOT NULL, by TEXT NOT NULL, reason TEXT NOT NULL);
                    CREATE INDEX stage_changes_by_model ON stage_changes(model, id);
                    """)
        }
        migrator.registerMigration("v3: model profiles") { db in
            try db.execute(
                sql: """
                    CREATE TABLE model_profiles (
                        model TEXT NOT NULL, version INTEGER NOT NULL,
                        uri TEXT NOT NULL, profile TEXT NOT NULL, created_at REAL NOT NULL,
                        PRIMARY KEY (model, version),
                        FOREIGN KEY (model, version) REFERENCES model_versions(model, version));
                    """)
        }
        migrator.registerMigration("v4: artifact URIs relative to the artifact store's root") { db in
            // Stores mounted at another path (a node, a container) must still resolve every artifact.
            for (table, key) in [("artifacts", "id"), ("model_profiles", "rowid")] {
                let rows = try Row.fetchAll(
                    db, sql: "SELECT \(key) AS key, uri FROM \(table) WHERE uri LIKE 'file://%'")
                for row in rows {
                    guard let relative = LocalArtifactStore.relativeURI(legacy: row["uri"]) else { continue }
                    try db.execute(
                        sql: "UPDATE \(table) SET uri = ? WHERE \(key) = ?", arguments: [relative, row["key"]])
                }
            }
        }
        migrator.registerMigration("v5: what triggered each run") { db in
            // JSON of a RunTrigger; NULL for manual runs and every run recorded before triggers existed.
            try db.execute(sql: "ALTER TABLE runs ADD COLUMN triggered_by TEXT")
        }
        migrator.registerMigration("v6: dashboard access tokens") { db in
            // The secret's hash only; at most one live token per name.
            try db.execute(
                sql: """
                    CREATE TABLE access_tokens (
                        id TEXT PRIMARY KEY, name TEXT NOT NULL, hash TEXT NOT NULL UNIQUE,
                        can_write INTEGER NOT NULL, created_at REAL NOT NULL, created_by TEXT NOT NULL,
                        revoked_at REAL);
                    CREATE UNIQUE INDEX one_live_token_per_name ON access_tokens(name) WHERE revoked_at IS NULL;
                    """)
        }
        migrator.registerMigration("v7: tracking (experiments, run params, tags, metric series, inputs)") { db in
            // Every pipeline is an experiment of the same name; the default experiment (0) takes tracked runs that
            // name none. A run's params, tags and metric series are its own tables (a pipeline run's are its step
            // runs' parameters and metrics, keyed `step.name`), indexed by (key, value) for search.
            try db.execute(
                sql: """
                    CREATE TABLE experiments (
                        id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, artifact_location TEXT NOT NULL,
                        lifecycle_stage TEXT NOT NULL DEFAULT 'active', created_at REAL NOT NULL,
                        updated_at REAL NOT NULL);
                    CREATE TABLE experiment_tags (
                        experiment_id INTEGER NOT NULL REFERENCES experiments(id), key TEXT NOT NULL,
                        value TEXT NOT NULL, PRIMARY KEY (experiment_id, key));
                    ALTER TABLE runs ADD COLUMN kind TEXT NOT NULL DEFAULT 'pipeline';
                    ALTER TABLE runs ADD COLUMN name TEXT;
                    ALTER TABLE runs ADD COLUMN experiment_id INTEGER REFERENCES experiments(id);
                    ALTER TABLE runs ADD COLUMN deleted_at REAL;
                    CREATE INDEX runs_by_experiment ON runs(experiment_id, started_at);
                    CREATE INDEX runs_by_start ON runs(started_at);
                    CREATE INDEX runs_deleted ON runs(deleted_at) WHERE deleted_at IS NOT NULL;
                    CREATE TABLE run_params (
                        run_id TEXT NOT NULL REFERENCES runs(id), key TEXT NOT NULL, value TEXT NOT NULL,
                        PRIMARY KEY (run_id, key));
                    CREATE INDEX run_params_by_value ON run_params(key, value);
                    CREATE TABLE run_tags (
                        run_id TEXT NOT NULL REFERENCES runs(id), key TEXT NOT NULL, value TEXT NOT NULL,
                        PRIMARY KEY (run_id, key));
                    CREATE INDEX run_tags_by_value ON run_tags(key, value);
                    CREATE TABLE run_metrics (
                        run_id TEXT NOT NULL REFERENCES runs(id), key TEXT NOT NULL, value REAL NOT NULL,
                        is_nan INTEGER NOT NULL, timestamp INTEGER NOT NULL, step INTEGER NOT NULL);
                    CREATE INDEX run_metrics_by_run ON run_metrics(run_id, key, step, timestamp);
                    CREATE TABLE run_latest_metrics (
                        run_id TEXT NOT NULL REFERENCES runs(id), key TEXT NOT NULL, value REAL NOT NULL,
                        is_nan INTEGER NOT NULL, timestamp INTEGER NOT NULL, step INTEGER NOT NULL,
                        PRIMARY KEY (run_id, key));
                    CREATE INDEX run_latest_metrics_by_value ON run_latest_metrics(key, value);
                    CREATE TABLE run_inputs (
                        run_id TEXT NOT NULL REFERENCES runs(id), position INTEGER NOT NULL, name TEXT NOT NULL,
                        digest TEXT NOT NULL, source_type TEXT NOT NULL, source TEXT NOT NULL, schema TEXT,
                        profile TEXT, context TEXT, tags TEXT NOT NULL, PRIMARY KEY (run_id, position));
                    CREATE TABLE tracking_documents (
                        kind TEXT NOT NULL, id TEXT NOT NULL, run_id TEXT, body TEXT NOT NULL,
                        updated_at REAL NOT NULL, PRIMARY KEY (kind, id));
                    """)
            let now = Date().timeIntervalSince1970
            try db.execute(
                sql: "INSERT INTO experiments VALUES (0, 'Default', 'mlflow-artifacts:/0', 'active', ?, ?)",
                arguments: [now, now])
            for name in try String.fetchAll(db, sql: "SELECT name FROM pipelines ORDER BY first_seen, name") {
                try SQLiteMetadataStore.ensureExperiment(named: name, db)
            }
            try db.execute(
                sql: "UPDATE runs SET experiment_id = (SELECT id FROM experiments WHERE name = runs.pipeline)")
            for row in try Row.fetchAll(db, sql: "SELECT id, run_id, step_name, parameters FROM step_runs") {
                try SQLiteMetadataStore.insertParams(
                    RunParameters.values(ofStep: row["step_name"], parameters: row["parameters"]), run: row["run_id"],
                    db)
            }
            try db.execute(
                sql: """
                    INSERT INTO run_metrics (run_id, key, value, is_nan, timestamp, step)
                    SELECT s.run_id, s.step_name || '.' || m.name, m.value, 0, CAST(m.logged_at * 1000 AS INTEGER),
                        COALESCE(m.step, 0)
                    FROM metrics m JOIN step_runs s ON s.id = m.step_run_id ORDER BY m.rowid
                    """)
            try db.execute(
                sql: """
                    INSERT OR REPLACE INTO run_latest_metrics (run_id, key, value, is_nan, timestamp, step)
                    SELECT run_id, key, value, is_nan, timestamp, step FROM run_metrics ORDER BY run_id, key, step,
                        timestamp, value
                    """)
        }
        return migrator
    }
}
