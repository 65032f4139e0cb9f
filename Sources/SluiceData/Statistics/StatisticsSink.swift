import Foundation

/// Growable bucket counts over a window of bucket indices, for ``NumericAccumulator``.
struct BucketCounts {
    var counts: UnsafeMutablePointer<UInt32>
    var low = 0
    var capacity = 0

    init() { counts = .allocate(capacity: 1) }

    @inline(__always)
    mutating func increment(_ bucket: Int) {
        let index = bucket &- low
        if UInt(bitPattern: index) < UInt(capacity) {
            counts[index] &+= 1
        } else {
            grow(toInclude: bucket)
            counts[bucket &- low] &+= 1
        }
    }

    private mutating func grow(toInclude bucket: Int) {
        let newLow = capacity == 0 ? bucket - 64 : min(low, bucket - 64)
        let newHigh = capacity == 0 ? bucket + 64 : max(low + capacity, bucket + 65)
        let larger = UnsafeMutablePointer<UInt32>.allocate(capacity: newHigh - newLow)
        larger.initialize(repeating: 0, count: newHigh - newLow)
        if capacity > 0 { (larger + (low - newLow)).update(from: counts, count: capacity) }
        counts.deallocate()
        counts = larger
        low = newLow
        capacity = newHigh - newLow
    }

    /// The smallest and largest buckets counted.
    var occupied: ClosedRange<Int>? {
        guard let first = (0..<capacity).first(where: { counts[$0] > 0 }),
            let last = (0..<capacity).last(where: { counts[$0] > 0 })
        else { return nil }
        return (low + first)...(low + last)
    }

    func deallocate() { counts.deallocate() }
}

/// One numeric column's statistics, updated value by value while a piece is parsed: shifted sums for the moments
/// (one pass, no mean needed first), extremes, zeros, quantile-sketch buckets and distinct-count registers.
struct NumericAccumulator {
    var count = 0
    var missing = 0
    var zeros = 0
    var shift = 0.0
    var sum = 0.0  // Σ (x − shift)
    var squares = 0.0  // Σ (x − shift)²
    var low = Double.infinity
    var high = -Double.infinity
    var tiny: UInt64 = 0
    var positive = BucketCounts()
    var negative = BucketCounts()
    let registers: UnsafeMutablePointer<UInt8>

    init() {
        registers = .allocate(capacity: 1 << DistinctSketch.precision)
        registers.initialize(repeating: 0, count: 1 << DistinctSketch.precision)
    }

    @inline(__always)
    mutating func add(_ x: Double) {
        if x.isNaN {
            missing &+= 1
            return
        }
        if count == 0 { shift = x }
        count &+= 1
        let d = x - shift
        sum += d
        squares += d * d
        low = Swift.min(low, x)
        high = Swift.max(high, x)
        zeros &+= x == 0 ? 1 : 0
        let magnitude = abs(x)
        if magnitude < 1e-300 {
            tiny &+= 1
        } else if x > 0 {
            positive.increment(QuantileSketch.bucket(magnitude))
        } else {
            negative.increment(QuantileSketch.bucket(magnitude))
        }
        let hash = DistinctSketch.mix((x == 0 ? 0 : x).bitPattern)
        let rank = UInt8(truncatingIfNeeded: ((hash << 12) | (1 << 11)).leadingZeroBitCount &+ 1)
        let slot = Int(truncatingIfNeeded: hash >> 52)
        registers[slot] = Swift.max(registers[slot], rank)
    }

    /// The accumulated values as column statistics.
    func statistics(name: String, type: ColumnType) -> ColumnStatistics {
        var result = ColumnStatistics(name: name, type: type)
        result.count = count
        result.missing = missing
        result.zeros = zeros
        guard count > 0 else { return result }
        let n = Double(count)
        result.mean = shift + sum / n
        result.m2 = Swift.max(0, squares - sum * sum / n)
        result.min = low
        result.max = high
        let positiveRange = positive.occupied
        let negativeRange = negative.occupied
        result.quantiles.prepare(
            positiveRange: positiveRange.map {
                QuantileSketch.value(ofBucket: $0.lowerBound)...QuantileSketch.value(ofBucket: $0.upperBound)
            },
            negativeRange: negativeRange.map {
                QuantileSketch.value(ofBucket: $0.lowerBound)...QuantileSketch.value(ofBucket: $0.upperBound)
            })
        if let range = positiveRange {
            let offset = result.quantiles.positiveOffset
            for bucket in range {
                result.quantiles.positive[bucket - offset] &+= UInt64(positive.counts[bucket - positive.low])
            }
        }
        if let range = negativeRange {
            let offset = result.quantiles.negativeOffset
            for bucket in range {
                result.quantiles.negative[bucket - offset] &+= UInt64(negative.counts[bucket - negative.low])
            }
        }
        result.quantiles.recordAdded(UInt64(count), zeros: tiny)
        for k in 0..<(1 << DistinctSketch.precision) { result.distinct.registers[k] = registers[k] }
        return result
    }

    func deallocate() {
        positive.deallocate()
        negative.deallocate()
        registers.deallocate()
    }
}

/// Computes statistics while a piece is parsed, without building a table: numeric fields update their column's
/// accumulator when their row ends (so a rejected row leaves no trace), text and boolean columns are collected
/// as usual and summarized at the end.
struct StatisticsSink: ChunkSink {
    private let names: [String]
    private let types: [ColumnType]
    private let numeric: [Bool]
    private let accumulators: UnsafeMutablePointer<NumericAccumulator>
    private let builders: UnsafeMutablePointer<ColumnBuilder>
    private let row: UnsafeMutablePointer<Double>
    private let isWidened: UnsafeMutablePointer<Bool>
    let missing: MissingTokens
    var rows = 0
    var rejection: (problem: String, fix: String)?

    init(names: [String], types: [ColumnType], missing: MissingTokens, capacity: Int) {
        self.names = names
        self.types = types
        numeric = types.map { $0 == .float || $0 == .integer || $0 == .timestamp }
        let count = max(names.count, 1)
        accumulators = .allocate(capacity: count)
        builders = .allocate(capacity: count)
        row = .allocate(capacity: count)
        isWidened = .allocate(capacity: count)
        isWidened.initialize(repeating: false, count: count)
        for (k, type) in types.enumerated() {
            (accumulators + k).initialize(to: NumericAccumulator())
            // Only text and boolean columns keep their values; numeric ones get an empty builder.
            (builders + k).initialize(
                to: ColumnBuilder(name: names[k], type: type, capacity: numeric[k] ? 0 : capacity))
        }
        self.missing = missing
    }

    var widened: [Bool] { (0..<names.count).map { isWidened[$0] } }

    @inline(__always)
    mutating func field(_ index: Int, _ p: UnsafePointer<UInt8>, _ count: Int) -> Bool {
        if numeric[index] {
            switch types[index] {
            case .float:
                if count > 0, let value = FieldParsing.double(p, count) {
                    row[index] = value
                    return true
                }
            case .integer:
                if count > 0, let value = FieldParsing.integer(p, count) {
                    row[index] = Double(value)
                    return true
                }
                if count > 0, !missing.contains(p, count), let value = FieldParsing.double(p, count) {
                    isWidened[index] = true
                    row[index] = value
                    return true
                }
            default:
                if count > 0, let value = FieldParsing.timestamp(p, count) {
                    row[index] = Double(value)
                    return true
                }
            }
            if missing.contains(p, count) {
                row[index] = .nan
                return true
            }
            rejection = BuilderSink.rejection(column: names[index], type: types[index], text: p, count: count)
            return false
        }
        if builders[index].append(p, count, missing: missing) { return true }
        rejection = BuilderSink.rejection(column: names[index], type: types[index], text: p, count: count)
        return false
    }

    @inline(__always)
    mutating func endRow(fields: Int) -> Bool {
        for k in 0..<names.count where numeric[k] { accumulators[k].add(row[k]) }
        rows += 1
        return true
    }

    mutating func dropRow() {
        for k in 0..<names.count where !numeric[k] { builders[k].truncate(to: rows) }
    }

    /// The piece's statistics (nil when it had no rows); frees everything the sink holds.
    func finish() -> DatasetStatistics? {
        var result: DatasetStatistics?
        if rows > 0 {
            var statistics = DatasetStatistics()
            statistics.rows = rows
            statistics.columns = (0..<names.count).map { k in
                if numeric[k] {
                    let type = types[k] == .integer && isWidened[k] ? ColumnType.float : types[k]
                    return accumulators[k].statistics(name: names[k], type: type)
                }
                return ColumnStatistics(builders[k].build())
            }
            result = statistics
        }
        for k in 0..<names.count {
            accumulators[k].deallocate()
            builders[k].release()
        }
        accumulators.deinitialize(count: names.count)
        accumulators.deallocate()
        builders.deinitialize(count: names.count)
        builders.deallocate()
        row.deallocate()
        isWidened.deallocate()
        return result
    }
}
