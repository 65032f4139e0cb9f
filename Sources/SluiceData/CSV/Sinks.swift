/// A sink that parses one piece of a streaming pass.
protocol ChunkSink: FieldSink {
    init(names: [String], types: [ColumnType], missing: MissingTokens, capacity: Int)
    /// Rows accepted.
    var rows: Int { get }
    /// Which integer columns met a fractional number (they become float columns).
    var widened: [Bool] { get }
}

/// Appends fields to typed column builders, kept in one raw allocation so a field costs no copy-on-write check.
/// ``finish()`` turns them into columns and frees everything.
struct BuilderSink: ChunkSink {
    private let builders: UnsafeMutablePointer<ColumnBuilder>
    let columnCount: Int
    let missing: MissingTokens
    var rows = 0
    var rejection: (problem: String, fix: String)?

    init(names: [String], types: [ColumnType], missing: MissingTokens, capacity: Int) {
        columnCount = names.count
        builders = .allocate(capacity: max(names.count, 1))
        for (k, (name, type)) in zip(names, types).enumerated() {
            (builders + k).initialize(to: ColumnBuilder(name: name, type: type, capacity: capacity))
        }
        self.missing = missing
    }

    /// Which integer columns were widened to float.
    var widened: [Bool] { (0..<columnCount).map { builders[$0].widened } }

    /// The parsed columns; the sink must not be used afterwards.
    func finish(building: Bool) -> [Column] {
        let columns = building ? (0..<columnCount).map { builders[$0].build() } : []
        for k in 0..<columnCount { builders[k].release() }
        builders.deinitialize(count: columnCount)
        builders.deallocate()
        return columns
    }

    @inline(__always)
    mutating func field(_ index: Int, _ p: UnsafePointer<UInt8>, _ count: Int) -> Bool {
        if builders[index].append(p, count, missing: missing) { return true }
        rejection = Self.rejection(column: builders[index].name, type: builders[index].type, text: p, count: count)
        return false
    }

    /// Why a field was not a value of its column's type, and what to do.
    static func rejection(column: String, type: ColumnType, text p: UnsafePointer<UInt8>, count: Int) -> (
        problem: String, fix: String
    ) {
        let text = String(decoding: UnsafeBufferPointer(start: p, count: min(count, 60)), as: UTF8.self)
        let expected: String
        switch type {
        case .float: expected = "a number"
        case .integer: expected = "a whole number"
        case .boolean: expected = "true or false"
        case .timestamp: expected = "an ISO 8601 date or time (2024-03-01T12:00:00Z)"
        case .string:
            return (
                "column '\(column)' has text that is not valid UTF-8",
                "re-encode the file as UTF-8 (iconv -f LATIN1 -t UTF-8), or skip bad rows."
            )
        }
        return (
            "column '\(column)' (\(type)) expected \(expected) but found '\(text)'",
            "declare the column's type in the schema (e.g. as string), fix the value, or skip bad rows."
        )
    }

    @inline(__always)
    mutating func endRow(fields: Int) -> Bool {
        rows += 1
        return true
    }

    mutating func dropRow() {
        for index in 0..<columnCount { builders[index].truncate(to: rows) }
    }
}

/// Watches values to choose each column's type: the narrowest of boolean, integer, float, timestamp that
/// every non-missing value fits, else string.
struct InferenceSink: FieldSink {
    struct Candidates {
        var boolean = true
        var integer = true
        var float = true
        var timestamp = true
        var seen = false
    }
    var columns: [Candidates]
    let missing: MissingTokens
    var rejection: (problem: String, fix: String)? { nil }

    init(columnCount: Int, missing: MissingTokens) {
        columns = Array(repeating: Candidates(), count: columnCount)
        self.missing = missing
    }

    mutating func field(_ index: Int, _ p: UnsafePointer<UInt8>, _ count: Int) -> Bool {
        if missing.contains(p, count) { return true }
        var c = columns[index]
        c.seen = true
        if c.boolean && FieldParsing.boolean(p, count) == nil { c.boolean = false }
        if c.integer && FieldParsing.integer(p, count) == nil { c.integer = false }
        if c.float && !c.integer && FieldParsing.double(p, count) == nil { c.float = false }
        if c.timestamp && FieldParsing.timestamp(p, count) == nil { c.timestamp = false }
        columns[index] = c
        return true
    }

    mutating func endRow(fields: Int) -> Bool { true }
    mutating func dropRow() {}

    var types: [ColumnType] {
        columns.map { c in
            guard c.seen else { return .string }
            if c.boolean { return .boolean }
            if c.integer { return .integer }
            if c.float { return .float }
            if c.timestamp { return .timestamp }
            return .string
        }
    }
}

/// Collects the header's field texts.
struct HeaderSink: FieldSink {
    var names: [String] = []
    var invalid = false
    var rejection: (problem: String, fix: String)? { nil }

    mutating func field(_ index: Int, _ p: UnsafePointer<UInt8>, _ count: Int) -> Bool {
        guard let name = String(validating: UnsafeBufferPointer(start: p, count: count), as: UTF8.self) else {
            invalid = true
            return true
        }
        names.append(name)
        return true
    }

    mutating func endRow(fields: Int) -> Bool { true }
    mutating func dropRow() {}
}
