import Foundation

/// A metric logged per iteration (training loss), one line per run, drawn as an inline SVG chart with axes, ticks
/// and a legend.
struct LineChart {
    /// One run's values of the metric.
    struct Series {
        var name: String
        var points: [(x: Double, y: Double)]
    }

    var title: String
    var series: [Series]

    static let palette = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563"]

    func svg() -> String {
        let width = 640.0
        let height = 260.0
        let left = 58.0
        let right = 16.0
        let top = 28.0
        let bottom = 34.0
        let all = series.flatMap(\.points)
        guard let minX = all.map(\.x).min(), let maxX = all.map(\.x).max(), let minY = all.map(\.y).min(),
            let maxY = all.map(\.y).max()
        else { return "" }
        let spanX = maxX > minX ? maxX - minX : 1
        let padY = maxY > minY ? (maxY - minY) * 0.05 : max(abs(maxY) * 0.05, 1e-9)
        let lowY = minY - padY
        let spanY = (maxY + padY) - lowY
        func sx(_ x: Double) -> Double { left + (x - minX) / spanX * (width - left - right) }
        func sy(_ y: Double) -> Double { top + (1 - (y - lowY) / spanY) * (height - top - bottom) }
        var out =
            #"<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 640 260" width="640" height="260" "#
            + #"role="img" data-metric="\#(HTML.escape(title))"><text x="\#(left)" y="16" class="chart-title">"#
            + "\(HTML.escape(title))</text>"
        for tick in 0...4 {
            let value = lowY + spanY * Double(tick) / 4
            let y = sy(value)
            out +=
                #"<line class="grid" x1="\#(left)" x2="\#(width - right)" y1="\#(Self.n(y))" y2="\#(Self.n(y))"/>"#
                + #"<text class="tick" x="\#(left - 6)" y="\#(Self.n(y + 4))" text-anchor="end">"#
                + "\(Self.format(value))</text>"
        }
        for tick in 0...4 {
            let value = minX + spanX * Double(tick) / 4
            out +=
                #"<text class="tick" x="\#(Self.n(sx(value)))" y="\#(height - 14)" text-anchor="middle">"#
                + "\(Self.format(value.rounded()))</text>"
        }
        out += #"<text class="tick" x="\#(width - right)" y="\#(height - 2)" text-anchor="end">iteration</text>"#
        for (index, line) in series.enumerated() {
            let colour = Self.palette[index % Self.palette.count]
            let points = line.points.sorted { $0.x < $1.x }.map { "\(Self.n(sx($0.x))),\(Self.n(sy($0.y)))" }
            out +=
                #"<polyline class="series" data-run="\#(HTML.escape(line.name))" fill="none" stroke="\#(colour)" "#
                + #"stroke-width="2" points="\#(points.joined(separator: " "))"><title>\#(HTML.escape(line.name))"#
                + "</title></polyline>"
            let legendY = top + 4 + Double(index) * 15
            out +=
                #"<rect x="\#(width - right - 190)" y="\#(Self.n(legendY - 8))" width="10" height="3" "#
                + #"fill="\#(colour)"/><text class="legend" x="\#(width - right - 176)" y="\#(Self.n(legendY - 3))">"#
                + "\(HTML.escape(GraphLayout.clip(line.name, 28)))</text>"
        }
        return out + "</svg>"
    }

    static func n(_ value: Double) -> String { String(format: "%.1f", value) }

    static func format(_ value: Double) -> String {
        if value == value.rounded() && abs(value) < 1e6 { return String(Int(value)) }
        return String(format: "%.4g", value)
    }
}
