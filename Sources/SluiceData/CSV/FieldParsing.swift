import Foundation

/// Byte-level parsers for field texts. Each takes a pointer and a length and returns `nil` when the text is
/// not of its type, so callers can fall back (missing-value tokens, type widening, errors).
enum FieldParsing {
    /// 10⁰…10²², all exact in a double. A switch of constants, which the compiler turns into a table in
    /// read-only data: no `swift_once` check (a stored static array) and no copy of a tuple per call.
    @inline(__always)
    static func powerOfTen(_ k: Int) -> Double {
        switch k {
        case 0: 1e0
        case 1: 1e1
        case 2: 1e2
        case 3: 1e3
        case 4: 1e4
        case 5: 1e5
        case 6: 1e6
        case 7: 1e7
        case 8: 1e8
        case 9: 1e9
        case 10: 1e10
        case 11: 1e11
        case 12: 1e12
        case 13: 1e13
        case 14: 1e14
        case 15: 1e15
        case 16: 1e16
        case 17: 1e17
        case 18: 1e18
        case 19: 1e19
        case 20: 1e20
        case 21: 1e21
        default: 1e22
        }
    }

    @inline(__always)
    static func isDigit(_ byte: UInt8) -> Bool { byte &- 48 < 10 }

    /// A decimal integer with an optional sign; `nil` on anything else or on overflow.
    static func integer(_ p: UnsafePointer<UInt8>, _ count: Int) -> Int64? {
        var i = 0
        var negative = false
        if count > 0 && (p[0] == UInt8(ascii: "-") || p[0] == UInt8(ascii: "+")) {
            negative = p[0] == UInt8(ascii: "-")
            i = 1
        }
        guard i < count else { return nil }
        var value: UInt64 = 0
        while i < count {
            let digit = p[i] &- 48
            guard digit < 10 else { return nil }
            let (times10, o1) = value.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times10.addingReportingOverflow(UInt64(digit))
            if o1 || o2 { return nil }
            value = sum
            i += 1
        }
        if negative {
            guard value <= UInt64(Int64.max) + 1 else { return nil }
            return value == UInt64(Int64.max) + 1 ? Int64.min : -Int64(value)
        }
        guard value <= UInt64(Int64.max) else { return nil }
        return Int64(value)
    }

    /// A decimal floating-point number (`-12.5`, `3e-4`, `.5`, `inf`, `nan`). Numbers with at most 19
    /// significant digits and a small exponent are computed exactly (Clinger's fast path); others go to `strtod`.
    static func double(_ p: UnsafePointer<UInt8>, _ count: Int) -> Double? {
        guard count > 0 else { return nil }
        // Fast path for the common shape `-?digits(.digits)?` of at most 19 characters: every digit fits a
        // UInt64 mantissa, and the result is exact when the mantissa is at most 2^53.
        if count <= 19 {
            var i = 0
            let negative = p[0] == UInt8(ascii: "-")
            if negative || p[0] == UInt8(ascii: "+") { i = 1 }
            var mantissa: UInt64 = 0
            var dot = -1
            var digits = 0
            while i < count {
                let d = p[i] &- 48
                if d < 10 {
                    mantissa = mantissa &* 10 &+ UInt64(d)
                    digits += 1
                } else if p[i] == UInt8(ascii: "."), dot < 0 {
                    dot = i
                } else {
                    break
                }
                i += 1
            }
            if i == count && digits > 0 && mantissa <= 1 << 53 {
                let decimals = dot < 0 ? 0 : count - dot - 1
                if decimals <= 22 {
                    let value = decimals == 0 ? Double(mantissa) : Double(mantissa) / powerOfTen(decimals)
                    return negative ? -value : value
                }
            }
        }
        var i = 0
        var negative = false
        if p[0] == UInt8(ascii: "-") || p[0] == UInt8(ascii: "+") {
            negative = p[0] == UInt8(ascii: "-")
            i = 1
        }
        var mantissa: UInt64 = 0
        var digits = 0
        var exponent = 0
        var sawDigit = false
        var truncated = false
        while i < count, isDigit(p[i]) {
            sawDigit = true
            if digits < 19 {
                mantissa = mantissa &* 10 &+ UInt64(p[i] &- 48)
                if mantissa != 0 { digits += 1 }
            } else {
                exponent += 1
                truncated = true
            }
            i += 1
        }
        if i < count, p[i] == UInt8(ascii: ".") {
            i += 1
            while i < count, isDigit(p[i]) {
                sawDigit = true
                if digits < 19 {
                    mantissa = mantissa &* 10 &+ UInt64(p[i] &- 48)
                    if mantissa != 0 { digits += 1 }
                    exponent -= 1
                } else {
                    truncated = true
                }
                i += 1
            }
        }
        guard sawDigit else { return slow(p, count) }
        if i < count, p[i] == UInt8(ascii: "e") || p[i] == UInt8(ascii: "E") {
            i += 1
            var expNegative = false
            if i < count, p[i] == UInt8(ascii: "-") || p[i] == UInt8(ascii: "+") {
                expNegative = p[i] == UInt8(ascii: "-")
                i += 1
            }
            guard i < count else { return nil }
            var e = 0
            while i < count, isDigit(p[i]) {
                if e < 100_000 { e = e * 10 + Int(p[i] &- 48) }
                i += 1
            }
            exponent += expNegative ? -e : e
        }
        guard i == count else { return nil }
        if !truncated, mantissa <= 1 << 53, exponent >= -22, exponent <= 22 {
            var value = Double(mantissa)
            value = exponent < 0 ? value / powerOfTen(-exponent) : value * powerOfTen(exponent)
            return negative ? -value : value
        }
        return slow(p, count)
    }

    /// `strtod` on a NUL-terminated copy, accepting only a full match.
    static func slow(_ p: UnsafePointer<UInt8>, _ count: Int) -> Double? {
        guard count < 512 else { return nil }
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: count + 1) { buffer in
            for k in 0..<count { buffer[k] = CChar(bitPattern: p[k]) }
            buffer[count] = 0
            var end: UnsafeMutablePointer<CChar>?
            let value = strtod(buffer.baseAddress!, &end)
            guard let end, end - buffer.baseAddress! == count else { return nil }
            return value
        }
    }

    /// `true`/`false` in any case.
    static func boolean(_ p: UnsafePointer<UInt8>, _ count: Int) -> Bool? {
        func matches(_ word: StaticString) -> Bool {
            guard word.utf8CodeUnitCount == count else { return false }
            let w = word.utf8Start
            for k in 0..<count where p[k] | 0x20 != w[k] { return false }
            return true
        }
        if matches("true") { return true }
        if matches("false") { return false }
        return nil
    }

    /// ISO 8601 dates and times as microseconds since the epoch: `2024-03-01`, `2024-03-01T12:30:00`,
    /// `2024-03-01 12:30:00.25`, with an optional `Z` or `±HH:MM` offset.
    static func timestamp(_ p: UnsafePointer<UInt8>, _ count: Int) -> Int64? {
        func number(_ at: Int, _ length: Int) -> Int? {
            guard at + length <= count else { return nil }
            var value = 0
            for k in at..<(at + length) {
                let d = p[k] &- 48
                guard d < 10 else { return nil }
                value = value * 10 + Int(d)
            }
            return value
        }
        guard count >= 10, p[4] == UInt8(ascii: "-"), p[7] == UInt8(ascii: "-"),
            let year = number(0, 4), let month = number(5, 2), let day = number(8, 2),
            (1...12).contains(month), (1...31).contains(day)
        else { return nil }
        var seconds = Int64(daysFromCivil(year, month, day)) * 86_400
        var micros: Int64 = 0
        var i = 10
        if i < count {
            guard p[i] == UInt8(ascii: "T") || p[i] == UInt8(ascii: " "), count >= 19, p[13] == UInt8(ascii: ":"),
                p[16] == UInt8(ascii: ":"), let hour = number(11, 2), let minute = number(14, 2),
                let second = number(17, 2), hour < 24, minute < 60, second < 61
            else { return nil }
            seconds += Int64(hour * 3600 + minute * 60 + second)
            i = 19
            if i < count, p[i] == UInt8(ascii: ".") {
                i += 1
                var scale: Int64 = 100_000
                while i < count, isDigit(p[i]) {
                    micros += Int64(p[i] &- 48) * scale
                    scale /= 10
                    i += 1
                }
            }
            if i < count, p[i] == UInt8(ascii: "Z") {
                i += 1
            } else if i < count, p[i] == UInt8(ascii: "+") || p[i] == UInt8(ascii: "-") {
                guard let hours = number(i + 1, 2), i + 3 < count, p[i + 3] == UInt8(ascii: ":"),
                    let minutes = number(i + 4, 2)
                else { return nil }
                let offset = Int64(hours * 3600 + minutes * 60)
                seconds += p[i] == UInt8(ascii: "+") ? -offset : offset
                i += 6
            }
        }
        guard i == count else { return nil }
        return seconds * 1_000_000 + micros
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    static func daysFromCivil(_ year: Int, _ month: Int, _ day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}
