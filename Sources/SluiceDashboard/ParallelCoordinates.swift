import Foundation

/// Runs as lines across one vertical axis per param and a last axis for a chosen metric (SVG): which settings go
/// with good values. Numeric params get a linear axis, others one tick per value in sorted order.
struct ParallelCoordinates {
    /// One run: its params and the metric's value.
    struct Line {
        var run: String
        var label: String
        var params: [String: String]
        var metric: Double
    }

    var params: [String]
    var metric: String
    var lines: [Line]

    func svg() -> String {
        let axes = params + [metric]
        let width = max(480.0, Double(axes.count) * 140.0)
        let height = 320.0
        let top = 36.0
        let bottom = 28.0
        let left = 60.0
        let right = 60.0
        let span = axes.count > 1 ? (width - left - right) / Double(axes.count - 1) : 0
        // Each axis maps a run's value to 0…1 (bottom to top).
        var scales: [(String?) -> Double?] = []
        var tickLabels: [[(Double, String)]] = []
        for param in params {
            let values = lines.compactMap { $0.params[param] }
            let numbers = values.compactMap(Double.init)
            if !values.isEmpty, numbers.count == values.count, let low = numbers.min(), let high = numbers.max() {
                let range = high > low ? high - low : 1
                scales.append { $0.flatMap(Double.init).map { ($0 - low) / range } }
                tickLabels.append([(0, Self.format(low)), (1, Self.format(high))])
            } else {
                let distinct = Array(Set(values)).sorted()
                let position = Dictionary(uniqueKeysWithValues: distinct.enumerated().map { ($1, $0) })
                let count = Double(max(1, distinct.count - 1))
                scales.append { value in
                    value.flatMap { position[$0] }.map { distinct.count == 1 ? 0.5 : Double($0) / count }
                }
                tickLabels.append(
                    distinct.prefix(12).map { (distinct.count == 1 ? 0.5 : Double(position[$0]!) / count, $0) })
            }
        }
        let metricValues = lines.map(\.metric).filter { $0.isFinite }
        let low = metricValues.min() ?? 0
        let high = metricValues.max() ?? 1
        let range = high > low ? high - low : 1
        func y(_ unit: Double) -> Double { top + (1 - unit) * (height - top - bottom) }
        var svg = """
            <svg xmlns="http://www.w3.org/2000/svg" class="parallel" viewBox="0 0 \(Int(width)) \(Int(height))" \
            role="img" aria-label="runs by \(HTML.escape(params.joined(separator: ", "))) against \(HTML.escape(metric))">
            """
        for line in lines where line.metric.isFinite {
            let unit = (line.metric - low) / range
            var points: [String] = []
            for (axis, param) in params.enumerated() {
                guard let v = scales[axis](line.params[param]) else { continue }
                points.append(String(format: "%.1f,%.1f", left + Double(axis) * span, y(v)))
            }
            points.append(String(format: "%.1f,%.1f", left + Double(params.count) * span, y(unit)))
            // Good values (near the top) in blue, poor ones in red.
            let hue = Int(unit * 220)
            svg += """
                <polyline data-run="\(HTML.escape(line.run))" points="\(points.joined(separator: " "))" fill="none" \
                stroke="hsl(\(hue),70%,45%)" stroke-opacity="0.7" stroke-width="1.5"><title>\(HTML.escape(line.label)): \
                \(HTML.escape(metric)) = \(Self.format(line.metric))</title></polyline>
                """
        }
        for (axis, name) in axes.enumerated() {
            let x = left + Double(axis) * span
            svg += """
                <line x1="\(x)" y1="\(top)" x2="\(x)" y2="\(height - bottom)" stroke="#374151" stroke-width="1"/>\
                <text x="\(x)" y="\(top - 14)" text-anchor="middle" font-size="12" font-weight="600">\(HTML.escape(name))</text>
                """
            let ticks = axis < params.count ? tickLabels[axis] : [(0, Self.format(low)), (1, Self.format(high))]
            for (unit, label) in ticks {
                svg += """
                    <text x="\(x + 4)" y="\(y(unit) + 4)" font-size="10" fill="#4b5563">\(HTML.escape(label))</text>
                    """
            }
        }
        return svg + "</svg>"
    }

    static func format(_ value: Double) -> String { String(format: "%.4g", value) }
}
