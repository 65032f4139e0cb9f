import Foundation

/// One rule a candidate model must meet: an absolute bound (`at_least`, `at_most`) and/or a bound relative to the
/// baseline (`max_degradation`: how much worse than the baseline it may be, in the metric's own units), on all
/// rows or on one slice.
public struct MetricThreshold: Codable, Sendable, Equatable {
    /// The metric's name (`roc_auc`, `accuracy`, `rmse`…).
    public var metric: String
    /// The slice it applies to (nil: all rows).
    public var slice: SliceKey?
    /// The metric must be at least this.
    public var atLeast: Double?
    /// The metric must be at most this.
    public var atMost: Double?
    /// The metric may be worse than the baseline's by at most this (lower for scores, higher for losses).
    public var maxDegradation: Double?

    /// Creates a rule.
    public init(
        metric: String, slice: SliceKey? = nil, atLeast: Double? = nil, atMost: Double? = nil,
        maxDegradation: Double? = nil
    ) {
        self.metric = metric
        self.slice = slice
        self.atLeast = atLeast
        self.atMost = atMost
        self.maxDegradation = maxDegradation
    }

    private enum CodingKeys: String, CodingKey {
        case metric, slice
        case atLeast = "at_least"
        case atMost = "at_most"
        case maxDegradation = "max_degradation"
    }
}

/// The rules a model must meet to be blessed.
public struct BlessingPolicy: Codable, Sendable, Equatable {
    /// The rules; all must pass.
    public var thresholds: [MetricThreshold]

    /// Creates a policy.
    public init(thresholds: [MetricThreshold]) { self.thresholds = thresholds }
}

/// The verdict on a candidate model: passed or not, with every check and its reason.
public struct Blessing: Codable, Sendable, Equatable {
    /// One rule applied.
    public struct Check: Codable, Sendable, Equatable {
        /// The metric.
        public var metric: String
        /// The slice, when the rule is per slice.
        public var slice: SliceKey?
        /// The candidate's value.
        public var candidate: Double?
        /// The baseline's value, when there is a baseline.
        public var baseline: Double?
        /// Whether the rule held.
        public var passed: Bool
        /// Why, in words.
        public var reason: String
    }

    /// Whether every check passed.
    public var passed: Bool
    /// The checks, in policy order.
    public var checks: [Check]

    /// The reasons of the failed checks.
    public var failures: [String] { checks.filter { !$0.passed }.map(\.reason) }

    /// Judges `candidate` (and, for relative rules, compares it with `baseline` on the same evaluation data).
    public init(candidate: Evaluation, baseline: Evaluation?, policy: BlessingPolicy) {
        var checks: [Check] = []
        for rule in policy.thresholds {
            let place = rule.slice.map { " on slice \($0)" } ?? ""
            let name = "\(rule.metric)\(place)"
            guard let metrics = candidate.metrics(slice: rule.slice) else {
                checks.append(
                    Check(
                        metric: rule.metric, slice: rule.slice, candidate: nil, baseline: nil, passed: false,
                        reason: "\(name): the evaluation data has no such slice"))
                continue
            }
            guard let value = metrics.value(rule.metric) else {
                let known = metrics.names
                let close = known.min { editDistance($0, rule.metric) < editDistance($1, rule.metric) }
                let hint = close.map { editDistance($0, rule.metric) <= 3 ? " (did you mean '\($0)'?)" : "" } ?? ""
                checks.append(
                    Check(
                        metric: rule.metric, slice: rule.slice, candidate: nil, baseline: nil, passed: false,
                        reason:
                            "\(name): unknown or undefined metric\(hint); known: \(known.joined(separator: ", "))"))
                continue
            }
            let base = baseline?.metrics(slice: rule.slice)?.value(rule.metric)
            var failures: [String] = []
            var notes: [String] = []
            if let atLeast = rule.atLeast {
                if value >= atLeast {
                    notes.append("≥ \(fmt(atLeast))")
                } else {
                    failures.append("below \(fmt(atLeast))")
                }
            }
            if let atMost = rule.atMost {
                if value <= atMost { notes.append("≤ \(fmt(atMost))") } else { failures.append("above \(fmt(atMost))") }
            }
            if let allowed = rule.maxDegradation {
                if let base {
                    let worse = MetricSet.higherIsBetter(rule.metric) ? base - value : value - base
                    if worse <= allowed + 1e-12 {
                        notes.append("within \(fmt(allowed)) of baseline \(fmt(base))")
                    } else {
                        failures.append("worse than baseline \(fmt(base)) by \(fmt(worse)) (allowed \(fmt(allowed)))")
                    }
                } else {
                    notes.append("no baseline to compare with")
                }
            }
            let passed = failures.isEmpty
            let reason =
                passed
                ? "\(name) = \(fmt(value)): ok (\(notes.joined(separator: "; ")))"
                : "\(name) = \(fmt(value)): \(failures.joined(separator: "; "))"
            checks.append(
                Check(
                    metric: rule.metric, slice: rule.slice, candidate: value, baseline: base, passed: passed,
                    reason: reason))
        }
        self.checks = checks
        passed = checks.allSatisfy(\.passed)
    }
}

private func fmt(_ x: Double) -> String { String(format: "%.4f", x) }
