import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Writes tables as one CSV file, table by table, so output larger than memory is written as it is made: a header
/// row, then each table's rows (missing values empty; fields quoted when they hold the delimiter, a quote or a
/// line break). The file appears at its path only when ``finish()`` succeeds: a crash midway leaves none.
public final class CSVFileWriter {
    /// The file being written.
    public let url: URL
    /// Column names, in order.
    public let columnNames: [String]
    /// Rows written so far.
    public private(set) var rowsWritten = 0

    private let file: PendingFile

    /// Starts a file at `url` with a header row of `columnNames`.
    /// - Throws: when the folder cannot be written.
    public init(url: URL, columnNames: [String]) throws {
        self.url = url
        self.columnNames = columnNames
        file = try PendingFile(url)
        try file.write(Data((columnNames.map(Self.field).joined(separator: ",") + "\n").utf8))
    }

    /// Appends the rows of `table`, whose columns must be this file's, in order.
    public func write(_ table: Table) throws {
        precondition(table.columnNames == columnNames, "a table with other columns than the file's")
        var text = ""
        text.reserveCapacity(table.rowCount * 16 * max(1, table.columns.count))
        for row in 0..<table.rowCount {
            for (k, column) in table.columns.enumerated() {
                if k > 0 { text += "," }
                if let value = column.string(row) { text += Self.field(value) }
            }
            text += "\n"
        }
        try file.write(Data(text.utf8))
        rowsWritten += table.rowCount
    }

    /// Closes the file and moves it to ``url`` (replacing what was there).
    public func finish() throws { try file.finish() }

    /// A field as CSV writes it: quoted (quotes doubled) when it holds a comma, a quote or a line break.
    static func field(_ text: String) -> String {
        guard
            text.utf8.contains(where: {
                $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\n")
                    || $0 == UInt8(ascii: "\r")
            })
        else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}

/// A file written beside its destination (`.NAME.partial-PID`) and moved onto it in one step when finished
/// (rename(2): a reader sees the old file or the new one, never a mix); dropped unfinished, by an error or a
/// cancellation midway, it is removed and nothing appears at the destination.
final class PendingFile {
    let destination: URL
    private let temporary: URL
    private let handle: FileHandle
    private var finished = false

    init(_ destination: URL) throws {
        self.destination = destination
        temporary = destination.deletingLastPathComponent().appending(
            path: ".\(destination.lastPathComponent).partial-\(ProcessInfo.processInfo.processIdentifier)")
        guard FileManager.default.createFile(atPath: temporary.path, contents: nil) else {
            throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: temporary.path])
        }
        handle = try FileHandle(forWritingTo: temporary)
    }

    func write(_ data: Data) throws {
        precondition(!finished, "the file is finished")
        try handle.write(contentsOf: data)
    }

    /// Flushes, closes and renames the file onto the destination (replacing what was there).
    func finish() throws {
        precondition(!finished, "the file is finished")
        finished = true
        try handle.synchronize()
        try handle.close()
        guard rename(temporary.path, destination.path) == 0 else {
            let code = errno
            try? FileManager.default.removeItem(at: temporary)
            throw CocoaError(
                .fileWriteUnknown,
                userInfo: [
                    NSFilePathErrorKey: destination.path,
                    NSUnderlyingErrorKey: NSError(domain: NSPOSIXErrorDomain, code: Int(code)),
                ])
        }
    }

    deinit {
        if !finished {
            try? handle.close()
            try? FileManager.default.removeItem(at: temporary)
        }
    }
}
