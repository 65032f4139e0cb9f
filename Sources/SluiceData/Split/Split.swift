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
    public var description: String { "\(problem)\n  To fix: \(fix)" }
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
        guard (0..<1).contains(evalFraction) else {
            throw SplitError(
                problem: "the evaluation fraction must be at least 0 and below 1, but it is \(evalFraction)",
                fix: "use a fraction such as 0.2.")
        }
        var evalRows: [Int] = []
        var cutoff: Int64?
        switch method {
        case .random(let seed):
            var order = Array(0..<rowCount)
            var generator = SplitRandom(seed: seed)
            generator.shuffle(&order)
            evalRows = Array(order.prefix(Int((Double(rowCount) * evalFraction).rounded())))
        case .stratified(let label, let seed):
            let column = try require(label, for: "stratify by")
            var groups: [String: [Int]] = [:]
            for row in 0..<rowCount { groups[column.string(row) ?? "\u{0}missing", default: []].append(row) }
            var generator = SplitRandom(seed: seed)
            for key in groups.keys.sorted() {
                var members = groups[key]!
                generator.shuffle(&members)
                evalRows += members.prefix(Int((Double(members.count) * evalFraction).rounded()))
            }
        case .hashed(let key):
            let column = try require(key, for: "hash")
            let threshold = UInt64(evalFraction * Double(UInt64.max))
            for row in 0..<rowCount {
                guard let text = column.string(row) else {
                    throw SplitError(
                        problem: "row \(row + 1) has no value in the key column '\(key)'",
                        fix: "fill in the key, or split on a column that is never missing.")
                }
                if DistinctSketch.hash(text) < threshold { evalRows.append(row) }
            }
        case .byTime(let name):
            let column = try require(name, for: "split by time on")
            guard column.type == .timestamp || column.type == .integer || column.type == .float else {
                throw SplitError(
                    problem: "column '\(name)' is \(column.type), not a time",
                    fix: "split by time on a timestamp column.")
            }
            let order = (0..<rowCount).sorted {
                (column.double($0) ?? -.infinity, $0) < (column.double($1) ?? -.infinity, $1)
            }
            evalRows = Array(order.suffix(Int((Double(rowCount) * evalFraction).rounded())))
            if let first = evalRows.first, let value = column.double(first) { cutoff = Int64(value) }
        }
        var inEval = [Bool](repeating: false, count: rowCount)
        for row in evalRows { inEval[row] = true }
        let trainRows = (0..<rowCount).filter { !inEval[$0] }
        let sortedEval = evalRows.sorted()
        return (
            trainRows, sortedEval,
            SplitInfo(
                method: method, evalFraction: evalFraction, trainRows: trainRows.count, evalRows: sortedEval.count,
                cutoff: cutoff)
        )
    }

    private func require(_ name: String, for purpose: String) throws -> Column {
        guard let column = self[name] else {
            throw SplitError(
                problem: "there is no column '\(name)' to \(purpose)",
                fix: "use one of \(columnNames.joined(separator: ", ")).")
        }
        return column
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
    mutating func shuffle(_ values: inout [Int]) {
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
