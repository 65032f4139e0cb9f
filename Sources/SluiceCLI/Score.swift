import ArgumentParser
import Dispatch
import Foundation
import SluiceComponents
import SluiceCore
import SluiceData
import SluiceML
import Synchronization

/// `sluice score`: batch scoring of CSV or Arrow files of any size with a registered model.
struct ScoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "score",
        abstract: "Score CSV or Arrow files of any size with a registered model, through its own transforms.",
        discussion: """
            Reads the inputs in windows (CSV, parsed and scored on every core) or record batches (Arrow), so memory
            stays bounded however large they are, and writes OUT.csv or OUT.arrow as it goes: the kept columns,
            `prediction` (in the label's type), `probability_CLASS` per class for a classifier, and `model_version`.
            The output appears only when the job succeeds. A row that cannot be read (a value that is not the
            type the model reads, a malformed line) stops the job with its file:line:column, or with
            --skip-bad-rows is skipped and counted. Ctrl-C stops it (exit 130) and leaves no output.
            Examples:
              sluice score penguins@production data/new.csv -o scored.csv --keep id
              sluice score churn@3 'incoming/*.csv' -o scores.arrow --skip-bad-rows
            """)

    @Argument(help: "MODEL, MODEL@STAGE or MODEL@VERSION.") var model: String
    @Argument(help: "CSV files, folders (every .csv below) or glob patterns; or Arrow (.arrow, .feather) files.")
    var paths: [String]
    @Option(name: .shortAndLong, help: "The output: a .csv or .arrow file.") var output: String
    @Option(help: "An input column to copy to the output beside the predictions (repeat for several).")
    var keep: [String] = []
    @Flag(help: "Skip rows that cannot be read (counted, the first reported) instead of stopping.")
    var skipBadRows = false
    @Option(help: "The CSV field delimiter (one character; `\\t` for tab).") var delimiter = ","
    @OptionGroup var stackOption: StackOption

    func run() async throws {
        let destination = URL(fileURLWithPath: output)
        let format = destination.pathExtension.lowercased()
        guard ["csv", "arrow", "feather"].contains(format) else {
            throw ValidationError("-o must name a .csv or .arrow file, not '\(output)'")
        }
        let workspace = try await Workspace.open(create: false, stack: stackOption.name)
        let registry = workspace.metadata
        let version = try await registry.resolve(model)
        let label = "\(version.model)@\(version.version)"
        let bundle = try ModelBundle.load(
            try await bundleData(of: version, in: registry, artifacts: workspace.artifacts))
        let scorer = try BatchScorer(bundle: bundle, version: label, keep: keep)

        let cancelled = CancelFlag()
        let interrupts = InterruptHandler { cancelled.set() }
        defer { interrupts.stop() }
        boundMallocArenas()
        let start = ContinuousClock.now
        let arrowInputs = paths.allSatisfy { ["arrow", "feather"].contains(URL(fileURLWithPath: $0).pathExtension) }
        let sink = try ScoreSink(url: destination, arrow: format != "csv", scorer: scorer)
        printError("scoring \(paths.joined(separator: " ")) with \(label) → \(output)")
        let meter = ProgressMeter(label: "scoring")
        var summary: CSVSummary?
        do {
            if arrowInputs {
                try scoreArrow(scorer, into: sink, meter: meter, cancelled: cancelled)
            } else {
                summary = try scoreCSV(scorer, into: sink, meter: meter, cancelled: cancelled)
            }
        } catch is CancellationError {
            meter.finish()
            printError("stopped: nothing written to \(output)")
            throw ExitCode(ExitStatus.interrupted.rawValue)
        }
        meter.finish()
        try sink.finish()
        let seconds = max((ContinuousClock.now - start) / .seconds(1), 1e-9)
        print(
            "scored \(sink.rows) rows with \(label) in \(String(format: "%.2f", seconds)) s "
                + "(\(Int(Double(sink.rows) / seconds)) rows/s) → \(output)")
        if let summary, summary.badRowCount > 0 {
            print("skipped \(summary.badRowCount) bad row\(summary.badRowCount == 1 ? "" : "s"); the first:")
            for bad in summary.badRows { print("  \(bad.place): \(bad.problem)") }
        }
    }

    /// CSV inputs: windows parsed and scored on the parsing threads (every core), written in order.
    private func scoreCSV(
        _ scorer: BatchScorer, into sink: ScoreSink, meter: ProgressMeter, cancelled: CancelFlag
    ) throws -> CSVSummary {
        var options = CSVOptions()
        let delimiter = self.delimiter == "\\t" ? "\t" : self.delimiter
        guard delimiter.utf8.count == 1 else {
            throw ValidationError("--delimiter must be one character, like ',' or ';' or '\\t'.")
        }
        options.delimiter = delimiter.utf8.first!
        options.skipBadRows = skipBadRows
        options.schema = scorer.readingSchema
        let reader = try CSVReader(paths: paths, options: options)
        return try reader.mapChunks(
            { table -> (Table?, [String]) in
                // Ctrl-C is noticed per piece on the parsing threads too, not only between windows.
                if cancelled.isSet { throw CancellationError() }
                // A window without a column the model reads is reported with its file by the writer below.
                guard (try? scorer.check(columns: table.columnNames, source: "")) != nil else {
                    return (nil, table.columnNames)
                }
                return (try scorer.score(table), [])
            },
            { result, progress in
                if cancelled.isSet { throw CancellationError() }
                guard let scored = result.0 else {
                    try scorer.check(columns: result.1, source: progress.file.path)
                    return
                }
                try sink.write(scored)
                meter.update(progress.bytesRead, of: progress.totalBytes, rows: sink.rows)
            })
    }

    /// Arrow inputs: record batches, a few scored at once (one per core), written in order.
    private func scoreArrow(
        _ scorer: BatchScorer, into sink: ScoreSink, meter: ProgressMeter, cancelled: CancelFlag
    ) throws {
        let files = paths.map { URL(fileURLWithPath: $0) }
        let readers = try files.map { try ArrowFileReader(contentsOf: $0) }
        for (file, reader) in zip(files, readers) {
            try scorer.check(columns: reader.columnNames, source: file.path)
        }
        let total = Int64(readers.reduce(0) { $0 + $1.batchCount })
        var done: Int64 = 0
        let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)
        for reader in readers {
            var next = 0
            while next < reader.batchCount {
                if cancelled.isSet { throw CancellationError() }
                let group = Array(next..<min(next + cores, reader.batchCount))
                let results = Mutex<[Int: Result<Table, any Error>]>([:])
                DispatchQueue.concurrentPerform(iterations: group.count) { k in
                    let outcome = Result { try scorer.score(try reader.batch(group[k])) }
                    results.withLock { $0[k] = outcome }
                }
                let scored = results.withLock { $0 }
                for k in group.indices { try sink.write(try scored[k]!.get()) }
                next += group.count
                done += Int64(group.count)
                meter.update(done, of: total, rows: sink.rows, unit: "batches")
            }
        }
    }
}

/// Where scored tables go: a CSV or an Arrow file, written as they come and moved into place when finished.
final class ScoreSink {
    private let url: URL
    private let scorer: BatchScorer
    private let csv: CSVFileWriter?
    private var arrow: ArrowFileWriter?
    /// Rows written so far.
    private(set) var rows = 0

    init(url: URL, arrow: Bool, scorer: BatchScorer) throws {
        self.url = url
        self.scorer = scorer
        csv = arrow ? nil : try CSVFileWriter(url: url, columnNames: scorer.outputNames)
    }

    func write(_ table: Table) throws {
        rows += table.rowCount
        if let csv { return try csv.write(table) }
        // The Arrow schema is the first batch's (kept columns keep the input's types).
        let writer =
            try arrow
            ?? ArrowFileWriter(url: url, columnNames: scorer.outputNames, columnTypes: table.columns.map(\.type))
        arrow = writer
        try writer.write(table)
    }

    func finish() throws {
        if let csv { return try csv.finish() }
        let writer =
            try arrow
            ?? ArrowFileWriter(url: url, columnNames: scorer.outputNames, columnTypes: scorer.outputTypes)
        try writer.finish()
    }
}

/// Set once by the first Ctrl-C or SIGTERM; the writing loop checks it between windows.
final class CancelFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    func set() { flag.store(true, ordering: .relaxed) }
    var isSet: Bool { flag.load(ordering: .relaxed) }
}
