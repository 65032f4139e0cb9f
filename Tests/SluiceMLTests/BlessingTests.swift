import Foundation
import Testing

@testable import SluiceML

@Suite("Blessing")
struct BlessingTests {
    /// An evaluation whose AUC is about `quality` (labels alternate; scores separate them by `quality`).
    func evaluation(shift: Double, region: Bool = true) -> Evaluation {
        let labels: [Int32] = (0..<200).map { Int32($0 % 2) }
        let scores = labels.indices.map { k in
            min(max(0.5 + (labels[k] == 1 ? shift : -shift) * Double(k % 7) / 6 + Double(k % 5) * 0.05 - 0.1, 0), 1)
        }
        return Evaluation(
            labels: labels, probabilities: scores.flatMap { [1 - $0, $0] }, classes: ["0", "1"],
            slices: region ? ["region": labels.indices.map { $0 < 100 ? "east" : "west" }] : [:])
    }

    @Test("absolute thresholds pass or fail with the value and the bound in the reason")
    func absolute() throws {
        let candidate = evaluation(shift: 0.3)
        let auc = try #require(candidate.overall.value("roc_auc"))
        let pass = Blessing(
            candidate: candidate, baseline: nil,
            policy: BlessingPolicy(thresholds: [MetricThreshold(metric: "roc_auc", atLeast: auc - 0.01)]))
        #expect(pass.passed)
        let fail = Blessing(
            candidate: candidate, baseline: nil,
            policy: BlessingPolicy(thresholds: [
                MetricThreshold(metric: "roc_auc", atLeast: auc + 0.01),
                MetricThreshold(metric: "log_loss", atMost: 10),
            ]))
        #expect(!fail.passed)
        #expect(fail.checks.map(\.passed) == [false, true])
        #expect(fail.failures.first!.contains("below"))
    }

    @Test("relative thresholds compare with the baseline, in the right direction for losses")
    func relative() throws {
        let better = evaluation(shift: 0.3)
        let worse = evaluation(shift: 0.05)
        let policy = BlessingPolicy(thresholds: [
            MetricThreshold(metric: "roc_auc", maxDegradation: 0.01),
            MetricThreshold(metric: "log_loss", maxDegradation: 0.01),
        ])
        #expect(Blessing(candidate: better, baseline: worse, policy: policy).passed)
        let verdict = Blessing(candidate: worse, baseline: better, policy: policy)
        #expect(!verdict.passed)
        #expect(verdict.checks.allSatisfy { !$0.passed && $0.baseline != nil })
        #expect(verdict.failures[0].contains("worse than baseline"))
        let first = Blessing(candidate: worse, baseline: nil, policy: policy)
        #expect(first.passed)
        #expect(first.checks[0].reason.contains("no baseline"))
    }

    @Test("per-slice thresholds judge the slice alone; unknown slices and metrics fail with a hint")
    func slices() throws {
        let candidate = evaluation(shift: 0.3)
        let east = try #require(candidate.metrics(slice: SliceKey(column: "region", value: "east"))?.value("accuracy"))
        let verdict = Blessing(
            candidate: candidate, baseline: nil,
            policy: BlessingPolicy(thresholds: [
                MetricThreshold(metric: "accuracy", slice: SliceKey(column: "region", value: "east"), atLeast: east),
                MetricThreshold(metric: "accuracy", slice: SliceKey(column: "region", value: "north"), atLeast: 0),
                MetricThreshold(metric: "rocauc", atLeast: 0),
            ]))
        #expect(verdict.checks.map(\.passed) == [true, false, false])
        #expect(verdict.checks[1].reason.contains("no such slice"))
        #expect(verdict.checks[2].reason.contains("did you mean 'roc_auc'"))
    }
}
