import Foundation

/// Writes FlatBuffers front to back: a parent is laid out first with placeholders for its offsets, then its
/// children after it, and the placeholders are patched (FlatBuffers offsets point forward, so this is valid).
/// Each table's vtable is written just before the table. Enough of FlatBuffers for Arrow's IPC metadata.
struct FlatBufferWriter {
    private(set) var bytes: [UInt8] = []

    /// A value to lay out in a table or vector.
    indirect enum Value {
        case int8(Int8)
        case uint8(UInt8)
        case int16(Int16)
        case int32(Int32)
        case int64(Int64)
        case bool(Bool)
        case string(String)
        case table([(Int, Value)])
        /// A vector of tables, strings or vectors (stored as offsets).
        case offsets([Value])
        /// A vector of structs stored inline: raw bytes per element, and the struct's alignment.
        case structs([[UInt8]], alignment: Int)
    }

    /// Serializes `root` (a table) and returns the finished buffer.
    static func serialize(_ root: Value) -> [UInt8] {
        var writer = FlatBufferWriter()
        writer.bytes = [0, 0, 0, 0]
        let position = writer.write(root)
        writer.patch(offsetAt: 0, to: position)
        return writer.bytes
    }

    private mutating func align(_ alignment: Int, extra: Int = 0) {
        while (bytes.count + extra) % alignment != 0 { bytes.append(0) }
    }

    private mutating func append<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    private mutating func patch(offsetAt position: Int, to target: Int) {
        let value = UInt32(target - position).littleEndian
        withUnsafeBytes(of: value) { raw in for k in 0..<4 { bytes[position + k] = raw[k] } }
    }

    private static func size(_ value: Value) -> Int {
        switch value {
        case .int8, .uint8, .bool: 1
        case .int16: 2
        case .int32: 4
        case .int64: 8
        case .string, .table, .offsets, .structs: 4
        }
    }

    /// Writes an object (table, string or vector) and returns its position.
    private mutating func write(_ value: Value) -> Int {
        switch value {
        case .string(let text):
            align(4)
            let position = bytes.count
            append(UInt32(text.utf8.count))
            bytes.append(contentsOf: text.utf8)
            bytes.append(0)
            return position
        case .structs(let elements, let alignment):
            align(Swift.max(alignment, 4), extra: 4)
            let position = bytes.count
            append(UInt32(elements.count))
            for element in elements { bytes.append(contentsOf: element) }
            return position
        case .offsets(let elements):
            align(4)
            let position = bytes.count
            append(UInt32(elements.count))
            let slots = elements.indices.map { position + 4 + $0 * 4 }
            bytes.append(contentsOf: repeatElement(0, count: elements.count * 4))
            for (slot, element) in zip(slots, elements) {
                let child = write(element)
                patch(offsetAt: slot, to: child)
            }
            return position
        case .table(let fields):
            let maxID = fields.map(\.0).max() ?? -1
            // Inline layout: the soffset to the vtable, then fields sorted by size (largest first) for alignment.
            let ordered = fields.sorted { Self.size($0.1) > Self.size($1.1) }
            var layout: [Int: Int] = [:]
            var cursor = 4
            for (id, field) in ordered {
                let size = Self.size(field)
                while cursor % size != 0 { cursor += 1 }
                layout[id] = cursor
                cursor += size
            }
            let tableSize = cursor
            // vtable: its size, the table's size, then each field's offset within the table (0 = absent).
            let vtableSize = 4 + 2 * (maxID + 1)
            // Pad so that the table after the vtable starts 8-aligned (vtables need only 2-byte alignment).
            while (bytes.count + vtableSize) % 8 != 0 { bytes.append(0) }
            let vtable = bytes.count
            append(UInt16(vtableSize))
            append(UInt16(tableSize))
            for id in 0...max(maxID, 0) where maxID >= 0 { append(UInt16(layout[id] ?? 0)) }
            let table = bytes.count
            precondition(table % 8 == 0)
            append(Int32(table - vtable))
            bytes.append(contentsOf: repeatElement(0, count: tableSize - 4))
            var pending: [(Int, Value)] = []
            for (id, field) in fields {
                let at = table + layout[id]!
                func put<T: FixedWidthInteger>(_ v: T) {
                    withUnsafeBytes(of: v.littleEndian) { raw in for k in 0..<raw.count { bytes[at + k] = raw[k] } }
                }
                switch field {
                case .int8(let v): put(v)
                case .uint8(let v): put(v)
                case .bool(let v): put(UInt8(v ? 1 : 0))
                case .int16(let v): put(v)
                case .int32(let v): put(v)
                case .int64(let v): put(v)
                case .string, .table, .offsets, .structs: pending.append((at, field))
                }
            }
            for (slot, child) in pending {
                let position = write(child)
                patch(offsetAt: slot, to: position)
            }
            return table
        default:
            preconditionFailure("scalars live inside tables")
        }
    }
}

/// Reads FlatBuffers tables, vectors and strings from a byte buffer, checking every offset against its bounds.
struct FlatBufferReader {
    let data: Data

    struct Malformed: Error {}

    func u8(_ at: Int) throws -> UInt8 {
        guard at >= 0, at < data.count else { throw Malformed() }
        return data[data.startIndex + at]
    }

    func integer<T: FixedWidthInteger>(_ at: Int, _ type: T.Type) throws -> T {
        guard at >= 0, at + MemoryLayout<T>.size <= data.count else { throw Malformed() }
        var value: T = 0
        withUnsafeMutableBytes(of: &value) { raw in
            for k in 0..<MemoryLayout<T>.size { raw[k] = data[data.startIndex + at + k] }
        }
        return T(littleEndian: value)
    }

    /// The root table's position.
    func root() throws -> Int { Int(try integer(0, UInt32.self)) }

    /// The position of field `id`'s value in the table at `table`, or `nil` when absent.
    func field(_ table: Int, _ id: Int) throws -> Int? {
        let vtable = table - Int(try integer(table, Int32.self))
        let vtableSize = Int(try integer(vtable, UInt16.self))
        let slot = 4 + 2 * id
        guard slot + 2 <= vtableSize else { return nil }
        let offset = Int(try integer(vtable + slot, UInt16.self))
        return offset == 0 ? nil : table + offset
    }

    func scalar<T: FixedWidthInteger>(_ table: Int, _ id: Int, _ type: T.Type, default value: T = 0) throws -> T {
        guard let at = try field(table, id) else { return value }
        return try integer(at, T.self)
    }

    /// The object an offset field points at.
    func indirect(_ table: Int, _ id: Int) throws -> Int? {
        guard let at = try field(table, id) else { return nil }
        return at + Int(try integer(at, UInt32.self))
    }

    func string(_ table: Int, _ id: Int) throws -> String? {
        guard let at = try indirect(table, id) else { return nil }
        let count = Int(try integer(at, UInt32.self))
        guard at + 4 + count <= data.count else { throw Malformed() }
        return String(decoding: data[(data.startIndex + at + 4)..<(data.startIndex + at + 4 + count)], as: UTF8.self)
    }

    /// The element positions of a vector of offsets (tables).
    func tables(_ table: Int, _ id: Int) throws -> [Int] {
        guard let at = try indirect(table, id) else { return [] }
        let count = Int(try integer(at, UInt32.self))
        return try (0..<count).map { k in
            let slot = at + 4 + 4 * k
            return slot + Int(try integer(slot, UInt32.self))
        }
    }

    /// The start and count of a vector of inline structs.
    func structs(_ table: Int, _ id: Int) throws -> (start: Int, count: Int) {
        guard let at = try indirect(table, id) else { return (0, 0) }
        return (at + 4, Int(try integer(at, UInt32.self)))
    }
}
