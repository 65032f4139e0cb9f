/// The PostgreSQL schema as versioned migrations, mirroring the SQLite store's (same tables, columns and
/// constraints; times as seconds since the epoch). `seq` columns keep insertion order, which SQLite's `rowid`
/// gives for free. Never edit a shipped migration: add the next one.
enum PostgresMigrations {
    struct Migration {
        var id: String
        var statements: [String]
    }

    static let all: [Migration] = [
        Migration(
            id: "v1: pipelines, runs, step runs, artifacts, events, metrics",
            statements: [
                "CREATE TABLE pipelines (name TEXT PRIMARY KEY, first_seen DOUBLE PRECISION NOT NULL)",
                """
                CREATE TABLE runs (
                    id TEXT PRIMARY KEY,
                    pipeline TEXT NOT NULL REFERENCES pipelines(name),
                    status TEXT NOT NULL,
                    config TEXT NOT NULL,
                    "user" TEXT NOT NULL, host TEXT NOT NULL, os TEXT NOT NULL,
                    swift_version TEXT NOT NULL, sluice_version TEXT NOT NULL,
                    git_commit TEXT, git_dirty BOOLEAN, binary_path TEXT, binary_hash TEXT,
                    arguments TEXT NOT NULL,
                    owner_host TEXT NOT NULL, owner_boot TEXT NOT NULL,
                    owner_pid BIGINT NOT NULL, owner_start BIGINT NOT NULL,
                    started_at DOUBLE PRECISION NOT NULL, ended_at DOUBLE PRECISION, error TEXT)
                """,
                "CREATE INDEX runs_by_pipeline ON runs(pipeline, started_at)",
                "CREATE INDEX runs_by_status ON runs(status)",
                """
                CREATE TABLE step_runs (
                    seq BIGSERIAL UNIQUE,
                    id TEXT PRIMARY KEY,
                    run_id TEXT NOT NULL REFERENCES runs(id),
                    step_name TEXT NOT NULL, kind TEXT NOT NULL, status TEXT NOT NULL,
                    cache_key TEXT, code_version BIGINT NOT NULL, parameters TEXT NOT NULL,
                    seed BIGINT NOT NULL,
                    started_at DOUBLE PRECISION, ended_at DOUBLE PRECISION, error TEXT, log_path TEXT,
                    cached_from TEXT REFERENCES step_runs(id),
                    properties TEXT NOT NULL)
                """,
                "CREATE INDEX step_runs_by_run ON step_runs(run_id, seq)",
                "CREATE INDEX step_runs_by_cache_key ON step_runs(cache_key, status)",
                """
                CREATE TABLE artifacts (
                    id TEXT PRIMARY KEY,
                    name TEXT NOT NULL, type_name TEXT NOT NULL, uri TEXT NOT NULL,
                    content_hash TEXT NOT NULL, size BIGINT NOT NULL,
                    materializer TEXT NOT NULL, materializer_version BIGINT NOT NULL,
                    properties TEXT NOT NULL,
                    producer_step_run_id TEXT NOT NULL REFERENCES step_runs(id),
                    created_at DOUBLE PRECISION NOT NULL)
                """,
                "CREATE INDEX artifacts_by_hash ON artifacts(content_hash)",
                "CREATE INDEX artifacts_by_producer ON artifacts(producer_step_run_id)",
                """
                CREATE TABLE events (
                    seq BIGSERIAL UNIQUE,
                    step_run_id TEXT NOT NULL REFERENCES step_runs(id),
                    artifact_id TEXT NOT NULL REFERENCES artifacts(id),
                    kind TEXT NOT NULL CHECK (kind IN ('input', 'output')),
                    name TEXT NOT NULL,
                    PRIMARY KEY (step_run_id, kind, name))
                """,
                "CREATE INDEX events_by_artifact ON events(artifact_id, kind)",
                """
                CREATE TABLE metrics (
                    seq BIGSERIAL PRIMARY KEY,
                    step_run_id TEXT NOT NULL REFERENCES step_runs(id),
                    name TEXT NOT NULL, value DOUBLE PRECISION NOT NULL, step BIGINT,
                    logged_at DOUBLE PRECISION NOT NULL)
                """,
                "CREATE INDEX metrics_by_step_run ON metrics(step_run_id, seq)",
            ]),
        Migration(
            id: "v2: model registry",
            statements: [
                """
                CREATE TABLE model_versions (
                    model TEXT NOT NULL, version BIGINT NOT NULL,
                    artifact_id TEXT NOT NULL, run_id TEXT,
                    stage TEXT NOT NULL CHECK (stage IN ('none', 'staging', 'production', 'archived')),
                    created_at DOUBLE PRECISION NOT NULL, created_by TEXT NOT NULL,
                    metrics TEXT NOT NULL, dataset_version TEXT,
                    PRIMARY KEY (model, version))
                """,
                "CREATE UNIQUE INDEX one_production_version ON model_versions(model) WHERE stage = 'production'",
                """
                CREATE TABLE stage_changes (
                    id BIGSERIAL PRIMARY KEY,
                    model TEXT NOT NULL, version BIGINT NOT NULL,
                    from_stage TEXT NOT NULL, to_stage TEXT NOT NULL,
                    at DOUBLE PRECISION NOT NULL, by TEXT NOT NULL, reason TEXT NOT NULL)
                """,
                "CREATE INDEX stage_changes_by_model ON stage_changes(model, id)",
            ]),
        Migration(
            id: "v3: model profiles",
            statements: [
                """
                CREATE TABLE model_profiles (
                    model TEXT NOT NULL, version BIGINT NOT NULL,
                    uri TEXT NOT NULL, profile TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
                    PRIMARY KEY (model, version),
                    FOREIGN KEY (model, version) REFERENCES model_versions(model, version))
                """
            ]),
        // Numbered as in the SQLite store; its v4 (artifact URIs made relative) has no counterpart here, because this
        // store recorded relative URIs from the start.
        Migration(
            id: "v5: what triggered each run",
            statements: ["ALTER TABLE runs ADD COLUMN triggered_by TEXT"]),
        Migration(
            id: "v6: dashboard access tokens",
            statements: [
                """
                CREATE TABLE access_tokens (
                    id TEXT PRIMARY KEY, name TEXT NOT NULL, hash TEXT NOT NULL UNIQUE,
                    can_write BOOLEAN NOT NULL, created_at DOUBLE PRECISION NOT NULL, created_by TEXT NOT NULL,
                    revoked_at DOUBLE PRECISION)
                """,
                "CREATE UNIQUE INDEX one_live_token_per_name ON access_tokens(name) WHERE revoked_at IS NULL",
            ]),
    ]
}
