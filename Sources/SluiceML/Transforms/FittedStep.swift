import Foundation

/// A raw input value, as a serving request or a table row carries it.
public enum RawValue: Sendable, Equatable, Hashable {
    /// A number (booleans are 1 and 0). NaN is missing.
    case number(Double)
    /// A text.
    case text(String)
    /// No value.
    case missing
}

/// A value between steps of a feature chain.
enum StepValue: Equatable {
    case number(Double)  // NaN is missing
    case token(String?)  // nil is missing
    case category(Int32)  // -1 is none

    /// Whether the value is missing (no text, NaN, no category).
    var isMissing: Bool {
        switch self {
        case .number(let x): x.isNaN
        case .token(let text): text == nil
        case .category(let k): k < 0
        }
    }
}

/// A step with everything it learned from the training data. The same `apply` functions run when fitting,
/// transforming a training table and answering a single serving row, so the paths cannot drift apart.
enum FittedStep: Codable, Sendable, Equatable {
    case fillNumber(Double)
    case fillToken(String)
    /// `(x − center) / divisor`.
    case scale(center: Double, divisor: Double)
    case log(offset: Double)
    /// Category = number of cuts ≤ x.
    case bucketize(cuts: [Double])
    /// Vocabulary index, or `count + hash % oovBuckets` for other values.
    case vocabulary(tokens: [String], oovBuckets: Int)
    case hash(buckets: Int)

    /// Whether the step takes and gives a number.
    var isNumeric: Bool {
        switch self {
        case .fillNumber, .scale, .log: true
        default: false
        }
    }

    @inline(__always)
    func applyNumber(_ x: Double) -> Double {
        switch self {
        case .fillNumber(let value): return x.isNaN ? value : x
        case .scale(let center, let divisor): return (x - center) / divisor
        case .log(let offset):
            let shifted = x + offset
            return shifted > 0 ? Foundation.log(shifted) : .nan
        default: preconditionFailure("not a numeric step")
        }
    }

    @inline(__always)
    static func bucket(_ x: Double, cuts: [Double]) -> Int32 {
        if x.isNaN { return -1 }
        var low = 0
        var high = cuts.count
        while low < high {
            let mid = (low + high) / 2
            if cuts[mid] <= x { low = mid + 1 } else { high = mid }
        }
        return Int32(low)
    }

    func apply(_ value: StepValue, lookup: [String: Int32]?) -> StepValue {
        switch (self, value) {
        case (.fillToken(let fill), .token(nil)): return .token(fill)
        case (.fillToken, _): return value
        case (.fillNumber, .number(let x)), (.scale, .number(let x)), (.log, .number(let x)):
            return .number(applyNumber(x))
        case (.bucketize(let cuts), .number(let x)): return .category(Self.bucket(x, cuts: cuts))
        case (.vocabulary(let tokens, let oov), _):
            guard let token = Self.token(value) else { return .category(-1) }
            if let index = lookup?[token] { return .category(index) }
            return .category(oov == 0 ? -1 : Int32(tokens.count) + Int32(stableHash(token) % UInt64(oov)))
        case (.hash(let buckets), _):
            guard let token = Self.token(value) else { return .category(-1) }
            return .category(Int32(stableHash(token) % UInt64(buckets)))
        default:
            preconditionFailure("a fitted step got a value of the wrong kind: \(self) on \(value)")
        }
    }

    /// The text of a value for vocabularies and hashing: numbers as whole numbers when they are whole.
    static func token(_ value: StepValue) -> String? {
        switch value {
        case .token(let text): return text
        case .number(let x):
            if x.isNaN { return nil }
            if x == x.rounded(), abs(x) < 1e15 { return String(Int64(x)) }
            return String(x)
        case .category(let k): return k < 0 ? nil : String(k)
        }
    }
}

/// 64-bit FNV-1a over UTF-8 bytes: stable across runs, machines and Swift versions (unlike `Hasher`).
func stableHash(_ text: String) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in text.utf8 {
        hash ^= UInt64(byte)
        hash = hash &* 0x100_0000_01b3
    }
    return hash
}

/// FNV-1a over category indices, for crosses.
func stableHash(_ values: [Int32]) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for value in values {
        for shift in stride(from: 0, to: 32, by: 8) {
            hash ^= UInt64(UInt32(bitPattern: value) >> UInt32(shift) & 0xff)
            hash = hash &* 0x100_0000_01b3
        }
    }
    return hash
}
