import Foundation
import SluiceCore
import SluiceTesting
import Testing

@Suite("Cron schedules")
struct CronScheduleTests {
    static let utc = TimeZone(identifier: "UTC")!

    func date(_ text: String) throws -> Date {
        try Date(text, strategy: .iso8601)
    }

    func next(_ expression: String, after: String, zone: TimeZone = utc) throws -> String? {
        try CronSchedule(expression, timeZone: zone).next(after: date(after)).map {
            $0.formatted(.iso8601)
        }
    }

    @Test("a daily time comes due the next day once today's has passed, and today when it has not")
    func daily() throws {
        #expect(try next("0 3 * * *", after: "2026-12-03T05:30:00Z") == "2026-12-04T03:00:00Z")
        #expect(try next("0 3 * * *", after: "2026-12-03T02:59:59Z") == "2026-12-03T03:00:00Z")
        // Strictly after: a time exactly due is not due again.
        #expect(try next("0 3 * * *", after: "2026-12-03T03:00:00Z") == "2026-12-04T03:00:00Z")
    }

    @Test("ranges, steps, lists and weekday names select the times they say")
    func fields() throws {
        // Friday 18:50 → the next weekday slot is Monday 08:00.
        #expect(try next("*/15 8-18 * * mon-fri", after: "2026-12-04T18:50:00Z") == "2026-12-07T08:00:00Z")
        #expect(try next("*/15 8-18 * * mon-fri", after: "2026-12-07T08:01:00Z") == "2026-12-07T08:15:00Z")
        #expect(try next("5,35 * * * *", after: "2026-12-03T05:06:00Z") == "2026-12-03T05:35:00Z")
        #expect(try next("10/20 * * * *", after: "2026-12-03T05:31:00Z") == "2026-12-03T05:50:00Z")
        #expect(try next("0 0 1 jan *", after: "2026-12-03T00:00:00Z") == "2027-01-01T00:00:00Z")
        // 7 is Sunday, as 0 is.
        #expect(try next("0 12 * * 7", after: "2026-12-03T00:00:00Z") == "2026-12-06T12:00:00Z")
        #expect(try next("@monthly", after: "2026-12-03T00:00:00Z") == "2027-01-01T00:00:00Z")
        #expect(try next("@hourly", after: "2026-12-03T05:30:00Z") == "2026-12-03T06:00:00Z")
    }

    @Test("with both day of month and day of week restricted, a day matching either is due (as cron does)")
    func dayOfMonthOrWeek() throws {
        // 2026-12-04 is a Friday; the 13th is a Sunday.
        #expect(try next("0 0 13 * fri", after: "2026-12-03T00:00:00Z") == "2026-12-04T00:00:00Z")
        #expect(try next("0 0 13 * fri", after: "2026-12-11T00:00:00Z") == "2026-12-13T00:00:00Z")
    }

    @Test("a leading seconds field schedules to the second")
    func seconds() throws {
        #expect(try next("*/10 * * * * *", after: "2026-12-03T05:30:01Z") == "2026-12-03T05:30:10Z")
        #expect(try next("30 0 3 * * *", after: "2026-12-03T05:30:01Z") == "2026-12-04T03:00:30Z")
    }

    @Test("fields are read in the schedule's time zone")
    func timeZone() throws {
        let berlin = try #require(TimeZone(identifier: "Europe/Berlin"))
        // 03:00 in Berlin is 02:00 UTC in winter and 01:00 UTC in summer.
        #expect(try next("0 3 * * *", after: "2026-12-03T05:30:00Z", zone: berlin) == "2026-12-04T02:00:00Z")
        #expect(try next("0 3 * * *", after: "2026-07-03T05:30:00Z", zone: berlin) == "2026-07-04T01:00:00Z")
    }

    @Test("a malformed expression is refused naming the field and what it accepts")
    func refused() {
        func problem(_ expression: String) -> String {
            do {
                _ = try CronSchedule(expression, timeZone: Self.utc)
                return "accepted"
            } catch let error as CronError {
                return error.problem + " | " + error.fix
            } catch {
                return "\(error)"
            }
        }
        #expect(problem("0 3 * *").contains("has 5 fields"))
        #expect(problem("61 * * * *").contains("the minute field '61' has 61, out of range"))
        #expect(problem("0 3 * * funday").contains("day of week field 'funday'"))
        #expect(problem("0 3 * * funday").contains("names (sun, mon, tue…)"))
        #expect(problem("*/0 * * * *").contains("step that is not a positive number"))
        #expect(problem("0 0 5-1 * *").contains("runs backwards"))
        #expect(problem("0 0 30 2 *").contains("never comes due"))
        #expect(problem("@fortnightly").contains("not a cron shorthand"))
        #expect(problem("0 3 * * *") == "accepted")
    }
}

@Suite("Folder snapshots for watching data arrive")
struct FolderSnapshotTests {
    @Test("new, changed and removed .csv files are told apart, at any depth; other files are not data")
    func changes() throws {
        let directory = try TemporaryDirectory(prefix: "sluice-snapshot")
        let root = directory.url.path
        let manager = FileManager.default
        try Data("a,b\n1,2\n".utf8).write(to: directory.path("one.csv"))
        try Data("a,b\n3,4\n".utf8).write(to: directory.path("two.CSV"))
        try Data("notes".utf8).write(to: directory.path("README.md"))
        let first = try FolderSnapshot(of: root)
        #expect(first.files.count == 2)
        #expect(first.changes(since: FolderSnapshot(empty: root)).changed.count == 2)
        #expect(try FolderSnapshot(of: root).changes(since: first).isEmpty)

        try manager.createDirectory(at: directory.path("2026/12"), withIntermediateDirectories: true)
        try Data("a,b\n5,6\n".utf8).write(to: directory.path("2026/12/three.csv"))
        try Data("a,b\n1,2\n7,8\n".utf8).write(to: directory.path("one.csv"))
        try manager.removeItem(at: directory.path("two.CSV"))
        try Data("more notes".utf8).write(to: directory.path("README.md"))
        let changes = try FolderSnapshot(of: root).changes(since: first)
        #expect(changes.changed == [root + "/2026/12/three.csv", root + "/one.csv"])
        #expect(changes.removed == [root + "/two.CSV"])
    }

    @Test("a file replaced by another of the same size is seen as changed (by its inode)")
    func replacedSameSize() throws {
        let directory = try TemporaryDirectory(prefix: "sluice-snapshot")
        try Data("a\n1\n".utf8).write(to: directory.path("data.csv"))
        let before = try FolderSnapshot(of: directory.url.path)
        let staged = directory.path("staged.tmp")
        try Data("a\n2\n".utf8).write(to: staged)
        // Give the new file the old one's modification time: only the inode tells them apart.
        let time = try FileManager.default.attributesOfItem(atPath: directory.path("data.csv").path)[.modificationDate]
        try FileManager.default.setAttributes([.modificationDate: time as Any], ofItemAtPath: staged.path)
        #expect(rename(staged.path, directory.path("data.csv").path) == 0)
        #expect(
            try FolderSnapshot(of: directory.url.path).changes(since: before).changed == [
                directory.path("data.csv").path
            ])
    }

    @Test("a missing folder is refused with how to make it")
    func missing() {
        let error = #expect(throws: FolderWatchError.self) { try FolderSnapshot(of: "/nonexistent/sluice/incoming") }
        #expect(error?.fix.contains("mkdir -p /nonexistent/sluice/incoming") == true)
    }
}
