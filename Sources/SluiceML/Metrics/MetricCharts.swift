import Foundation

/// Self-contained SVG pictures of a classifier's curves and confusion matrix, and an HTML page of an evaluation.
public enum MetricCharts {
    private static let size = 320.0
    private static let margin = 44.0

    /// A line chart on the unit square with axes, labels and an optional diagonal.
    private static func unitChart(
        title: String, xLabel: String, yLabel: String, series: [(points: [(Double, Double)], color: String)],
        diagonal: Bool, markers: Bool = false
    ) -> String {
        let plot = size - 2 * margin
        func px(_ x: Double) -> Double { margin + x * plot }
        func py(_ y: Double) -> Double { size - margin - y * plot }
        var svg = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(size))" height="\(Int(size))" viewBox="0 0 \(Int(size)) \(Int(size))" font-family="sans-serif" font-size="11">
            <title>\(escape(title))</title>
            <rect x="\(margin)" y="\(margin)" width="\(plot)" height="\(plot)" fill="#fafafa" stroke="#999"/>

            """
        for k in 0...4 {
            let v = Double(k) / 4
            svg += "<line x1=\"\(px(v))\" y1=\"\(py(0))\" x2=\"\(px(v))\" y2=\"\(py(1))\" stroke=\"#e4e4e4\"/>"
            svg += "<line x1=\"\(px(0))\" y1=\"\(py(v))\" x2=\"\(px(1))\" y2=\"\(py(v))\" stroke=\"#e4e4e4\"/>"
            svg += "<text x=\"\(px(v))\" y=\"\(py(0) + 14)\" text-anchor=\"middle\">\(String(format: "%.2g", v))</text>"
            svg +=
                "<text x=\"\(px(0) - 6)\" y=\"\(py(v) + 4)\" text-anchor=\"end\">\(String(format: "%.2g", v))</text>\n"
        }
        if diagonal {
            svg +=
                "<line x1=\"\(px(0))\" y1=\"\(py(0))\" x2=\"\(px(1))\" y2=\"\(py(1))\" stroke=\"#bbb\" stroke-dasharray=\"4 3\"/>\n"
        }
        for (points, color) in series where !points.isEmpty {
            let path = points.map { String(format: "%.2f,%.2f", px($0.0), py($0.1)) }.joined(separator: " ")
            svg += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(path)\"/>\n"
            if markers {
                for p in points {
                    svg += String(format: "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"3\"", px(p.0), py(p.1))
                    svg += " fill=\"\(color)\"/>"
                }
            }
        }
        svg +=
            "<text x=\"\(size / 2)\" y=\"\(margin - 16)\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"bold\">\(escape(title))</text>"
        svg += "<text x=\"\(size / 2)\" y=\"\(size - 8)\" text-anchor=\"middle\">\(escape(xLabel))</text>"
        svg +=
            "<text x=\"12\" y=\"\(size / 2)\" text-anchor=\"middle\" transform=\"rotate(-90 12 \(size / 2))\">\(escape(yLabel))</text>\n"
        return svg + "</svg>\n"
    }

    /// The ROC curve with its area in the title.
    public static func roc(_ points: [CurvePoint], auc: Double?) -> String {
        unitChart(
            title: "ROC curve" + (auc.map { String(format: " (AUC %.4f)", $0) } ?? ""), xLabel: "false positive rate",
            yLabel: "true positive rate", series: [(points.map { ($0.x, $0.y) }, "#1f77b4")], diagonal: true)
    }

    /// The precision-recall curve with its average precision in the title.
    public static func precisionRecall(_ points: [CurvePoint], averagePrecision: Double?) -> String {
        unitChart(
            title: "Precision-recall" + (averagePrecision.map { String(format: " (AP %.4f)", $0) } ?? ""),
            xLabel: "recall", yLabel: "precision", series: [(points.map { ($0.x, $0.y) }, "#d62728")], diagonal: false)
    }

    /// The reliability diagram: fraction of positives against mean predicted probability per bin.
    public static func calibration(_ bins: [CalibrationBin]) -> String {
        unitChart(
            title: "Calibration", xLabel: "mean predicted probability", yLabel: "fraction of positives",
            series: [(bins.map { ($0.meanPredicted, $0.fractionPositive) }, "#2ca02c")], diagonal: true, markers: true)
    }

    /// The confusion matrix as a heat map with counts and row percentages.
    public static func confusion(_ matrix: ConfusionMatrix) -> String {
        let k = matrix.classes.count
        let cell = max(28.0, min(72.0, 360.0 / Double(max(k, 1))))
        let left = 110.0
        let top = 60.0
        let width = left + cell * Double(k) + 20
        let height = top + cell * Double(k) + 40
        var svg = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="sans-serif" font-size="11">
            <title>Confusion matrix</title>
            <text x="\(width / 2)" y="18" text-anchor="middle" font-size="13" font-weight="bold">Confusion matrix</text>
            <text x="\(left + cell * Double(k) / 2)" y="\(top - 26)" text-anchor="middle">predicted</text>

            """
        for (a, row) in matrix.counts.enumerated() {
            let total = max(row.reduce(0, +), 1)
            svg +=
                "<text x=\"\(left - 6)\" y=\"\(top + cell * (Double(a) + 0.5) + 4)\" text-anchor=\"end\">\(escape(matrix.classes[a]))</text>"
            for (p, count) in row.enumerated() {
                let share = Double(count) / Double(total)
                let shade = Int(255 - share * 200)
                let x = left + cell * Double(p)
                let y = top + cell * Double(a)
                let textColor = share > 0.55 ? "#fff" : "#000"
                svg +=
                    "<rect x=\"\(x)\" y=\"\(y)\" width=\"\(cell)\" height=\"\(cell)\" fill=\"rgb(\(shade),\(shade),255)\" stroke=\"#fff\"><title>actual \(escape(matrix.classes[a])), predicted \(escape(matrix.classes[p])): \(count)</title></rect>"
                svg +=
                    "<text x=\"\(x + cell / 2)\" y=\"\(y + cell / 2)\" text-anchor=\"middle\" fill=\"\(textColor)\">\(count)</text>"
                svg +=
                    "<text x=\"\(x + cell / 2)\" y=\"\(y + cell / 2 + 12)\" text-anchor=\"middle\" font-size=\"9\" fill=\"\(textColor)\">\(String(format: "%.0f%%", share * 100))</text>\n"
            }
        }
        for (p, name) in matrix.classes.enumerated() {
            svg +=
                "<text x=\"\(left + cell * (Double(p) + 0.5))\" y=\"\(top - 8)\" text-anchor=\"middle\">\(escape(name))</text>"
        }
        svg +=
            "<text x=\"14\" y=\"\(top + cell * Double(k) / 2)\" text-anchor=\"middle\" transform=\"rotate(-90 14 \(top + cell * Double(k) / 2))\">actual</text>\n"
        return svg + "</svg>\n"
    }

    /// An HTML page of an evaluation: the overall metrics, the pictures, and a table per slicing column.
    public static func html(_ evaluation: Evaluation, title: String, blessing: Blessing? = nil) -> String {
        var body = "<h1>\(escape(title))</h1>\n"
        if let blessing {
            let color = blessing.passed ? "#2a7d2a" : "#b22222"
            body +=
                "<p style=\"font-size:1.2em;color:\(color)\"><b>\(blessing.passed ? "BLESSED" : "NOT BLESSED")</b></p><ul>"
            for check in blessing.checks { body += "<li>\(check.passed ? "✔" : "✘") \(escape(check.reason))</li>" }
            body += "</ul>\n"
        }
        body += table(evaluation.overall, caption: "All rows (\(evaluation.overall.count))")
        if case .classification(let metrics) = evaluation.overall {
            body += "<div class=\"charts\">"
            if let roc = metrics.rocCurve { body += roc.isEmpty ? "" : MetricCharts.roc(roc, auc: metrics.rocAUC) }
            if let pr = metrics.precisionRecallCurve {
                body += pr.isEmpty ? "" : MetricCharts.precisionRecall(pr, averagePrecision: metrics.prAUC)
            }
            if let bins = metrics.calibration, !bins.isEmpty { body += MetricCharts.calibration(bins) }
            body += MetricCharts.confusion(metrics.confusion)
            body += "</div>\n"
        }
        let columns = Array(Set(evaluation.slices.map(\.column))).sorted()
        for column in columns {
            let slices = evaluation.slices.filter { $0.column == column }
            guard let first = slices.first else { continue }
            let names = first.metrics.names.filter { first.metrics.value($0) != nil }
            body += "<h2>By \(escape(column))</h2><table><tr><th>\(escape(column))</th><th>rows</th>"
            body += names.map { "<th>\($0)</th>" }.joined() + "</tr>"
            for slice in slices {
                body += "<tr><td>\(escape(slice.value))</td><td>\(slice.metrics.count)</td>"
                body +=
                    names.map { name in
                        "<td>\(slice.metrics.value(name).map { String(format: "%.4f", $0) } ?? "–")</td>"
                    }.joined() + "</tr>"
            }
            body += "</table>\n"
        }
        return """
            <!doctype html><html><head><meta charset="utf-8"><title>\(escape(title))</title><style>
            body{font-family:sans-serif;margin:2em;color:#222} table{border-collapse:collapse;margin:1em 0}
            td,th{border:1px solid #ddd;padding:4px 10px;text-align:right} th{background:#f3f3f3}
            td:first-child,th:first-child{text-align:left} .charts svg{margin:0 1em 1em 0;vertical-align:top}
            </style></head><body>
            \(body)</body></html>

            """
    }

    private static func table(_ metrics: MetricSet, caption: String) -> String {
        var html = "<table><caption>\(escape(caption))</caption>"
        for name in metrics.names {
            guard let value = metrics.value(name) else { continue }
            html += "<tr><th>\(name)</th><td>\(String(format: "%.4f", value))</td></tr>"
        }
        if case .classification(let m) = metrics {
            html += "</table><table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>"
            for c in m.perClass {
                html += "<tr><td>\(escape(c.label))</td>"
                html += String(
                    format: "<td>%.4f</td><td>%.4f</td><td>%.4f</td><td>%d</td></tr>", c.precision, c.recall, c.f1,
                    c.support)
            }
        }
        return html + "</table>\n"
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
