import Foundation

/// Receives the fields of rows as the tokenizer finds them.
protocol FieldSink {
    /// A field of the current row; `false` rejects the row (a value of the wrong type).
    mutating func field(_ index: Int, _ p: UnsafePointer<UInt8>, _ count: Int) -> Bool
    /// The current row ended after `fields` fields; `false` rejects it.
    mutating func endRow(fields: Int) -> Bool
    /// The current row was rejected: undo whatever it appended.
    mutating func dropRow()
    /// Why the sink rejected the last field or row.
    var rejection: (problem: String, fix: String)? { get }
}

/// Why the tokenizer stopped before its limit.
enum TokenizerStop: Equatable {
    /// Parsed every row that starts before the limit.
    case done
    /// A row runs past the end of the buffer, which is not the end of the file: read more.
    case needMoreData
    /// A row is malformed (or a sink rejected it); `offset` is where, in the buffer.
    case error(offset: Int, problem: String, fix: String)
}

/// Splits RFC 4180 text into rows and fields: quoted fields with `""` escapes and embedded newlines and
/// delimiters, LF or CRLF line ends, blank lines skipped.
struct Tokenizer {
    let delimiter: UInt8
    /// Fields per row; a negative count accepts any (for the header).
    let columnCount: Int
    /// Scratch space for unescaping quoted fields.
    var scratch: [UInt8] = []
    let delimiterMask: UInt64

    init(delimiter: UInt8, columnCount: Int) {
        self.delimiter = delimiter
        self.columnCount = columnCount
        self.delimiterMask = UInt64(delimiter) &* 0x0101_0101_0101_0101
    }

    static var newlineMask: UInt64 { 0x0A0A_0A0A_0A0A_0A0A }
    static var carriageMask: UInt64 { 0x0D0D_0D0D_0D0D_0D0D }

    /// High bit set in the lowest byte of `x` that is zero (bytes above it may be marked spuriously by the
    /// borrow, which is harmless when only the lowest mark is used).
    @inline(__always)
    static func zeroBytes(_ x: UInt64) -> UInt64 {
        (x &- 0x0101_0101_0101_0101) & ~x & 0x8080_8080_8080_8080
    }

    /// Tokenizes rows starting at `start` while they start before `limit`, within `buffer`.
    /// - Parameter atEndOfFile: the buffer ends where the file ends (a last row needs no line end).
    /// - Returns: how it stopped, the offset of the first row not consumed, and the rows given to the sink.
    mutating func run<S: FieldSink>(
        _ buffer: UnsafeRawBufferPointer, from start: Int, limit: Int, atEndOfFile: Bool, skipBadRows: Bool,
        sink: inout S, onBadRow: (Int, String) -> Void
    ) -> (stop: TokenizerStop, next: Int, rows: Int) {
        guard let base = buffer.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return (.done, start, 0) }
        let end = buffer.count
        let quote = UInt8(ascii: "\"")
        let newline = UInt8(ascii: "\n")
        let carriage = UInt8(ascii: "\r")
        var pos = start
        var rows = 0
        rowLoop: while pos < limit && pos < end {
            let rowStart = pos
            // Blank lines are skipped.
            if base[pos] == newline {
                pos += 1
                continue
            }
            if base[pos] == carriage, pos + 1 < end, base[pos + 1] == newline {
                pos += 2
                continue
            }
            var fieldIndex = 0
            var rejected: (Int, String, String)?
            while true {
                var fieldStart = pos
                var fieldLength = 0
                var fieldPointer = base + pos
                if pos < end && base[pos] == quote {
                    // Quoted field: runs to the next quote not followed by another quote.
                    let opening = pos
                    pos += 1
                    fieldStart = pos
                    var escaped = false
                    while true {
                        guard pos < end else {
                            if atEndOfFile {
                                sink.dropRow()
                                return (
                                    .error(
                                        offset: opening, problem: "a quoted field is never closed (unterminated quote)",
                                        fix: "close the quote with \", or write a quote inside a quoted field as \"\"."),
                                    rowStart, rows
                                )
                            }
                            sink.dropRow()
                            return (.needMoreData, rowStart, rows)
                        }
                        if base[pos] == quote {
                            if pos + 1 < end && base[pos + 1] == quote {
                                escaped = true
                                pos += 2
                                continue
                            }
                            if pos + 1 >= end && !atEndOfFile {
                                sink.dropRow()
                                return (.needMoreData, rowStart, rows)
                            }
                            break
                        }
                        pos += 1
                    }
                    fieldLength = pos - fieldStart
                    pos += 1  // the closing quote
                    if escaped {
                        scratch.removeAll(keepingCapacity: true)
                        var k = fieldStart
                        while k < fieldStart + fieldLength {
                            scratch.append(base[k])
                            k += base[k] == quote ? 2 : 1
                        }
                    }
                    // After the closing quote: a delimiter, a line end, or the end of the file.
                    if pos < end && base[pos] != delimiter && base[pos] != newline
                        && !(base[pos] == carriage && pos + 1 < end && base[pos + 1] == newline)
                    {
                        rejected = (
                            pos, "unexpected text after a closing quote",
                            "put the whole field in quotes, and write a quote inside it as \"\"."
                        )
                    }
                    if rejected == nil && (columnCount < 0 || fieldIndex < columnCount) {
                        let accepted: Bool
                        if escaped {
                            accepted = scratch.withUnsafeBufferPointer {
                                sink.field(fieldIndex, $0.baseAddress!, $0.count)
                            }
                        } else {
                            fieldPointer = base + fieldStart
                            accepted = sink.field(fieldIndex, fieldPointer, fieldLength)
                        }
                        if !accepted { rejected = (fieldStart - 1, "", "") }
                    }
                } else {
                    // Eight bytes at a time: the lowest marked byte of the word is the first delimiter, line feed
                    // or carriage return, so the field's end comes from one trailing-zero count.
                    scan: while true {
                        if pos + 8 <= end {
                            let word = UnsafeRawPointer(base + pos).loadUnaligned(as: UInt64.self)
                            let marks =
                                Self.zeroBytes(word ^ delimiterMask) | Self.zeroBytes(word ^ Self.newlineMask)
                                | Self.zeroBytes(word ^ Self.carriageMask)
                            if marks == 0 {
                                pos += 8
                                continue scan
                            }
                            pos += marks.trailingZeroBitCount >> 3
                        } else {
                            while pos < end && base[pos] != delimiter && base[pos] != newline && base[pos] != carriage {
                                pos += 1
                            }
                        }
                        // A carriage return not followed by a line feed is data.
                        if pos < end && base[pos] == carriage && !(pos + 1 < end && base[pos + 1] == newline) {
                            if pos + 1 >= end && !atEndOfFile { break scan }
                            pos += 1
                            continue scan
                        }
                        break scan
                    }
                    if pos >= end && !atEndOfFile {
                        sink.dropRow()
                        return (.needMoreData, rowStart, rows)
                    }
                    fieldLength = pos - fieldStart
                    if rejected == nil && (columnCount < 0 || fieldIndex < columnCount)
                        && !sink.field(fieldIndex, base + fieldStart, fieldLength)
                    {
                        rejected = (fieldStart, "", "")
                    }
                }
                fieldIndex += 1
                if pos < end && base[pos] == delimiter {
                    pos += 1
                    continue
                }
                // End of row: LF, CRLF or end of file.
                if pos < end && base[pos] == carriage { pos += 1 }
                if pos < end && base[pos] == newline { pos += 1 }
                break
            }
            if rejected == nil && columnCount >= 0 && fieldIndex != columnCount {
                rejected = (
                    rowStart,
                    "expected \(columnCount) field\(columnCount == 1 ? "" : "s") but found \(fieldIndex) (a ragged row)",
                    "give every row the same number of fields as the header, quoting fields that contain the delimiter."
                )
            }
            if rejected == nil && !sink.endRow(fields: fieldIndex) { rejected = (rowStart, "", "") }
            if var (offset, problem, fix) = rejected {
                if problem.isEmpty, let reason = sink.rejection { (problem, fix) = reason }
                sink.dropRow()
                if skipBadRows {
                    onBadRow(offset, problem)
                    continue rowLoop
                }
                return (.error(offset: offset, problem: problem, fix: fix), rowStart, rows)
            }
            rows += 1
        }
        return (.done, pos, rows)
    }
}
