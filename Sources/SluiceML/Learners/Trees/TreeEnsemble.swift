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

/// A fitted gradient-boosted tree ensemble: regression, binary or multiclass.
public struct TreeEnsemble: Codable, Sendable, Equatable {
    /// The loss the trees were fitted to.
    public var objective: GradientBoosting.Objective
    /// The input layout it was trained on.
    public var layout: FeatureLayout
    /// Number of outputs: 1, or the number of classes.
    public var outputs: Int
    /// Starting margin per output.
    public var baseScores: [Double]
    /// The trees, round by round; in round `r`, tree `r·outputs + k` adds to output `k`.
    public var trees: [Tree]
    /// Training loss and evaluation metric after each round.
    public var history: [RoundRecord]
    /// The round kept when early stopping cut training short (counting from 1), or the last round.
    public var bestRound: Int

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
        let compiled = trees.map { CompiledTree($0, layout: x.layout) }
        let n = x.rowCount
        var out = [Double](repeating: 0, count: n * outputs)
        let results = parallelBlocks(count: n, blockSize: 4_096) { range -> [Double] in
            var block = [Double](repeating: 0, count: range.count * outputs)
            for (r, row) in range.enumerated() {
                for o in 0..<outputs { block[r * outputs + o] = baseScores[o] }
                for (t, tree) in compiled.enumerated() {
                    block[r * outputs + t % outputs] += tree.predict(x, row: row)
                }
            }
            return block
        }
        var offset = 0
        for block in results {
            for value in block {
                out[offset] = value
                offset += 1
            }
        }
        return out
    }

    /// Total split gain per expanded feature, largest first.
    public func featureImportance() -> [(feature: String, gain: Double)] {
        var total = [Double](repeating: 0, count: layout.expandedCount)
        for tree in trees {
            for (node, feature) in tree.feature.enumerated() where feature >= 0 { total[Int(feature)] += tree.gain[node] }
        }
        let names = layout.expandedNames
        return total.enumerated().filter { $0.element > 0 }.sorted { $0.element > $1.element }.map {
            (names[$0.offset], $0.element)
        }
    }
}

/// A tree with each split's feature resolved against the matrix layout, for fast prediction.
struct CompiledTree {
    let tree: Tree
    let sources: [ExpandedSource?]

    init(_ tree: Tree, layout: FeatureLayout) {
        self.tree = tree
        sources = tree.feature.map { $0 < 0 ? nil : layout.source(ofExpanded: Int($0)) }
    }

    @inline(__always)
    func predict(_ x: FeatureMatrix, row: Int) -> Double {
        var node = 0
        while let source = sources[node] {
            let goLeft: Bool
            switch source {
            case .numeric(let j):
                let value = x.numeric[row * x.layout.numericCount + j]
                goLeft = value.isNaN ? tree.defaultLeft[node] : value < tree.threshold[node]
            case .category(let c, let k):
                goLeft = (x.categorical[row * x.layout.categoricalCount + c] == k ? 1.0 : 0.0) < tree.threshold[node]
            }
            node = Int(goLeft ? tree.left[node] : tree.right[node])
        }
        return tree.value[node]
    }
}
