import Foundation

/// The binary tensor data extension of the V2 protocol (as Triton and KServe define it): a JSON header of
/// `Inference-Header-Content-Length` bytes, then each tensor's raw bytes in order. Fixed-size elements are
/// little-endian; a BYTES element is a 4-byte little-endian length and then that many bytes.
enum BinaryTensors {
    /// The header naming the JSON part's length in a binary request or response.
    static let headerName = "Inference-Header-Content-Length"

    /// The byte size of one element of `datatype`, or nil for BYTES (variable) and unknown types.
    static func elementSize(_ datatype: String) -> Int? {
        switch datatype {
        case "FP64", "INT64", "UINT64": 8
        case "FP32", "INT32", "UINT32": 4
        case "FP16", "INT16", "UINT16": 2
        case "INT8", "UINT8", "BOOL": 1
        default: nil
        }
    }

    /// The `count` elements of `datatype` in `bytes`, as the JSON form would have them; every size is checked.
    static func decode(_ bytes: UnsafeRawBufferPointer, datatype: String, count: Int, input: String) throws
        -> [JSONValue]
    {
        if datatype == "BYTES" {
            var values: [JSONValue] = []
            values.reserveCapacity(count)
            var offset = 0
            while offset < bytes.count {
                guard offset + 4 <= bytes.count else {
                    throw RequestError.badRequest(
                        "input '\(input)': BYTES element \(values.count + 1) is cut short: its 4-byte length prefix "
                            + "starts \(bytes.count - offset) bytes before the end of the tensor's data")
                }
                let length = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
                offset += 4
                guard length <= bytes.count - offset else {
                    throw RequestError.badRequest(
                        "input '\(input)': BYTES element \(values.count + 1) says \(length) bytes, but only "
                            + "\(bytes.count - offset) remain in the tensor's binary_data_size")
                }
                let element = UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + length])
                guard let text = String(validating: element.assumingMemoryBound(to: UInt8.self), as: UTF8.self) else {
                    throw RequestError.badRequest(
                        "input '\(input)': BYTES element \(values.count + 1) is not UTF-8 text")
                }
                values.append(.string(text))
                offset += length
            }
            guard values.count == count else {
                throw RequestError.badRequest(
                    "input '\(input)' holds \(values.count) BYTES elements but its shape says \(count)")
            }
            return values
        }
        guard let size = elementSize(datatype) else {
            throw RequestError.badRequest("input '\(input)': datatype \(datatype) cannot be sent as binary data")
        }
        guard bytes.count == size * count else {
            throw RequestError.badRequest(
                "input '\(input)' has binary_data_size \(bytes.count), but \(count) \(datatype) elements take "
                    + "\(size * count) bytes")
        }
        var values: [JSONValue] = []
        values.reserveCapacity(count)
        for k in 0..<count {
            let at = k * size
            let value: JSONValue
            switch datatype {
            case "FP64": value = .number(Double(bitPattern: load(bytes, at, UInt64.self)))
            case "FP32": value = .number(Double(Float(bitPattern: load(bytes, at, UInt32.self))))
            case "FP16": value = .number(Double(Float16(bitPattern: load(bytes, at, UInt16.self))))
            case "INT64": value = .number(Double(Int64(bitPattern: load(bytes, at, UInt64.self))))
            case "INT32": value = .number(Double(Int32(bitPattern: load(bytes, at, UInt32.self))))
            case "INT16": value = .number(Double(Int16(bitPattern: load(bytes, at, UInt16.self))))
            case "INT8": value = .number(Double(Int8(bitPattern: bytes[at])))
            case "UINT64": value = .number(Double(load(bytes, at, UInt64.self)))
            case "UINT32": value = .number(Double(load(bytes, at, UInt32.self)))
            case "UINT16": value = .number(Double(load(bytes, at, UInt16.self)))
            case "UINT8": value = .number(Double(bytes[at]))
            default:  // BOOL
                guard bytes[at] <= 1 else {
                    throw RequestError.badRequest(
                        "input '\(input)' is BOOL but element \(k + 1) is the byte \(bytes[at]), not 0 or 1")
                }
                value = .bool(bytes[at] == 1)
            }
            values.append(value)
        }
        return values
    }

    private static func load<T: FixedWidthInteger>(_ bytes: UnsafeRawBufferPointer, _ at: Int, _: T.Type) -> T {
        T(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: T.self))
    }

    /// Appends `values` as little-endian FP64.
    static func appendFP64(_ values: [Double], to out: inout [UInt8]) {
        out.reserveCapacity(out.count + values.count * 8)
        for value in values {
            withUnsafeBytes(of: value.bitPattern.littleEndian) { out.append(contentsOf: $0) }
        }
    }

    /// Appends `texts` as BYTES elements.
    static func appendBytes(_ texts: [String], to out: inout [UInt8]) {
        for text in texts {
            let utf8 = Array(text.utf8)
            withUnsafeBytes(of: UInt32(utf8.count).littleEndian) { out.append(contentsOf: $0) }
            out.append(contentsOf: utf8)
        }
    }
}
