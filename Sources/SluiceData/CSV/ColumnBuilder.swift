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

/// A growable buffer of plain values without copy-on-write checks: the parser appends tens of millions of fields,
/// and `Array.append`'s uniqueness check and out-of-line growth path showed up as a tenth of the parse time.
/// Owned by one ``ColumnBuilder``; ``ColumnBuilder/release()`` frees it.
struct RawBuffer<Element: BitwiseCopyable> {
    private(set) var base: UnsafeMutablePointer<Element>
    private(set) var count = 0
    private var capacity: Int

    init(capacity: Int) {
        self.capacity = max(capacity, 16)
        base = .allocate(capacity: self.capacity)
    }

    @inline(__always)
    mutating func append(_ value: Element) {
        if count == capacity { grow() }
        base[count] = value
        count &+= 1
    }

    private mutating func grow() {
        let larger = UnsafeMutablePointer<Element>.allocate(capacity: capacity * 2)
        larger.update(from: base, count: count)
        base.deallocate()
        base = larger
        capacity *= 2
    }

    mutating func removeLast(_ n: Int) { count -= n }

    func array() -> [Element] { Array(UnsafeBufferPointer(start: base, count: count)) }

    func deallocate() { base.deallocate() }
}

/// Accumulates one column's values while rows are parsed, in raw buffers (see ``RawBuffer``); ``build()``
/// copies them into a ``Column`` and ``release()`` frees them.
struct ColumnBuilder {
    var name: String
    var type: ColumnType
    var doubles: RawBuffer<Double>
    var integers: RawBuffer<Int64>
    var booleans: RawBuffer<Bool>
    var codes: RawBuffer<Int32>
    var valid: RawBuffer<Bool>
    var dictionary = StringDictionaryBuilder()
    /// Whether an integer column met a non-integer number and was widened to float.
    var widened = false

    init(name: String, type: ColumnType, capacity: Int) {
        self.name = name
        self.type = type
        doubles = RawBuffer(capacity: type == .float ? capacity : 0)
        integers = RawBuffer(capacity: type == .integer || type == .timestamp ? capacity : 0)
        booleans = RawBuffer(capacity: type == .boolean ? capacity : 0)
        codes = RawBuffer(capacity: type == .string ? capacity : 0)
        valid = RawBuffer(capacity: type != .string ? capacity : 0)
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
        doubles.deallocate()
        doubles = RawBuffer(capacity: integers.count * 2)
        for k in 0..<integers.count { doubles.append(Double(integers.base[k])) }
        integers.removeLast(integers.count)
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
        case .float: Column(name: name, storage: .float(doubles.array(), valid: valid.array()))
        case .integer: Column(name: name, storage: .integer(integers.array(), valid: valid.array()))
        case .boolean: Column(name: name, storage: .boolean(booleans.array(), valid: valid.array()))
        case .timestamp: Column(name: name, storage: .timestamp(integers.array(), valid: valid.array()))
        case .string: Column(name: name, storage: .string(codes: codes.array(), dictionary: dictionary.values))
        }
    }

    /// Frees the buffers; the builder must not be used afterwards.
    func release() {
        doubles.deallocate()
        integers.deallocate()
        booleans.deallocate()
        codes.deallocate()
        valid.deallocate()
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
