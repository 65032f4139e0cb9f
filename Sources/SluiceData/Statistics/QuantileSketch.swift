/// A mergeable quantile sketch with relative accuracy, in the manner of DDSketch: values fall into
/// logarithmic buckets read straight from the bits of the double (exponent and the top 7 mantissa bits), so
/// inserting is a few integer operations, and merging adds bucket counts.
///
/// Any quantile it reports is within 0.4% (relative) of a value whose rank is the requested one, whether
/// the sketch was built in one pass or merged from many chunks: bucketing does not depend on order.
public struct QuantileSketch: Codable, Sendable, Equatable {
    /// Bits of mantissa kept: buckets are 2⁻⁷ wide in relative terms.
    // Computed, not stored: a stored static costs a `swift_once` check on every use in the hot loop.
    static var mantissaBits: Int { 7 }
    /// The relative accuracy of reported quantiles (half a bucket).
    public static var relativeAccuracy: Double { 1.0 / Double(1 << (mantissaBits + 1)) }

    /// Counts of positive values by bucket, starting at `positiveOffset`.
    var positive: [UInt64] = []
    private(set) var positiveOffset = 0
    /// Counts of negative values (by magnitude) by bucket, starting at `negativeOffset`.
    var negative: [UInt64] = []
    private(set) var negativeOffset = 0
    /// Values of magnitude below 1e-300 (and zero).
    var zeros: UInt64 = 0
    /// Values in all.
    public private(set) var count: UInt64 = 0

    /// An empty sketch.
    public init() {}

    @inline(__always)
    static func bucket(_ magnitude: Double) -> Int {
        Int(truncatingIfNeeded: magnitude.bitPattern >> UInt64(52 - mantissaBits))
    }

    /// The value at the centre of a bucket.
    static func value(ofBucket index: Int) -> Double {
        let low = Double(bitPattern: UInt64(index) << UInt64(52 - mantissaBits))
        let high = Double(bitPattern: UInt64(index + 1) << UInt64(52 - mantissaBits))
        return (low + high) / 2
    }

    /// Adds a value (NaN is ignored).
    @inline(__always)
    public mutating func add(_ value: Double) {
        let magnitude = abs(value)
        guard !value.isNaN else { return }
        count += 1
        if magnitude < 1e-300 {
            zeros += 1
        } else if value > 0 {
            Self.increment(&positive, &positiveOffset, Self.bucket(magnitude), by: 1)
        } else {
            Self.increment(&negative, &negativeOffset, Self.bucket(magnitude), by: 1)
        }
    }

    @inline(__always)
    static func increment(_ counts: inout [UInt64], _ offset: inout Int, _ index: Int, by amount: UInt64) {
        if counts.isEmpty {
            offset = index
            counts = [amount]
            return
        }
        if index >= offset && index < offset + counts.count {
            counts[index - offset] &+= amount
            return
        }
        if index < offset {
            counts.insert(contentsOf: repeatElement(0, count: offset - index), at: 0)
            offset = index
        } else {
            counts.append(contentsOf: repeatElement(0, count: index - offset - counts.count + 1))
        }
        counts[index - offset] &+= amount
    }

    /// Adds the present values of a column chunk: sizes the bucket arrays once, then counts without checks.
    /// - Parameter ranges: the smallest and largest magnitudes of the positive and of the negative values
    ///   (any `>= 1e-300`), which size the bucket arrays before counting.
    public mutating func add(
        _ values: UnsafeBufferPointer<Double>, valid: UnsafeBufferPointer<Bool>,
        positiveRange: ClosedRange<Double>?, negativeRange: ClosedRange<Double>?
    ) {
        var lowPositive = Int.max
        var highPositive = Int.min
        var lowNegative = Int.max
        var highNegative = Int.min
        var added: UInt64 = 0
        var zeroCount: UInt64 = 0
        if let range = positiveRange {
            lowPositive = Self.bucket(range.lowerBound)
            highPositive = Self.bucket(range.upperBound)
        }
        if let range = negativeRange {
            lowNegative = Self.bucket(range.lowerBound)
            highNegative = Self.bucket(range.upperBound)
        }
        if lowPositive <= highPositive {
            Self.increment(&positive, &positiveOffset, lowPositive, by: 0)
            Self.increment(&positive, &positiveOffset, highPositive, by: 0)
        }
        if lowNegative <= highNegative {
            Self.increment(&negative, &negativeOffset, lowNegative, by: 0)
            Self.increment(&negative, &negativeOffset, highNegative, by: 0)
        }
        let positiveBase = positiveOffset
        let negativeBase = negativeOffset
        positive.withUnsafeMutableBufferPointer { pos in
            negative.withUnsafeMutableBufferPointer { neg in
                for k in 0..<values.count where valid[k] {
                    let x = values[k]
                    if x.isNaN { continue }
                    added &+= 1
                    let magnitude = abs(x)
                    if magnitude < 1e-300 {
                        zeroCount &+= 1
                    } else if x > 0 {
                        pos[Self.bucket(magnitude) - positiveBase] &+= 1
                    } else {
                        neg[Self.bucket(magnitude) - negativeBase] &+= 1
                    }
                }
            }
        }
        count += added
        zeros += zeroCount
    }

    /// Sizes the bucket arrays to hold values with these magnitudes (so a caller can count without checks).
    mutating func prepare(positiveRange: ClosedRange<Double>?, negativeRange: ClosedRange<Double>?) {
        if let range = positiveRange {
            Self.increment(&positive, &positiveOffset, Self.bucket(range.lowerBound), by: 0)
            Self.increment(&positive, &positiveOffset, Self.bucket(range.upperBound), by: 0)
        }
        if let range = negativeRange {
            Self.increment(&negative, &negativeOffset, Self.bucket(range.lowerBound), by: 0)
            Self.increment(&negative, &negativeOffset, Self.bucket(range.upperBound), by: 0)
        }
    }

    /// Accounts for values a caller counted into the buckets directly (`zeros` of them below 1e-300).
    mutating func recordAdded(_ values: UInt64, zeros: UInt64) {
        count += values
        self.zeros += zeros
    }

    /// Adds every value of another sketch.
    public mutating func merge(_ other: QuantileSketch) {
        for (k, c) in other.positive.enumerated() where c > 0 {
            Self.increment(&positive, &positiveOffset, other.positiveOffset + k, by: c)
        }
        for (k, c) in other.negative.enumerated() where c > 0 {
            Self.increment(&negative, &negativeOffset, other.negativeOffset + k, by: c)
        }
        zeros += other.zeros
        count += other.count
    }

    /// The value at quantile `q` (0…1), or `nil` when empty.
    public func quantile(_ q: Double) -> Double? {
        guard count > 0 else { return nil }
        let rank = UInt64((min(max(q, 0), 1) * Double(count - 1)).rounded(.down))
        var seen: UInt64 = 0
        // Negative values from the most negative (largest magnitude) up.
        for k in stride(from: negative.count - 1, through: 0, by: -1) where negative[k] > 0 {
            seen += negative[k]
            if seen > rank { return -Self.value(ofBucket: negativeOffset + k) }
        }
        seen += zeros
        if seen > rank { return 0 }
        for (k, c) in positive.enumerated() where c > 0 {
            seen += c
            if seen > rank { return Self.value(ofBucket: positiveOffset + k) }
        }
        return Self.value(ofBucket: positiveOffset + positive.count - 1)
    }

    /// How many values are at most `x` (exact up to the bucket containing `x`, which counts half).
    public func rank(of x: Double) -> Double {
        var below = 0.0
        for (k, c) in negative.enumerated() where c > 0 {
            let v = -Self.value(ofBucket: negativeOffset + k)
            if v < x { below += Double(c) } else if v == x { below += Double(c) / 2 }
        }
        if x > 0 { below += Double(zeros) } else if x == 0 { below += Double(zeros) / 2 }
        for (k, c) in positive.enumerated() where c > 0 {
            let v = Self.value(ofBucket: positiveOffset + k)
            if v < x { below += Double(c) } else if v == x { below += Double(c) / 2 }
        }
        return below
    }
}
