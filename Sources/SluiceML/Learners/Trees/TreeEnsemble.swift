import Foundation

/// One regression tree, as flat arrays. Node `0` is the root; a node with `feature == -1` is a leaf.
public struct Tree: Codable, Sendable, Equatable {
    /// The expanded feature column each split tests, or -1 for a leaf.
    public var feature: [Int32]
    /// Rows with `value < threshold` go left (one-hot columns split at 0.5).
    public var threshold: [Double]
    /// Where rows with a missing value go.
    public var defaultLeft: [Bool]
    /// Left child index.
    public var left: [Int32]
    /// Right child index.
    public var right: [Int32]
    /// Leaf output (learning rate applied); 0 for splits.
    public var value: [Double]
    /// Split gain (0 for leaves), for feature importance.
    public var gain: [Double]
    /// Sum of hessians of the training rows reaching the node.
    public var cover: [Double]

    /// Number of leaves.
    public var leafCount: Int { feature.count { $0 < 0 } }
}

/// A fitted gradient-boosted tree ensemble: regression, binary or multiclass. Immutable, so the trees flattened
/// for prediction can be kept with it.
public struct TreeEnsemble: Codable, Sendable, Equatable {
    /// The loss the trees were fitted to.
    public let objective: GradientBoosting.Objective
    /// The input layout it was trained on.
    public let layout: FeatureLayout
    /// Number of outputs: 1, or the number of classes.
    public let outputs: Int
    /// Starting margin per output.
    public let baseScores: [Double]
    /// The trees, round by round; in round `r`, tree `r·outputs + k` adds to output `k`.
    public let trees: [Tree]
    /// Training loss and evaluation metric after each round.
    public let history: [RoundRecord]
    /// The round kept when early stopping cut training short (counting from 1), or the last round.
    public let bestRound: Int
    /// The trees flattened for prediction, built on first use (not serialized; equal for equal trees).
    private let forestCache = ForestCache()

    private enum CodingKeys: String, CodingKey {
        case objective, layout, outputs, baseScores, trees, history, bestRound
    }

    /// Creates an ensemble.
    public init(
        objective: GradientBoosting.Objective, layout: FeatureLayout, outputs: Int, baseScores: [Double],
        trees: [Tree], history: [RoundRecord], bestRound: Int
    ) {
        self.objective = objective
        self.layout = layout
        self.outputs = outputs
        self.baseScores = baseScores
        self.trees = trees
        self.history = history
        self.bestRound = bestRound
    }

    /// One boosting round's figures.
    public struct RoundRecord: Codable, Sendable, Equatable {
        /// Training loss.
        public var trainLoss: Double
        /// Evaluation metric, when there was an evaluation set.
        public var evalMetric: Double?
    }

    /// Number of boosting rounds kept.
    public var rounds: Int { trees.count / outputs }

    /// The raw scores (before the link function), `rows × outputs`, row-major.
    public func margins(_ x: FeatureMatrix) -> [Double] {
        // Serving calls this once per request: reuse the flattened trees when the input has the training layout.
        let forest = x.layout == layout ? forestCache.forest(for: self) : FlatForest(self, layout: x.layout)
        let n = x.rowCount
        var out = [Double](repeating: 0, count: n * outputs)
        let outputs = self.outputs
        let baseScores = self.baseScores
        out.withUnsafeMutableBufferPointer { buffer in
            let target = UncheckedBox(buffer.baseAddress!)
            x.numeric.withUnsafeBufferPointer { numeric in
                x.categorical.withUnsafeBufferPointer { categorical in
                    forest.nodes.withUnsafeBufferPointer { nodes in
                        _ = parallelBlocks(count: n, blockSize: 1_024) { range in
                            let out = target.value
                            let nN = x.layout.numericCount
                            let nC = x.layout.categoricalCount
                            for row in range {
                                for o in 0..<outputs { out[row * outputs + o] = baseScores[o] }
                            }
                            // The block's rows as one row-major array of doubles, numeric features then category
                            // codes, so every split is the same branch-free test on one value (see FlatForest.Node).
                            let width = nN + nC
                            var unified = [Double](repeating: 0, count: range.count * max(width, 1))
                            for (k, row) in range.enumerated() {
                                for j in 0..<nN { unified[k * width + j] = numeric[row * nN + j] }
                                for c in 0..<nC { unified[k * width + nN + c] = Double(categorical[row * nC + c]) }
                            }
                            unified.withUnsafeBufferPointer { values in
                                // Tree by tree over a block of rows: one tree's nodes stay in the nearest cache.
                                // Eight rows go down a tree together, level by level, for as many levels as the tree
                                // is deep (a leaf is its own child): eight independent chains of loads the core
                                // overlaps, and selects instead of branches it cannot predict. The sum per row keeps
                                // the tree order, so the result is the same to the bit as one row at a time.
                                let lanes = 8
                                let count = range.count
                                let grouped = (count / lanes) * lanes
                                for (t, root) in forest.roots.enumerated() {
                                    let output = t % outputs
                                    let depth = forest.depths[t]
                                    /// One level down from node `i` for the block's row `r`.
                                    @inline(__always) func step(_ i: Int32, _ r: Int) -> Int32 {
                                        let node = nodes[Int(i)]
                                        let value = values[r * width + Int(node.column)]
                                        let goLeft =
                                            (value < node.low) || (value >= node.high)
                                            || (value.isNaN && node.missingLeft)
                                        return goLeft ? node.left : node.right
                                    }
                                    var r = 0
                                    while r < grouped {
                                        var (i0, i1, i2, i3) = (root, root, root, root)
                                        var (i4, i5, i6, i7) = (root, root, root, root)
                                        for _ in 0..<depth {
                                            i0 = step(i0, r)
                                            i1 = step(i1, r + 1)
                                            i2 = step(i2, r + 2)
                                            i3 = step(i3, r + 3)
                                            i4 = step(i4, r + 4)
                                            i5 = step(i5, r + 5)
                                            i6 = step(i6, r + 6)
                                            i7 = step(i7, r + 7)
                                        }
                                        let row = range.lowerBound + r
                                        out[row * outputs + output] += nodes[Int(i0)].low
                                        out[(row + 1) * outputs + output] += nodes[Int(i1)].low
                                        out[(row + 2) * outputs + output] += nodes[Int(i2)].low
                                        out[(row + 3) * outputs + output] += nodes[Int(i3)].low
                                        out[(row + 4) * outputs + output] += nodes[Int(i4)].low
                                        out[(row + 5) * outputs + output] += nodes[Int(i5)].low
                                        out[(row + 6) * outputs + output] += nodes[Int(i6)].low
                                        out[(row + 7) * outputs + output] += nodes[Int(i7)].low
                                        r += lanes
                                    }
                                    while r < count {
                                        var i = root
                                        for _ in 0..<depth { i = step(i, r) }
                                        out[(range.lowerBound + r) * outputs + output] += nodes[Int(i)].low
                                        r += 1
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    /// Total split gain per expanded feature, largest first.
    public func featureImportance() -> [(feature: String, gain: Double)] {
        var total = [Double](repeating: 0, count: layout.expandedCount)
        for tree in trees {
            for (node, feature) in tree.feature.enumerated() where feature >= 0 {
                total[Int(feature)] += tree.gain[node]
            }
        }
        let names = layout.expandedNames
        return total.enumerated().filter { $0.element > 0 }.sorted { $0.element > $1.element }.map {
            (names[$0.offset], $0.element)
        }
    }
}

/// All trees' nodes in one array with each split resolved against the matrix layout, for fast prediction.
struct FlatForest {
    /// 32 bytes: children, the value tested and the test. A row goes left when its value is below `low`, at or
    /// above `high`, or missing with `missingLeft`: a numeric split is `x < threshold` (`high` NaN, never true), a
    /// one-hot split sends every category but one left (`low` the category's code, `high` half above it).
    struct Node {
        var left: Int32  // a leaf: its own index, as `right`
        var right: Int32
        var column: Int32  // in a row of numeric features then category codes
        var missingLeft: Bool
        var low: Double  // a leaf's value
        var high: Double
    }

    var nodes: [Node] = []
    var roots: [Int32] = []
    /// Each tree's depth: the most splits from its root to a leaf.
    var depths: [Int] = []

    init(_ ensemble: TreeEnsemble, layout: FeatureLayout) {
        for tree in ensemble.trees {
            let offset = Int32(nodes.count)
            roots.append(offset)
            depths.append(Self.depth(of: tree))
            for k in tree.feature.indices {
                // A leaf points at itself both ways: going down further from it stays there. Its test reads column 0,
                // which every row has when the tree has a split.
                let me = offset + Int32(k)
                var node = Node(left: me, right: me, column: 0, missingLeft: false, low: tree.value[k], high: .nan)
                if tree.feature[k] >= 0 {
                    node.left = tree.left[k] + offset
                    node.right = tree.right[k] + offset
                    switch layout.source(ofExpanded: Int(tree.feature[k])) {
                    case .numeric(let j):
                        node.column = Int32(j)
                        node.low = tree.threshold[k]
                        node.missingLeft = tree.defaultLeft[k]
                    case .category(let c, let category):
                        // Splits on one-hot columns are at 0.5: the matching category goes right.
                        node.column = Int32(layout.numericCount + c)
                        node.low = Double(category)
                        node.high = Double(category) + 0.5
                    }
                }
                nodes.append(node)
            }
        }
    }

    /// The most splits on a path from the root (node 0) to a leaf.
    static func depth(of tree: Tree) -> Int {
        guard !tree.feature.isEmpty else { return 0 }
        var deepest = 0
        var stack: [(Int, Int)] = [(0, 0)]
        while let (node, level) = stack.popLast() {
            if tree.feature[node] >= 0 {
                stack.append((Int(tree.left[node]), level + 1))
                stack.append((Int(tree.right[node]), level + 1))
            } else {
                deepest = max(deepest, level)
            }
        }
        return deepest
    }
}

/// Holds an ensemble's flattened trees once built. Compares equal to any other cache, so ensembles compare by
/// their trees alone.
final class ForestCache: @unchecked Sendable, Equatable {
    private let lock = NSLock()
    private var forest: FlatForest?

    func forest(for ensemble: TreeEnsemble) -> FlatForest {
        lock.lock()
        defer { lock.unlock() }
        if let forest { return forest }
        let built = FlatForest(ensemble, layout: ensemble.layout)
        forest = built
        return built
    }

    static func == (a: ForestCache, b: ForestCache) -> Bool { true }
}
