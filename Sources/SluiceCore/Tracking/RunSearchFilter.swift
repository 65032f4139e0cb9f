import Foundation

/// A search filter in MLflow's syntax, so one string works in `sluice runs list --filter`, the JSON API, the
/// dashboard and MLflow's `search_runs`: comparisons joined by `and`, such as
/// `metrics.auc > 0.8 and params.learner = 'gbdt' and tags.team = 'fraud'`.
///
/// Each comparison is `ENTITY.KEY OP VALUE`: `metrics.` (numbers: `= != > >= < <=`), `params.` and `tags.`
/// (strings: `= != LIKE ILIKE IN (…) NOT IN (…)`, or `IS NULL` / `IS NOT NULL`), `attributes.` (`run_id`,
/// `run_name`, `status`, `user_id`, `artifact_uri`, `kind`, `pipeline` as strings; `start_time`, `end_time` in
/// milliseconds) and `datasets.` (`name`, `digest`, `context`). Keys with dots or spaces are quoted with backticks
/// or double quotes: ``tags.`mlflow.runName` ``.
public struct RunSearchFilter: Sendable, Equatable {
    /// The comparisons, all of which a run must meet.
    public var clauses: [Clause]

    /// The empty filter: every run.
    public init() { clauses = [] }

    /// A filter made of these comparisons.
    public init(clauses: [Clause]) { self.clauses = clauses }

    /// Parses `text`.
    /// - Throws: ``TrackingError`` `invalidParameterValue` naming the column and what would fix it.
    public init(parsing text: String) throws {
        var parser = FilterParser(text)
        clauses = try parser.clauses()
    }

    /// What a comparison is about.
    public enum Entity: Sendable, Hashable {
        case metric(String)
        case param(String)
        case tag(String)
        case attribute(Attribute)
        case dataset(DatasetField)
    }

    /// The attributes of a run a filter or an order can name.
    public enum Attribute: String, Sendable, CaseIterable {
        case runID = "run_id"
        case runName = "run_name"
        case status
        case userID = "user_id"
        case artifactURI = "artifact_uri"
        case startTime = "start_time"
        case endTime = "end_time"
        /// Sluice's own: `pipeline` or `tracked`.
        case kind
        /// Sluice's own: the pipeline's (or, for a tracked run, the experiment's) name.
        case pipeline

        /// Whether values are numbers (milliseconds) rather than strings.
        public var isNumeric: Bool { self == .startTime || self == .endTime }
    }

    /// The fields of a dataset input a filter can name.
    public enum DatasetField: String, Sendable, CaseIterable {
        case name, digest, context
    }

    /// A comparison operator.
    public enum Operator: String, Sendable, CaseIterable {
        case equal = "="
        case notEqual = "!="
        case greater = ">"
        case greaterOrEqual = ">="
        case less = "<"
        case lessOrEqual = "<="
        case like = "LIKE"
        case iLike = "ILIKE"
        case isIn = "IN"
        case notIn = "NOT IN"
        case isNull = "IS NULL"
        case isNotNull = "IS NOT NULL"
    }

    /// A comparison's right-hand side.
    public enum Value: Sendable, Equatable {
        case number(Double)
        case string(String)
        case list([String])
        case none
    }

    /// One comparison.
    public struct Clause: Sendable, Equatable {
        public var entity: Entity
        public var op: Operator
        public var value: Value

        /// Creates a comparison.
        public init(_ entity: Entity, _ op: Operator, _ value: Value) {
            self.entity = entity
            self.op = op
            self.value = value
        }
    }
}

/// One key of a search's order: `metrics.auc DESC`, `attributes.start_time`, `params.lr ASC`.
public struct RunOrder: Sendable, Equatable {
    public var entity: RunSearchFilter.Entity
    public var ascending: Bool

    /// Creates an order key.
    public init(_ entity: RunSearchFilter.Entity, ascending: Bool) {
        self.entity = entity
        self.ascending = ascending
    }

    /// Parses `metrics.auc DESC` (ascending unless `DESC`).
    /// - Throws: ``TrackingError`` `invalidParameterValue` naming what is wrong.
    public init(parsing text: String) throws {
        var parser = FilterParser(text)
        self = try parser.order()
    }
}

/// A hand-written scanner and parser for the filter and order syntax, keeping each token's column for errors.
struct FilterParser {
    enum Token: Equatable {
        case word(String)
        case quoted(String, quote: Character)
        case number(Double)
        case symbol(String)
        case end
    }

    let text: String
    let characters: [Character]
    var position = 0

    init(_ text: String) {
        self.text = text
        characters = Array(text)
    }

    func fail(_ column: Int, _ message: String, fix: String) -> TrackingError {
        TrackingError(
            .invalidParameterValue, "Invalid filter '\(text)' at column \(column + 1): \(message)", hint: fix)
    }

    mutating func skipSpaces() {
        while position < characters.count, characters[position].isWhitespace { position += 1 }
    }

    /// The next token and the column it starts at.
    mutating func next() throws -> (Token, Int) {
        skipSpaces()
        let start = position
        guard position < characters.count else { return (.end, start) }
        let c = characters[position]
        if c == "'" || c == "\"" || c == "`" {
            position += 1
            var value = ""
            while position < characters.count {
                let d = characters[position]
                if d == "\\", position + 1 < characters.count {
                    value.append(characters[position + 1])
                    position += 2
                    continue
                }
                if d == c {
                    // A doubled quote inside stands for one.
                    if position + 1 < characters.count, characters[position + 1] == c {
                        value.append(c)
                        position += 2
                        continue
                    }
                    position += 1
                    return (.quoted(value, quote: c), start)
                }
                value.append(d)
                position += 1
            }
            throw fail(start, "the quote opened here is never closed", fix: "close it with \(c).")
        }
        if c.isNumber
            || ((c == "-" || c == "+" || c == ".") && position + 1 < characters.count
                && (characters[position + 1].isNumber || characters[position + 1] == "."))
        {
            var end = position + 1
            while end < characters.count,
                characters[end].isNumber || characters[end] == "." || characters[end] == "e" || characters[end] == "E"
                    || ((characters[end] == "-" || characters[end] == "+")
                        && (characters[end - 1] == "e" || characters[end - 1] == "E"))
            {
                end += 1
            }
            let literal = String(characters[position..<end])
            guard let number = Double(literal) else {
                throw fail(start, "'\(literal)' is not a number", fix: "write a number like 0.8, 12 or 1e-3.")
            }
            position = end
            return (.number(number), start)
        }
        if c.isLetter || c == "_" {
            var end = position + 1
            while end < characters.count,
                characters[end].isLetter || characters[end].isNumber
                    || characters[end] == "_" || characters[end] == "." || characters[end] == "-"
                    || characters[end] == "/" || characters[end] == ":"
            {
                end += 1
            }
            let word = String(characters[position..<end])
            position = end
            return (.word(word), start)
        }
        for symbol in ["!=", "<>", ">=", "<=", "=", ">", "<", "(", ")", ","] {
            let s = Array(symbol)
            if position + s.count <= characters.count, Array(characters[position..<position + s.count]) == s {
                position += s.count
                return (.symbol(symbol == "<>" ? "!=" : symbol), start)
            }
        }
        throw fail(
            start, "unexpected '\(c)'",
            fix: "compare like metrics.auc > 0.8 or params.learner = 'gbdt', joined with and.")
    }

    mutating func peek() throws -> Token {
        let saved = position
        defer { position = saved }
        return try next().0
    }

    mutating func clauses() throws -> [RunSearchFilter.Clause] {
        var clauses: [RunSearchFilter.Clause] = []
        if try peek() == .end { return [] }
        while true {
            clauses.append(try clause())
            let (token, column) = try next()
            switch token {
            case .end: return clauses
            case .word(let w) where w.uppercased() == "AND": continue
            case .word(let w) where w.uppercased() == "OR":
                throw fail(
                    column, "'or' is not supported (MLflow's filter syntax joins comparisons with and only)",
                    fix: "run one search per alternative, or use IN ('a', 'b') for alternatives of one key.")
            default:
                throw fail(
                    column, "expected 'and' or the end of the filter, found \(describe(token))",
                    fix: "join comparisons with and.")
            }
        }
    }

    /// `prefix.key`, the prefix naming the entity; a key may follow as a quoted token (``tags.`a.b` ``).
    mutating func entity(forOrder: Bool) throws -> RunSearchFilter.Entity {
        let (token, column) = try next()
        let word: String
        switch token {
        case .word(let w): word = w
        case .quoted(let q, let quote) where quote != "'":
            // A quoted identifier without a prefix names an attribute: "run_name".
            word = q
        default:
            throw fail(
                column,
                "expected a key like metrics.auc, params.lr, tags.team or attributes.status, found \(describe(token))",
                fix: "start each comparison with metrics., params., tags., attributes. or datasets. and a key.")
        }
        var prefix = word
        var key = ""
        if let dot = word.firstIndex(of: ".") {
            prefix = String(word[..<dot])
            key = String(word[word.index(after: dot)...])
        }
        if key.isEmpty, word.hasSuffix(".") || word.contains(".") == false {
            // `tags.` followed by a quoted key, or a bare attribute name.
            if word.hasSuffix("."), case .quoted(let quotedKey, let quote) = try peek(), quote != "'" {
                _ = try next()
                key = quotedKey
                prefix = String(word.dropLast())
            } else if !word.contains(".") {
                if let attribute = RunSearchFilter.Attribute(rawValue: Self.attributeAlias(word)) {
                    return .attribute(attribute)
                }
            }
        }
        guard !key.isEmpty else {
            throw fail(
                column, "'\(word)' names no key",
                fix: "write the key after the prefix, like metrics.auc, or quote it: tags.`mlflow.runName`.")
        }
        switch prefix.lowercased() {
        case "metric", "metrics": return .metric(key)
        case "param", "params", "parameter", "parameters": return .param(key)
        case "tag", "tags": return .tag(key)
        case "attribute", "attributes", "attr", "run":
            guard let attribute = RunSearchFilter.Attribute(rawValue: Self.attributeAlias(key)) else {
                let known = RunSearchFilter.Attribute.allCases.map(\.rawValue).joined(separator: ", ")
                throw fail(column, "'\(key)' is not a run attribute", fix: "use one of: \(known).")
            }
            return .attribute(attribute)
        case "dataset", "datasets":
            guard !forOrder, let field = RunSearchFilter.DatasetField(rawValue: key.lowercased()) else {
                throw fail(
                    column, "'\(key)' is not something a run can be \(forOrder ? "ordered" : "filtered") by",
                    fix: forOrder
                        ? "order by metrics., params., tags. or attributes."
                        : "use datasets.name, datasets.digest or datasets.context.")
            }
            return .dataset(field)
        default:
            throw fail(
                column, "'\(prefix)' is not a search prefix",
                fix: "use metrics., params., tags., attributes. or datasets. before the key.")
        }
    }

    static func attributeAlias(_ word: String) -> String {
        switch word.lowercased() {
        case "id", "run_uuid": "run_id"
        case "name", "runname": "run_name"
        case "created", "creation_time": "start_time"
        case "user": "user_id"
        default: word.lowercased()
        }
    }

    mutating func clause() throws -> RunSearchFilter.Clause {
        let entity = try entity(forOrder: false)
        let (token, column) = try next()
        var op: RunSearchFilter.Operator
        switch token {
        case .symbol(let s) where ["=", "!=", ">", ">=", "<", "<="].contains(s):
            op = RunSearchFilter.Operator(rawValue: s)!
        case .word(let w):
            switch w.uppercased() {
            case "LIKE": op = .like
            case "ILIKE": op = .iLike
            case "IN": op = .isIn
            case "NOT":
                guard case (.word(let w2), _) = try next(), w2.uppercased() == "IN" else {
                    throw fail(column, "expected IN after NOT", fix: "write NOT IN ('a', 'b').")
                }
                op = .notIn
            case "IS":
                var (t2, _) = try next()
                var negated = false
                if case .word(let w2) = t2, w2.uppercased() == "NOT" {
                    negated = true
                    t2 = try next().0
                }
                guard case .word(let w3) = t2, w3.uppercased() == "NULL" else {
                    throw fail(column, "expected NULL after IS", fix: "write IS NULL or IS NOT NULL.")
                }
                op = negated ? .isNotNull : .isNull
            default:
                throw fail(column, "'\(w)' is not a comparison", fix: Self.operatorFix(entity))
            }
        default:
            throw fail(
                column, "expected a comparison after the key, found \(describe(token))", fix: Self.operatorFix(entity))
        }
        let numeric: Bool
        switch entity {
        case .metric: numeric = true
        case .attribute(let a): numeric = a.isNumeric
        default: numeric = false
        }
        let allowed: Set<RunSearchFilter.Operator> =
            numeric
            ? [.equal, .notEqual, .greater, .greaterOrEqual, .less, .lessOrEqual]
            : {
                if case .param = entity {
                    return [.equal, .notEqual, .like, .iLike, .isIn, .notIn, .isNull, .isNotNull]
                }
                if case .tag = entity { return [.equal, .notEqual, .like, .iLike, .isIn, .notIn, .isNull, .isNotNull] }
                return [.equal, .notEqual, .like, .iLike, .isIn, .notIn]
            }()
        guard allowed.contains(op) else {
            throw fail(column, "\(op.rawValue) cannot compare \(Self.name(entity))", fix: Self.operatorFix(entity))
        }
        if op == .isNull || op == .isNotNull { return .init(entity, op, .none) }
        let (valueToken, valueColumn) = try next()
        if op == .isIn || op == .notIn {
            guard valueToken == .symbol("(") else {
                throw fail(valueColumn, "expected ( after \(op.rawValue)", fix: "write \(op.rawValue) ('a', 'b').")
            }
            var items: [String] = []
            while true {
                let (item, itemColumn) = try next()
                switch item {
                case .quoted(let s, _): items.append(s)
                case .number(let n): items.append(Self.text(n))
                default:
                    throw fail(
                        itemColumn, "expected a quoted value, found \(describe(item))",
                        fix: "quote each value: ('a', 'b').")
                }
                let (separator, separatorColumn) = try next()
                if separator == .symbol(")") { break }
                guard separator == .symbol(",") else {
                    throw fail(separatorColumn, "expected , or ) in the list", fix: "write \(op.rawValue) ('a', 'b').")
                }
            }
            return .init(entity, op, .list(items))
        }
        if numeric {
            guard case .number(let n) = valueToken else {
                throw fail(
                    valueColumn, "\(Self.name(entity)) compares with a number, found \(describe(valueToken))",
                    fix: "write a number without quotes, like \(Self.name(entity)) > 0.8.")
            }
            return .init(entity, op, .number(n))
        }
        guard case .quoted(let s, let quote) = valueToken, quote != "`" else {
            throw fail(
                valueColumn, "\(Self.name(entity)) compares with a quoted string, found \(describe(valueToken))",
                fix: "quote the value: \(Self.name(entity)) = '\(Self.plain(valueToken))'.")
        }
        return .init(entity, op, .string(s))
    }

    mutating func order() throws -> RunOrder {
        let entity = try entity(forOrder: true)
        var ascending = true
        let (token, column) = try next()
        switch token {
        case .end: break
        case .word(let w) where w.uppercased() == "ASC": ascending = true
        case .word(let w) where w.uppercased() == "DESC": ascending = false
        default:
            throw fail(
                column, "expected ASC, DESC or the end, found \(describe(token))", fix: "write like metrics.auc DESC.")
        }
        if case (let rest, let restColumn) = try next(), rest != .end {
            throw fail(
                restColumn, "unexpected \(describe(rest)) after the order", fix: "give one key per order_by entry.")
        }
        return RunOrder(entity, ascending: ascending)
    }

    static func name(_ entity: RunSearchFilter.Entity) -> String {
        switch entity {
        case .metric(let k): "metrics.\(k)"
        case .param(let k): "params.\(k)"
        case .tag(let k): "tags.\(k)"
        case .attribute(let a): "attributes.\(a.rawValue)"
        case .dataset(let f): "datasets.\(f.rawValue)"
        }
    }

    static func operatorFix(_ entity: RunSearchFilter.Entity) -> String {
        switch entity {
        case .metric: "compare metrics with =, !=, >, >=, < or <= and a number."
        case .attribute(let a) where a.isNumeric: "compare \(a.rawValue) with =, !=, >, >=, < or <= and milliseconds."
        case .param, .tag:
            "compare with =, !=, LIKE, ILIKE, IN (…), NOT IN (…), IS NULL or IS NOT NULL and a quoted string."
        default: "compare with =, !=, LIKE, ILIKE, IN (…) or NOT IN (…) and a quoted string."
        }
    }

    static func text(_ n: Double) -> String {
        n == n.rounded() && abs(n) < 1e15 ? String(Int64(n)) : String(n)
    }

    static func plain(_ token: Token) -> String {
        switch token {
        case .word(let w): w
        case .quoted(let q, _): q
        case .number(let n): text(n)
        case .symbol(let s): s
        case .end: "value"
        }
    }

    func describe(_ token: Token) -> String {
        switch token {
        case .word(let w): "'\(w)'"
        case .quoted(let q, let quote): "\(quote)\(q)\(quote)"
        case .number(let n): Self.text(n)
        case .symbol(let s): "'\(s)'"
        case .end: "the end of the filter"
        }
    }
}
