import Foundation

/// A cron expression (`minute hour day-of-month month day-of-week`, as crontab(5) reads it) and the times it comes
/// due in a time zone.
///
/// A sixth, leading field of seconds is also read (`*/10 * * * * *`, every ten seconds), as Quartz and croner do.
///
/// Fields take `*`, numbers, ranges (`1-5`), lists (`1,15`) and steps (`*/15`, `8-18/2`, `5/10`); months and
/// weekdays also take names (`jan`, `mon-fri`); day of week 0 and 7 are both Sunday. As in cron, when both the day
/// of month and the day of week are restricted, a day matching either is due. `@hourly`, `@daily` (`@midnight`),
/// `@weekly`, `@monthly` and `@yearly` (`@annually`) stand for their usual expressions.
package struct CronSchedule: Sendable, Equatable, CustomStringConvertible {
    /// The expression as written.
    public let expression: String
    /// The time zone its fields are read in.
    public let timeZone: TimeZone
    let seconds: Set<Int>
    let minutes: Set<Int>
    let hours: Set<Int>
    let daysOfMonth: Set<Int>
    let months: Set<Int>
    /// 0 is Sunday.
    let daysOfWeek: Set<Int>
    let dayOfMonthRestricted: Bool
    let dayOfWeekRestricted: Bool

    public var description: String { expression }

    /// Parses `expression`, read in `timeZone` (the machine's by default).
    /// - Throws: ``CronError`` naming the field that is wrong and what it accepts.
    public init(_ expression: String, timeZone: TimeZone = .current) throws {
        self.expression = expression
        self.timeZone = timeZone
        let trimmed = expression.trimmingCharacters(in: .whitespaces)
        let macros = [
            "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
            "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
        ]
        let text: String
        if trimmed.hasPrefix("@") {
            guard let expanded = macros[trimmed.lowercased()] else {
                throw CronError(
                    expression: expression,
                    problem: "'\(trimmed)' is not a cron shorthand",
                    fix:
                        "use one of \(macros.keys.sorted().joined(separator: ", ")), or five fields like \"0 3 * * *\"."
                )
            }
            text = expanded
        } else {
            text = trimmed
        }
        var fields = text.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard fields.count == 5 || fields.count == 6 else {
            throw CronError(
                expression: expression,
                problem:
                    "a cron expression has 5 fields (minute hour day-of-month month day-of-week), this has \(fields.count)",
                fix: "for example \"0 3 * * *\" is every day at 03:00; \"*/15 * * * *\" every 15 minutes.")
        }
        if fields.count == 6 {
            seconds = try Self.field(fields.removeFirst(), name: "second", range: 0...59, expression: expression)
        } else {
            seconds = [0]
        }
        let monthNames = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
        let dayNames = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
        minutes = try Self.field(fields[0], name: "minute", range: 0...59, expression: expression)
        hours = try Self.field(fields[1], name: "hour", range: 0...23, expression: expression)
        daysOfMonth = try Self.field(fields[2], name: "day of month", range: 1...31, expression: expression)
        months = try Self.field(
            fields[3], name: "month", range: 1...12,
            names: Dictionary(
                uniqueKeysWithValues: monthNames.enumerated().map { ($1, $0 + 1) }), expression: expression)
        let weekdays = try Self.field(
            fields[4], name: "day of week", range: 0...7,
            names: Dictionary(
                uniqueKeysWithValues: dayNames.enumerated().map { ($1, $0) }), expression: expression)
        daysOfWeek = Set(weekdays.map { $0 % 7 })
        dayOfMonthRestricted = !fields[2].hasPrefix("*")
        dayOfWeekRestricted = !fields[4].hasPrefix("*")
        if next(after: Date()) == nil {
            throw CronError(
                expression: expression, problem: "this schedule never comes due (no such day in those months)",
                fix: "check the day of month against the month: \"0 0 30 2 *\" asks for February 30th.")
        }
    }

    /// The first time after `date` (strictly later, on a whole second) the schedule is due, or nil when it never is
    /// within the next eight years.
    public func next(after date: Date) -> Date? {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        var t = Date(timeIntervalSince1970: date.timeIntervalSince1970.rounded(.down) + 1)
        let limit = date.addingTimeInterval(8 * 366 * 86_400)
        while t < limit {
            let c = calendar.dateComponents([.month, .day, .hour, .minute, .second, .weekday], from: t)
            if !months.contains(c.month!) {
                t = calendar.dateInterval(of: .month, for: t)!.end
            } else if !dayMatches(day: c.day!, weekday: c.weekday! - 1) {
                t = calendar.dateInterval(of: .day, for: t)!.end
            } else if !hours.contains(c.hour!) {
                t = calendar.dateInterval(of: .hour, for: t)!.end
            } else if !minutes.contains(c.minute!) {
                t = calendar.dateInterval(of: .minute, for: t)!.end
            } else if !seconds.contains(c.second!) {
                t = t.addingTimeInterval(1)
            } else {
                return t
            }
        }
        return nil
    }

    private func dayMatches(day: Int, weekday: Int) -> Bool {
        switch (dayOfMonthRestricted, dayOfWeekRestricted) {
        case (true, true): daysOfMonth.contains(day) || daysOfWeek.contains(weekday)
        case (true, false): daysOfMonth.contains(day)
        case (false, true): daysOfWeek.contains(weekday)
        case (false, false): true
        }
    }

    private static func field(
        _ text: String, name: String, range: ClosedRange<Int>, names: [String: Int] = [:], expression: String
    ) throws -> Set<Int> {
        func fail(_ problem: String) -> CronError {
            CronError(
                expression: expression, problem: "the \(name) field '\(text)' \(problem)",
                fix: "the \(name) takes \(range.lowerBound)-\(range.upperBound)"
                    + (names.isEmpty
                        ? ""
                        : " or names (\(names.keys.sorted { names[$0]! < names[$1]! }.prefix(3).joined(separator: ", "))…)")
                    + ", '*', lists (a,b), ranges (a-b) and steps (*/n).")
        }
        func value(_ token: Substring) throws -> Int {
            if let number = Int(token), range.contains(number) { return number }
            if let named = names[token.lowercased()] { return named }
            throw fail(Int(token) == nil ? "has '\(token)', which is not a number" : "has \(token), out of range")
        }
        var result = Set<Int>()
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            let parts = item.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count <= 2, !parts[0].isEmpty else { throw fail("is malformed") }
            var step = 1
            if parts.count == 2 {
                guard let n = Int(parts[1]), n > 0 else { throw fail("has a step that is not a positive number") }
                step = n
            }
            let lower: Int
            let upper: Int
            if parts[0] == "*" {
                (lower, upper) = (range.lowerBound, range.upperBound)
            } else if let dash = parts[0].firstIndex(of: "-") {
                lower = try value(parts[0][..<dash])
                upper = try value(parts[0][parts[0].index(after: dash)...])
                guard lower <= upper else { throw fail("has a range that runs backwards") }
            } else {
                lower = try value(parts[0])
                upper = parts.count == 2 ? range.upperBound : lower
            }
            result.formUnion(stride(from: lower, through: upper, by: step))
        }
        return result
    }
}

/// A cron expression that cannot be read, with what is wrong and how to write it.
package struct CronError: SluiceError {
    /// The expression as written.
    public var expression: String
    public var problem: String
    public var fix: String
    public var exitStatus: ExitStatus { .unusableInput }
    public var description: String { "cron expression \"\(expression)\": \(problem)\n  To fix: \(fix)" }
}
