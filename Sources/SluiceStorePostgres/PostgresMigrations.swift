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
        // Every pipeline is an experiment of the same name (a trigger on `pipelines` creates it, one on `runs` files
        // each run under its pipeline's); a pipeline run's params and metrics are its step runs' parameters and
        // metrics keyed `step.name`, mirrored by triggers so the run engine's one-statement writes stay as they are.
        Migration(
            id: "v7: tracking (experiments, run params, tags, metric series, inputs)",
            statements: [
                "CREATE SEQUENCE experiment_ids START 1",
                """
                CREATE TABLE experiments (
                    id BIGINT PRIMARY KEY DEFAULT nextval('experiment_ids'), name TEXT NOT NULL UNIQUE,
                    artifact_location TEXT NOT NULL, lifecycle_stage TEXT NOT NULL DEFAULT 'active',
                    created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL)
                """,
                """
                CREATE TABLE experiment_tags (
                    experiment_id BIGINT NOT NULL REFERENCES experiments(id), key TEXT NOT NULL, value TEXT NOT NULL,
                    PRIMARY KEY (experiment_id, key))
                """,
                "ALTER TABLE runs ADD COLUMN kind TEXT NOT NULL DEFAULT 'pipeline'",
                "ALTER TABLE runs ADD COLUMN name TEXT",
                "ALTER TABLE runs ADD COLUMN experiment_id BIGINT REFERENCES experiments(id)",
                "ALTER TABLE runs ADD COLUMN deleted_at DOUBLE PRECISION",
                "CREATE INDEX runs_by_experiment ON runs(experiment_id, started_at)",
                "CREATE INDEX runs_by_start ON runs(started_at)",
                "CREATE INDEX runs_deleted ON runs(deleted_at) WHERE deleted_at IS NOT NULL",
                """
                CREATE TABLE run_params (
                    run_id TEXT NOT NULL REFERENCES runs(id), key TEXT NOT NULL, value TEXT NOT NULL,
                    PRIMARY KEY (run_id, key))
                """,
                "CREATE INDEX run_params_by_value ON run_params(key, value)",
                """
                CREATE TABLE run_tags (
                    run_id TEXT NOT NULL REFERENCES runs(id), key TEXT NOT NULL, value TEXT NOT NULL,
                    PRIMARY KEY (run_id, key))
                """,
                "CREATE INDEX run_tags_by_value ON run_tags(key, value)",
                """
                CREATE TABLE run_metrics (
                    seq BIGSERIAL PRIMARY KEY, run_id TEXT NOT NULL REFERENCES runs(id), key TEXT NOT NULL,
                    value DOUBLE PRECISION NOT NULL, is_nan INTEGER NOT NULL, timestamp BIGINT NOT NULL,
                    step BIGINT NOT NULL)
                """,
                "CREATE INDEX run_metrics_by_run ON run_metrics(run_id, key, step, timestamp)",
                """
                CREATE TABLE run_latest_metrics (
                    run_id TEXT NOT NULL REFERENCES runs(id), key TEXT NOT NULL, value DOUBLE PRECISION NOT NULL,
                    is_nan INTEGER NOT NULL, timestamp BIGINT NOT NULL, step BIGINT NOT NULL,
                    PRIMARY KEY (run_id, key))
                """,
                "CREATE INDEX run_latest_metrics_by_value ON run_latest_metrics(key, value)",
                """
                CREATE TABLE run_inputs (
                    run_id TEXT NOT NULL REFERENCES runs(id), position BIGINT NOT NULL, name TEXT NOT NULL,
                    digest TEXT NOT NULL, source_type TEXT NOT NULL, source TEXT NOT NULL, schema TEXT, profile TEXT,
                    context TEXT, tags TEXT NOT NULL, PRIMARY KEY (run_id, position))
                """,
                """
                CREATE TABLE tracking_documents (
                    kind TEXT NOT NULL, id TEXT NOT NULL COLLATE "C", run_id TEXT, body TEXT NOT NULL,
                    updated_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (kind, id))
                """,
                """
                INSERT INTO experiments (id, name, artifact_location, created_at, updated_at)
                VALUES (0, 'Default', 'mlflow-artifacts:/0', extract(epoch FROM now()), extract(epoch FROM now()))
                """,
                """
                CREATE FUNCTION sluice_ensure_experiment(experiment_name TEXT) RETURNS BIGINT AS $$
                DECLARE found BIGINT;
                BEGIN
                    SELECT id INTO found FROM experiments WHERE name = experiment_name;
                    IF found IS NULL THEN
                        found := nextval('experiment_ids');
                        INSERT INTO experiments (id, name, artifact_location, created_at, updated_at)
                        VALUES (found, experiment_name, 'mlflow-artifacts:/' || found, extract(epoch FROM now()),
                            extract(epoch FROM now()))
                        ON CONFLICT (name) DO NOTHING;
                        SELECT id INTO found FROM experiments WHERE name = experiment_name;
                    END IF;
                    RETURN found;
                END $$ LANGUAGE plpgsql
                """,
                """
                CREATE FUNCTION sluice_run_experiment() RETURNS trigger AS $$
                BEGIN
                    IF NEW.experiment_id IS NULL THEN
                        NEW.experiment_id := sluice_ensure_experiment(NEW.pipeline);
                    END IF;
                    RETURN NEW;
                END $$ LANGUAGE plpgsql
                """,
                """
                CREATE TRIGGER runs_experiment BEFORE INSERT ON runs FOR EACH ROW
                EXECUTE FUNCTION sluice_run_experiment()
                """,
                """
                CREATE FUNCTION sluice_upsert_point(run TEXT, metric TEXT, v DOUBLE PRECISION, nan INTEGER,
                    ts BIGINT, st BIGINT) RETURNS void AS $$
                BEGIN
                    INSERT INTO run_metrics (run_id, key, value, is_nan, timestamp, step) VALUES (run, metric, v, nan, ts, st);
                    INSERT INTO run_latest_metrics AS l (run_id, key, value, is_nan, timestamp, step)
                    VALUES (run, metric, v, nan, ts, st)
                    ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value, is_nan = excluded.is_nan,
                        timestamp = excluded.timestamp, step = excluded.step
                    WHERE (excluded.step, excluded.timestamp, excluded.value) > (l.step, l.timestamp, l.value);
                END $$ LANGUAGE plpgsql
                """,
                """
                CREATE FUNCTION sluice_step_metric() RETURNS trigger AS $$
                DECLARE s RECORD;
                BEGIN
                    SELECT run_id, step_name INTO s FROM step_runs WHERE id = NEW.step_run_id;
                    PERFORM sluice_upsert_point(s.run_id, s.step_name || '.' || NEW.name, NEW.value, 0,
                        round(NEW.logged_at * 1000)::BIGINT, COALESCE(NEW.step, 0));
                    RETURN NULL;
                END $$ LANGUAGE plpgsql
                """,
                "CREATE TRIGGER metrics_tracked AFTER INSERT ON metrics FOR EACH ROW EXECUTE FUNCTION sluice_step_metric()",
                """
                CREATE FUNCTION sluice_flat_params(step TEXT, parameters TEXT) RETURNS TABLE (key TEXT, value TEXT) AS $$
                    WITH RECURSIVE flat(key, value) AS (
                        SELECT step || '.' || lower(regexp_replace(j.key, '([A-Z])', '_\\1', 'g')), j.value
                        FROM json_each(CASE WHEN json_typeof(parameters::json) = 'object' THEN parameters::json
                            ELSE '{}'::json END) AS j
                        UNION ALL
                        SELECT f.key || '.' || lower(regexp_replace(j.key, '([A-Z])', '_\\1', 'g')), j.value
                        FROM flat f, json_each(f.value) AS j WHERE json_typeof(f.value) = 'object')
                    SELECT key, CASE json_typeof(value) WHEN 'string' THEN value #>> '{}' ELSE value::text END
                    FROM flat WHERE json_typeof(value) <> 'object' AND json_typeof(value) <> 'null'
                $$ LANGUAGE sql IMMUTABLE
                """,
                """
                CREATE FUNCTION sluice_step_params() RETURNS trigger AS $$
                BEGIN
                    INSERT INTO run_params (run_id, key, value)
                    SELECT NEW.run_id, f.key, f.value FROM sluice_flat_params(NEW.step_name, NEW.parameters) f
                    ON CONFLICT DO NOTHING;
                    IF NEW.cached_from IS NOT NULL THEN
                        PERFORM sluice_upsert_point(NEW.run_id, NEW.step_name || '.' || m.name, m.value, 0,
                            round(m.logged_at * 1000)::BIGINT, COALESCE(m.step, 0))
                        FROM metrics m WHERE m.step_run_id = NEW.cached_from ORDER BY m.seq;
                    END IF;
                    RETURN NULL;
                END $$ LANGUAGE plpgsql
                """,
                "CREATE TRIGGER step_runs_tracked AFTER INSERT ON step_runs FOR EACH ROW EXECUTE FUNCTION sluice_step_params()",
                "SELECT sluice_ensure_experiment(name) FROM (SELECT name FROM pipelines ORDER BY first_seen, name) p",
                "UPDATE runs SET experiment_id = (SELECT id FROM experiments WHERE name = runs.pipeline)",
                """
                INSERT INTO run_params (run_id, key, value)
                SELECT s.run_id, f.key, f.value FROM step_runs s, sluice_flat_params(s.step_name, s.parameters) f
                ON CONFLICT DO NOTHING
                """,
                """
                SELECT sluice_upsert_point(s.run_id, s.step_name || '.' || m.name, m.value, 0,
                    round(m.logged_at * 1000)::BIGINT, COALESCE(m.step, 0))
                FROM metrics m JOIN step_runs s ON s.id = m.step_run_id ORDER BY m.seq
                """,
            ]),
    ]
}
