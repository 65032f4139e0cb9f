import Foundation

/// A square table of counts: row = true class, column = predicted class.
public struct ConfusionMatrix: Codable, Sendable, Equatable {
    /// Class names, in index order.
    public var classes: [String]
    /// `counts[actual][predicted]`.
    public var counts: [[Int]]

    /// Counts pairs of true and predicted class indices.
    public init(actual: [Int32], predicted: [Int32], classes: [String]) {
        self.classes = classes
        var counts = [[Int]](repeating: [Int](repeating: 0, count: classes.count), count: classes.count)
        for (a, p) in zip(actual, predicted) { counts[Int(a)][Int(p)] += 1 }
        self.counts = counts
    }
}

/// Precision, recall and F1 of one class.
public struct ClassScores: Codable, Sendable, Equatable {
    /// The class.
    public var label: String
    /// True positives over predicted positives (0 when nothing was predicted, as scikit-learn's `zero_division=0`).
    public var precision: Double
    /// True positives over actual positives.
    public var recall: Double
    /// Harmonic mean of precision and recall.
    public var f1: Double
    /// Rows of this class.
    public var support: Int
}

/// One point of a ROC or precision-recall curve.
public struct CurvePoint: Codable, Sendable, Equatable {
    /// x: false positive rate (ROC) or recall (PR).
    public var x: Double
    /// y: true positive rate (ROC) or precision (PR).
    public var y: Double
    /// The score threshold (predict positive when score ≥ threshold).
    public var threshold: Double
}

/// One bin of a reliability (calibration) curve.
public struct CalibrationBin: Codable, Sendable, Equatable {
    /// Mean predicted probability in the bin.
    public var meanPredicted: Double
    /// Fraction of positives in the bin.
    public var fractionPositive: Double
    /// Rows in the bin.
    public var count: Int
}

/// Everything measured about a classifier on one data set.
public struct ClassificationMetrics: Codable, Sendable, Equatable {
    /// Class names.
    public var classes: [String]
    /// Rows evaluated.
    public var count: Int
    /// Share of rows predicted correctly.
    public var accuracy: Double
    /// Mean cross-entropy of the true class (probabilities clipped to `[1e-15, 1 − 1e-15]`).
    public var logLoss: Double
    /// Per class.
    public var perClass: [ClassScores]
    /// Unweighted mean over classes.
    public var macroPrecision: Double
    public var macroRecall: Double
    public var macroF1: Double
    /// From pooled counts (equal to accuracy for single-label data).
    public var microF1: Double
    /// Area under the ROC curve: binary, or the unweighted one-vs-rest mean for more classes.
    public var rocAUC: Double?
    /// Average precision (area under the step precision-recall curve), binary or one-vs-rest mean.
    public var prAUC: Double?
    /// The confusion matrix.
    public var confusion: ConfusionMatrix
    /// Binary only: ROC curve, precision-recall curve and reliability curve of the positive class.
    public var rocCurve: [CurvePoint]?
    public var precisionRecallCurve: [CurvePoint]?
    public var calibration: [CalibrationBin]?

    /// Computes the metrics from class indices and probabilities (`rows × classes`, row-major).
    public init(labels: [Int32], probabilities: [Double], classes: [String]) {
        let k = classes.count
        let n = labels.count
        precondition(probabilities.count == n * k, "probabilities must be rows × classes")
        self.classes = classes
        count = n
        var predicted = [Int32](repeating: 0, count: n)
        var loss = 0.0
        for row in 0..<n {
            var best = 0
            for c in 1..<k where probabilities[row * k + c] > probabilities[row * k + best] { best = c }
            predicted[row] = Int32(best)
            let p = min(max(probabilities[row * k + Int(labels[row])], 1e-15), 1 - 1e-15)
            loss -= Foundation.log(p)
        }
        logLoss = n > 0 ? loss / Double(n) : .nan
        let confusion = ConfusionMatrix(actual: labels, predicted: predicted, classes: classes)
        self.confusion = confusion
        let correct = (0..<k).reduce(0) { $0 + confusion.counts[$1][$1] }
        accuracy = n > 0 ? Double(correct) / Double(n) : .nan
        microF1 = accuracy
        let perClass = (0..<k).map { c in
            let tp = confusion.counts[c][c]
            let predictedPositive = (0..<k).reduce(0) { $0 + confusion.counts[$1][c] }
            let actualPositive = confusion.counts[c].reduce(0, +)
            let precision = predictedPositive > 0 ? Double(tp) / Double(predictedPositive) : 0
            let recall = actualPositive > 0 ? Double(tp) / Double(actualPositive) : 0
            let f1 = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0
            return ClassScores(
                label: classes[c], precision: precision, recall: recall, f1: f1, support: actualPositive)
        }
        self.perClass = perClass
        macroPrecision = perClass.map(\.precision).reduce(0, +) / Double(k)
        macroRecall = perClass.map(\.recall).reduce(0, +) / Double(k)
        macroF1 = perClass.map(\.f1).reduce(0, +) / Double(k)
        func column(_ c: Int) -> [Double] { (0..<n).map { probabilities[$0 * k + c] } }
        if k == 2 {
            let positive = labels.map { $0 == 1 }
            let scores = column(1)
            rocAUC = BinaryCurves.rocAUC(positive: positive, scores: scores)
            prAUC = BinaryCurves.averagePrecision(positive: positive, scores: scores)
            rocCurve = BinaryCurves.roc(positive: positive, scores: scores)
            precisionRecallCurve = BinaryCurves.precisionRecall(positive: positive, scores: scores)
            calibration = BinaryCurves.calibration(positive: positive, probabilities: scores)
        } else {
            var rocs: [Double] = []
            var aps: [Double] = []
            for c in 0..<k {
                let positive = labels.map { Int($0) == c }
                let scores = column(c)
                if let roc = BinaryCurves.rocAUC(positive: positive, scores: scores) { rocs.append(roc) }
                if let ap = BinaryCurves.averagePrecision(positive: positive, scores: scores) { aps.append(ap) }
            }
            rocAUC = rocs.count == k ? rocs.reduce(0, +) / Double(k) : nil
            prAUC = aps.count == k ? aps.reduce(0, +) / Double(k) : nil
        }
    }

    /// A named scalar metric (`accuracy`, `log_loss`, `roc_auc`, `pr_auc`, `macro_f1`, `micro_f1`,
    /// `macro_precision`, `macro_recall`), or nil when unknown or undefined.
    public func value(_ name: String) -> Double? {
        switch name {
        case "accuracy": accuracy
        case "log_loss": logLoss
        case "roc_auc", "auc": rocAUC
        case "pr_auc", "average_precision": prAUC
        case "macro_f1", "f1": macroF1
        case "micro_f1": microF1
        case "macro_precision", "precision": macroPrecision
        case "macro_recall", "recall": macroRecall
        default: nil
        }
    }

    /// Names ``value(_:)`` knows.
    public static let names = [
        "accuracy", "log_loss", "roc_auc", "pr_auc", "macro_f1", "micro_f1", "macro_precision", "macro_recall",
    ]
}

/// Curves and areas of a binary scorer.
public enum BinaryCurves {
    /// Distinct thresholds, highest first, with cumulative true and false positives at each.
    static func cumulative(positive: [Bool], scores: [Double]) -> [(threshold: Double, tp: Int, fp: Int)] {
        let order = scores.indices.sorted { scores[$0] > scores[$1] }
        var out: [(Double, Int, Int)] = []
        var tp = 0
        var fp = 0
        for (k, i) in order.enumerated() {
            if positive[i] { tp += 1 } else { fp += 1 }
            if k == order.count - 1 || scores[order[k + 1]] != scores[i] { out.append((scores[i], tp, fp)) }
        }
        return out
    }

    /// Area under the ROC curve (ties count half, as the Mann–Whitney statistic); nil when one class is absent.
    public static func rocAUC(positive: [Bool], scores: [Double]) -> Double? {
        let points = cumulative(positive: positive, scores: scores)
        guard let last = points.last, last.tp > 0, last.fp > 0 else { return nil }
        var area = 0.0
        var previous = (tp: 0, fp: 0)
        for point in points {
            area += Double(point.fp - previous.fp) * Double(point.tp + previous.tp) / 2
            previous = (point.tp, point.fp)
        }
        return area / (Double(last.tp) * Double(last.fp))
    }

    /// Average precision: `Σ (Rₖ − Rₖ₋₁)·Pₖ` over thresholds (scikit-learn's `average_precision_score`).
    public static func averagePrecision(positive: [Bool], scores: [Double]) -> Double? {
        let points = cumulative(positive: positive, scores: scores)
        guard let last = points.last, last.tp > 0 else { return nil }
        var area = 0.0
        var previousRecall = 0.0
        for point in points {
            let recall = Double(point.tp) / Double(last.tp)
            let precision = Double(point.tp) / Double(point.tp + point.fp)
            area += (recall - previousRecall) * precision
            previousRecall = recall
        }
        return area
    }

    /// The ROC curve from (0, 0), at most `maxPoints` points (evenly thinned, ends kept).
    public static func roc(positive: [Bool], scores: [Double], maxPoints: Int = 200) -> [CurvePoint] {
        let points = cumulative(positive: positive, scores: scores)
        guard let last = points.last, last.tp > 0, last.fp > 0 else { return [] }
        let curve =
            [CurvePoint(x: 0, y: 0, threshold: .infinity)]
            + points.map {
                CurvePoint(
                    x: Double($0.fp) / Double(last.fp), y: Double($0.tp) / Double(last.tp), threshold: $0.threshold)
            }
        return thin(curve, to: maxPoints)
    }

    /// The precision-recall curve, at most `maxPoints` points.
    public static func precisionRecall(positive: [Bool], scores: [Double], maxPoints: Int = 200) -> [CurvePoint] {
        let points = cumulative(positive: positive, scores: scores)
        guard let last = points.last, last.tp > 0 else { return [] }
        let curve = points.map {
            CurvePoint(
                x: Double($0.tp) / Double(last.tp), y: Double($0.tp) / Double($0.tp + $0.fp), threshold: $0.threshold)
        }
        return thin(curve, to: maxPoints)
    }

    /// Reliability curve over `bins` equal-width probability bins (empty bins left out), as scikit-learn's
    /// `calibration_curve(strategy="uniform")`.
    public static func calibration(positive: [Bool], probabilities: [Double], bins: Int = 10) -> [CalibrationBin] {
        var sums = [Double](repeating: 0, count: bins)
        var positives = [Int](repeating: 0, count: bins)
        var counts = [Int](repeating: 0, count: bins)
        for (p, isPositive) in zip(probabilities, positive) {
            // As scikit-learn: edges k·(1/bins) (numpy's linspace), np.searchsorted(inner edges, p) (left side).
            var bin = 0
            while bin < bins - 1, Double(bin + 1) * (1 / Double(bins)) < p { bin += 1 }
            sums[bin] += p
            counts[bin] += 1
            if isPositive { positives[bin] += 1 }
        }
        return (0..<bins).filter { counts[$0] > 0 }.map {
            CalibrationBin(
                meanPredicted: sums[$0] / Double(counts[$0]),
                fractionPositive: Double(positives[$0]) / Double(counts[$0]), count: counts[$0])
        }
    }

    private static func thin(_ curve: [CurvePoint], to maxPoints: Int) -> [CurvePoint] {
        guard curve.count > maxPoints, maxPoints >= 2 else { return curve }
        return (0..<maxPoints).map { curve[$0 * (curve.count - 1) / (maxPoints - 1)] }
    }
}

/// Error measures of a regressor on one data set.
public struct RegressionMetrics: Codable, Sendable, Equatable {
    /// Rows evaluated.
    public var count: Int
    /// Root mean squared error.
    public var rmse: Double
    /// Mean absolute error.
    public var mae: Double
    /// Coefficient of determination (1 − SSE/SST).
    public var r2: Double

    /// Computes the metrics.
    public init(targets: [Double], predictions: [Double]) {
        count = targets.count
        let n = Double(targets.count)
        var squared = 0.0
        var absolute = 0.0
        for (y, p) in zip(targets, predictions) {
            squared += (y - p) * (y - p)
            absolute += abs(y - p)
        }
        let mean = targets.reduce(0, +) / n
        let total = targets.reduce(0) { $0 + ($1 - mean) * ($1 - mean) }
        rmse = (squared / n).squareRoot()
        mae = absolute / n
        r2 = total > 0 ? 1 - squared / total : (squared == 0 ? 1 : 0)
    }

    /// A named metric (`rmse`, `mae`, `r2`).
    public func value(_ name: String) -> Double? {
        switch name {
        case "rmse": rmse
        case "mae": mae
        case "r2": r2
        default: nil
        }
    }

    /// Names ``value(_:)`` knows.
    public static let names = ["rmse", "mae", "r2"]
}
