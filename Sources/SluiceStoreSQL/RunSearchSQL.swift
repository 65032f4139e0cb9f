import SluiceCore

/// A value bound to a statement's placeholder.
public enum SQLArgument: Sendable, Equatable {
    case text(String)
    case double(Double)
    case integer(Int64)
}

/// The SQL both metadata stores run for a run or experiment search: one translation of ``RunSearchFilter`` and
/// ``RunOrder`` over the tracking tables (`runs`, `run_params`, `run_tags`, `run_latest_metrics`, `run_inputs`,
/// `experiments`, `experiment_tags`), so SQLite and PostgreSQL answer a filter the same way.
///
/// Each comparison is a semi-join on an index (`(key, value)` on params, tags and latest metrics), so a selective
/// filter reads the matching rows only, however many runs there are.
public struct SearchSQL {
    /// Where the statement runs: placeholders and case rules differ.
    public enum Dialect: Sendable {
        /// `?` placeholders; LIKE made case-sensitive through GLOB, as MLflow's is.
        case sqlite
        /// `$1, $2, …` placeholders; LIKE and ILIKE as PostgreSQL has them.
        case postgres
    }

    let dialect: Dialect
    public private(set) var arguments: [SQLArgument] = []

    /// Creates a builder for one statement.
    public init(dialect: Dialect) { self.dialect = dialect }

    mutating func bind(_ argument: SQLArgument) -> String {
        arguments.append(argument)
        switch dialect {
        case .sqlite: return "?"
        case .postgres: return "$\(arguments.count)"
        }
    }

    /// MLflow's status names for each Sluice status, as an SQL expression over `r.status`.
    static let mlflowStatus =
        "(CASE r.status WHEN 'completed' THEN 'FINISHED' WHEN 'failed' THEN 'FAILED' WHEN 'crashed' THEN 'FAILED' "
        + "WHEN 'cancelled' THEN 'KILLED' ELSE 'RUNNING' END)"

    /// The statement selecting the IDs of the runs a search finds, in order, for the page at `offset`.
    public mutating func runIDs(_ search: RunSearch, offset: Int) -> String {
        var joins: [String] = []
        var order: [String] = []
        var orderedByStart = false
        for (index, key) in search.orderBy.enumerated() {
            let direction = key.ascending ? "ASC" : "DESC"
            switch key.entity {
            case .metric(let name):
                joins.append(
                    "LEFT JOIN run_latest_metrics o\(index) ON o\(index).run_id = r.id AND o\(index).key = "
                        + bind(.text(name)))
                order.append(
                    "(CASE WHEN o\(index).is_nan = 1 THEN 1 WHEN o\(index).value IS NULL THEN 2 ELSE 0 END) ASC")
                order.append("o\(index).value \(direction)")
            case .param(let name), .tag(let name):
                let table = if case .param = key.entity { "run_params" } else { "run_tags" }
                joins.append(
                    "LEFT JOIN \(table) o\(index) ON o\(index).run_id = r.id AND o\(index).key = " + bind(.text(name)))
                order.append("(CASE WHEN o\(index).value IS NULL THEN 1 ELSE 0 END) ASC")
                order.append("o\(index).value \(direction)")
            case .attribute(let attribute):
                let column = Self.column(attribute)
                if attribute == .startTime { orderedByStart = true }
                order.append("(CASE WHEN \(column) IS NULL THEN 1 ELSE 0 END) ASC")
                order.append("\(column) \(direction)")
            case .dataset:
                continue
            }
        }
        if !orderedByStart { order.append("r.started_at DESC") }
        order.append("r.id ASC")
        var conditions = ["r.experiment_id IS NOT NULL"]
        if !search.experimentIDs.isEmpty {
            let ids = search.experimentIDs.map { bind(.integer(Int64($0) ?? -1)) }
            conditions.append("r.experiment_id IN (\(ids.joined(separator: ", ")))")
        }
        switch search.lifecycle {
        case .active: conditions.append("r.deleted_at IS NULL")
        case .deleted: conditions.append("r.deleted_at IS NOT NULL")
        case .all: break
        }
        for clause in search.filter.clauses { conditions.append(condition(clause)) }
        let limit = bind(.integer(Int64(search.maxResults)))
        let skip = bind(.integer(Int64(offset)))
        return """
            SELECT r.id FROM runs r LEFT JOIN experiments e ON e.id = r.experiment_id \(joins.joined(separator: " "))
            WHERE \(conditions.joined(separator: " AND ")) ORDER BY \(order.joined(separator: ", ")) LIMIT \(limit) OFFSET \(skip)
            """
    }

    /// The statement selecting the IDs of the experiments a search finds: `name` (written `name` or
    /// `attributes.name`) and `tags.<key>` conditions, newest first unless ordered by `name` or `start_time`.
    public mutating func experimentIDs(_ search: ExperimentSearch, offset: Int) -> String {
        var conditions: [String] = []
        switch search.lifecycle {
        case .active: conditions.append("x.lifecycle_stage = 'active'")
        case .deleted: conditions.append("x.lifecycle_stage = 'deleted'")
        case .all: break
        }
        for clause in search.filter.clauses {
            switch clause.entity {
            case .tag(let key):
                let keyMark = bind(.text(key))
                let compared = compare("t.value", clause)
                conditions.append(
                    "x.id IN (SELECT t.experiment_id FROM experiment_tags t WHERE t.key = \(keyMark) AND \(compared))")
            case .attribute(.startTime):
                conditions.append(compare("x.created_at", clause, milliseconds: true))
            case .attribute(.endTime):
                conditions.append(compare("x.updated_at", clause, milliseconds: true))
            default:
                conditions.append(compare("x.name", clause))
            }
        }
        var order: [String] = []
        for key in search.orderBy {
            let direction = key.ascending ? "ASC" : "DESC"
            switch key.entity {
            case .attribute(.startTime): order.append("x.created_at \(direction)")
            case .attribute(.endTime): order.append("x.updated_at \(direction)")
            case .attribute(.runID): order.append("x.id \(direction)")
            default: order.append("x.name \(direction)")
            }
        }
        if order.isEmpty { order.append("x.created_at DESC") }
        order.append("x.id ASC")
        let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        let limit = bind(.integer(Int64(search.maxResults)))
        let skip = bind(.integer(Int64(offset)))
        return
            "SELECT x.id FROM experiments x \(whereClause) ORDER BY \(order.joined(separator: ", ")) LIMIT \(limit) OFFSET \(skip)"
    }

    static func column(_ attribute: RunSearchFilter.Attribute) -> String {
        switch attribute {
        case .runID: "r.id"
        case .runName: "r.name"
        case .status: mlflowStatus
        case .userID: "r.user"
        case .artifactURI: "(e.artifact_location || '/' || r.id || '/artifacts')"
        case .startTime: "r.started_at"
        case .endTime: "r.ended_at"
        case .kind: "r.kind"
        case .pipeline: "r.pipeline"
        }
    }

    mutating func condition(_ clause: RunSearchFilter.Clause) -> String {
        switch clause.entity {
        case .metric(let key):
            // Placeholders are numbered in the order they are bound: the key's comes first in the text.
            let keyMark = bind(.text(key))
            let compared = compare("m.value", clause)
            return
                "r.id IN (SELECT m.run_id FROM run_latest_metrics m WHERE m.key = \(keyMark) AND m.is_nan = 0 AND \(compared))"
        case .param(let key), .tag(let key):
            let table = if case .param = clause.entity { "run_params" } else { "run_tags" }
            let keyMark = bind(.text(key))
            switch clause.op {
            case .isNull: return "r.id NOT IN (SELECT p.run_id FROM \(table) p WHERE p.key = \(keyMark))"
            case .isNotNull: return "r.id IN (SELECT p.run_id FROM \(table) p WHERE p.key = \(keyMark))"
            default:
                return
                    "r.id IN (SELECT p.run_id FROM \(table) p WHERE p.key = \(keyMark) AND \(compare("p.value", clause)))"
            }
        case .attribute(let attribute):
            var clause = clause
            if attribute == .status { clause.value = Self.mlflowStatusValue(clause.value) }
            return compare(Self.column(attribute), clause, milliseconds: attribute.isNumeric)
        case .dataset(let field):
            let column =
                switch field {
                case .name: "i.name"
                case .digest: "i.digest"
                case .context: "i.context"
                }
            return "r.id IN (SELECT i.run_id FROM run_inputs i WHERE \(compare(column, clause)))"
        }
    }

    /// A Sluice status name (`completed`) as MLflow's (`FINISHED`), so either works in a filter.
    static func mlflowStatusValue(_ value: RunSearchFilter.Value) -> RunSearchFilter.Value {
        func map(_ s: String) -> String {
            switch s.lowercased() {
            case "completed", "finished": "FINISHED"
            case "failed", "crashed": "FAILED"
            case "cancelled", "killed": "KILLED"
            case "running", "scheduled": "RUNNING"
            default: s
            }
        }
        switch value {
        case .string(let s): return .string(map(s))
        case .list(let items): return .list(items.map(map))
        default: return value
        }
    }

    mutating func compare(_ column: String, _ clause: RunSearchFilter.Clause, milliseconds: Bool = false) -> String {
        switch clause.value {
        case .number(let n):
            let mark = bind(.double(milliseconds ? n / 1000 : n))
            return "\(column) \(clause.op == .notEqual ? "<>" : clause.op.rawValue) \(mark)"
        case .string(let s):
            switch clause.op {
            case .like:
                switch dialect {
                case .sqlite: return "\(column) GLOB \(bind(.text(Self.glob(s))))"
                case .postgres: return "\(column) LIKE \(bind(.text(s)))"
                }
            case .iLike:
                switch dialect {
                case .sqlite: return "lower(\(column)) LIKE lower(\(bind(.text(s))))"
                case .postgres: return "\(column) ILIKE \(bind(.text(s)))"
                }
            case .notEqual: return "\(column) <> \(bind(.text(s)))"
            default: return "\(column) = \(bind(.text(s)))"
            }
        case .list(let items):
            guard !items.isEmpty else { return clause.op == .notIn ? "1 = 1" : "1 = 0" }
            let marks = items.map { bind(.text($0)) }.joined(separator: ", ")
            return "\(column) \(clause.op == .notIn ? "NOT IN" : "IN") (\(marks))"
        case .none:
            return "\(column) \(clause.op.rawValue)"
        }
    }

    /// A LIKE pattern as a GLOB one: `%` → `*`, `_` → `?`, GLOB's own wildcards matched literally.
    static func glob(_ pattern: String) -> String {
        var out = ""
        for c in pattern {
            switch c {
            case "%": out += "*"
            case "_": out += "?"
            case "*": out += "[*]"
            case "?": out += "[?]"
            case "[": out += "[[]"
            default: out.append(c)
            }
        }
        return out
    }
}
