import ArgumentParser
import Foundation
import SluiceCore
import SluiceData

/// `sluice data`: data work outside a pipeline.
struct DataCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data", abstract: "Summarize and check CSV data: statistics with pictures, schemas, validation.",
        subcommands: [Stats.self, SchemaCommand.self, Validate.self, Versions.self])

    /// Where dataset versions and file hashes are kept: the project's `.sluice/datasets/`, or the user's cache.
    static var datasetsDirectory: URL {
        if let project = Project.find() { return project.directory.appending(path: "datasets") }
        let home =
            ProcessInfo.processInfo.environment["XDG_CACHE_HOME"].map { URL(fileURLWithPath: $0) }
            ?? URL(fileURLWithPath: NSHomeDirectory()).appending(path: ".cache")
        return home.appending(path: "sluice/datasets")
    }

    /// The version of the dataset at `paths`, recorded in the versions log.
    static func version(of paths: [String], files: [URL]? = nil) throws -> (DatasetVersion, isNew: Bool) {
        let directory = datasetsDirectory
        let files = try files ?? CSVReader.expand(paths)
        let version = try DatasetVersion.compute(
            files, cache: FileHashCache(url: directory.appending(path: "file-hashes.json")))
        let isNew = try DatasetVersionLog(url: directory.appending(path: "versions.jsonl")).record(
            version, paths: paths)
        return (version, isNew)
    }

    struct Versions: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the dataset's version (a hash of its files' content) and the versions seen before.",
            discussion: """
                Unchanged files are not re-hashed (size, times and inode are remembered); changed ones always are.
                Example: sluice data versions 'data/**/*.csv'
                """)
        @Argument(help: "CSV files, folders or glob patterns.") var paths: [String]
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let (current, _) = try DataCommand.version(of: paths)
            let seen = DatasetVersionLog(url: DataCommand.datasetsDirectory.appending(path: "versions.jsonl")).entries()
                .filter { $0.paths == paths }
            if json {
                struct Output: Encodable {
                    var current: DatasetVersion
                    var seen: [DatasetVersionLog.Entry]
                }
                return print(try jsonString(Output(current: current, seen: seen)))
            }
            let t = Terminal.standardOutput
            print(
                "\(t.paint("current", .bold)) \(current.id)  (\(current.files.count) file\(current.files.count == 1 ? "" : "s"), \(formatBytes(current.bytes)))"
            )
            let rows = seen.reversed().map { entry in
                [
                    entry.version == current.id ? t.paint("●", .green) : " ", String(entry.version.prefix(23)),
                    formatDate(entry.firstSeen), "\(entry.files)", formatBytes(entry.bytes),
                ]
            }
            print(renderTable(["", "VERSION", "FIRST SEEN", "FILES", "SIZE"], rows, terminal: t))
        }
    }

    /// Statistics of `paths`, with a progress bar on a terminal.
    static func statistics(of paths: [String], options: CSVOptions, label: String = "reading") throws -> (
        DatasetStatistics, CSVSummary
    ) {
        try statistics(of: CSVReader(paths: paths, options: options), label: label)
    }

    /// Statistics of the files a reader reads, with a progress bar on a terminal.
    static func statistics(of reader: CSVReader, label: String = "reading") throws -> (DatasetStatistics, CSVSummary) {
        boundMallocArenas()
        let meter = ProgressMeter(label: label)
        defer { meter.finish() }
        return try DatasetStatistics.compute(reader) { meter.update($0.bytesRead, of: $0.totalBytes) }
    }

    struct SchemaCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "schema",
            abstract: "Infer a schema (types, required, ranges, categorical domains, drift limits) as editable YAML.",
            discussion: "Example: sluice data schema data/train.csv > schema.yaml")
        @OptionGroup var read: ReadOptions

        func run() async throws {
            let (statistics, _) = try DataCommand.statistics(of: read.paths, options: read.csvOptions())
            print(try Schema.inferred(from: statistics).yaml(), terminator: "")
        }
    }

    struct Validate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check data against a schema, and against a baseline's distribution for drift.",
            discussion: """
                Exit status: 0 when the data passes, 1 when there are anomalies, 2 when the input cannot be used.
                Example: sluice data validate data/new.csv --schema schema.yaml --baseline data/train.csv
                """)
        @OptionGroup var read: ReadOptions
        @Option(help: "The schema file (write one with `sluice data schema`).") var schema: String
        @Option(help: "Data to measure drift against (files, folders or globs).") var baseline: [String] = []
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let expected = try Schema.load(contentsOf: URL(fileURLWithPath: schema))
            let options = try read.csvOptions()
            let (statistics, _) = try DataCommand.statistics(of: read.paths, options: options)
            var reference: DatasetStatistics?
            if !baseline.isEmpty {
                reference = try DataCommand.statistics(of: baseline, options: options, label: "baseline").0
            }
            let validation = Validation.check(statistics, against: expected, baseline: reference)
            print(json ? try jsonString(validation) : validation.text())
            if !validation.passed { throw ExitCode(ExitStatus.failed.rawValue) }
        }
    }

    /// Options shared by the data verbs.
    struct ReadOptions: ParsableArguments {
        @Argument(help: "CSV files, folders (every .csv below) or glob patterns (quote them).")
        var paths: [String]
        @Option(help: "The field delimiter (one character; `\\t` for tab).") var delimiter = ","
        @Option(help: "Comma-separated texts that mean a missing value (an empty field always does).")
        var missing = "NA,N/A,NULL,null,NaN,nan"
        @Flag(help: "The files have no header row (columns are named column_1, column_2, …).") var noHeader = false
        @Flag(help: "Skip rows that cannot be parsed, reporting how many and the first examples.") var skipBadRows =
            false

        func csvOptions() throws -> CSVOptions {
            var options = CSVOptions()
            let delimiter = self.delimiter == "\\t" ? "\t" : self.delimiter
            guard delimiter.utf8.count == 1 else {
                throw ValidationError("--delimiter must be one character, like ',' or ';' or '\\t'.")
            }
            options.delimiter = delimiter.utf8.first!
            options.missingValues = Set(
                missing.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            )
            .union([""])
            options.hasHeader = !noHeader
            options.skipBadRows = skipBadRows
            return options
        }
    }

    struct Stats: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Per-column statistics: counts, missing, moments, quantiles, histogram, distinct, top values.",
            discussion: """
                Streams the files in bounded memory, parsing and summarizing on every core.
                Examples:
                  sluice data stats data/train.csv
                  sluice data stats 'data/**/*.csv' --html stats.html
                """)
        @OptionGroup var read: ReadOptions
        @Option(help: "Also write the statistics as a self-contained HTML page with charts.") var html: String?
        @Flag(help: "Print JSON instead of the table.") var json = false

        func run() async throws {
            let started = Date()
            // One listing of the files serves both the version and the pass.
            let reader = try CSVReader(paths: read.paths, options: read.csvOptions())
            let (version, _) = try DataCommand.version(of: read.paths, files: reader.files)
            let (statistics, summary) = try DataCommand.statistics(of: reader)
            if json {
                struct Output: Encodable {
                    var files: [String]
                    var rows: Int
                    var bytes: Int64
                    var badRowCount: Int
                    var badRows: [BadRow]
                    var columns: [ColumnSummary]
                    var version: String
                    var seconds: Double
                    var peakResidentBytes: Int
                }
                print(
                    try jsonString(
                        Output(
                            files: summary.files.map(\.path), rows: summary.rows, bytes: summary.bytes,
                            badRowCount: summary.badRowCount, badRows: summary.badRows,
                            columns: statistics.columns.map(ColumnSummary.init),
                            version: version.id, seconds: Date().timeIntervalSince(started),
                            peakResidentBytes: peakResidentBytes())))
            } else {
                print("dataset version \(version.id)")
                print(StatisticsReport.text(statistics))
                if summary.badRowCount > 0 {
                    print("\nskipped \(summary.badRowCount) bad row\(summary.badRowCount == 1 ? "" : "s"); the first:")
                    for bad in summary.badRows { print("  \(bad.place): \(bad.problem)") }
                }
            }
            if let html {
                let title =
                    summary.files.count == 1 ? summary.files[0].lastPathComponent : "\(summary.files.count) files"
                try Data(StatisticsReport.html(statistics, title: "Statistics of \(title)").utf8)
                    .write(to: URL(fileURLWithPath: html), options: .atomic)
                printError("wrote \(html)")
            }
        }
    }
}

/// glibc gives threads their own malloc arenas, each reserving 64 MiB (128 MiB while aligning) of address space.
/// Under a `ulimit -v` those reservations fail and glibc falls back to an `mmap` and `munmap` per large
/// allocation: measured here, a 600 MB file took 137 s instead of 2.5 s. One arena avoids it; the streaming
/// pass allocates a few large buffers per window, so sharing the arena's lock costs nothing measurable.
func boundMallocArenas() {
    #if os(Linux)
        _ = glibcMallopt(-8, 1)  // M_ARENA_MAX from <malloc.h>, which the Glibc module does not export
        _ = glibcMallopt(-3, 32 << 20)  // M_MMAP_THRESHOLD
        _ = glibcMallopt(-1, 256 << 20)  // M_TRIM_THRESHOLD
    #endif
}

#if os(Linux)
    @_silgen_name("mallopt")
    private func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32
#endif

/// The process's peak resident memory, in bytes. On Linux from `VmHWM` (this program's own address space):
/// `getrusage`'s `ru_maxrss` survives `exec`, so it would report the peak of whatever forked this process.
func peakResidentBytes() -> Int {
    #if os(Linux)
        if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
            let kilobytes = Int(line.split(separator: " ").dropFirst().first ?? "")
        {
            return kilobytes * 1024
        }
    #endif
    var usage = rusage()
    #if os(Linux)
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    #else
        getrusage(RUSAGE_SELF, &usage)
    #endif
    return usage.ru_maxrss * 1024
}

/// A progress bar with throughput on standard error, drawn only on a terminal and at most ten times a second.
final class ProgressMeter: @unchecked Sendable {
    // Only the reading thread calls it.
    private let label: String
    private let terminal = Terminal.standardError
    private let start = Date()
    private var lastDraw = Date.distantPast
    private var drawn = false

    init(label: String) { self.label = label }

    /// Draws `done` of `total` (bytes, or `unit`), with rows per second when `rows` is given.
    func update(_ done: Int64, of total: Int64, rows: Int? = nil, unit: String? = nil) {
        guard terminal.isInteractive, Date().timeIntervalSince(lastDraw) > 0.1 else { return }
        lastDraw = Date()
        let elapsed = max(Date().timeIntervalSince(start), 1e-6)
        let fraction = total > 0 ? min(1, Double(done) / Double(total)) : 0
        let width = 30
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
        let rate = Double(done) / 1e6 / elapsed
        let amount =
            unit.map { "\(done)/\(total) \($0)" }
            ?? "\(formatBytes(done))/\(formatBytes(total)) \(String(format: "%.0f MB/s", rate))"
        let rowRate = rows.map { " \(Int(Double($0) / elapsed)) rows/s" } ?? ""
        printError(
            "\r\(label) [\(terminal.paint(bar, .cyan))] \(String(format: "%3.0f%%", fraction * 100)) "
                + "\(amount)\(rowRate)\u{1B}[K",
            terminator: "")
        drawn = true
    }

    func finish() {
        if drawn { printError("\r\u{1B}[K", terminator: "") }
    }
}
