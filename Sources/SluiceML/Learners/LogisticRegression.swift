import Foundation

/// Binary logistic regression with an L2 penalty, fitted by L-BFGS: minimizes
/// `mean(log-loss) + ½·l2·‖w‖²` (the intercept is not penalized). scikit-learn's `C` corresponds to
/// `l2 = 1 / (C · rows)`.
public struct LogisticRegression: Sendable {
    /// The L2 penalty.
    public var l2: Double
    /// The most L-BFGS iterations.
    public var maxIterations: Int
    /// Stop when the largest gradient component is at most this.
    public var tolerance: Double

    /// Creates a learner.
    public init(l2: Double = 1e-4, maxIterations: Int = 200, tolerance: Double = 1e-6) {
        self.l2 = l2
        self.maxIterations = maxIterations
        self.tolerance = tolerance
    }

    /// Fits the model to labels 0 and 1.
    public func fit(_ x: FeatureMatrix, labels: [Int32], progress: TrainingCallback? = nil) throws -> LinearModel {
        try fit(FeatureBatches(x), labels: labels, progress: progress)
    }

    /// Fits the model to labels 0 and 1, rows given in batches: each L-BFGS evaluation is one pass over them, so
    /// only a batch is in memory at a time.
    public func fit(_ x: FeatureBatches, labels: [Int32], progress: TrainingCallback? = nil) throws -> LinearModel {
        try requireNoMissing(x, learner: "logistic regression")
        guard x.rowCount == labels.count, x.rowCount > 0 else {
            throw TrainingError(
                problem: "there are \(x.rowCount) rows but \(labels.count) labels", fix: "give one label per row.")
        }
        guard labels.allSatisfy({ $0 == 0 || $0 == 1 }) else {
            throw TrainingError(problem: "binary labels must be 0 or 1", fix: "encode the label with a LabelMapping.")
        }
        return try SoftmaxRegression.optimize(
            x, labels: labels, outputs: 1, l2: l2, maxIterations: maxIterations, tolerance: tolerance,
            progress: progress)
    }
}

/// Multiclass (multinomial) logistic regression with an L2 penalty, fitted by L-BFGS over all classes' weights.
public struct SoftmaxRegression: Sendable {
    /// The L2 penalty.
    public var l2: Double
    /// The most L-BFGS iterations.
    public var maxIterations: Int
    /// Stop when the largest gradient component is at most this.
    public var tolerance: Double

    /// Creates a learner.
    public init(l2: Double = 1e-4, maxIterations: Int = 200, tolerance: Double = 1e-6) {
        self.l2 = l2
        self.maxIterations = maxIterations
        self.tolerance = tolerance
    }

    /// Fits the model to labels `0..<classes`.
    public func fit(_ x: FeatureMatrix, labels: [Int32], classes: Int, progress: TrainingCallback? = nil) throws
        -> LinearModel
    {
        try fit(FeatureBatches(x), labels: labels, classes: classes, progress: progress)
    }

    /// Fits the model to labels `0..<classes`, rows given in batches (one pass per L-BFGS evaluation).
    public func fit(_ x: FeatureBatches, labels: [Int32], classes: Int, progress: TrainingCallback? = nil) throws
        -> LinearModel
    {
        try requireNoMissing(x, learner: "softmax regression")
        guard x.rowCount == labels.count, x.rowCount > 0 else {
            throw TrainingError(
                problem: "there are \(x.rowCount) rows but \(labels.count) labels", fix: "give one label per row.")
        }
        guard classes >= 2, labels.allSatisfy({ $0 >= 0 && Int($0) < classes }) else {
            throw TrainingError(
                problem: "labels must lie in 0..<\(classes) with at least 2 classes",
                fix: "encode the label with a LabelMapping.")
        }
        return try Self.optimize(
            x, labels: labels, outputs: classes, l2: l2, maxIterations: maxIterations, tolerance: tolerance,
            progress: progress)
    }

    /// One output: logistic loss on the margin. K outputs: softmax cross-entropy.
    static func optimize(
        _ rows: FeatureBatches, labels: [Int32], outputs: Int, l2: Double, maxIterations: Int, tolerance: Double,
        progress: TrainingCallback?
    ) throws -> LinearModel {
        let x = rows
        let plan = LinearPlan(layout: x.layout)
        let stride = plan.width + 1  // per output, intercept last
        let n = x.rowCount
        let nN = x.layout.numericCount
        let nC = x.layout.categoricalCount
        let base = plan.categoricalBase
        let start = monotonicSeconds()
        var evaluations = 0
        // A batch that cannot be read (or Ctrl-C) ends the evaluation; the error is thrown after the optimizer stops.
        var readError: (any Error)?
        let objective: ([Double], inout [Double]) -> Double = { w, gradient in
            evaluations += 1
            var partials: [([Double], Double)] = []
            do {
                try rows.forEach { x, first in
                    partials += blockSums(x, first: first, w: w)
                }
            } catch {
                readError = readError ?? error
                return .nan
            }
            var loss = 0.0
            for k in gradient.indices { gradient[k] = 0 }
            for (g, l) in partials {
                loss += l
                for k in gradient.indices { gradient[k] += g[k] }
            }
            let scale = 1 / Double(n)
            loss *= scale
            for o in 0..<outputs {
                for k in 0..<stride {
                    let i = o * stride + k
                    gradient[i] *= scale
                    if k < stride - 1 {
                        gradient[i] += l2 * w[i]
                        loss += 0.5 * l2 * w[i] * w[i]
                    }
                }
            }
            return loss
        }
        /// The loss and gradient sums of a batch whose first row is `first`, per block of rows.
        func blockSums(_ x: FeatureMatrix, first: Int, w: [Double]) -> [([Double], Double)] {
            parallelBlocks(count: x.rowCount, blockSize: 32_768) { range -> ([Double], Double) in
                var g = [Double](repeating: 0, count: stride * outputs)
                var loss = 0.0
                var z = [Double](repeating: 0, count: outputs)
                x.numeric.withUnsafeBufferPointer { numeric in
                    x.categorical.withUnsafeBufferPointer { categorical in
                        w.withUnsafeBufferPointer { w in
                            g.withUnsafeMutableBufferPointer { g in
                                for row in range {
                                    let xs = numeric.baseAddress! + row * nN
                                    let cs = categorical.baseAddress! + row * nC
                                    for o in 0..<outputs {
                                        let wo = w.baseAddress! + o * stride
                                        var s = wo[stride - 1]
                                        for j in 0..<nN { s += wo[j] * xs[j] }
                                        for c in 0..<nC where cs[c] >= 0 { s += wo[base[c] + Int(cs[c])] }
                                        z[o] = s
                                    }
                                    let label = Int(labels[first + row])
                                    if outputs == 1 {
                                        let m = z[0]
                                        let e = Foundation.exp(-abs(m))
                                        loss += max(m, 0) + Foundation.log1p(e) - (label == 1 ? m : 0)
                                        let p = m >= 0 ? 1 / (1 + e) : e / (1 + e)
                                        z[0] = p - Double(label)
                                    } else {
                                        var top = -Double.infinity
                                        for o in 0..<outputs { top = max(top, z[o]) }
                                        var sum = 0.0
                                        for o in 0..<outputs {
                                            z[o] = Foundation.exp(z[o] - top)
                                            sum += z[o]
                                        }
                                        loss += Foundation.log(sum) - Foundation.log(z[label])
                                        for o in 0..<outputs { z[o] = z[o] / sum - (o == label ? 1 : 0) }
                                    }
                                    for o in 0..<outputs {
                                        let r = z[o]
                                        let go = g.baseAddress! + o * stride
                                        go[stride - 1] += r
                                        for j in 0..<nN { go[j] += r * xs[j] }
                                        for c in 0..<nC where cs[c] >= 0 { go[base[c] + Int(cs[c])] += r }
                                    }
                                }
                            }
                        }
                    }
                }
                return (g, loss)
            }
        }
        let optimizer = LBFGS(maxIterations: maxIterations, gradientTolerance: tolerance)
        let (w, report) = try optimizer.minimize(
            from: [Double](repeating: 0, count: stride * outputs), objective: objective
        ) { iteration, loss, _ in
            let elapsed = monotonicSeconds() - start
            progress?(
                TrainingProgress(
                    iteration: iteration, maxIterations: maxIterations, loss: loss, evalMetric: nil,
                    elapsedSeconds: elapsed, rowsPerSecond: Double(n * evaluations) / max(elapsed, 1e-9)))
        }
        if let readError { throw readError }
        var weights: [Double] = []
        var intercepts: [Double] = []
        for o in 0..<outputs {
            weights += plan.expanded(compact: w[(o * stride)..<(o * stride + stride - 1)])
            intercepts.append(w[o * stride + stride - 1])
        }
        return LinearModel(
            kind: outputs == 1 ? .binary : .multiclass, layout: x.layout, outputs: outputs, weights: weights,
            intercepts: intercepts, convergence: report)
    }
}
