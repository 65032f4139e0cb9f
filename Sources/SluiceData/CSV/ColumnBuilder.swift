import Foundation

/// Dictionary-encodes strings straight from bytes: an open-addressing table keyed by FNV-1a hashes, so a
/// repeated category costs a hash and a `memcmp`, not a `String`.
struct StringDictionaryBuilder {
    private(set) var values: [String] = []
    private var keys: [[UInt8]] = []
    private var hashes: [UInt64] = []
    private var slots: [Int32] = Array(repeating: -1, count: 64)

    /// The code of `bytes`, adding it when new; `nil` when the bytes are not valid UTF-8.
    mutating func code(_ p: UnsafePointer<UInt8>, _ count: Int) -> Int32? {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for k in 0..<count {
            hash = (hash ^ UInt64(p[k])) &* 0x0000_0100_0000_01B3
        }
        let mask = slots.count - 1
        var slot = Int(truncatingIfNeeded: hash ^ (hash >> 29)) & mask
        while true {
            let code = slots[slot]
            if code < 0 { break }
            if hashes[Int(code)] == hash {
                let equal = keys[Int(code)].withUnsafeBufferPointer { key in
                    key.count == count && (count == 0 || memcmp(key.baseAddress!, p, count) == 0)
                }
                if equal { return code }
            }
            slot = (slot + 1) & mask
        }
        let buffer = UnsafeBufferPointer(start: p, count: count)
        guard let text = String(validating: buffer, as: UTF8.self) else { return nil }
        let code = Int32(values.count)
        values.append(text)
        keys.append(Array(buffer))
        hashes.append(hash)
        slots[slot] = code
        if values.count * 2 > slots.count { grow() }
        return code
    }

    private mutating func grow() {
        slots = Array(repeating: -1, count: slots.count * 2)
        let mask = slots.count - 1
        for (code, hash) in hashes.enumerated() {
            var slot = Int(truncatingIfNeeded: hash ^ (hash >> 29)) & mask
            while slots[slot] >= 0 { slot = (slot + 1) & mask }
            slots[slot] = Int32(code)
        }
    }
}

/// Accumulates one column's values while rows are parsed.
struct ColumnBuilder {
    var name: String
    var type: ColumnType
    var doubles: [Double] = []
    var integers: [Int64] = []
    var booleans: [Bool] = []
    var codes: [Int32] = []
    var valid: [Bool] = []
    var dictionary = StringDictionaryBuilder()
    /// Whether an integer column met a non-integer number and was widened to float.
    var widened = false

    init(name: String, type: ColumnType, capacity: Int) {
        self.name = name
        self.type = type
        switch type {
        case .float: doubles.reserveCapacity(capacity)
        case .integer, .timestamp: integers.reserveCapacity(capacity)
        case .boolean: booleans.reserveCapacity(capacity)
        case .string: codes.reserveCapacity(capacity)
        }
        if type != .string { valid.reserveCapacity(capacity) }
    }

    var count: Int { type == .string ? codes.count : valid.count }

    /// Appends a field; `false` when the text is not a value of the column's type (nor a missing token).
    @inline(__always)
    mutating func append(_ p: UnsafePointer<UInt8>, _ n: Int, missing: MissingTokens) -> Bool {
        switch type {
        case .float:
            if n > 0, let value = FieldParsing.double(p, n) {
                doubles.append(value)
                valid.append(true)
                return true
            }
            guard missing.contains(p, n) else { return false }
            doubles.append(0)
            valid.append(false)
            return true
        case .integer:
            if n > 0, let value = FieldParsing.integer(p, n) {
                integers.append(value)
                valid.append(true)
                return true
            }
            if missing.contains(p, n) {
                integers.append(0)
                valid.append(false)
                return true
            }
            guard let value = FieldParsing.double(p, n) else { return false }
            widenToFloat()
            doubles.append(value)
            valid.append(true)
            return true
        case .boolean:
            if let value = FieldParsing.boolean(p, n) {
                booleans.append(value)
                valid.append(true)
                return true
            }
            guard missing.contains(p, n) else { return false }
            booleans.append(false)
            valid.append(false)
            return true
        case .timestamp:
            if n > 0, let value = FieldParsing.timestamp(p, n) {
                integers.append(value)
                valid.append(true)
                return true
            }
            guard missing.contains(p, n) else { return false }
            integers.append(0)
            valid.append(false)
            return true
        case .string:
            if missing.contains(p, n) {
                codes.append(-1)
                return true
            }
            guard let code = dictionary.code(p, n) else { return false }
            codes.append(code)
            return true
        }
    }

    /// Integers met a fractional number: from here on this column is float.
    mutating func widenToFloat() {
        doubles = integers.map(Double.init)
        doubles.reserveCapacity(integers.capacity)
        integers = []
        type = .float
        widened = true
    }

    /// Drops rows from `count` on (a bad row's already appended fields).
    mutating func truncate(to count: Int) {
        guard self.count > count else { return }
        switch type {
        case .float: doubles.removeLast(doubles.count - count)
        case .integer, .timestamp: integers.removeLast(integers.count - count)
        case .boolean: booleans.removeLast(booleans.count - count)
        case .string: codes.removeLast(codes.count - count)
        }
        if type != .string { valid.removeLast(valid.count - count) }
    }

    func build() -> Column {
        switch type {
        case .float: Column(name: name, storage: .float(doubles, valid: valid))
        case .integer: Column(name: name, storage: .integer(integers, valid: valid))
        case .boolean: Column(name: name, storage: .boolean(booleans, valid: valid))
        case .timestamp: Column(name: name, storage: .timestamp(integers, valid: valid))
        case .string: Column(name: name, storage: .string(codes: codes, dictionary: dictionary.values))
        }
    }
}

/// The missing-value tokens as bytes, checked cheaply (an empty field is always missing).
struct MissingTokens: Sendable {
    let tokens: [[UInt8]]
    /// Bit `n` is set when some token has `n` bytes (tokens of 64 bytes or more set bit 63).
    let lengths: UInt64

    init(_ values: Set<String>) {
        tokens = values.map { Array($0.utf8) }.filter { !$0.isEmpty }
        lengths = tokens.reduce(0) { $0 | (1 << UInt64(min($1.count, 63))) }
    }

    @inline(__always)
    func contains(_ p: UnsafePointer<UInt8>, _ n: Int) -> Bool {
        if n == 0 { return true }
        guard lengths & (1 << UInt64(min(n, 63))) != 0 else { return false }
        for token in tokens where token.count == n {
            if token.withUnsafeBufferPointer({ memcmp($0.baseAddress!, p, n) }) == 0 { return true }
        }
        return false
    }
}
