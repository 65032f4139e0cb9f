import Foundation

/// A directed graph laid out left to right and drawn as SVG: a run's steps, or an artifact's lineage.
///
/// Nodes go in columns by their longest path from a source, and are ordered within a column by the mean position of
/// their predecessors (a few sweeps of the barycenter heuristic), which keeps most edges from crossing.
struct GraphLayout {
    /// One box of the graph.
    struct Node {
        var id: String
        var label: String
        var detail: String
        /// A CSS class: the state colour (`completed`, `cached`, …) or the kind of node (`artifact`, `root`).
        var style: String
        var link: String?
        var tooltip: String
    }

    /// Where a node went.
    struct Placement: Equatable {
        var column: Int
        var row: Int
    }

    var nodes: [Node]
    var edges: [(from: String, to: String)]

    static let width = 156.0
    static let height = 48.0
    static let columnGap = 48.0
    static let rowGap = 20.0
    static let margin = 12.0

    /// The column and row of every node, by ID.
    func place() -> [String: Placement] {
        let ids = nodes.map(\.id)
        let index = Dictionary(ids.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
        var predecessors = Array(repeating: [Int](), count: nodes.count)
        var successors = Array(repeating: [Int](), count: nodes.count)
        for edge in edges {
            guard let from = index[edge.from], let to = index[edge.to], from != to else { continue }
            predecessors[to].append(from)
            successors[from].append(to)
        }
        // Longest path from a source, in topological order (Kahn); nodes on a cycle keep column 0.
        var column = Array(repeating: 0, count: nodes.count)
        var remaining = predecessors.map(\.count)
        var queue = nodes.indices.filter { remaining[$0] == 0 }
        var head = 0
        while head < queue.count {
            let node = queue[head]
            head += 1
            for next in successors[node] {
                column[next] = max(column[next], column[node] + 1)
                remaining[next] -= 1
                if remaining[next] == 0 { queue.append(next) }
            }
        }
        let columnCount = (column.max() ?? 0) + 1
        var columns = Array(repeating: [Int](), count: columnCount)
        for node in nodes.indices { columns[column[node]].append(node) }
        var row = Array(repeating: 0.0, count: nodes.count)
        for members in columns { for (position, node) in members.enumerated() { row[node] = Double(position) } }
        for _ in 0..<4 {
            for c in 1..<max(columnCount, 1) {
                columns[c].sort { a, b in
                    let ka = Self.mean(predecessors[a].map { row[$0] }) ?? row[a]
                    let kb = Self.mean(predecessors[b].map { row[$0] }) ?? row[b]
                    return ka == kb ? a < b : ka < kb
                }
                for (position, node) in columns[c].enumerated() { row[node] = Double(position) }
            }
            for c in stride(from: columnCount - 2, through: 0, by: -1) {
                columns[c].sort { a, b in
                    let ka = Self.mean(successors[a].map { row[$0] }) ?? row[a]
                    let kb = Self.mean(successors[b].map { row[$0] }) ?? row[b]
                    return ka == kb ? a < b : ka < kb
                }
                for (position, node) in columns[c].enumerated() { row[node] = Double(position) }
            }
        }
        var placements: [String: Placement] = [:]
        for (c, members) in columns.enumerated() {
            for (r, node) in members.enumerated() { placements[ids[node]] = Placement(column: c, row: r) }
        }
        return placements
    }

    private static func mean(_ values: [Double]) -> Double? {
        values.isEmpty ? nil : values.reduce(0, +) / Double(values.count)
    }

    /// The graph as an inline SVG element (`class="graph"`, panned and zoomed by the page's script), each node a
    /// link when it has one; the page first shows the part around `focus` when the graph is wider than the page.
    func svg(id: String, focus: String? = nil) -> String {
        let placements = place()
        let columns = (placements.values.map(\.column).max() ?? 0) + 1
        let rows = Dictionary(grouping: placements.values, by: \.column).values.map(\.count).max() ?? 1
        let tallest = Double(rows) * (Self.height + Self.rowGap) - Self.rowGap
        // Edges that skip a column arc over the boxes between; room above the boxes for the highest arc.
        let longestSkip =
            edges.compactMap { edge -> Int? in
                guard let from = placements[edge.from], let to = placements[edge.to] else { return nil }
                return to.column - from.column
            }.max() ?? 1
        let arcRoom = longestSkip > 1 ? min(24 + 12 * Double(longestSkip - 1), 96) : 0
        let width = 2 * Self.margin + Double(columns) * (Self.width + Self.columnGap) - Self.columnGap
        let height = 2 * Self.margin + tallest + arcRoom
        func origin(_ placement: Placement) -> (x: Double, y: Double) {
            // Each column is centred vertically.
            let count = Double(placements.values.filter { $0.column == placement.column }.count)
            let offset = (tallest - (count * (Self.height + Self.rowGap) - Self.rowGap)) / 2
            return (
                Self.margin + Double(placement.column) * (Self.width + Self.columnGap),
                Self.margin + arcRoom + offset + Double(placement.row) * (Self.height + Self.rowGap)
            )
        }
        let focusX = focus.flatMap { placements[$0] }.map { origin($0).x + Self.width / 2 }
        var out =
            #"<svg class="graph" id="\#(HTML.escape(id))" xmlns="http://www.w3.org/2000/svg" "#
            + (focusX.map { #"data-focus-x="\#(Self.number($0))" "# } ?? "")
            + #"viewBox="0 0 \#(Self.number(width)) \#(Self.number(height))" width="\#(Self.number(width))" "#
            + #"height="\#(Self.number(height))" role="img"><defs><marker id="\#(HTML.escape(id))-arrow" "#
            + #"viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">"#
            + #"<path d="M 0 0 L 10 5 L 0 10 z" class="arrowhead"/></marker></defs><g class="viewport">"#
        for edge in edges {
            guard let from = placements[edge.from], let to = placements[edge.to] else { continue }
            let a = origin(from)
            let b = origin(to)
            let x1 = a.x + Self.width
            let y1 = a.y + Self.height / 2
            let x2 = b.x
            let y2 = b.y + Self.height / 2
            let skip = to.column - from.column
            let d: String
            if skip > 1 {
                // Over the boxes in between: up from the source, along above them, down into the target.
                let lift = max(Self.margin, min(y1, y2) - Self.height / 2 - 12 * Double(skip - 1))
                let middle = (x1 + x2) / 2
                d =
                    "M \(Self.number(x1)) \(Self.number(y1)) C \(Self.number(x1 + 40)) \(Self.number(y1)) "
                    + "\(Self.number(middle - 80)) \(Self.number(lift)) \(Self.number(middle)) \(Self.number(lift)) "
                    + "C \(Self.number(middle + 80)) \(Self.number(lift)) \(Self.number(x2 - 40)) \(Self.number(y2)) "
                    + "\(Self.number(x2)) \(Self.number(y2))"
            } else {
                let bend = max(24, (x2 - x1) / 2)
                d =
                    "M \(Self.number(x1)) \(Self.number(y1)) C \(Self.number(x1 + bend)) \(Self.number(y1)) "
                    + "\(Self.number(x2 - bend)) \(Self.number(y2)) \(Self.number(x2)) \(Self.number(y2))"
            }
            out +=
                #"<path class="edge" data-from="\#(HTML.escape(edge.from))" data-to="\#(HTML.escape(edge.to))" "#
                + #"d="\#(d)" marker-end="url(#\#(HTML.escape(id))-arrow)"/>"#
        }
        for node in nodes {
            guard let placement = placements[node.id] else { continue }
            let (x, y) = origin(placement)
            var box =
                #"<g class="node \#(HTML.escape(node.style))" data-node="\#(HTML.escape(node.id))" "#
                + #"transform="translate(\#(Self.number(x)) \#(Self.number(y)))"><title>\#(HTML.escape(node.tooltip))</title>"#
                + #"<rect width="\#(Self.number(Self.width))" height="\#(Self.number(Self.height))" rx="7"/>"#
                + #"<text x="12" y="20" class="label">\#(HTML.escape(Self.clip(node.label, 22)))</text>"#
                + #"<text x="12" y="37" class="detail">\#(HTML.escape(Self.clip(node.detail, 26)))</text></g>"#
            if let link = node.link { box = #"<a href="\#(HTML.escape(link))">\#(box)</a>"# }
            out += box
        }
        return out + "</g></svg>"
    }

    static func clip(_ text: String, _ length: Int) -> String {
        text.count <= length ? text : String(text.prefix(length - 1)) + "…"
    }

    static func number(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(format: "%.1f", value)
    }
}

/// Escaping for text placed in HTML by hand (SVG built in code); templates escape on their own.
enum HTML {
    /// `text` with `& < > " '` replaced by entities.
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }
}
