import Foundation
import PostgresNIO
import SluiceCore

// The statements on every step's path, prepared: each connection parses and plans them once, then only binds and
// executes. Their shapes are fixed (lists travel as arrays through `unnest`) and their parameters' types declared,
// so a NULL is typed by the statement rather than guessed.

/// The columns of a step run's row, in the order ``appendStepRun(_:to:)`` binds them.
let stepRunColumns =
    "id, run_id, step_name, kind, status, cache_key, code_version, parameters, seed, started_at, ended_at, error, "
    + "log_path, cached_from, properties"

/// What an upsert of a step run changes when its row exists (a started step run finishing).
let stepRunConflict = """
    ON CONFLICT (id) DO UPDATE SET status = excluded.status, ended_at = excluded.ended_at, error = excluded.error,
        log_path = excluded.log_path, properties = excluded.properties
    """

/// The types of a step run's row, in ``stepRunColumns`` order.
let stepRunTypes: [PostgresDataType] = [
    .text, .text, .text, .text, .text, .text, .int8, .text, .int8, .float8, .float8, .text, .text, .text, .text,
]

/// Binds a step run's row, in ``stepRunColumns`` order.
func appendStepRun(_ s: StepRun, to binds: inout PostgresBindings) {
    binds.append(s.id)
    binds.append(s.runID)
    binds.append(s.stepName)
    binds.append(s.kind)
    binds.append(s.status.rawValue)
    binds.append(s.cacheKey?.rawValue)
    binds.append(s.codeVersion)
    binds.append(s.parameters)
    binds.append(Int64(bitPattern: s.seed))
    binds.append(s.startedAt?.timeIntervalSince1970)
    binds.append(s.endedAt?.timeIntervalSince1970)
    binds.append(s.error)
    binds.append(s.logPath)
    binds.append(s.cachedFrom)
    binds.append(json(s.properties))
}

/// `$first, $first+1, …` for `count` parameters.
func parameters(from first: Int, count: Int) -> String {
    (first..<first + count).map { "$\($0)" }.joined(separator: ", ")
}

/// `hit`: the newest completed step run with the cache key in `parameter`.
func hitCTE(_ parameter: String) -> String {
    // Columns by name, never `*`: a prepared statement's result must keep its shape when a later migration adds a
    // column while a long-lived process (a server, the dashboard) holds the statement.
    "hit AS (SELECT \(stepRunColumns) FROM step_runs WHERE cache_key = \(parameter) AND status = 'completed' "
        + "ORDER BY ended_at DESC LIMIT 1)"
}

/// The `hit` step run joined with its outputs, one row per output.
let hitSelect = """
    SELECT hit.*, e.name AS event_name, a.id AS a_id, a.name AS a_name, a.type_name AS a_type_name,
        a.uri AS a_uri, a.content_hash AS a_content_hash, a.size AS a_size, a.materializer AS a_materializer,
        a.materializer_version AS a_materializer_version, a.properties AS a_properties,
        a.producer_step_run_id AS a_producer_step_run_id, a.created_at AS a_created_at
    FROM hit LEFT JOIN events e ON e.step_run_id = hit.id AND e.kind = 'output'
        LEFT JOIN artifacts a ON a.id = e.artifact_id
    """

/// The cache lookup: the newest completed step run with a key, with its outputs.
struct CacheHitStatement: PostgresPreparedStatement {
    static let name = "sluice_cache_hit_v1"
    static let sql = "WITH \(hitCTE("$1")) \(hitSelect)"
    static let bindingDataTypes: [PostgresDataType] = [.text]
    typealias Row = PostgresRow

    var key: String

    func makeBindings() -> PostgresBindings {
        var binds = PostgresBindings()
        binds.append(key)
        return binds
    }

    func decodeRow(_ row: PostgresRow) -> PostgresRow { row }
}

/// The cache lookup of a step about to run, writing its `running` row and input events when nothing is found.
struct CacheHitOrStartStatement: PostgresPreparedStatement {
    static let name = "sluice_cache_hit_or_start_v1"
    static let sql = """
        WITH \(hitCTE("$1")),
        s AS (INSERT INTO step_runs (\(stepRunColumns)) SELECT \(parameters(from: 2, count: 15))
            WHERE NOT EXISTS (SELECT 1 FROM hit) \(stepRunConflict)),
        e AS (INSERT INTO events (step_run_id, artifact_id, kind, name)
            SELECT $2, u.artifact, 'input', u.name FROM unnest($17::text[], $18::text[]) WITH ORDINALITY
                AS u(artifact, name, position)
            WHERE NOT EXISTS (SELECT 1 FROM hit) ORDER BY u.position)
        \(hitSelect)
        """
    static let bindingDataTypes: [PostgresDataType] = [.text] + stepRunTypes + [.textArray, .textArray]
    typealias Row = PostgresRow

    var stepRun: StepRun
    /// Its input events (all of `stepRun`).
    var inputs: [Event]

    func makeBindings() -> PostgresBindings {
        var binds = PostgresBindings()
        binds.append(stepRun.cacheKey?.rawValue ?? "")
        appendStepRun(stepRun, to: &binds)
        binds.append(inputs.map(\.artifactID))
        binds.append(inputs.map(\.name))
        return binds
    }

    func decodeRow(_ row: PostgresRow) -> PostgresRow { row }
}

/// A step run's completion: its final row, its new artifacts' records with their output events, and its metrics.
struct CompleteStepRunStatement: PostgresPreparedStatement {
    static let name = "sluice_complete_step_run_v1"
    static let sql = """
        WITH s AS (INSERT INTO step_runs (\(stepRunColumns)) VALUES (\(parameters(from: 1, count: 15)))
            \(stepRunConflict)),
        a AS (INSERT INTO artifacts (id, name, type_name, uri, content_hash, size, materializer, materializer_version,
                properties, producer_step_run_id, created_at)
            SELECT u.id, u.name, u.type_name, u.uri, u.content_hash, u.size, u.materializer, u.materializer_version,
                u.properties, u.producer, u.created_at
            FROM unnest($16::text[], $17::text[], $18::text[], $19::text[], $20::text[], $21::int8[], $22::text[],
                $23::int8[], $24::text[], $25::text[], $26::float8[]) WITH ORDINALITY
                AS u(id, name, type_name, uri, content_hash, size, materializer, materializer_version, properties,
                    producer, created_at, position)
            ORDER BY u.position),
        e AS (INSERT INTO events (step_run_id, artifact_id, kind, name)
            SELECT $1, u.id, 'output', u.name FROM unnest($16::text[], $17::text[]) WITH ORDINALITY
                AS u(id, name, position)
            ORDER BY u.position),
        m AS (INSERT INTO metrics (step_run_id, name, value, step, logged_at)
            SELECT $1, u.name, u.value, NULLIF(u.step, '')::bigint, u.logged_at
            FROM unnest($27::text[], $28::float8[], $29::text[], $30::float8[]) WITH ORDINALITY
                AS u(name, value, step, logged_at, position)
            ORDER BY u.position)
        SELECT 1
        """
    static let bindingDataTypes: [PostgresDataType] =
        stepRunTypes + [
            .textArray, .textArray, .textArray, .textArray, .textArray, .int8Array, .textArray, .int8Array,
            .textArray, .textArray, .float8Array, .textArray, .float8Array, .textArray, .float8Array,
        ]
    typealias Row = PostgresRow

    var stepRun: StepRun
    var outputs: [ArtifactRecord]
    var metrics: [MetricRecord]

    func makeBindings() -> PostgresBindings {
        var binds = PostgresBindings()
        appendStepRun(stepRun, to: &binds)
        binds.append(outputs.map(\.id))
        binds.append(outputs.map(\.name))
        binds.append(outputs.map(\.typeName))
        binds.append(outputs.map(\.uri))
        binds.append(outputs.map(\.contentHash))
        binds.append(outputs.map(\.size))
        binds.append(outputs.map(\.materializer))
        binds.append(outputs.map { Int64($0.materializerVersion) })
        binds.append(outputs.map { json($0.properties) })
        binds.append(outputs.map(\.producerStepRunID))
        binds.append(outputs.map(\.createdAt.timeIntervalSince1970))
        binds.append(metrics.map(\.name))
        binds.append(metrics.map(\.value))
        binds.append(metrics.map { $0.step.map(String.init) ?? "" })
        binds.append(metrics.map(\.loggedAt.timeIntervalSince1970))
        return binds
    }

    func decodeRow(_ row: PostgresRow) -> PostgresRow { row }
}
