import Foundation
import SluiceCore

/// How output is styled: colour only on a terminal, never when `NO_COLOR` is set or `TERM=dumb`.
struct Terminal: Sendable {
    /// Whether the stream is a terminal (live redraws are possible).
    let isInteractive: Bool
    /// Whether ANSI colours are used.
    let usesColor: Bool

    init(fileDescriptor: Int32, environment: [String: String] = ProcessInfo.processInfo.environment) {
        isInteractive = isatty(fileDescriptor) == 1 && environment["TERM"] != "dumb"
        let noColor = environment["NO_COLOR"].map { !$0.isEmpty } ?? false
        usesColor = isInteractive && !noColor
    }

    static let standardOutput = Terminal(fileDescriptor: STDOUT_FILENO)
    static let standardError = Terminal(fileDescriptor: STDERR_FILENO)

    enum Style: String {
        case bold = "1"
        case dim = "2"
        case red = "31"
        case green = "32"
        case yellow = "33"
        case blue = "34"
        case magenta = "35"
        case cyan = "36"
    }

    func paint(_ text: String, _ styles: Style...) -> String {
        guard usesColor, !styles.isEmpty else { return text }
        return "\u{1B}[\(styles.map(\.rawValue).joined(separator: ";"))m\(text)\u{1B}[0m"
    }
}

/// Prints to standard error without buffering surprises.
package func printError(_ text: String, terminator: String = "\n") {
    FileHandle.standardError.write(Data((text + terminator).utf8))
}

/// Formats a duration for people: `312ms`, `4.2s`, `3m05s`.
func formatDuration(_ seconds: TimeInterval) -> String {
    if seconds < 1 { return "\(Int((seconds * 1000).rounded()))ms" }
    if seconds < 60 { return String(format: "%.1fs", seconds) }
    let total = Int(seconds.rounded())
    if total < 3600 { return String(format: "%dm%02ds", total / 60, total % 60) }
    return String(format: "%dh%02dm", total / 3600, (total % 3600) / 60)
}

/// Formats a byte count: `812 B`, `4.1 KB`, `206.0 MB`.
func formatBytes(_ bytes: Int64) -> String {
    let units = ["B", "KB", "MB", "GB", "TB"]
    var value = Double(bytes)
    var unit = 0
    while value >= 1000 && unit < units.count - 1 {
        value /= 1000
        unit += 1
    }
    return unit == 0 ? "\(bytes) B" : String(format: "%.1f %@", value, units[unit])
}

/// Formats a date as local `yyyy-MM-dd HH:mm:ss`.
func formatDate(_ date: Date) -> String {
    let formatter = DateFormatter()
    formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
    return formatter.string(from: date)
}

/// Renders rows as aligned columns with a header.
func renderTable(_ header: [String], _ rows: [[String]], terminal: Terminal) -> String {
    let widths = header.indices.map { column in
        ([header[column]] + rows.map { $0[column] }).map { visibleWidth($0) }.max() ?? 0
    }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { index, cell in
            index == cells.count - 1 ? cell : cell + String(repeating: " ", count: widths[index] - visibleWidth(cell))
        }.joined(separator: "  ")
    }
    return ([terminal.paint(line(header), .bold)] + rows.map(line)).joined(separator: "\n")
}

/// The printed width of text, ignoring ANSI escapes.
func visibleWidth(_ text: String) -> Int {
    var width = 0
    var inEscape = false
    for scalar in text.unicodeScalars {
        if inEscape {
            if scalar == "m" { inEscape = false }
        } else if scalar == "\u{1B}" {
            inEscape = true
        } else {
            width += 1
        }
    }
    return width
}

/// JSON for `--json` output: pretty, sorted keys, ISO 8601 dates.
func jsonString<T: Encodable>(_ value: T) throws -> String {
    String(decoding: try RecordJSON.encoder(pretty: true).encode(value), as: UTF8.self)
}
