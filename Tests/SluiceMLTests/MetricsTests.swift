import Foundation
import Testing

@testable import SluiceML

@Suite("Metrics")
struct MetricsTests {
    let reference: Reference
    init() throws { reference = try Reference() }

    func close(_ a: Double?, _ b: Double, _ tolerance: Double = 1e-12) -> Bool {
        guard let a else { return false }
        return abs(a - b) <= tolerance
    }

    @Test("binary metrics equal scikit-learn's on the same labels and tied scores")
    func binary() throws {
        let r = reference.section("binary")
        let labels = r.labels("labels")
        let scores = r.doubles("scores")
        let m = ClassificationMetrics(
            labels: labels, probabilities: scores.flatMap { [1 - $0, $0] }, classes: ["0", "1"])
        #expect(close(m.accuracy, r.double("accuracy")))
        #expect(zip(m.perClass.map(\.precision), r.doubles("precision")).allSatisfy { close($0, $1) })
        #expect(zip(m.perClass.map(\.recall), r.doubles("recall")).allSatisfy { close($0, $1) })
        #expect(zip(m.perClass.map(\.f1), r.doubles("f1")).allSatisfy { close($0, $1) })
        #expect(close(m.macroF1, r.double("macro_f1")))
        #expect(close(m.microF1, r.double("micro_f1")))
        #expect(close(m.rocAUC, r.double("roc_auc")))
        #expect(close(m.prAUC, r.double("average_precision")))
        #expect(close(m.logLoss, r.double("log_loss"), 1e-12))
        #expect(m.confusion.counts == (r["confusion"] as! [[NSNumber]]).map { $0.map(\.intValue) })
        let calibration = try #require(m.calibration)
        #expect(zip(calibration.map(\.fractionPositive), r.doubles("calibration_true")).allSatisfy { close($0, $1) })
        #expect(zip(calibration.map(\.meanPredicted), r.doubles("calibration_predicted")).allSatisfy { close($0, $1) })
        #expect(calibration.count == r.doubles("calibration_true").count)
    }

    @Test("multiclass metrics equal scikit-learn's: macro and micro averages, one-vs-rest AUC, log loss")
    func multiclass() throws {
        let r = reference.section("multiclass")
        let m = ClassificationMetrics(
            labels: r.labels("labels"), probabilities: r.doubles("probabilities"), classes: ["a", "b", "c"])
        #expect(close(m.accuracy, r.double("accuracy")))
        #expect(close(m.macroPrecision, r.double("macro_precision")))
        #expect(close(m.macroRecall, r.double("macro_recall")))
        #expect(close(m.macroF1, r.double("macro_f1")))
        #expect(close(m.microF1, r.double("micro_f1")))
        #expect(close(m.rocAUC, r.double("roc_auc_ovr_macro")))
        #expect(close(m.logLoss, r.double("log_loss"), 1e-12))
        #expect(m.confusion.counts == (r["confusion"] as! [[NSNumber]]).map { $0.map(\.intValue) })
    }

    @Test("RMSE, MAE and R² equal scikit-learn's")
    func regression() throws {
        let r = reference.section("regression")
        let m = RegressionMetrics(targets: r.doubles("targets"), predictions: r.doubles("predictions"))
        #expect(close(m.rmse, r.double("rmse"), 1e-12))
        #expect(close(m.mae, r.double("mae"), 1e-12))
        #expect(close(m.r2, r.double("r2"), 1e-12))
    }

    @Test("metrics are computed per slice, and each slice matches metrics computed on its rows alone")
    func slices() throws {
        let r = reference.section("binary")
        let labels = r.labels("labels")
        let probabilities = r.doubles("scores").flatMap { [1 - $0, $0] }
        let groups: [String?] = labels.indices.map { $0 % 3 == 0 ? "north" : ($0 % 3 == 1 ? "south" : nil) }
        let evaluation = Evaluation(
            labels: labels, probabilities: probabilities, classes: ["0", "1"], slices: ["region": groups])
        #expect(evaluation.slices.map(\.value) == ["(missing)", "north", "south"])
        let north = labels.indices.filter { $0 % 3 == 0 }
        let alone = ClassificationMetrics(
            labels: north.map { labels[$0] },
            probabilities: north.flatMap { [probabilities[2 * $0], probabilities[2 * $0 + 1]] },
            classes: ["0", "1"])
        #expect(evaluation.metrics(slice: SliceKey(column: "region", value: "north")) == .classification(alone))
        #expect(evaluation.slices.map(\.metrics.count).reduce(0, +) == labels.count)
    }

    @Test("ROC, precision-recall, calibration and confusion pictures are well-formed SVG with their figures")
    func charts() throws {
        let r = reference.section("binary")
        let m = ClassificationMetrics(
            labels: r.labels("labels"), probabilities: r.doubles("scores").flatMap { [1 - $0, $0] },
            classes: ["no", "yes"])
        let pictures = [
            MetricCharts.roc(m.rocCurve!, auc: m.rocAUC),
            MetricCharts.precisionRecall(m.precisionRecallCurve!, averagePrecision: m.prAUC),
            MetricCharts.calibration(m.calibration!), MetricCharts.confusion(m.confusion),
        ]
        for svg in pictures {
            let parser = XMLParserCheck(svg)
            #expect(parser.isWellFormed, "not well-formed: \(svg.prefix(200))")
        }
        #expect(pictures[0].contains(String(format: "AUC %.4f", m.rocAUC!)))
        #expect(pictures[0].contains("<polyline"))
        #expect(pictures[3].contains(">\(m.confusion.counts[1][1])<"))
        let html = MetricCharts.html(
            Evaluation(
                labels: r.labels("labels"), probabilities: r.doubles("scores").flatMap { [1 - $0, $0] },
                classes: ["no", "yes"]), title: "eval <test>")
        #expect(html.contains("eval &lt;test&gt;"))
        #expect(html.components(separatedBy: "<svg").count - 1 == 4)
    }
}

/// Parses text as XML and says whether it is well-formed.
struct XMLParserCheck {
    let isWellFormed: Bool
    init(_ text: String) {
        #if canImport(FoundationXML)
            let parser = FoundationXML.XMLParser(data: Data(text.utf8))
        #else
            let parser = XMLParser(data: Data(text.utf8))
        #endif
        isWellFormed = parser.parse()
    }
}

#if canImport(FoundationXML)
    import FoundationXML
#endif
