// Over 400 lines: the Arrow IPC reader and writer share the format's framing and buffer layout.
import Foundation

/// Reads and writes tables in the Apache Arrow IPC file format (Feather v2), so `pyarrow.feather.read_table`
/// opens a Sluice table and Sluice opens uncompressed Arrow files written by pyarrow.
///
/// Column types: float ↔ Float64 (Float32 is widened on reading), integer ↔ Int64 (narrower signed and
/// unsigned integers up to 32 bits are widened), boolean ↔ Bool, string ↔ Utf8 (LargeUtf8 and dictionary-
/// encoded strings are also read), timestamp ↔ Timestamp(microsecond, UTC) (other units are converted).
public enum ArrowFile {
    static let magic: [UInt8] = Array("ARROW1".utf8)

    /// A file that is not an Arrow file Sluice can read.
    public struct FormatError: Error, Sendable, CustomStringConvertible {
        /// What is wrong.
        public var problem: String
        public var description: String { "not a readable Arrow file: \(problem)" }
    }

    // MARK: Writing

    /// The Arrow IPC file bytes of `table` (one record batch).
    public static func data(for table: Table) -> Data {
        var out = opening(names: table.columnNames, types: table.columns.map(\.type))
        let block = appendBatch(table, to: &out)
        out.append(closing(names: table.columnNames, types: table.columns.map(\.type), blocks: [block]))
        return out
    }

    /// Writes `table` as an Arrow IPC file.
    public static func write(_ table: Table, to url: URL) throws {
        try data(for: table).write(to: url)
    }

    /// Where a record batch is in a file: the footer's Block (offset, metadata length, body length).
    struct Block {
        var offset: Int64
        var metadataLength: Int32
        var bodyLength: Int64
    }

    /// The file's start: magic and the schema message.
    static func opening(names: [String], types: [ColumnType]) -> Data {
        var out = Data(magic + [0, 0])
        let schemaMessage = FlatBufferWriter.serialize(message(header: 1, schemaValue(names, types), bodyLength: 0))
        appendMessage(schemaMessage, to: &out)
        return out
    }

    /// Appends one record batch of `table` at the end of `out` (whose count is the batch's offset in the file when
    /// `base` bytes precede it) and returns its block.
    @discardableResult
    static func appendBatch(_ table: Table, to out: inout Data, base: Int = 0) -> Block {
        // The record batch body: each buffer 8-byte aligned, in column order.
        var body = Data()
        var buffers: [(Int64, Int64)] = []
        var nodes: [(Int64, Int64)] = []
        func addBuffer(_ bytes: Data) {
            buffers.append((Int64(body.count), Int64(bytes.count)))
            body.append(bytes)
            while body.count % 8 != 0 { body.append(0) }
        }
        for column in table.columns {
            let rows = column.count
            var nulls = 0
            for k in 0..<rows where !column.isPresent(k) { nulls += 1 }
            nodes.append((Int64(rows), Int64(nulls)))
            addBuffer(nulls == 0 ? Data() : bitmap((0..<rows).map(column.isPresent)))
            switch column.storage {
            case .float(let values, _): addBuffer(values.withUnsafeBufferPointer { Data(buffer: $0) })
            case .integer(let values, _), .timestamp(let values, _):
                addBuffer(values.withUnsafeBufferPointer { Data(buffer: $0) })
            case .boolean(let values, _): addBuffer(bitmap(values))
            case .string(let codes, let dictionary):
                var offsets: [Int32] = [0]
                offsets.reserveCapacity(codes.count + 1)
                var text: [UInt8] = []
                let encoded = dictionary.map { Array($0.utf8) }
                for code in codes {
                    if code >= 0 { text.append(contentsOf: encoded[Int(code)]) }
                    offsets.append(Int32(text.count))
                }
                addBuffer(offsets.withUnsafeBufferPointer { Data(buffer: $0) })
                addBuffer(Data(text))
            }
        }
        let structs: ([(Int64, Int64)]) -> [[UInt8]] = { pairs in
            pairs.map { a, b in
                withUnsafeBytes(of: a.littleEndian, Array.init) + withUnsafeBytes(of: b.littleEndian, Array.init)
            }
        }
        let batch = FlatBufferWriter.Value.table([
            (0, .int64(Int64(table.rowCount))),
            (1, .structs(structs(nodes), alignment: 8)),
            (2, .structs(structs(buffers), alignment: 8)),
        ])
        let batchMessage = FlatBufferWriter.serialize(message(header: 3, batch, bodyLength: Int64(body.count)))
        let batchOffset = base + out.count
        let metadataLength = appendMessage(batchMessage, to: &out)
        out.append(body)
        return Block(offset: Int64(batchOffset), metadataLength: Int32(metadataLength), bodyLength: Int64(body.count))
    }

    /// The file's end: the footer (the schema again and where each record batch is), its length and the magic.
    static func closing(
        names: [String], types: [ColumnType], blocks: [Block], metadata: [(String, String)] = []
    ) -> Data {
        let entries: [[UInt8]] = blocks.map { block in
            var entry: [UInt8] = withUnsafeBytes(of: block.offset.littleEndian, Array.init)
            entry += withUnsafeBytes(of: block.metadataLength.littleEndian, Array.init)
            entry += [0, 0, 0, 0]
            entry += withUnsafeBytes(of: block.bodyLength.littleEndian, Array.init)
            return entry
        }
        let footer = FlatBufferWriter.serialize(
            .table([
                (0, .int16(4)),  // MetadataVersion V5
                (1, schemaValue(names, types, metadata: metadata)),
                (2, .structs([], alignment: 8)),
                (3, .structs(entries, alignment: 8)),
            ]))
        var out = Data(footer)
        out.append(contentsOf: withUnsafeBytes(of: Int32(footer.count).littleEndian, Array.init))
        out.append(contentsOf: magic)
        return out
    }

    private static func message(header type: UInt8, _ header: FlatBufferWriter.Value, bodyLength: Int64)
        -> FlatBufferWriter.Value
    {
        .table([(0, .int16(4)), (1, .uint8(type)), (2, header), (3, .int64(bodyLength))])
    }

    /// Appends an encapsulated message (continuation marker, length, metadata padded to 8); returns its length.
    @discardableResult
    private static func appendMessage(_ flatbuffer: [UInt8], to out: inout Data) -> Int {
        var padded = flatbuffer
        while (padded.count + 8) % 8 != 0 { padded.append(0) }
        out.append(contentsOf: [0xFF, 0xFF, 0xFF, 0xFF])
        out.append(contentsOf: withUnsafeBytes(of: Int32(padded.count).littleEndian, Array.init))
        out.append(contentsOf: padded)
        return padded.count + 8
    }

    private static func schemaValue(_ names: [String], _ types: [ColumnType], metadata: [(String, String)] = [])
        -> FlatBufferWriter.Value
    {
        let fields: [FlatBufferWriter.Value] = zip(names, types).map { name, columnType in
            let (typeID, type): (UInt8, FlatBufferWriter.Value)
            switch columnType {
            case .float: (typeID, type) = (3, .table([(0, .int16(2))]))  // FloatingPoint(DOUBLE)
            case .integer: (typeID, type) = (2, .table([(0, .int32(64)), (1, .bool(true))]))  // Int(64, signed)
            case .boolean: (typeID, type) = (6, .table([]))
            case .string: (typeID, type) = (5, .table([]))
            case .timestamp: (typeID, type) = (10, .table([(0, .int16(2)), (1, .string("UTC"))]))  // MICROSECOND
            }
            return .table([
                (0, .string(name)), (1, .bool(true)), (2, .uint8(typeID)), (3, type), (5, .offsets([])),
            ])
        }
        let pairs: [FlatBufferWriter.Value] = metadata.map { .table([(0, .string($0)), (1, .string($1))]) }
        return .table([(0, .int16(0)), (1, .offsets(fields))] + (pairs.isEmpty ? [] : [(2, .offsets(pairs))]))
    }

    private static func bitmap(_ bits: [Bool]) -> Data {
        var bytes = [UInt8](repeating: 0, count: (bits.count + 7) / 8)
        for (k, bit) in bits.enumerated() where bit { bytes[k >> 3] |= 1 << UInt8(k & 7) }
        return Data(bytes)
    }

    // MARK: Reading

    /// Reads an Arrow IPC file (all record batches, concatenated).
    public static func read(contentsOf url: URL) throws -> Table {
        try ArrowFileReader(contentsOf: url).readAll()
    }

    /// Reads Arrow IPC file bytes.
    public static func read(_ data: Data) throws -> Table {
        try ArrowFileReader(data: data).readAll()
    }

    /// The footer of `bytes`: its reader, the fields, the string dictionaries and the record batches' blocks.
    static func open(_ bytes: ArrowBytes) throws -> (
        footer: FlatBufferReader, fields: [Field], dictionaries: [Int64: Column.Storage], batches: [Int],
        metadata: [String: String]
    ) {
        guard bytes.count >= 12, try bytes.read(0..<6).elementsEqual(magic),
            try bytes.read((bytes.count - 6)..<bytes.count).elementsEqual(magic)
        else {
            throw FormatError(problem: "the file does not start and end with ARROW1")
        }
        let lengthBytes = try bytes.read((bytes.count - 10)..<(bytes.count - 6))
        let footerLength = Int(Int32(littleEndian: lengthBytes.withUnsafeBytes { $0.loadUnaligned(as: Int32.self) }))
        let footerStart = bytes.count - 10 - footerLength
        guard footerLength > 0, footerStart >= 8 else {
            throw FormatError(problem: "the footer length is out of range")
        }
        let footer = FlatBufferReader(data: try bytes.read(footerStart..<(bytes.count - 10)))
        do {
            let root = try footer.root()
            guard let schema = try footer.indirect(root, 1) else {
                throw FormatError(problem: "the footer has no schema")
            }
            let fields = try readFields(footer, schema)
            var metadata: [String: String] = [:]
            for pair in try footer.tables(schema, 2) {
                if let key = try footer.string(pair, 0) { metadata[key] = try footer.string(pair, 1) ?? "" }
            }
            var dictionaries: [Int64: Column.Storage] = [:]
            let (dictStart, dictCount) = try footer.structs(root, 2)
            for k in 0..<dictCount {
                let (batch, header, body) = try message(at: footer, dictStart + k * 24, in: bytes)
                guard let data = try header.indirect(batch, 1) else { continue }
                let id = try header.scalar(batch, 0, Int64.self)
                guard let field = fields.first(where: { $0.dictionaryID == id }) else { continue }
                var valueField = field
                valueField.dictionaryID = nil
                let columns = try readBatch(header, data, fields: [valueField], body: body)
                dictionaries[id] = columns[0].storage
            }
            let (batchStart, batchCount) = try footer.structs(root, 3)
            return (footer, fields, dictionaries, (0..<batchCount).map { batchStart + $0 * 24 }, metadata)
        } catch is FlatBufferReader.Malformed {
            throw FormatError(problem: "its metadata points outside the file")
        }
    }

    /// The record batch whose footer block is at `block`, with dictionary-encoded columns resolved.
    static func readBatch(
        at block: Int, footer: FlatBufferReader, fields: [Field], dictionaries: [Int64: Column.Storage],
        in bytes: ArrowBytes, wanted: [Bool]? = nil
    ) throws -> Table {
        do {
            let (batch, header, body) = try message(at: footer, block, in: bytes)
            var columns = try readBatch(header, batch, fields: fields, body: body, wanted: wanted)
            let kept = fields.indices.filter { wanted?[$0] ?? true }.map { fields[$0] }
            for (index, field) in kept.enumerated() {
                guard let id = field.dictionaryID else { continue }
                guard case .integer(let indices, let valid) = columns[index].storage,
                    case .string(let codes, let dictionary) = dictionaries[id]
                else {
                    throw FormatError(problem: "dictionary \(id) of '\(field.name)' is not a string dictionary")
                }
                guard indices.allSatisfy({ $0 >= 0 && $0 < codes.count }) else {
                    throw FormatError(problem: "'\(field.name)' has a dictionary index out of range")
                }
                let remapped = indices.indices.map { valid[$0] ? codes[Int(indices[$0])] : -1 }
                columns[index] = Column(name: field.name, storage: .string(codes: remapped, dictionary: dictionary))
            }
            return Table(columns: columns)
        } catch is FlatBufferReader.Malformed {
            throw FormatError(problem: "its metadata points outside the file")
        }
    }

    /// The row count of the record batch whose footer block is at `block`, read from its metadata alone.
    static func batchLength(at block: Int, footer: FlatBufferReader, in file: ArrowBytes) throws -> Int {
        do {
            let offset = Int(try footer.integer(block, Int64.self))
            let metadataLength = Int(try footer.integer(block + 8, Int32.self))
            guard offset >= 8, metadataLength >= 8, offset + metadataLength <= file.count else {
                throw FormatError(problem: "a record batch lies outside the file")
            }
            let bytes = try file.read(offset..<(offset + metadataLength))
            let skip = bytes.prefix(4).elementsEqual([0xFF, 0xFF, 0xFF, 0xFF]) ? 4 : 0
            let length = Int(
                Int32(littleEndian: bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: skip, as: Int32.self) }))
            guard length >= 0, skip + 4 + length <= metadataLength else {
                throw FormatError(problem: "a record batch's metadata lies outside its block")
            }
            let header = FlatBufferReader(data: Data(bytes[(skip + 4)..<(skip + 4 + length)]))
            guard let batch = try header.indirect(try header.root(), 2) else {
                throw FormatError(problem: "a message has no header")
            }
            return Int(try header.scalar(batch, 0, Int64.self))
        } catch is FlatBufferReader.Malformed {
            throw FormatError(problem: "its metadata points outside the file")
        }
    }

    static func emptyTable(_ fields: [Field]) -> Table {
        Table(columns: fields.map { Column(name: $0.name, storage: emptyStorage($0.type)) })
    }

    struct Field {
        var name: String
        var type: ColumnType
        /// How to read the data buffer: element width in bytes, signedness, float, time unit divisor.
        var width: Int
        var signed = true
        var isFloat = false
        var largeOffsets = false
        var microsPerUnit: Double = 1
        var dictionaryID: Int64?
        /// For dictionary-encoded fields: the byte width and signedness of the indices in record batches.
        var indexWidth = 4
        var indexSigned = true
    }

    private static func emptyStorage(_ type: ColumnType) -> Column.Storage {
        switch type {
        case .float: .float([], valid: [])
        case .integer: .integer([], valid: [])
        case .boolean: .boolean([], valid: [])
        case .string: .string(codes: [], dictionary: [])
        case .timestamp: .timestamp([], valid: [])
        }
    }

    static func readFields(_ r: FlatBufferReader, _ schema: Int) throws -> [Field] {
        try r.tables(schema, 1).map { field in
            let name = try r.string(field, 0) ?? ""
            let typeID = try r.scalar(field, 2, UInt8.self)
            guard let type = try r.indirect(field, 3) else { throw FormatError(problem: "field '\(name)' has no type") }
            var result: Field
            switch typeID {
            case 2:  // Int
                let bits = Int(try r.scalar(type, 0, Int32.self))
                let signed = try r.scalar(type, 1, UInt8.self) != 0
                guard bits <= 64, bits % 8 == 0, signed || bits < 64 else {
                    throw FormatError(
                        problem: "field '\(name)' is an unsigned 64-bit integer, which Sluice does not read")
                }
                result = Field(name: name, type: .integer, width: bits / 8, signed: signed)
            case 3:  // FloatingPoint
                let precision = try r.scalar(type, 0, Int16.self)
                guard precision >= 1 else { throw FormatError(problem: "field '\(name)' is a half-precision float") }
                result = Field(name: name, type: .float, width: precision == 1 ? 4 : 8, isFloat: true)
            case 5: result = Field(name: name, type: .string, width: 4)
            case 20: result = Field(name: name, type: .string, width: 8, largeOffsets: true)
            case 6: result = Field(name: name, type: .boolean, width: 0)
            case 10:  // Timestamp
                let unit = try r.scalar(type, 0, Int16.self)
                result = Field(name: name, type: .timestamp, width: 8, microsPerUnit: [1e6, 1e3, 1, 1e-3][Int(unit)])
            default:
                throw FormatError(problem: "field '\(name)' has Arrow type \(typeID), which Sluice does not read yet")
            }
            if let dictionary = try r.indirect(field, 4) {
                // Record batches hold indices; the dictionary batch holds the values, read with this field's type.
                result.dictionaryID = try r.scalar(dictionary, 0, Int64.self)
                if let indexType = try r.indirect(dictionary, 1) {
                    result.indexWidth = Int(try r.scalar(indexType, 0, Int32.self)) / 8
                    result.indexSigned = try r.scalar(indexType, 1, UInt8.self) != 0
                }
                guard result.type == .string else {
                    throw FormatError(
                        problem: "field '\(name)' is dictionary-encoded \(result.type), which Sluice does not read")
                }
            }
            return result
        }
    }

    /// The record batch (or dictionary batch) table, its reader and its body (copied out of the file: one batch's
    /// bytes), for the footer block at `block`.
    private static func message(at footer: FlatBufferReader, _ block: Int, in file: ArrowBytes) throws -> (
        Int, FlatBufferReader, ArraySlice<UInt8>
    ) {
        let offset = Int(try footer.integer(block, Int64.self))
        let metadataLength = Int(try footer.integer(block + 8, Int32.self))
        let bodyLength = Int(try footer.integer(block + 16, Int64.self))
        guard offset >= 8, metadataLength >= 8, bodyLength >= 0, offset + metadataLength + bodyLength <= file.count
        else {
            throw FormatError(problem: "a record batch lies outside the file")
        }
        // One read of the block (metadata and body); offsets below are relative to it.
        let bytes = try file.read(offset..<(offset + metadataLength + bodyLength))
        let base = bytes.startIndex - offset
        var start = offset
        if bytes[(base + start)..<(base + start + 4)].elementsEqual([0xFF, 0xFF, 0xFF, 0xFF]) { start += 4 }
        let length = Int(
            Int32(
                littleEndian: bytes.withUnsafeBytes {
                    $0.loadUnaligned(fromByteOffset: start - offset, as: Int32.self)
                }))
        guard length >= 0, start + 4 + length <= offset + metadataLength else {
            throw FormatError(problem: "a record batch's metadata lies outside its block")
        }
        let header = FlatBufferReader(data: Data(bytes[(base + start + 4)..<(base + start + 4 + length)]))
        let root = try header.root()
        guard try header.scalar(root, 1, UInt8.self) == 3 || header.scalar(root, 1, UInt8.self) == 2 else {
            throw FormatError(problem: "a block is not a record batch")
        }
        guard let batch = try header.indirect(root, 2) else { throw FormatError(problem: "a message has no header") }
        if try header.indirect(batch, 3) != nil {
            throw FormatError(
                problem: "it is compressed (LZ4 or ZSTD); write it with compression='uncompressed' for Sluice to read")
        }
        let bodyStart = base + offset + metadataLength
        return (batch, header, [UInt8](bytes[bodyStart..<(bodyStart + bodyLength)])[...])
    }

    /// The columns of a record batch (only those `wanted` marks, when given: the others' buffers are skipped).
    static func readBatch(
        _ r: FlatBufferReader, _ batch: Int, fields: [Field], body: ArraySlice<UInt8>, wanted: [Bool]? = nil
    ) throws -> [Column] {
        let (nodeStart, nodeCount) = try r.structs(batch, 1)
        let (bufferStart, bufferCount) = try r.structs(batch, 2)
        var nodeIndex = 0
        var bufferIndex = 0
        func nextBuffer() throws -> ArraySlice<UInt8> {
            guard bufferIndex < bufferCount else { throw FormatError(problem: "a record batch has too few buffers") }
            let at = bufferStart + bufferIndex * 16
            bufferIndex += 1
            let offset = Int(try r.integer(at, Int64.self))
            let length = Int(try r.integer(at + 8, Int64.self))
            guard offset >= 0, length >= 0, offset + length <= body.count else {
                throw FormatError(problem: "a buffer lies outside its record batch")
            }
            return body[(body.startIndex + offset)..<(body.startIndex + offset + length)]
        }
        /// The first `rows` values of `buffer` (little-endian, as this machine is), copied at once.
        func copied<T>(_ buffer: ArraySlice<UInt8>, _ rows: Int, _ type: T.Type) -> [T] {
            [T](unsafeUninitializedCapacity: rows) { out, initialized in
                buffer.withUnsafeBytes { bytes in
                    UnsafeMutableRawBufferPointer(out).copyMemory(
                        from: UnsafeRawBufferPointer(rebasing: bytes[..<(rows * MemoryLayout<T>.stride)]))
                }
                initialized = rows
            }
        }
        func load<T: FixedWidthInteger>(_ buffer: ArraySlice<UInt8>, _ k: Int, _ type: T.Type) -> T {
            buffer.withUnsafeBytes {
                T(littleEndian: $0.loadUnaligned(fromByteOffset: k * MemoryLayout<T>.size, as: T.self))
            }
        }
        return try fields.enumerated().compactMap { position, field -> Column? in
            guard nodeIndex < nodeCount else { throw FormatError(problem: "a record batch has too few field nodes") }
            let rows = Int(try r.integer(nodeStart + nodeIndex * 16, Int64.self))
            let nullCount = Int(try r.integer(nodeStart + nodeIndex * 16 + 8, Int64.self))
            nodeIndex += 1
            if let wanted, !wanted[position] {
                // Validity and values, and offsets for text: skipped, not decoded.
                for _ in 0..<(field.type == .string && field.dictionaryID == nil ? 3 : 2) { _ = try nextBuffer() }
                return nil
            }
            let validity = try nextBuffer()
            guard nullCount == 0 || validity.isEmpty || validity.count * 8 >= rows else {
                throw FormatError(problem: "'\(field.name)' has a truncated validity bitmap")
            }
            let valid: [Bool] =
                nullCount == 0 || validity.isEmpty
                ? [Bool](repeating: true, count: rows)
                : validity.withUnsafeBufferPointer { bits in
                    (0..<rows).map { k in bits[k >> 3] & (1 << UInt8(k & 7)) != 0 }
                }
            if field.dictionaryID != nil {
                // Indices of a dictionary-encoded column; resolved against the dictionary by the caller.
                let data = try nextBuffer()
                let indices = try (0..<rows).map { k -> Int64 in
                    valid[k] ? try integerValue(data, k, width: field.indexWidth, signed: field.indexSigned) : 0
                }
                return Column(name: field.name, storage: .integer(indices, valid: valid))
            }
            switch field.type {
            case .boolean:
                let data = try nextBuffer()
                let values = (0..<rows).map { k in data[data.startIndex + k >> 3] & (1 << UInt8(k & 7)) != 0 }
                return Column(name: field.name, storage: .boolean(values, valid: valid))
            case .float:
                let data = try nextBuffer()
                guard data.count >= rows * field.width else {
                    throw FormatError(problem: "'\(field.name)' is truncated")
                }
                let values =
                    field.width == 8
                    ? copied(data, rows, Double.self)
                    : (0..<rows).map { k in Double(Float(bitPattern: load(data, k, UInt32.self))) }
                return Column(name: field.name, storage: .float(values, valid: valid))
            case .integer:
                let data = try nextBuffer()
                let values =
                    field.width == 8 && data.count >= rows * 8
                    ? copied(data, rows, Int64.self)
                    : try (0..<rows).map { k in try integerValue(data, k, width: field.width, signed: field.signed) }
                return Column(name: field.name, storage: .integer(values, valid: valid))
            case .timestamp:
                let data = try nextBuffer()
                guard data.count >= rows * 8 else { throw FormatError(problem: "'\(field.name)' is truncated") }
                let values =
                    field.microsPerUnit == 1
                    ? copied(data, rows, Int64.self)
                    : (0..<rows).map { k in
                        Int64((Double(Int64(bitPattern: load(data, k, UInt64.self))) * field.microsPerUnit).rounded())
                    }
                return Column(name: field.name, storage: .timestamp(values, valid: valid))
            case .string:
                let offsets = try nextBuffer()
                let data = try nextBuffer()
                guard offsets.count >= (rows + 1) * (field.largeOffsets ? 8 : 4) || rows == 0 else {
                    throw FormatError(problem: "'\(field.name)' has bad offsets")
                }
                let (codes, dictionary) = try StringDecoder.decode(
                    offsets: offsets, data: data, rows: rows, valid: valid, largeOffsets: field.largeOffsets,
                    name: field.name)
                return Column(name: field.name, storage: .string(codes: codes, dictionary: dictionary))
            }
        }
    }

    /// Dictionary-encodes a Utf8 column: each row's bytes are looked up by hash and compared as bytes, and a
    /// `String` is made only for a value not seen before (codes in order of first appearance).
    enum StringDecoder {
        static func decode(
            offsets: ArraySlice<UInt8>, data: ArraySlice<UInt8>, rows: Int, valid: [Bool], largeOffsets: Bool,
            name: String
        ) throws -> ([Int32], [String]) {
            var dictionary: [String] = []
            var firstRange: [Range<Int>] = []
            var slots = [Int32](repeating: -1, count: 64)
            var codes = [Int32](repeating: -1, count: rows)
            try offsets.withUnsafeBytes { offsets in
                try data.withUnsafeBytes { bytes in
                    func offset(_ k: Int) -> Int {
                        largeOffsets
                            ? Int(Int64(littleEndian: offsets.loadUnaligned(fromByteOffset: k * 8, as: Int64.self)))
                            : Int(Int32(littleEndian: offsets.loadUnaligned(fromByteOffset: k * 4, as: Int32.self)))
                    }
                    for k in 0..<rows where valid[k] {
                        let start = offset(k)
                        let end = offset(k + 1)
                        guard start >= 0, end >= start, end <= bytes.count else {
                            throw FormatError(problem: "'\(name)' has bad offsets")
                        }
                        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
                        for i in start..<end { hash = (hash ^ UInt64(bytes[i])) &* 0x100_0000_01b3 }
                        var mask = slots.count - 1
                        var slot = Int(truncatingIfNeeded: hash) & mask
                        while true {
                            let code = slots[slot]
                            if code < 0 {
                                let new = Int32(dictionary.count)
                                dictionary.append(String(decoding: bytes[start..<end], as: UTF8.self))
                                firstRange.append(start..<end)
                                slots[slot] = new
                                codes[k] = new
                                if dictionary.count * 2 > slots.count {
                                    // Grow and re-insert every value seen so far.
                                    slots = [Int32](repeating: -1, count: slots.count * 4)
                                    mask = slots.count - 1
                                    for (c, range) in firstRange.enumerated() {
                                        var h: UInt64 = 0xcbf2_9ce4_8422_2325
                                        for i in range { h = (h ^ UInt64(bytes[i])) &* 0x100_0000_01b3 }
                                        var s = Int(truncatingIfNeeded: h) & mask
                                        while slots[s] >= 0 { s = (s + 1) & mask }
                                        slots[s] = Int32(c)
                                    }
                                }
                                break
                            }
                            let known = firstRange[Int(code)]
                            if known.count == end - start
                                && (known.isEmpty
                                    || memcmp(
                                        bytes.baseAddress! + known.lowerBound, bytes.baseAddress! + start, known.count)
                                        == 0)
                            {
                                codes[k] = code
                                break
                            }
                            slot = (slot + 1) & mask
                        }
                    }
                }
            }
            return (codes, dictionary)
        }
    }

    private static func integerValue(_ data: ArraySlice<UInt8>, _ k: Int, width: Int, signed: Bool) throws -> Int64 {
        guard data.count >= (k + 1) * width else { throw FormatError(problem: "an integer column is truncated") }
        return data.withUnsafeBytes { raw in
            switch (width, signed) {
            case (1, true): Int64(raw.load(fromByteOffset: k, as: Int8.self))
            case (1, false): Int64(raw.load(fromByteOffset: k, as: UInt8.self))
            case (2, true): Int64(Int16(littleEndian: raw.loadUnaligned(fromByteOffset: k * 2, as: Int16.self)))
            case (2, false): Int64(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: k * 2, as: UInt16.self)))
            case (4, true): Int64(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: k * 4, as: Int32.self)))
            case (4, false): Int64(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: k * 4, as: UInt32.self)))
            default: Int64(littleEndian: raw.loadUnaligned(fromByteOffset: k * 8, as: Int64.self))
            }
        }
    }
}
