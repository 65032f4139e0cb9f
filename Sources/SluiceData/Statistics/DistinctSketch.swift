import Foundation

/// A HyperLogLog distinct-count estimator with 4,096 registers: about 1.6% standard error, mergeable by
/// taking the larger register.
public struct DistinctSketch: Codable, Sendable, Equatable {
    static var precision: Int { 12 }
    var registers: [UInt8] = Array(repeating: 0, count: 1 << 12)

    /// An empty sketch.
    public init() {}

    /// A 64-bit hash with good avalanche (SplitMix64's finalizer).
    @inline(__always)
    public static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// FNV-1a then mixed: a hash of text.
    public static func hash(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        return mix(hash)
    }

    /// Adds an item by its hash.
    @inline(__always)
    public mutating func add(hash: UInt64) {
        let index = Int(hash >> UInt64(64 - Self.precision))
        let rest = (hash << UInt64(Self.precision)) | (1 << UInt64(Self.precision - 1))
        let rank = UInt8(rest.leadingZeroBitCount + 1)
        if registers[index] < rank { registers[index] = rank }
    }

    /// Adds the present values of a numeric column chunk (hashing each value's bits, with -0 as 0).
    public mutating func add(_ values: UnsafeBufferPointer<Double>, valid: UnsafeBufferPointer<Bool>) {
        registers.withUnsafeMutableBufferPointer { registers in
            for k in 0..<values.count where valid[k] {
                let x = values[k]
                let hash = Self.mix((x == 0 ? 0 : x).bitPattern)
                let index = Int(hash >> 52)
                let rank = UInt8(((hash << 12) | (1 << 11)).leadingZeroBitCount + 1)
                if registers[index] < rank { registers[index] = rank }
            }
        }
    }

    /// Adds every item of another sketch.
    public mutating func merge(_ other: DistinctSketch) {
        for index in registers.indices where other.registers[index] > registers[index] {
            registers[index] = other.registers[index]
        }
    }

    /// The estimated number of distinct items.
    public var estimate: Int {
        let m = Double(registers.count)
        var sum = 0.0
        var zeros = 0
        for register in registers {
            sum += 1 / Double(UInt64(1) << UInt64(register))
            if register == 0 { zeros += 1 }
        }
        let alpha = 0.7213 / (1 + 1.079 / m)
        let raw = alpha * m * m / sum
        if raw <= 2.5 * m && zeros > 0 { return Int((m * log(m / Double(zeros))).rounded()) }  // linear counting
        return Int(raw.rounded())
    }
}
