// Over 400 lines: the boosting loop with its binned-matrix state; the tree grower is in its own file.
import Foundation

/// Histogram-based gradient-boosted decision trees (the algorithm of XGBoost's `hist` method and LightGBM):
/// features binned once into at most 256 bins, trees grown depth-wise with second-order gains, a learned default
/// direction for missing values, row and column subsampling, L2 regularization and early stopping.
///
/// Deterministic given `seed`: parallel sums run over fixed row blocks and are added in a fixed order, so the same
/// data and parameters give the same model bytes on any number of cores.
public struct GradientBoosting: Sendable {
    /// The loss to minimize.
    public enum Objective: String, Codable, Sendable {
        /// Regression: squared error.
        case squaredError = "squared_error"
        /// Binary classification: log loss on labels 0 and 1.
        case logistic
        /// Multiclass classification: softmax cross-entropy, one tree per class per round.
        case softmax
    }

    /// The loss to minimize.
    public var objective: Objective
    /// Boosting rounds.
    public var rounds = 100
    /// Shrinkage applied to every leaf (XGBoost's `eta`).
    public var learningRate = 0.3
    /// Deepest level a tree may reach.
    public var maxDepth = 6
    /// Most leaves per tree, the highest-gain splits first (nil: only the depth limits).
    public var maxLeaves: Int?
    /// Smallest hessian sum a child may have.
    public var minChildWeight = 1.0
    /// L2 penalty on leaf values (XGBoost's `lambda`).
    public var l2 = 1.0
    /// Smallest loss reduction a split must bring (XGBoost's `gamma`).
    public var minSplitGain = 0.0
    /// Share of rows each tree sees.
    public var subsample = 1.0
    /// Share of (expanded) feature columns each tree may use.
    public var columnSample = 1.0
    /// Bins per feature, at most 256 (one is kept for missing values).
    public var maxBins = 256
    /// Stop when the evaluation metric has not improved for this many rounds (needs an evaluation set).
    public var earlyStoppingRounds: Int?
    /// Seed for row and column sampling.
    public var seed: UInt64 = 0

    /// Creates a learner with XGBoost's defaults.
    public init(objective: Objective) { self.objective = objective }

    /// Fits a regression ensemble.
    public func fit(
        _ x: FeatureMatrix, targets: [Double], eval: (x: FeatureMatrix, targets: [Double])? = nil,
        progress: TrainingCallback? = nil
    ) throws -> TreeEnsemble {
        guard objective == .squaredError else {
            throw TrainingError(
                problem: "targets are for regression, but the objective is \(objective.rawValue)",
                fix: "use fit(_:labels:classes:) for classification.")
        }
        try validate(rowCount: x.rowCount, targets.count)
        let features = BinnedMatrix.fit(x, maxBins: maxBins)
        return try train(
            BinnedMatrix(x, features: features), layout: x.layout, y: targets, outputs: 1,
            eval: eval.map { (BinnedMatrix($0.x, features: features), $0.targets) }, progress: progress)
    }

    /// Fits a regression ensemble on rows given in batches (for data larger than memory): two passes, one to choose
    /// the bins from a sample and one to bin every row into a byte per feature; training then reads only the bins.
    /// Rows `holdOut` marks are kept aside as the evaluation set early stopping watches. The model is the same
    /// however the rows are batched, and the same as from one matrix in memory.
    public func fit(
        _ rows: FeatureBatches, targets: [Double], holdOut: [Bool]? = nil, progress: TrainingCallback? = nil
    ) throws -> TreeEnsemble {
        guard objective == .squaredError else {
            throw TrainingError(
                problem: "targets are for regression, but the objective is \(objective.rawValue)",
                fix: "use fit(_:labels:classes:) for classification.")
        }
        return try train(rows, y: targets, outputs: 1, holdOut: holdOut, progress: progress)
    }

    /// Fits a classification ensemble on labels `0..<classes`, rows given in batches (see
    /// ``fit(_:targets:holdOut:progress:)``).
    public func fit(
        _ rows: FeatureBatches, labels: [Int32], classes: Int, holdOut: [Bool]? = nil,
        progress: TrainingCallback? = nil
    ) throws -> TreeEnsemble {
        try checkClassification(labels, classes: classes)
        return try train(
            rows, y: labels.map(Double.init), outputs: objective == .softmax ? classes : 1, holdOut: holdOut,
            progress: progress)
    }

    private func train(
        _ rows: FeatureBatches, y: [Double], outputs: Int, holdOut: [Bool]?, progress: TrainingCallback?
    ) throws -> TreeEnsemble {
        guard holdOut == nil || holdOut!.count == rows.rowCount else {
            throw TrainingError(
                problem: "the hold-out marks \(holdOut!.count) rows, but there are \(rows.rowCount)",
                fix: "mark every row.")
        }
        let include = holdOut.map { $0.map { !$0 } }
        let trainY = holdOut.map { marks in y.indices.filter { !marks[$0] }.map { y[$0] } } ?? y
        try validate(rowCount: include.map { $0.filter { $0 }.count } ?? rows.rowCount, trainY.count)
        guard y.count == rows.rowCount else {
            throw TrainingError(
                problem: "there are \(rows.rowCount) rows but \(y.count) targets", fix: "give one per row.")
        }
        let features = try BinnedMatrix.fit(rows, include: include, maxBins: maxBins)
        let data = try BinnedMatrix(rows, features: features, include: include)
        let eval = try holdOut.map { marks in
            (
                try BinnedMatrix(rows, features: features, include: marks),
                y.indices.filter { marks[$0] }.map { y[$0] }
            )
        }
        return try train(data, layout: rows.layout, y: trainY, outputs: outputs, eval: eval, progress: progress)
    }

    /// Fits a classification ensemble on labels `0..<classes`.
    public func fit(
        _ x: FeatureMatrix, labels: [Int32], classes: Int, eval: (x: FeatureMatrix, labels: [Int32])? = nil,
        progress: TrainingCallback? = nil
    ) throws -> TreeEnsemble {
        try checkClassification(labels, classes: classes)
        try validate(rowCount: x.rowCount, labels.count)
        let features = BinnedMatrix.fit(x, maxBins: maxBins)
        return try train(
            BinnedMatrix(x, features: features), layout: x.layout, y: labels.map(Double.init),
            outputs: objective == .softmax ? classes : 1,
            eval: eval.map { (BinnedMatrix($0.x, features: features), $0.labels.map(Double.init)) }, progress: progress)
    }

    private func checkClassification(_ labels: [Int32], classes: Int) throws {
        guard objective != .squaredError else {
            throw TrainingError(
                problem: "labels are for classification, but the objective is squared_error",
                fix: "use fit(_:targets:) for regression, or the logistic or softmax objective.")
        }
        guard labels.allSatisfy({ $0 >= 0 && Int($0) < classes }), classes >= 2 else {
            throw TrainingError(
                problem: "labels must lie in 0..<\(classes) with at least 2 classes",
                fix: "encode the label with a LabelMapping.")
        }
        if objective == .logistic, classes != 2 {
            throw TrainingError(
                problem: "the logistic objective is binary, but there are \(classes) classes",
                fix: "use the softmax objective.")
        }
    }

    private func validate(rowCount: Int, _ targets: Int) throws {
        guard rowCount == targets, rowCount > 0 else {
            throw TrainingError(
                problem: "there are \(rowCount) rows but \(targets) targets", fix: "give one per row.")
        }
        guard rounds >= 1, maxDepth >= 1, learningRate > 0, (2...256).contains(maxBins),
            subsample > 0, subsample <= 1, columnSample > 0, columnSample <= 1, l2 >= 0
        else {
            throw TrainingError(
                problem:
                    "invalid parameters: rounds \(rounds), max_depth \(maxDepth), learning_rate \(learningRate), max_bins \(maxBins), subsample \(subsample), column_sample \(columnSample), l2 \(l2)",
                fix:
                    "use rounds ≥ 1, max_depth ≥ 1, learning_rate > 0, 2 ≤ max_bins ≤ 256, 0 < subsample ≤ 1, 0 < column_sample ≤ 1, l2 ≥ 0."
            )
        }
    }

    private func train(
        _ data: BinnedMatrix, layout: FeatureLayout, y: [Double], outputs: Int, eval: (BinnedMatrix, [Double])?,
        progress: TrainingCallback?
    ) throws -> TreeEnsemble {
        let start = monotonicSeconds()
        let n = data.rowCount
        let features = data.features
        let evalData = eval?.0
        var base = [Double](repeating: 0, count: outputs)
        switch objective {
        case .squaredError: base[0] = y.reduce(0, +) / Double(n)
        case .logistic:
            let mean = min(max(y.reduce(0, +) / Double(n), 1e-6), 1 - 1e-6)
            base[0] = Foundation.log(mean / (1 - mean))
        case .softmax: break
        }
        var margins = [Double](repeating: 0, count: n * outputs)
        for row in 0..<n { for o in 0..<outputs { margins[row * outputs + o] = base[o] } }
        var evalMargins = [Double](repeating: 0, count: (evalData?.rowCount ?? 0) * outputs)
        for k in evalMargins.indices { evalMargins[k] = base[k % outputs] }
        let gh = UnsafeMutablePointer<SIMD2<Float>>.allocate(capacity: n * outputs)
        defer { gh.deallocate() }
        let grower = TreeGrower(
            data: data,
            parameters: .init(
                maxDepth: maxDepth, maxLeaves: maxLeaves, minChildWeight: minChildWeight, l2: l2,
                minSplitGain: minSplitGain))
        var random = SplitMix64(seed: seed)
        var trees: [Tree] = []
        var history: [TreeEnsemble.RoundRecord] = []
        var best = (round: 0, metric: Double.infinity)
        let expandedCount = layout.expandedCount
        var sampled = [Bool](repeating: true, count: n)
        for round in 1...rounds {
            // Ctrl-C (the task cancelled) stops training between rounds.
            if Task.isCancelled { throw CancellationError() }
            let loss = gradients(margins: margins, y: y, outputs: outputs, into: gh)
            if round > 1 {
                history[round - 2].trainLoss = loss
                report(history, round: round - 1, start: start, n: n, progress: progress)
            }
            // Row sample.
            var rowCount = 0
            if subsample < 1 {
                for row in 0..<n {
                    sampled[row] = random.unit() < subsample
                    if sampled[row] {
                        grower.rowIndex[rowCount] = UInt32(row)
                        rowCount += 1
                    }
                }
            }
            // Column sample (over expanded columns).
            var allowedColumns = [Bool](repeating: true, count: expandedCount)
            if columnSample < 1 {
                let keep = max(1, Int((columnSample * Double(expandedCount)).rounded(.down)))
                var order = Array(0..<expandedCount)
                for k in stride(from: expandedCount - 1, to: 0, by: -1) {
                    order.swapAt(k, Int(random.next() % UInt64(k + 1)))
                }
                allowedColumns = [Bool](repeating: false, count: expandedCount)
                for column in order.prefix(keep) { allowedColumns[column] = true }
            }
            let allowedBin: [[Bool]]? =
                columnSample < 1
                ? features.map { feature in
                    switch feature.kind {
                    case .numeric: return [Bool](repeating: allowedColumns[feature.expandedColumn], count: feature.bins)
                    case .categories:
                        return [false] + (1..<feature.bins).map { allowedColumns[feature.expandedColumn + $0 - 1] }
                    }
                } : nil
            let allowed = allowedBin.map { $0.map { $0.contains(true) } } ?? [Bool](repeating: true, count: data.width)
            for output in 0..<outputs {
                if subsample >= 1 {
                    for row in 0..<n { grower.rowIndex[row] = UInt32(row) }
                    rowCount = n
                }
                let nodes = grower.grow(
                    rowCount: rowCount, gh: UnsafePointer(gh + output * n), allowed: allowed, allowedBin: allowedBin)
                let (tree, binned) = makeTree(nodes, features: features)
                // Training margins: leaves know their rows; unsampled rows walk the tree.
                let ranges = nodes.indices.filter { nodes[$0].left < 0 }.map { ($0, nodes[$0].start, nodes[$0].count) }
                let rowIndex = UncheckedBox(grower.rowIndex)
                margins.withUnsafeMutableBufferPointer { m in
                    let margin = UncheckedBox(m.baseAddress!)
                    parallelFor(ranges.count) { k in
                        let (node, start, count) = ranges[k]
                        let value = tree.value[node]
                        for i in start..<(start + count) {
                            margin.value[Int(rowIndex.value[i]) * outputs + output] += value
                        }
                    }
                }
                if subsample < 1 {
                    for row in 0..<n where !sampled[row] {
                        margins[row * outputs + output] += binned.predict(data, row: row)
                    }
                }
                if let evalData {
                    for row in 0..<evalData.rowCount {
                        evalMargins[row * outputs + output] += binned.predict(evalData, row: row)
                    }
                }
                trees.append(tree)
            }
            var record = TreeEnsemble.RoundRecord(trainLoss: .nan, evalMetric: nil)
            if let eval {
                let metric = evalMetric(margins: evalMargins, y: eval.1, outputs: outputs)
                record.evalMetric = metric
                if metric < best.metric { best = (round, metric) }
            }
            history.append(record)
            if let patience = earlyStoppingRounds, eval != nil, round - best.round >= patience { break }
        }
        let finalLoss = gradients(margins: margins, y: y, outputs: outputs, into: gh)
        history[history.count - 1].trainLoss = finalLoss
        report(history, round: history.count, start: start, n: n, progress: progress)
        var keep = history.count
        if earlyStoppingRounds != nil, eval != nil, best.round > 0 { keep = best.round }
        return TreeEnsemble(
            objective: objective, layout: layout, outputs: outputs, baseScores: base,
            trees: Array(trees.prefix(keep * outputs)), history: Array(history.prefix(keep)), bestRound: keep)
    }

    private func report(
        _ history: [TreeEnsemble.RoundRecord], round: Int, start: Double, n: Int, progress: TrainingCallback?
    ) {
        guard let progress else { return }
        let elapsed = monotonicSeconds() - start
        let record = history[round - 1]
        progress(
            TrainingProgress(
                iteration: round, maxIterations: rounds, loss: record.trainLoss,
                evalMetric: record.evalMetric.map { (evalMetricName, $0) }, elapsedSeconds: elapsed,
                rowsPerSecond: Double(n * round) / max(elapsed, 1e-9)))
    }

    /// The metric early stopping watches: RMSE, log loss or multiclass log loss.
    public var evalMetricName: String {
        switch objective {
        case .squaredError: "rmse"
        case .logistic: "logloss"
        case .softmax: "mlogloss"
        }
    }

    /// Writes gradient pairs (per output, `n` rows each) and returns the mean training loss of `margins`.
    private func gradients(margins: [Double], y: [Double], outputs: Int, into gh: UnsafeMutablePointer<SIMD2<Float>>)
        -> Double
    {
        let n = y.count
        let box = UncheckedBox(gh)
        let objective = self.objective
        let losses = margins.withUnsafeBufferPointer { margins in
            y.withUnsafeBufferPointer { y in
                parallelBlocks(count: n, blockSize: 32_768) { range -> Double in
                    let gh = box.value
                    var loss = 0.0
                    switch objective {
                    case .squaredError:
                        for row in range {
                            let r = margins[row] - y[row]
                            gh[row] = SIMD2(Float(r), 1)
                            loss += 0.5 * r * r
                        }
                    case .logistic:
                        for row in range {
                            let m = margins[row]
                            let e = Foundation.exp(-abs(m))
                            let prob = m >= 0 ? 1 / (1 + e) : e / (1 + e)
                            // log(1 + e) rather than log1p: e ≤ 1, so the absolute error stays ~1e-16, at half the cost.
                            loss += max(m, 0) + Foundation.log(1 + e) - y[row] * m
                            gh[row] = SIMD2(Float(prob - y[row]), Float(max(prob * (1 - prob), 1e-16)))
                        }
                    case .softmax:
                        var p = [Double](repeating: 0, count: outputs)
                        for row in range {
                            var top = -Double.infinity
                            for o in 0..<outputs { top = max(top, margins[row * outputs + o]) }
                            var sum = 0.0
                            for o in 0..<outputs {
                                p[o] = Foundation.exp(margins[row * outputs + o] - top)
                                sum += p[o]
                            }
                            let label = Int(y[row])
                            loss += Foundation.log(sum) - Foundation.log(p[label])
                            for o in 0..<outputs {
                                let prob = p[o] / sum
                                gh[o * n + row] = SIMD2(
                                    Float(prob - (o == label ? 1 : 0)), Float(max(2 * prob * (1 - prob), 1e-16)))
                            }
                        }
                    }
                    return loss
                }
            }
        }
        return losses.reduce(0, +) / Double(n)
    }

    private func evalMetric(margins: [Double], y: [Double], outputs: Int) -> Double {
        let n = y.count
        var total = 0.0
        for row in 0..<n {
            switch objective {
            case .squaredError:
                let r = margins[row] - y[row]
                total += r * r
            case .logistic:
                let m = margins[row]
                total += max(m, 0) + Foundation.log1p(Foundation.exp(-abs(m))) - (y[row] == 1 ? m : 0)
            case .softmax:
                var top = -Double.infinity
                for o in 0..<outputs { top = max(top, margins[row * outputs + o]) }
                var sum = 0.0
                for o in 0..<outputs { sum += Foundation.exp(margins[row * outputs + o] - top) }
                total += Foundation.log(sum) - (margins[row * outputs + Int(y[row])] - top)
            }
        }
        return objective == .squaredError ? (total / Double(n)).squareRoot() : total / Double(n)
    }

    /// Turns grown nodes into a model tree (raw thresholds) and a binned tree (for training-time prediction).
    private func makeTree(_ nodes: [GrowingNode], features: [BinnedFeature]) -> (Tree, BinnedTree) {
        var tree = Tree(
            feature: [], threshold: [], defaultLeft: [], left: [], right: [], value: [], gain: [], cover: [])
        var binned = BinnedTree(feature: [], bin: [], isCategory: [], defaultLeft: [], left: [], right: [], value: [])
        for node in nodes {
            tree.cover.append(node.sum.y)
            tree.left.append(Int32(node.left))
            tree.right.append(Int32(node.right))
            binned.left.append(Int32(node.left))
            binned.right.append(Int32(node.right))
            if let split = node.split, node.left >= 0 {
                let feature = features[split.feature]
                switch feature.kind {
                case .numeric(_, let cuts):
                    tree.feature.append(Int32(feature.expandedColumn))
                    tree.threshold.append(cuts[split.bin - 1])
                case .categories:
                    tree.feature.append(Int32(feature.expandedColumn + split.bin - 1))
                    tree.threshold.append(0.5)
                }
                tree.defaultLeft.append(split.defaultLeft)
                tree.value.append(0)
                tree.gain.append(split.gain)
                binned.feature.append(Int32(split.feature))
                binned.bin.append(Int32(split.bin))
                binned.isCategory.append(split.isCategory)
                binned.defaultLeft.append(split.defaultLeft)
                binned.value.append(0)
            } else {
                let value = -node.sum.x / (node.sum.y + l2) * learningRate
                tree.feature.append(-1)
                tree.threshold.append(0)
                tree.defaultLeft.append(true)
                tree.value.append(value)
                tree.gain.append(0)
                binned.feature.append(-1)
                binned.bin.append(0)
                binned.isCategory.append(false)
                binned.defaultLeft.append(true)
                binned.value.append(value)
            }
        }
        return (tree, binned)
    }
}

/// A tree over bin indices, to update margins of rows the tree did not see and of the evaluation set.
struct BinnedTree {
    var feature: [Int32]
    var bin: [Int32]
    var isCategory: [Bool]
    var defaultLeft: [Bool]
    var left: [Int32]
    var right: [Int32]
    var value: [Double]

    func predict(_ data: BinnedMatrix, row: Int) -> Double {
        var node = 0
        while feature[node] >= 0 {
            let b = Int32(data.bins[row * data.width + Int(feature[node])])
            let goLeft = isCategory[node] ? b != bin[node] : (b == 0 ? defaultLeft[node] : b <= bin[node])
            node = Int(goLeft ? left[node] : right[node])
        }
        return value[node]
    }
}
