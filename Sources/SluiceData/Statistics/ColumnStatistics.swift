import Foundation

/// Statistics of one column that merge exactly (counts, moments, extremes, value counts) or within a stated
/// error (quantiles: 0.4% relative; distinct count: about 1.6%), so chunks and shards can be summarized apart
/// and combined.
public struct ColumnStatistics: Codable, Sendable, Equatable {
    /// The column's name.
    public var name: String
    /// Its type.
    public var type: ColumnType
    /// Present values.
    public var count = 0
    /// Missing values.
    public var missing = 0
    /// Numeric columns: mean of present values (Chan's parallel update keeps it exact across merges).
    public var mean = 0.0
    /// Numeric columns: sum of squared deviations from the mean.
    public var m2 = 0.0
    /// Numeric columns: smallest value.
    public var min: Double?
    /// Numeric columns: largest value.
    public var max: Double?
    /// Numeric columns: values equal to zero; boolean columns: `false` values.
    public var zeros = 0
    /// Numeric columns: the quantile sketch.
    public var quantiles = QuantileSketch()
    /// The distinct-count sketch.
    public var distinct = DistinctSketch()
    /// String and boolean columns: counts by value (kept exactly up to ``valueCountLimit`` values, then the
    /// smallest are pruned, which makes the counts of rare values lower bounds).
    public var valueCounts: [String: Int] = [:]
    /// Whether value counts were pruned.
    public var valueCountsPruned = false

    /// How many distinct values are counted exactly.
    public static let valueCountLimit = 10_000

    /// Empty statistics for a column.
    public init(name: String, type: ColumnType) {
        self.name = name
        self.type = type
    }

    /// Statistics of a column.
    public init(_ column: Column) {
        self.init(name: column.name, type: column.type)
        add(column)
    }

    /// The fraction of rows that are missing.
    public var missingRate: Double { count + missing == 0 ? 0 : Double(missing) / Double(count + missing) }
    /// The sample standard deviation.
    public var standardDeviation: Double { count > 1 ? (m2 / Double(count - 1)).squareRoot() : 0 }
    /// The estimated number of distinct present values (exact for string columns below the count limit).
    public var distinctCount: Int {
        if (type == .string || type == .boolean) && !valueCountsPruned { return valueCounts.count }
        return Swift.min(distinct.estimate, count)  // an estimate above the number of values is surely too high
    }
    /// The value at quantile `q` (0…1) from the sketch, clamped to the exact min and max, and rounded for
    /// integer columns.
    public func quantile(_ q: Double) -> Double? {
        guard var value = quantiles.quantile(q), let low = min, let high = max else { return nil }
        value = Swift.min(Swift.max(value, low), high)
        if q <= 0 { value = low }
        if q >= 1 { value = high }
        return type == .integer || type == .timestamp ? value.rounded() : value
    }

    /// The `k` most frequent values with their counts, most frequent first.
    public func topValues(_ k: Int = 10) -> [(value: String, count: Int)] {
        valueCounts.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.prefix(k).map { ($0.key, $0.value) }
    }

    /// Adds a column's values.
    public mutating func add(_ column: Column) {
        switch column.storage {
        case .float(let values, let valid): addNumbers(values, valid)
        case .integer(let values, let valid), .timestamp(let values, let valid):
            addNumbers(values.map(Double.init), valid)
        case .boolean(let values, let valid):
            var trues = 0
            var falses = 0
            for k in values.indices where valid[k] {
                if values[k] { trues += 1 } else { falses += 1 }
            }
            count += trues + falses
            missing += values.count - trues - falses
            zeros += falses
            if trues > 0 { valueCounts["true", default: 0] += trues }
            if falses > 0 { valueCounts["false", default: 0] += falses }
        case .string(let codes, let dictionary):
            var perCode = Array(repeating: 0, count: dictionary.count)
            var absent = 0
            for code in codes {
                if code < 0 { absent += 1 } else { perCode[Int(code)] += 1 }
            }
            missing += absent
            count += codes.count - absent
            for (code, n) in perCode.enumerated() where n > 0 {
                valueCounts[dictionary[code], default: 0] += n
                distinct.add(hash: DistinctSketch.hash(dictionary[code]))
            }
            pruneValueCounts()
        }
    }

    private mutating func addNumbers(_ values: [Double], _ valid: [Bool]) {
        var part = ColumnStatistics(name: name, type: type)
        var n = 0
        var sum = 0.0
        var low = Double.infinity
        var high = -Double.infinity
        var zeroCount = 0
        var smallestPositive = Double.infinity
        var smallestNegative = Double.infinity  // by magnitude
        values.withUnsafeBufferPointer { v in
            valid.withUnsafeBufferPointer { m in
                for k in 0..<v.count where m[k] {
                    let x = v[k]
                    if x.isNaN { continue }  // counted as missing
                    n += 1
                    sum += x
                    if x < low { low = x }
                    if x > high { high = x }
                    if x == 0 { zeroCount += 1 }
                    if x >= 1e-300 && x < smallestPositive { smallestPositive = x }
                    if x <= -1e-300 && -x < smallestNegative { smallestNegative = -x }
                }
            }
        }
        part.count = n
        part.missing = values.count - n
        part.zeros = zeroCount
        guard n > 0 else { return merge(part) }
        let mean = sum / Double(n)
        var squares = 0.0
        // One more pass does the rest: squared deviations, quantile buckets and distinct-count registers.
        part.quantiles.prepare(
            positiveRange: high >= 1e-300 ? smallestPositive...high : nil,
            negativeRange: low <= -1e-300 ? smallestNegative...(-low) : nil)
        let positiveBase = part.quantiles.positiveOffset
        let negativeBase = part.quantiles.negativeOffset
        // Counts go to one scratch array, slot 0 for tiny magnitudes, then the positive buckets, then the
        // negative ones: the slot is chosen with selects rather than branches, which mispredicted on data
        // whose signs are mixed.
        let positiveCount = part.quantiles.positive.count
        let negativeCount = part.quantiles.negative.count
        let scratch = UnsafeMutablePointer<UInt32>.allocate(capacity: 1 + positiveCount + negativeCount)
        scratch.initialize(repeating: 0, count: 1 + positiveCount + negativeCount)
        defer { scratch.deallocate() }
        let positiveStart = 1 &- positiveBase
        let negativeStart = 1 &+ positiveCount &- negativeBase
        values.withUnsafeBufferPointer { v in
            valid.withUnsafeBufferPointer { m in
                part.distinct.registers.withUnsafeMutableBufferPointer { registers in
                    for k in 0..<v.count where m[k] {
                        let x = v[k]
                        if x.isNaN { continue }
                        let d = x - mean
                        squares += d * d
                        let magnitude = abs(x)
                        let bucket = QuantileSketch.bucket(magnitude)
                        let signed = x > 0 ? positiveStart &+ bucket : negativeStart &+ bucket
                        let slot = magnitude < 1e-300 ? 0 : signed
                        scratch[slot] &+= 1
                        let hash = DistinctSketch.mix((x == 0 ? 0 : x).bitPattern)
                        let rank = UInt8(truncatingIfNeeded: ((hash << 12) | (1 << 11)).leadingZeroBitCount &+ 1)
                        let register = Int(truncatingIfNeeded: hash >> 52)
                        registers[register] = Swift.max(registers[register], rank)
                    }
                }
            }
        }
        let tiny = UInt64(scratch[0])
        for k in 0..<positiveCount { part.quantiles.positive[k] &+= UInt64(scratch[1 + k]) }
        for k in 0..<negativeCount { part.quantiles.negative[k] &+= UInt64(scratch[1 + positiveCount + k]) }
        part.quantiles.recordAdded(UInt64(n), zeros: tiny)
        part.mean = mean
        part.m2 = squares
        part.min = low
        part.max = high
        merge(part)
    }

    /// Adds another column's statistics (the same column, another chunk or shard).
    public mutating func merge(_ other: ColumnStatistics) {
        if type == .integer && other.type == .float { type = .float }
        let n = count + other.count
        if n > 0 {
            let delta = other.mean - mean
            mean += delta * Double(other.count) / Double(n)
            m2 += other.m2 + delta * delta * Double(count) * Double(other.count) / Double(n)
        }
        count = n
        missing += other.missing
        zeros += other.zeros
        if let low = other.min { min = Swift.min(min ?? low, low) }
        if let high = other.max { max = Swift.max(max ?? high, high) }
        quantiles.merge(other.quantiles)
        distinct.merge(other.distinct)
        for (value, n) in other.valueCounts { valueCounts[value, default: 0] += n }
        valueCountsPruned = valueCountsPruned || other.valueCountsPruned
        pruneValueCounts()
    }

    private mutating func pruneValueCounts() {
        guard valueCounts.count > Self.valueCountLimit else { return }
        let keep = valueCounts.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.prefix(Self.valueCountLimit / 2)
        valueCounts = Dictionary(uniqueKeysWithValues: keep.map { ($0.key, $0.value) })
        valueCountsPruned = true
    }

    /// `bins` equal-width bins between min and max with their (sketch-derived) counts.
    public func histogram(bins: Int = 20) -> [(low: Double, high: Double, count: Double)] {
        guard let low = min, let high = max, count > 0 else { return [] }
        if low == high { return [(low, high, Double(count))] }
        let width = (high - low) / Double(bins)
        var result: [(Double, Double, Double)] = []
        var previous = 0.0
        for k in 0..<bins {
            let edge = k == bins - 1 ? high : low + width * Double(k + 1)
            let cumulative = k == bins - 1 ? Double(quantiles.count) : quantiles.rank(of: edge)
            result.append((low + width * Double(k), edge, Swift.max(0, cumulative - previous)))
            previous = Swift.max(previous, cumulative)
        }
        return result
    }
}

/// Statistics of a whole dataset: rows and per-column statistics, mergeable chunk by chunk.
public struct DatasetStatistics: Codable, Sendable, Equatable {
    /// Rows seen.
    public var rows = 0
    /// Per-column statistics, in column order.
    public var columns: [ColumnStatistics] = []

    /// Empty statistics.
    public init() {}

    /// Statistics of a table.
    public init(_ table: Table) {
        rows = table.rowCount
        columns = table.columns.map(ColumnStatistics.init)
    }

    /// Adds another chunk's statistics (columns matched by position and name).
    public mutating func merge(_ other: DatasetStatistics) {
        if columns.isEmpty {
            self = other
            return
        }
        precondition(columns.map(\.name) == other.columns.map(\.name), "merging statistics of different columns")
        rows += other.rows
        for index in columns.indices { columns[index].merge(other.columns[index]) }
    }

    /// The statistics of a column by name.
    public subscript(name: String) -> ColumnStatistics? { columns.first { $0.name == name } }
}

/// The readable figures of a column's statistics (what `--json` prints), without the sketches' internals.
public struct ColumnSummary: Codable, Sendable, Equatable {
    public var name: String
    public var type: ColumnType
    public var count: Int
    public var missing: Int
    public var missingRate: Double
    public var mean: Double?
    public var standardDeviation: Double?
    public var min: Double?
    public var max: Double?
    public var zeros: Int?
    /// Quantiles by name (`p01`, `p05`, `p25`, `p50`, `p75`, `p95`, `p99`).
    public var quantiles: [String: Double]?
    public var distinct: Int
    /// The most frequent values, most frequent first.
    public var topValues: [ValueCount]?
    /// Twenty equal-width bins from min to max.
    public var histogram: [Bin]?

    /// A value and how often it occurs.
    public struct ValueCount: Codable, Sendable, Equatable {
        public var value: String
        public var count: Int
    }

    /// One histogram bin.
    public struct Bin: Codable, Sendable, Equatable {
        public var low: Double
        public var high: Double
        public var count: Double
    }

    /// The summary of `statistics`.
    public init(_ statistics: ColumnStatistics) {
        name = statistics.name
        type = statistics.type
        count = statistics.count
        missing = statistics.missing
        missingRate = statistics.missingRate
        distinct = statistics.distinctCount
        if type.isNumeric && statistics.count > 0 {
            mean = statistics.mean
            standardDeviation = statistics.standardDeviation
            min = statistics.min
            max = statistics.max
            zeros = statistics.zeros
            var named: [String: Double] = [:]
            for q in [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99] {
                named[String(format: "p%02d", Int((q * 100).rounded()))] = statistics.quantile(q)
            }
            quantiles = named
            histogram = statistics.histogram(bins: 20).map { Bin(low: $0.low, high: $0.high, count: $0.count) }
        } else {
            topValues = statistics.topValues(20).map { ValueCount(value: $0.value, count: $0.count) }
            if type == .boolean { zeros = statistics.zeros }
        }
    }
}
