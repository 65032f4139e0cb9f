import Foundation

/// Renders dataset statistics for people: a text summary for the terminal and a self-contained HTML page
/// with an SVG histogram or bar chart per column, missing-value rates and a summary table.
public enum StatisticsReport {
    /// A fixed-width table, one row per column.
    public static func text(_ statistics: DatasetStatistics) -> String {
        var lines = ["\(statistics.rows) rows, \(statistics.columns.count) columns", ""]
        let header = ["COLUMN", "TYPE", "MISSING", "MEAN", "STD", "MIN", "P50", "MAX", "ZEROS", "DISTINCT", "TOP"]
        var rows: [[String]] = []
        for c in statistics.columns {
            let numeric = c.type.isNumeric
            let top = c.topValues(3).map { "\($0.value) (\($0.count))" }.joined(separator: ", ")
            rows.append([
                c.name, c.type.rawValue, percent(c.missingRate),
                numeric ? number(c.mean) : "", numeric ? number(c.standardDeviation) : "",
                numeric ? c.min.map(number) ?? "" : "", numeric ? c.quantile(0.5).map(number) ?? "" : "",
                numeric ? c.max.map(number) ?? "" : "", numeric || c.type == .boolean ? "\(c.zeros)" : "",
                "\(c.distinctCount)", top,
            ])
        }
        let widths = header.indices.map { k in ([header[k]] + rows.map { $0[k] }).map(\.count).max() ?? 0 }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { k, cell in
                k == cells.count - 1 ? cell : cell.padding(toLength: widths[k], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }
        lines.append(line(header))
        lines += rows.map(line)
        return lines.joined(separator: "\n")
    }

    /// A self-contained HTML page (inline CSS and SVG, no scripts).
    public static func html(_ statistics: DatasetStatistics, title: String) -> String {
        var body = """
            <h1>\(escape(title))</h1>
            <p class="meta">\(statistics.rows) rows · \(statistics.columns.count) columns · quantiles within \
            \(String(format: "%.1f", QuantileSketch.relativeAccuracy * 100))% (relative), distinct counts within about 2%</p>
            <table class="summary"><thead><tr><th>column</th><th>type</th><th>missing</th><th>mean</th><th>std</th>\
            <th>min</th><th>p25</th><th>p50</th><th>p75</th><th>max</th><th>zeros</th><th>distinct</th></tr></thead><tbody>
            """
        for c in statistics.columns {
            let numeric = c.type.isNumeric
            let cells = [
                numeric ? number(c.mean) : "", numeric ? number(c.standardDeviation) : "",
                numeric ? c.min.map(number) ?? "" : "", numeric ? c.quantile(0.25).map(number) ?? "" : "",
                numeric ? c.quantile(0.5).map(number) ?? "" : "",
                numeric ? c.quantile(0.75).map(number) ?? "" : "", numeric ? c.max.map(number) ?? "" : "",
                numeric ? "\(c.zeros)" : "", "\(c.distinctCount)",
            ]
            body += "<tr><td><a href=\"#\(anchor(c.name))\">\(escape(c.name))</a></td><td>\(c.type)</td>"
            body +=
                "<td>\(missingBar(c.missingRate))</td>" + cells.map { "<td class=\"n\">\($0)</td>" }.joined()
                + "</tr>\n"
        }
        body += "</tbody></table>\n<div class=\"grid\">\n"
        for c in statistics.columns {
            body += "<section id=\"\(anchor(c.name))\"><h2>\(escape(c.name)) <span>\(c.type)</span></h2>"
            body +=
                "<p class=\"meta\">\(c.count) present · \(c.missing) missing (\(percent(c.missingRate))) · \(c.distinctCount) distinct</p>"
            if c.type.isNumeric {
                body += histogramSVG(c)
            } else {
                body += barsSVG(c)
            }
            body += "</section>\n"
        }
        body += "</div>"
        return """
            <!doctype html><html lang="en"><head><meta charset="utf-8"><title>\(escape(title))</title>
            <style>
            body{font:14px/1.4 system-ui,sans-serif;margin:2rem;color:#1f2933;background:#fff}
            h1{font-size:1.4rem;margin:0 0 .3rem}h2{font-size:1rem;margin:.2rem 0}h2 span{color:#7b8794;font-weight:400}
            .meta{color:#616e7c;margin:.2rem 0 .8rem}
            table.summary{border-collapse:collapse;margin:1rem 0 2rem}
            table.summary th,table.summary td{padding:.25rem .6rem;border-bottom:1px solid #e4e7eb;text-align:left}
            td.n{text-align:right;font-variant-numeric:tabular-nums}
            .grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:1.2rem}
            section{border:1px solid #e4e7eb;border-radius:6px;padding:.8rem}
            .miss{display:inline-block;width:60px;height:8px;background:#e4e7eb;margin-right:.4rem;vertical-align:middle}
            .miss i{display:block;height:8px;background:#e12d39}
            svg text{font:10px system-ui,sans-serif;fill:#52606d}
            </style></head><body>
            \(body)
            </body></html>
            """
    }

    static func histogramSVG(_ c: ColumnStatistics) -> String {
        let bins = c.histogram(bins: 24)
        guard let tallest = bins.map(\.count).max(), tallest > 0 else { return "<p class=\"meta\">no values</p>" }
        let width = 320.0
        let height = 120.0
        let barWidth = width / Double(bins.count)
        var svg =
            "<svg width=\"\(Int(width))\" height=\"\(Int(height + 28))\" role=\"img\" aria-label=\"histogram of \(escape(c.name))\">"
        for (k, bin) in bins.enumerated() {
            let h = bin.count / tallest * height
            svg += String(
                format:
                    "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#3e7cb1\"><title>%@ – %@: %.0f</title></rect>",
                Double(k) * barWidth + 0.5, height - h, Swift.max(barWidth - 1, 0.5), h, number(bin.low),
                number(bin.high),
                bin.count)
        }
        svg += "<line x1=\"0\" y1=\"\(height)\" x2=\"\(width)\" y2=\"\(height)\" stroke=\"#9aa5b1\"/>"
        svg += "<text x=\"0\" y=\"\(height + 14)\">\(number(c.min ?? 0))</text>"
        svg += "<text x=\"\(width)\" y=\"\(height + 14)\" text-anchor=\"end\">\(number(c.max ?? 0))</text>"
        if let median = c.quantile(0.5), let low = c.min, let high = c.max, high > low {
            let x = (median - low) / (high - low) * width
            svg += String(
                format:
                    "<line x1=\"%.1f\" y1=\"0\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e12d39\" stroke-dasharray=\"3 2\"/>",
                x, x, height)
            svg += String(
                format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">median %@</text>", x, height + 26,
                number(median))
        }
        return svg + "</svg>"
    }

    static func barsSVG(_ c: ColumnStatistics) -> String {
        let top = c.topValues(12)
        guard let most = top.first?.count, most > 0 else { return "<p class=\"meta\">no values</p>" }
        let rowHeight = 18.0
        let labelWidth = 110.0
        let width = 320.0
        var svg =
            "<svg width=\"\(Int(width))\" height=\"\(Int(rowHeight * Double(top.count) + 4))\" role=\"img\" aria-label=\"top values of \(escape(c.name))\">"
        for (k, entry) in top.enumerated() {
            let y = Double(k) * rowHeight
            let w = Double(entry.count) / Double(most) * (width - labelWidth - 60)
            let label = entry.value.count > 16 ? String(entry.value.prefix(15)) + "…" : entry.value
            svg += "<text x=\"\(labelWidth - 4)\" y=\"\(y + 12)\" text-anchor=\"end\">\(escape(label))</text>"
            svg += String(
                format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#3e7cb1\"/>", labelWidth,
                y + 3, w, rowHeight - 6)
            svg += String(
                format: "<text x=\"%.1f\" y=\"%.1f\">%d (%@)</text>", labelWidth + w + 4, y + 12, entry.count,
                percent(Double(entry.count) / Double(Swift.max(c.count, 1))))
        }
        return svg + "</svg>"
    }

    static func missingBar(_ rate: Double) -> String {
        String(format: "<span class=\"miss\"><i style=\"width:%.0f%%\"></i></span>%@", rate * 100, percent(rate))
    }

    static func number(_ value: Double) -> String {
        if value == value.rounded() && abs(value) < 1e15 { return String(Int64(value)) }
        let magnitude = abs(value)
        if magnitude >= 1e6 || magnitude < 1e-3 { return String(format: "%.3g", value) }
        return String(format: "%.4g", value)
    }

    static func percent(_ rate: Double) -> String {
        rate == 0 ? "0%" : (rate < 0.001 ? "<0.1%" : String(format: "%.1f%%", rate * 100))
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static func anchor(_ name: String) -> String {
        "col-" + name.unicodeScalars.map { CharacterSet.alphanumerics.contains($0) ? String($0) : "-" }.joined()
    }
}
