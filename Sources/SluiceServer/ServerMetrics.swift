import Foundation
import Synchronization

/// Request counts by route and status, a latency histogram, requests in flight, the served version and unknown
/// categories, rendered in the Prometheus text format.
final class ServerMetrics: Sendable {
    private struct RouteStatus: Hashable, Comparable {
        var route: String
        var status: Int
        static func < (a: RouteStatus, b: RouteStatus) -> Bool { (a.route, a.status) < (b.route, b.status) }
    }

    private struct State {
        var requests: [RouteStatus: Int] = [:]
        var bucketCounts: [Int]
        var latencySum = 0.0
        var latencyCount = 0
        var unknownCategories: [String: Int] = [:]
        var predictedRows = 0
        var lookupBucketCounts = Array(repeating: 0, count: ServerMetrics.lookupBuckets.count)
        var lookupSum = 0.0
        var lookupCount = 0
        var lookupEntities = 0
    }

    /// Upper bounds of the feature lookup latency buckets, in seconds.
    static let lookupBuckets: [Double] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1]

    /// Upper bounds of the latency buckets, in seconds.
    static let buckets: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]
    private let state = Mutex(State(bucketCounts: Array(repeating: 0, count: ServerMetrics.buckets.count)))
    private let inFlight = Atomic<Int>(0)

    func started() { inFlight.add(1, ordering: .relaxed) }

    func finished(route: String, status: Int, seconds: Double) {
        inFlight.subtract(1, ordering: .relaxed)
        state.withLock { state in
            state.requests[RouteStatus(route: route, status: status), default: 0] += 1
            state.latencySum += seconds
            state.latencyCount += 1
            if let bucket = Self.buckets.firstIndex(where: { seconds <= $0 }) { state.bucketCounts[bucket] += 1 }
        }
    }

    /// Records one online feature lookup (the store's part of a request) of `entities` entities.
    func lookedUp(entities: Int, seconds: Double) {
        state.withLock { state in
            state.lookupSum += seconds
            state.lookupCount += 1
            state.lookupEntities += entities
            if let bucket = Self.lookupBuckets.firstIndex(where: { seconds <= $0 }) {
                state.lookupBucketCounts[bucket] += 1
            }
        }
    }

    /// Counts predicted rows, and values not seen in training by column.
    func predicted(rows: Int, unknownCategories: [String: Int]) {
        state.withLock { state in
            state.predictedRows += rows
            for (column, count) in unknownCategories { state.unknownCategories[column, default: 0] += count }
        }
    }

    func render(models: [(name: String, version: String?)]) -> String {
        let snapshot = state.withLock { $0 }
        var lines: [String] = []
        lines.append("# HELP sluice_http_requests_total Requests by route and status.")
        lines.append("# TYPE sluice_http_requests_total counter")
        for key in snapshot.requests.keys.sorted() {
            lines.append(
                #"sluice_http_requests_total{route="\#(escape(key.route))",status="\#(key.status)"} \#(snapshot.requests[key]!)"#
            )
        }
        Self.histogram(
            "sluice_http_request_duration_seconds", help: "Time to answer a request.", bounds: Self.buckets,
            counts: snapshot.bucketCounts, sum: snapshot.latencySum, count: snapshot.latencyCount, into: &lines)
        lines.append("# HELP sluice_http_requests_in_flight Requests being answered.")
        lines.append("# TYPE sluice_http_requests_in_flight gauge")
        lines.append("sluice_http_requests_in_flight \(inFlight.load(ordering: .relaxed))")
        lines.append("# HELP sluice_model_info The model version answering requests.")
        lines.append("# TYPE sluice_model_info gauge")
        for (model, version) in models {
            lines.append(#"sluice_model_info{model="\#(escape(model))",version="\#(escape(version ?? "none"))"} 1"#)
        }
        lines.append("# HELP sluice_predicted_rows_total Rows predicted.")
        lines.append("# TYPE sluice_predicted_rows_total counter")
        lines.append("sluice_predicted_rows_total \(snapshot.predictedRows)")
        lines.append(
            "# HELP sluice_unknown_categories_total Values not seen in training (mapped to the out-of-vocabulary bucket), by column."
        )
        lines.append("# TYPE sluice_unknown_categories_total counter")
        for column in snapshot.unknownCategories.keys.sorted() {
            lines.append(
                #"sluice_unknown_categories_total{column="\#(escape(column))"} \#(snapshot.unknownCategories[column]!)"#
            )
        }
        if snapshot.lookupCount > 0 {
            Self.histogram(
                "sluice_feature_lookup_duration_seconds",
                help: "Time to read one request's features from the online store.", bounds: Self.lookupBuckets,
                counts: snapshot.lookupBucketCounts, sum: snapshot.lookupSum, count: snapshot.lookupCount,
                into: &lines)
            lines.append("# HELP sluice_feature_lookup_entities_total Entities looked up in the online store.")
            lines.append("# TYPE sluice_feature_lookup_entities_total counter")
            lines.append("sluice_feature_lookup_entities_total \(snapshot.lookupEntities)")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// A Prometheus histogram: cumulative buckets, `+Inf`, sum and count.
    private static func histogram(
        _ name: String, help: String, bounds: [Double], counts: [Int], sum: Double, count: Int,
        into lines: inout [String]
    ) {
        lines.append("# HELP \(name) \(help)")
        lines.append("# TYPE \(name) histogram")
        var cumulative = 0
        for (bound, n) in zip(bounds, counts) {
            cumulative += n
            lines.append(#"\#(name)_bucket{le="\#(bound)"} \#(cumulative)"#)
        }
        lines.append(#"\#(name)_bucket{le="+Inf"} \#(count)"#)
        lines.append("\(name)_sum \(sum)")
        lines.append("\(name)_count \(count)")
    }

    private func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }
}
