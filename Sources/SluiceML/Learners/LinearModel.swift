import Foundation

/// A fitted linear model: ridge regression, binary logistic regression or softmax regression. Weights are kept
/// per expanded feature column (one-hot blocks written out), so they read as coefficients.
public struct LinearModel: Codable, Sendable, Equatable {
    /// What the model predicts.
    public enum Kind: String, Codable, Sendable {
        /// A number (ridge regression).
        case regression
        /// The probability of the positive class (logistic regression).
        case binary
        /// A probability per class (softmax regression).
        case multiclass
    }

    /// What the model predicts.
    public var kind: Kind
    /// The input layout it was trained on.
    public var layout: FeatureLayout
    /// Number of outputs: 1, or the number of classes for softmax.
    public var outputs: Int
    /// Coefficients, `outputs × layout.expandedCount`, row-major.
    public var weights: [Double]
    /// One intercept per output.
    public var intercepts: [Double]
    /// How the optimizer ended.
    public var convergence: ConvergenceReport

    /// The linear scores, `rows × outputs`, row-major.
    public func margins(_ x: FeatureMatrix) -> [Double] {
        let plan = LinearPlan(layout: x.layout)
        let nN = x.layout.numericCount
        let nC = x.layout.categoricalCount
        var out = [Double](repeating: 0, count: x.rowCount * outputs)
        for o in 0..<outputs {
            let compact = plan.compact(
                expanded: Array(weights[(o * layout.expandedCount)..<((o + 1) * layout.expandedCount)]))
            for row in 0..<x.rowCount {
                var z = intercepts[o]
                for j in 0..<nN { z += compact[j] * x.numeric[row * nN + j] }
                for c in 0..<nC {
                    let k = x.categorical[row * nC + c]
                    if k >= 0 { z += compact[plan.categoricalBase[c] + Int(k)] }
                }
                out[row * outputs + o] = z
            }
        }
        return out
    }
}

/// Where each feature's weights sit in the compact parameter vector the optimizers use: numeric weights first,
/// then each categorical block, then the intercept.
struct LinearPlan {
    let numericCount: Int
    let categoricalBase: [Int]
    let width: Int  // without the intercept
    let layout: FeatureLayout

    init(layout: FeatureLayout) {
        self.layout = layout
        numericCount = layout.numericCount
        var base: [Int] = []
        var next = layout.numericCount
        for slot in layout.slots where slot.kind != .numeric {
            base.append(next)
            next += slot.width
        }
        categoricalBase = base
        width = next
    }

    /// Compact weights from expanded ones.
    func compact(expanded: [Double]) -> [Double] {
        var out = [Double](repeating: 0, count: width)
        for (k, slot) in layout.slots.enumerated() {
            let index = layout.storageIndex[k]
            let start = slot.kind == .numeric ? index : categoricalBase[index]
            for w in 0..<slot.width { out[start + w] = expanded[layout.expandedOffset[k] + w] }
        }
        return out
    }

    /// Expanded weights from compact ones.
    func expanded(compact: ArraySlice<Double>) -> [Double] {
        let compact = Array(compact)
        var out = [Double](repeating: 0, count: layout.expandedCount)
        for (k, slot) in layout.slots.enumerated() {
            let index = layout.storageIndex[k]
            let start = slot.kind == .numeric ? index : categoricalBase[index]
            for w in 0..<slot.width { out[layout.expandedOffset[k] + w] = compact[start + w] }
        }
        return out
    }
}

func requireNoMissing(_ x: FeatureMatrix, learner: String, firstRow: Int = 0) throws {
    guard let bad = x.numeric.firstIndex(where: { !$0.isFinite }) else { return }
    let nN = x.layout.numericCount
    let slot = x.layout.slots.indices.first {
        x.layout.slots[$0].kind == .numeric && x.layout.storageIndex[$0] == bad % nN
    }!
    throw TrainingError(
        problem:
            "feature '\(x.layout.slots[slot].name)' has a missing or infinite value (row \(firstRow + bad / nN + 1)); \(learner) needs every value",
        fix: "add an imputation step (for example {impute: mean}) to the feature, or use gradient-boosted trees.")
}

func requireNoMissing(_ x: FeatureBatches, learner: String) throws {
    try x.forEach { batch, first in try requireNoMissing(batch, learner: learner, firstRow: first) }
}

/// Ridge regression: minimizes `½·mean((y − Xw − b)²) + ½·l2·‖w‖²` exactly, through the normal equations
/// (Cholesky). The intercept is not penalized.
public struct LinearRegression: Sendable {
    /// The L2 penalty.
    public var l2: Double
    /// Creates a learner.
    public init(l2: Double = 1e-4) { self.l2 = l2 }

    /// Fits the model.
    public func fit(_ x: FeatureMatrix, targets y: [Double], progress: TrainingCallback? = nil) throws -> LinearModel {
        try fit(FeatureBatches(x), targets: y, progress: progress)
    }

    /// Fits the model on rows given in batches: one pass sums the normal equations, one more measures the loss.
    public func fit(_ x: FeatureBatches, targets y: [Double], progress: TrainingCallback? = nil) throws -> LinearModel {
        try requireNoMissing(x, learner: "linear regression")
        guard x.rowCount == y.count, x.rowCount > 0 else {
            throw TrainingError(
                problem: "there are \(x.rowCount) rows but \(y.count) targets", fix: "give one target per row.")
        }
        let start = monotonicSeconds()
        let plan = LinearPlan(layout: x.layout)
        let p = plan.width + 1
        var partials: [([Double], [Double])] = []
        try x.forEach { x, first in partials += Self.normalSums(x, first: first, y: y, plan: plan) }
        var gram = [Double](repeating: 0, count: p * p)
        var xty = [Double](repeating: 0, count: p)
        for (g, v) in partials {
            for i in 0..<(p * p) { gram[i] += g[i] }
            for i in 0..<p { xty[i] += v[i] }
        }
        let n = Double(x.rowCount)
        // Each row's indices are strictly increasing (numeric, then categorical blocks, then the intercept), so
        // only the upper triangle was filled: mirror it while scaling.
        for a in 0..<p {
            for b in a..<p {
                gram[a * p + b] /= n
                gram[b * p + a] = gram[a * p + b]
            }
            xty[a] /= n
            if a < p - 1 { gram[a * p + a] += l2 }
        }
        var jitter = 0.0
        var solution: [Double]?
        while solution == nil {
            var matrix = gram
            for a in 0..<p { matrix[a * p + a] += jitter }
            solution = Cholesky.solve(matrix, xty, size: p)
            if solution == nil { jitter = jitter == 0 ? 1e-10 : jitter * 100 }
            if jitter > 1 {
                throw TrainingError(
                    problem: "the normal equations are singular (features are collinear)",
                    fix: "set l2 above 0, or drop duplicated features.")
            }
        }
        let w = solution!
        var loss = 0.0
        let model = LinearModel(
            kind: .regression, layout: x.layout, outputs: 1, weights: plan.expanded(compact: w[0..<(p - 1)]),
            intercepts: [w[p - 1]],
            convergence: ConvergenceReport(
                iterations: 1, converged: true, reason: "", finalObjective: 0, gradientNorm: 0))
        try x.forEach { x, first in
            let predictions = model.margins(x)
            for row in 0..<x.rowCount {
                loss += (predictions[row] - y[first + row]) * (predictions[row] - y[first + row])
            }
        }
        loss = loss / (2 * n) + 0.5 * l2 * w[0..<(p - 1)].reduce(0) { $0 + $1 * $1 }
        var result = model
        result.convergence = ConvergenceReport(
            iterations: 1, converged: true,
            reason: jitter > 0 ? "solved exactly (with \(jitter) added to the diagonal)" : "solved exactly",
            finalObjective: loss, gradientNorm: 0)
        let elapsed = monotonicSeconds() - start
        progress?(
            TrainingProgress(
                iteration: 1, maxIterations: 1, loss: loss, evalMetric: nil, elapsedSeconds: elapsed,
                rowsPerSecond: n / max(elapsed, 1e-9)))
        return result
    }

    /// The normal equations' sums (upper triangle) of a batch whose first row is `first`, per block of rows.
    private static func normalSums(_ x: FeatureMatrix, first: Int, y: [Double], plan: LinearPlan)
        -> [([Double], [Double])]
    {
        let p = plan.width + 1
        let nN = x.layout.numericCount
        let nC = x.layout.categoricalCount
        return parallelBlocks(count: x.rowCount, blockSize: 32_768) { range -> ([Double], [Double]) in
            var gram = [Double](repeating: 0, count: p * p)
            var xty = [Double](repeating: 0, count: p)
            var index = [Int](repeating: 0, count: nN + nC + 1)
            var value = [Double](repeating: 0, count: nN + nC + 1)
            for row in range {
                var m = 0
                for j in 0..<nN {
                    index[m] = j
                    value[m] = x.numeric[row * nN + j]
                    m += 1
                }
                for c in 0..<nC {
                    let k = x.categorical[row * nC + c]
                    if k >= 0 {
                        index[m] = plan.categoricalBase[c] + Int(k)
                        value[m] = 1
                        m += 1
                    }
                }
                index[m] = p - 1
                value[m] = 1
                m += 1
                for a in 0..<m {
                    xty[index[a]] += value[a] * y[first + row]
                    for b in a..<m { gram[index[a] * p + index[b]] += value[a] * value[b] }
                }
            }
            return (gram, xty)
        }
    }
}

enum Cholesky {
    /// Solves `A·x = b` for symmetric positive definite `A` (row-major), or nil when `A` is not.
    static func solve(_ a: [Double], _ b: [Double], size n: Int) -> [Double]? {
        var l = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in 0...i {
                var sum = a[i * n + j]
                for k in 0..<j { sum -= l[i * n + k] * l[j * n + k] }
                if i == j {
                    guard sum > 0 else { return nil }
                    l[i * n + i] = sum.squareRoot()
                } else {
                    l[i * n + j] = sum / l[j * n + j]
                }
            }
        }
        var y = b
        for i in 0..<n {
            for k in 0..<i { y[i] -= l[i * n + k] * y[k] }
            y[i] /= l[i * n + i]
        }
        var x = y
        for i in stride(from: n - 1, through: 0, by: -1) {
            for k in (i + 1)..<n { x[i] -= l[k * n + i] * x[k] }
            x[i] /= l[i * n + i]
        }
        return x
    }
}
