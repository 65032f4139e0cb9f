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
                            // Tree by tree over a block of rows: one tree's nodes stay in the nearest cache. Eight
                            // rows go down a tree together, level by level, for as many levels as the tree is deep
                            // (a leaf is its own child): eight independent chains of loads the core overlaps, and
                            // selects instead of branches it cannot predict. The sum per row keeps the tree order,
                            // so the result is the same to the bit as one row at a time.
                            let lanes = 8
                            let grouped = range.lowerBound + (range.count / lanes) * lanes
                            for (t, root) in forest.roots.enumerated() {
                                let output = t % outputs
                                let depth = forest.depths[t]
                                var row = range.lowerBound
                                /// One level down from node `i` for row `r`.
                                @inline(__always) func step(_ i: Int32, _ r: Int) -> Int32 {
                                    let node = nodes[Int(i)]
                                    let goLeft: Bool
                                    if node.category < 0 {
                                        let value = numeric[r * nN + Int(node.column)]
                                        goLeft = value < node.threshold || (value.isNaN && node.category == -2)
                                    } else {
                                        goLeft = categorical[r * nC + Int(node.column)] != node.category
                                    }
                                    return goLeft ? node.left : node.right
                                }
                                while row < grouped {
                                    var (i0, i1, i2, i3) = (root, root, root, root)
                                    var (i4, i5, i6, i7) = (root, root, root, root)
                                    for _ in 0..<depth {
                                        i0 = step(i0, row)
                                        i1 = step(i1, row + 1)
                                        i2 = step(i2, row + 2)
                                        i3 = step(i3, row + 3)
                                        i4 = step(i4, row + 4)
                                        i5 = step(i5, row + 5)
                                        i6 = step(i6, row + 6)
                                        i7 = step(i7, row + 7)
                                    }
                                    out[row * outputs + output] += nodes[Int(i0)].threshold
                                    out[(row + 1) * outputs + output] += nodes[Int(i1)].threshold
                                    out[(row + 2) * outputs + output] += nodes[Int(i2)].threshold
                                    out[(row + 3) * outputs + output] += nodes[Int(i3)].threshold
                                    out[(row + 4) * outputs + output] += nodes[Int(i4)].threshold
                                    out[(row + 5) * outputs + output] += nodes[Int(i5)].threshold
                                    out[(row + 6) * outputs + output] += nodes[Int(i6)].threshold
                                    out[(row + 7) * outputs + output] += nodes[Int(i7)].threshold
                                    row += lanes
                                }
                                for row in grouped..<range.upperBound {
                                    let xs = numeric.baseAddress.map { $0 + row * nN }
                                    let cs = categorical.baseAddress.map { $0 + row * nC }
                                    var node = nodes[Int(root)]
                                    while node.left != node.right {
                                        let goLeft: Bool
                                        if node.category < 0 {
                                            let value = xs![Int(node.column)]
                                            goLeft = value.isNaN ? node.category == -2 : value < node.threshold
                                        } else {
                                            goLeft = cs![Int(node.column)] != node.category
                                        }
                                        node = nodes[Int(goLeft ? node.left : node.right)]
                                    }
                                    out[row * outputs + output] += node.threshold
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
    /// 24 bytes: children, the column tested, and the threshold (a leaf keeps its value there).
    struct Node {
        var left: Int32  // a leaf: its own index, as `right`
        var right: Int32
        var column: Int32  // numeric or categorical storage index
        /// Numeric split: -1 when missing values go right, -2 when they go left. One-hot split: the category
        /// whose rows go right.
        var category: Int32
        var threshold: Double  // a leaf's value
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
                // A leaf points at itself both ways: going down further from it stays there. Its test reads a
                // column that exists (numeric 0, or categorical 0 when there are no numeric features).
                let me = offset + Int32(k)
                var node = Node(
                    left: me, right: me, column: 0, category: layout.numericCount > 0 ? -1 : 0,
                    threshold: tree.value[k])
                if tree.feature[k] >= 0 {
                    node.threshold = tree.threshold[k]
                    node.left = tree.left[k] + offset
                    node.right = tree.right[k] + offset
                    switch layout.source(ofExpanded: Int(tree.feature[k])) {
                    case .numeric(let j):
                        node.column = Int32(j)
                        node.category = tree.defaultLeft[k] ? -2 : -1
                    case .category(let c, let category):
                        // Splits on one-hot columns are at 0.5: the matching category goes right.
                        node.column = Int32(c)
                        node.category = category
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
