import Foundation
import SluiceData

extension Column {
    /// Rows `rows` of this column in that order; `-1` gives a missing value. String dictionaries are shared.
    func gathered(_ rows: [Int32], as name: String? = nil) -> Column {
        let name = name ?? self.name
        func pick<T>(_ values: [T], _ valid: [Bool], _ zero: T) -> ([T], [Bool]) {
            var out = [T](repeating: zero, count: rows.count)
            var ok = [Bool](repeating: false, count: rows.count)
            for (k, row) in rows.enumerated() where row >= 0 {
                out[k] = values[Int(row)]
                ok[k] = valid[Int(row)]
            }
            return (out, ok)
        }
        switch storage {
        case .float(let v, let m):
            let (a, b) = pick(v, m, 0)
            return Column(name: name, storage: .float(a, valid: b))
        case .integer(let v, let m):
            let (a, b) = pick(v, m, 0)
            return Column(name: name, storage: .integer(a, valid: b))
        case .timestamp(let v, let m):
            let (a, b) = pick(v, m, 0)
            return Column(name: name, storage: .timestamp(a, valid: b))
        case .boolean(let v, let m):
            let (a, b) = pick(v, m, false)
            return Column(name: name, storage: .boolean(a, valid: b))
        case .string(let codes, let dictionary):
            var out = [Int32](repeating: -1, count: rows.count)
            for (k, row) in rows.enumerated() where row >= 0 { out[k] = codes[Int(row)] }
            return Column(name: name, storage: .string(codes: out, dictionary: dictionary))
        }
    }

    /// This column as `type`: integers widen to floats; anything else is returned as it is.
    func conformed(to type: ColumnType) -> Column {
        guard type == .float, case .integer(let values, let valid) = storage else { return self }
        return Column(name: name, storage: .float(values.map(Double.init), valid: valid))
    }

    /// An all-missing column of `type`.
    static func missing(_ name: String, _ type: ColumnType, count: Int) -> Column {
        let none = [Bool](repeating: false, count: count)
        switch type {
        case .float: return Column(name: name, storage: .float([Double](repeating: 0, count: count), valid: none))
        case .integer: return Column(name: name, storage: .integer([Int64](repeating: 0, count: count), valid: none))
        case .timestamp:
            return Column(name: name, storage: .timestamp([Int64](repeating: 0, count: count), valid: none))
        case .boolean: return Column(name: name, storage: .boolean([Bool](repeating: false, count: count), valid: none))
        case .string:
            return Column(name: name, storage: .string(codes: [Int32](repeating: -1, count: count), dictionary: []))
        }
    }

    /// Interleaves `parts` (one per bucket) row by row as `selector` says: row k comes from part `selector[k]`, each
    /// part read front to back. String dictionaries are merged.
    static func interleaving(_ parts: [Column], selector: [UInt16], name: String, type: ColumnType) -> Column {
        var next = [Int](repeating: 0, count: parts.count)
        func weave<T>(_ zero: T, _ read: (Column) -> ([T], [Bool])) -> ([T], [Bool]) {
            let inputs = parts.map(read)
            var values = [T](repeating: zero, count: selector.count)
            var valid = [Bool](repeating: false, count: selector.count)
            for (k, part) in selector.enumerated() {
                let p = Int(part)
                values[k] = inputs[p].0[next[p]]
                valid[k] = inputs[p].1[next[p]]
                next[p] += 1
            }
            return (values, valid)
        }
        switch type {
        case .float:
            let (v, m) = weave(0.0) { part -> ([Double], [Bool]) in
                switch part.storage {
                case .float(let v, let m): (v, m)
                case .integer(let v, let m): (v.map(Double.init), m)
                default: ([Double](repeating: 0, count: part.count), [Bool](repeating: false, count: part.count))
                }
            }
            return Column(name: name, storage: .float(v, valid: m))
        case .integer, .timestamp:
            let (v, m) = weave(Int64(0)) { part -> ([Int64], [Bool]) in
                switch part.storage {
                case .integer(let v, let m), .timestamp(let v, let m): (v, m)
                default: ([Int64](repeating: 0, count: part.count), [Bool](repeating: false, count: part.count))
                }
            }
            return Column(name: name, storage: type == .integer ? .integer(v, valid: m) : .timestamp(v, valid: m))
        case .boolean:
            let (v, m) = weave(false) { part -> ([Bool], [Bool]) in
                if case .boolean(let v, let m) = part.storage { return (v, m) }
                return ([Bool](repeating: false, count: part.count), [Bool](repeating: false, count: part.count))
            }
            return Column(name: name, storage: .boolean(v, valid: m))
        case .string:
            var dictionary: [String] = []
            var index: [String: Int32] = [:]
            let remapped = parts.map { part -> [Int32] in
                guard case .string(let codes, let words) = part.storage else {
                    return [Int32](repeating: -1, count: part.count)
                }
                let map = words.map { word -> Int32 in
                    if let code = index[word] { return code }
                    let code = Int32(dictionary.count)
                    dictionary.append(word)
                    index[word] = code
                    return code
                }
                return codes.map { $0 >= 0 ? map[Int($0)] : -1 }
            }
            var codes = [Int32](repeating: -1, count: selector.count)
            for (k, part) in selector.enumerated() {
                let p = Int(part)
                codes[k] = remapped[p][next[p]]
                next[p] += 1
            }
            return Column(name: name, storage: .string(codes: codes, dictionary: dictionary))
        }
    }
}

/// Join keys as 64-bit integers: a single integer key as it is; string and composite keys interned (the same text
/// gets the same number on both sides of a join), with a content hash for bucketing that does not depend on the
/// process.
final class KeyEncoder: @unchecked Sendable {
    // @unchecked: used from one thread at a time (the partitioning pass).
    let columns: [String]
    let integer: Bool
    private var ids: [String: Int64] = [:]
    /// FNV-1a of each interned key's text, by ID.
    private(set) var hashes: [UInt64] = []

    init(columns: [String], integer: Bool) {
        self.columns = columns
        self.integer = integer
    }

    /// The keys of `table`'s rows and whether each is present (every key column has a value).
    func keys(of table: Table) -> (keys: [Int64], present: [Bool]) {
        let count = table.rowCount
        let parts = columns.map { table[$0]! }
        if integer, parts.count == 1, case .integer(let values, let valid) = parts[0].storage {
            return (values, valid)
        }
        if parts.count == 1, case .string(let codes, let dictionary) = parts[0].storage {
            let map = dictionary.map(intern)
            var keys = [Int64](repeating: 0, count: count)
            var present = [Bool](repeating: false, count: count)
            for row in 0..<count where codes[row] >= 0 {
                keys[row] = map[Int(codes[row])]
                present[row] = true
            }
            return (keys, present)
        }
        var keys = [Int64](repeating: 0, count: count)
        var present = [Bool](repeating: false, count: count)
        for row in 0..<count {
            var text = ""
            var complete = true
            for part in parts {
                guard let value = part.string(row) else {
                    complete = false
                    break
                }
                text += value + "\u{1F}"
            }
            if complete {
                keys[row] = intern(text)
                present[row] = true
            }
        }
        return (keys, present)
    }

    /// The bucket of a key among `buckets`.
    @inline(__always) func bucket(_ key: Int64, of buckets: Int) -> Int {
        let hash = integer ? Self.mix(UInt64(bitPattern: key)) : hashes[Int(key)]
        return Int(hash % UInt64(buckets))
    }

    private func intern(_ text: String) -> Int64 {
        if let id = ids[text] { return id }
        let id = Int64(hashes.count)
        ids[text] = id
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        hashes.append(Self.mix(hash))
        return id
    }

    /// SplitMix64's finalizer: spreads consecutive keys over buckets.
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9e37_79b9_7f4a_7c15
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
