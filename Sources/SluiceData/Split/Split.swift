import Foundation

/// How rows are divided into training and evaluation sets.
public enum SplitMethod: Codable, Sendable, Equatable {
    /// Uniformly at random, reproducibly from the seed.
    case random(seed: UInt64)
    /// At random within each value of a label column, so both sets keep the label's proportions.
    case stratified(label: String, seed: UInt64)
    /// By a hash of a key column: a row's set depends only on its key, so it never moves between sets when
    /// new data arrives.
    case hashed(key: String)
    /// By time: the latest rows (by a timestamp column) are the evaluation set.
    case byTime(column: String)
}

/// What a split did: the method, the fraction asked for and the sizes that resulted (recorded with the run).
public struct SplitInfo: Codable, Sendable, Equatable {
    /// The method, with its seed or column.
    public var method: SplitMethod
    /// The fraction of rows asked for in the evaluation set.
    public var evalFraction: Double
    /// Rows in the training set.
    public var trainRows: Int
    /// Rows in the evaluation set.
    public var evalRows: Int
    /// For a split by time: the first evaluation timestamp (microseconds since the epoch).
    public var cutoff: Int64?
}

/// Training and evaluation tables with how they were made.
public struct SplitResult: Sendable, Equatable {
    /// The training rows.
    public var train: Table
    /// The evaluation rows.
    public var eval: Table
    /// How the split was made.
    public var info: SplitInfo
}

/// A column a split needs is missing or of the wrong type.
public struct SplitError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What is wrong.
    public var problem: String
    /// What to do.
    public var fix: String
}

extension Table {
    /// The rows at `indices`, in that order (string dictionaries are shared).
    public func rows(_ indices: [Int]) -> Table {
        Table(
            columns: columns.map { column in
                switch column.storage {
                case .float(let v, let m):
                    Column(name: column.name, storage: .float(indices.map { v[$0] }, valid: indices.map { m[$0] }))
                case .integer(let v, let m):
                    Column(name: column.name, storage: .integer(indices.map { v[$0] }, valid: indices.map { m[$0] }))
                case .boolean(let v, let m):
                    Column(name: column.name, storage: .boolean(indices.map { v[$0] }, valid: indices.map { m[$0] }))
                case .timestamp(let v, let m):
                    Column(name: column.name, storage: .timestamp(indices.map { v[$0] }, valid: indices.map { m[$0] }))
                case .string(let codes, let dictionary):
                    Column(
                        name: column.name, storage: .string(codes: indices.map { codes[$0] }, dictionary: dictionary))
                }
            })
    }

    /// Splits the rows into training and evaluation sets.
    /// - Parameter evalFraction: the share of rows for evaluation, in `0..<1`.
    /// - Throws: ``SplitError`` when the method's column is missing or unsuitable.
    public func split(_ method: SplitMethod, evalFraction: Double) throws -> SplitResult {
        let (train, eval, info) = try splitRows(method, evalFraction: evalFraction)
        return SplitResult(train: rows(train), eval: rows(eval), info: info)
    }

    /// The row indices (ascending) of the training and evaluation sets a split would make, without copying rows.
    public func splitRows(_ method: SplitMethod, evalFraction: Double) throws -> (
        train: [Int], eval: [Int], info: SplitInfo
    ) {
        let column = try method.column.map { name in
            guard let column = self[name] else { throw method.missingColumn(name, among: columnNames) }
            return column
        }
        let (inEval, cutoff) = try method.evalRows(rowCount: rowCount, column: column, evalFraction: evalFraction)
        let trainRows = (0..<rowCount).filter { !inEval[$0] }
        let evalRows = (0..<rowCount).filter { inEval[$0] }
        return (
            trainRows, evalRows,
            SplitInfo(
                method: method, evalFraction: evalFraction, trainRows: trainRows.count, evalRows: evalRows.count,
                cutoff: cutoff)
        )
    }
}

extension TableFile {
    /// Splits the rows into training and evaluation files, streaming: only the method's column (if any) and one
    /// batch at a time are in memory. Every method gives exactly the rows ``Table/split(_:evalFraction:)`` gives for
    /// the same table, in the same order.
    /// - Throws: ``SplitError`` when the method's column is missing or unsuitable; file system errors.
    public func split(_ method: SplitMethod, evalFraction: Double, train: URL, eval: URL) throws -> (
        train: TableFile, eval: TableFile, info: SplitInfo
    ) {
        let column = try method.column.map { name in
            guard columnNames.contains(name) else { throw method.missingColumn(name, among: columnNames) }
            return try self.column(name)
        }
        let (inEval, cutoff) = try method.evalRows(rowCount: rowCount, column: column, evalFraction: evalFraction)
        let trainWriter = try TableFileWriter(url: train)
        let evalWriter = try TableFileWriter(url: eval)
        try forEachBatch { batch, first in
            var trainRows: [Int] = []
            var evalRows: [Int] = []
            for row in 0..<batch.rowCount {
                if inEval[first + row] { evalRows.append(row) } else { trainRows.append(row) }
            }
            try trainWriter.append(batch.rows(trainRows))
            try evalWriter.append(batch.rows(evalRows))
        }
        let trainFile = try trainWriter.finish(columnNames: columnNames, columnTypes: columnTypes)
        let evalFile = try evalWriter.finish(columnNames: columnNames, columnTypes: columnTypes)
        return (
            trainFile, evalFile,
            SplitInfo(
                method: method, evalFraction: evalFraction, trainRows: trainFile.rowCount,
                evalRows: evalFile.rowCount, cutoff: cutoff)
        )
    }
}

extension SplitMethod {
    /// The column the method reads, if any.
    var column: String? {
        switch self {
        case .random: nil
        case .stratified(let label, _): label
        case .hashed(let key): key
        case .byTime(let column): column
        }
    }

    func missingColumn(_ name: String, among names: [String]) -> SplitError {
        let purpose =
            switch self {
            case .random: "use"
            case .stratified: "stratify by"
            case .hashed: "hash"
            case .byTime: "split by time on"
            }
        return SplitError(
            problem: "there is no column '\(name)' to \(purpose)", fix: "use one of \(names.joined(separator: ", ")).")
    }

    /// Which of `rowCount` rows go to evaluation (`column` is the method's column, all rows), and for a split by
    /// time the first evaluation timestamp.
    func evalRows(rowCount: Int, column: Column?, evalFraction: Double) throws -> (inEval: [Bool], cutoff: Int64?) {
        guard (0..<1).contains(evalFraction) else {
            throw SplitError(
                problem: "the evaluation fraction must be at least 0 and below 1, but it is \(evalFraction)",
                fix: "use a fraction such as 0.2.")
        }
        var inEval = [Bool](repeating: false, count: rowCount)
        var cutoff: Int64?
        switch self {
        case .random(let seed):
            var order = (0..<rowCount).map { Int32(truncatingIfNeeded: $0) }
            var generator = SplitRandom(seed: seed)
            generator.shuffle(&order)
            for row in order.prefix(Int((Double(rowCount) * evalFraction).rounded())) { inEval[Int(row)] = true }
        case .stratified(_, let seed):
            let column = column!
            // Rows grouped by the label's text; groups taken in the order of their text.
            var groupOf = [Int32](repeating: 0, count: rowCount)
            var keys: [String] = []
            func group(_ key: String, _ index: inout [String: Int32]) -> Int32 {
                if let known = index[key] { return known }
                let id = Int32(keys.count)
                keys.append(key)
                index[key] = id
                return id
            }
            var index: [String: Int32] = [:]
            let missingKey = "\u{0}missing"
            switch column.storage {
            case .string(let codes, let dictionary):
                let ids = dictionary.map { group($0, &index) }
                let missing = group(missingKey, &index)
                for row in 0..<rowCount { groupOf[row] = codes[row] < 0 ? missing : ids[Int(codes[row])] }
            case .integer(let values, let valid):
                var byValue: [Int64: Int32] = [:]
                for row in 0..<rowCount {
                    if !valid[row] {
                        groupOf[row] = group(missingKey, &index)
                    } else if let id = byValue[values[row]] {
                        groupOf[row] = id
                    } else {
                        let id = group(String(values[row]), &index)
                        byValue[values[row]] = id
                        groupOf[row] = id
                    }
                }
            default:
                for row in 0..<rowCount { groupOf[row] = group(column.string(row) ?? missingKey, &index) }
            }
            var members = [[Int32]](repeating: [], count: keys.count)
            for row in 0..<rowCount { members[Int(groupOf[row])].append(Int32(truncatingIfNeeded: row)) }
            groupOf = []
            var generator = SplitRandom(seed: seed)
            for id in keys.indices.sorted(by: { keys[$0] < keys[$1] }) {
                generator.shuffle(&members[id])
                for row in members[id].prefix(Int((Double(members[id].count) * evalFraction).rounded())) {
                    inEval[Int(row)] = true
                }
                members[id] = []
            }
        case .hashed(let key):
            let column = column!
            let threshold = UInt64(evalFraction * Double(UInt64.max))
            for row in 0..<rowCount {
                guard let text = column.string(row) else {
                    throw SplitError(
                        problem: "row \(row + 1) has no value in the key column '\(key)'",
                        fix: "fill in the key, or split on a column that is never missing.")
                }
                if DistinctSketch.hash(text) < threshold { inEval[row] = true }
            }
        case .byTime(let name):
            let column = column!
            guard column.type == .timestamp || column.type == .integer || column.type == .float else {
                throw SplitError(
                    problem: "column '\(name)' is \(column.type), not a time",
                    fix: "split by time on a timestamp column.")
            }
            let order = (0..<rowCount).sorted {
                (column.double($0) ?? -.infinity, $0) < (column.double($1) ?? -.infinity, $1)
            }
            let evalRows = order.suffix(Int((Double(rowCount) * evalFraction).rounded()))
            for row in evalRows { inEval[row] = true }
            if let first = evalRows.first, let value = column.double(first) { cutoff = Int64(value) }
        }
        return (inEval, cutoff)
    }
}

/// SplitMix64: a small generator whose sequence is fixed forever, so a seed always gives the same split.
struct SplitRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Fisher–Yates with a bias-free bounded draw.
    mutating func shuffle<T>(_ values: inout [T]) {
        guard values.count > 1 else { return }
        for i in stride(from: values.count - 1, to: 0, by: -1) {
            let bound = UInt64(i + 1)
            var draw = next()
            let limit = UInt64.max - UInt64.max % bound
            while draw >= limit { draw = next() }
            values.swapAt(i, Int(draw % bound))
        }
    }
}
