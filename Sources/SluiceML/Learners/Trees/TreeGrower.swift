import Foundation

/// The best split of a node found from its histogram.
struct SplitCandidate {
    var feature: Int  // binned feature
    var bin: Int  // numeric: bins 1...bin go left; categories: bin `bin` goes right
    var isCategory: Bool
    var defaultLeft: Bool
    var gain: Double
    var leftSum: SIMD2<Double>
}

/// A node while a tree grows.
struct GrowingNode {
    var start: Int
    var count: Int
    var sum: SIMD2<Double>
    var depth: Int
    var histogram: UnsafeMutablePointer<SIMD2<Double>>?
    var split: SplitCandidate?
    var left = -1
    var right = -1
}

/// Grows one depth-wise tree on binned data: histograms built on both cores from fixed row blocks (so sums do not
/// depend on the core count), the larger child's histogram by subtraction from its parent, stable partitions.
final class TreeGrower {
    struct Parameters {
        var maxDepth: Int
        var maxLeaves: Int?
        var minChildWeight: Double
        var l2: Double
        var minSplitGain: Double
    }

    let data: BinnedMatrix
    let parameters: Parameters
    let width: Int
    let binStride = 256
    private var pool: [UnsafeMutablePointer<SIMD2<Double>>] = []
    /// Rows of the nodes, node ranges contiguous.
    var rowIndex: UnsafeMutablePointer<UInt32>
    private let leftScratch: UnsafeMutablePointer<UInt32>
    private let rightScratch: UnsafeMutablePointer<UInt32>
    private static let blockSize = 16_384

    init(data: BinnedMatrix, parameters: Parameters) {
        self.data = data
        self.parameters = parameters
        width = data.width
        rowIndex = .allocate(capacity: max(data.rowCount, 1))
        leftScratch = .allocate(capacity: max(data.rowCount, 1))
        rightScratch = .allocate(capacity: max(data.rowCount, 1))
    }

    deinit {
        rowIndex.deallocate()
        leftScratch.deallocate()
        rightScratch.deallocate()
        for buffer in pool { buffer.deallocate() }
    }

    private func takeHistogram() -> UnsafeMutablePointer<SIMD2<Double>> {
        let buffer = pool.popLast() ?? .allocate(capacity: width * binStride)
        buffer.initialize(repeating: .zero, count: width * binStride)
        return buffer
    }

    private func give(_ buffer: UnsafeMutablePointer<SIMD2<Double>>) { pool.append(buffer) }

    /// Grows a tree over the first `rowCount` entries of `rowIndex`, with gradient pairs `gh` (per row).
    /// `allowed[f]` marks binned features the tree may use; `allowedBin` (per feature, per bin) narrows one-hot
    /// columns under column sampling.
    func grow(
        rowCount: Int, gh: UnsafePointer<SIMD2<Float>>, allowed: [Bool], allowedBin: [[Bool]]?
    ) -> [GrowingNode] {
        var nodes: [GrowingNode] = []
        var total = SIMD2<Double>.zero
        for i in 0..<rowCount { total += SIMD2<Double>(gh[Int(rowIndex[i])]) }
        nodes.append(GrowingNode(start: 0, count: rowCount, sum: total, depth: 0))
        buildHistograms(for: [0], nodes: &nodes, gh: gh, allowed: allowed)
        nodes[0].split = bestSplit(nodes[0], allowed: allowed, allowedBin: allowedBin)
        var level = [0]
        var leaves = 1
        for depth in 0..<parameters.maxDepth {
            var splitting = level.filter { nodes[$0].split != nil }
            if let maxLeaves = parameters.maxLeaves {
                splitting.sort { nodes[$0].split!.gain > nodes[$1].split!.gain }
                splitting = Array(splitting.prefix(max(0, maxLeaves - leaves)))
                splitting.sort()
            }
            for node in level where !splitting.contains(node) {
                if let histogram = nodes[node].histogram { give(histogram) }
                nodes[node].histogram = nil
                nodes[node].split = nil
            }
            if splitting.isEmpty { break }
            let leftCounts = partition(splitting, nodes: nodes)
            var smaller: [Int] = []
            var next: [Int] = []
            for node in splitting {
                let split = nodes[node].split!
                let leftCount = leftCounts[node]!
                let left = GrowingNode(
                    start: nodes[node].start, count: leftCount, sum: split.leftSum, depth: depth + 1)
                let right = GrowingNode(
                    start: nodes[node].start + leftCount, count: nodes[node].count - leftCount,
                    sum: nodes[node].sum - split.leftSum, depth: depth + 1)
                nodes[node].left = nodes.count
                nodes[node].right = nodes.count + 1
                nodes.append(left)
                nodes.append(right)
                smaller.append(left.count <= right.count ? nodes.count - 2 : nodes.count - 1)
                next += [nodes.count - 2, nodes.count - 1]
            }
            leaves += splitting.count
            let lastLevel = depth + 1 == parameters.maxDepth
            if !lastLevel {
                buildHistograms(for: smaller, nodes: &nodes, gh: gh, allowed: allowed)
                for node in splitting {
                    let parent = nodes[node].histogram!
                    let small = smaller.contains(nodes[node].left) ? nodes[node].left : nodes[node].right
                    let large = small == nodes[node].left ? nodes[node].right : nodes[node].left
                    let smallHistogram = nodes[small].histogram!
                    for i in 0..<(width * binStride) { parent[i] -= smallHistogram[i] }
                    nodes[large].histogram = parent
                    nodes[node].histogram = nil
                }
                let candidates = UnsafeMutableBufferPointer<SplitCandidate?>.allocate(capacity: next.count)
                candidates.initialize(repeating: nil)
                let snapshot = nodes
                parallelFor(next.count) { k in
                    candidates[k] = self.bestSplit(snapshot[next[k]], allowed: allowed, allowedBin: allowedBin)
                }
                for (k, node) in next.enumerated() { nodes[node].split = candidates[k] }
                candidates.deallocate()
            } else {
                for node in splitting {
                    if let histogram = nodes[node].histogram { give(histogram) }
                    nodes[node].histogram = nil
                }
            }
            level = next
        }
        for k in nodes.indices {
            if let histogram = nodes[k].histogram { give(histogram) }
            nodes[k].histogram = nil
            if nodes[k].left < 0 { nodes[k].split = nil }
        }
        return nodes
    }

    /// Stable partition of each splitting node's rows: left rows first, then right. Returns the left count of each node.
    private func partition(_ splitting: [Int], nodes: [GrowingNode]) -> [Int: Int] {
        var tasks: [(node: Int, range: Range<Int>)] = []
        for node in splitting {
            let start = nodes[node].start
            let end = start + nodes[node].count
            var s = start
            while s < end {
                tasks.append((node, s..<min(end, s + Self.blockSize)))
                s += Self.blockSize
            }
        }
        let counts = UnsafeMutableBufferPointer<Int>.allocate(capacity: tasks.count)
        defer { counts.deallocate() }
        let columns = UncheckedBox(data.columns)
        let rows = data.rowCount
        let rowIndex = self.rowIndex
        let leftScratch = self.leftScratch
        let rightScratch = self.rightScratch
        parallelFor(tasks.count) { t in
            let (node, range) = tasks[t]
            let split = nodes[node].split!
            let f = split.feature
            let bin = split.bin
            var l = range.lowerBound
            var r = range.lowerBound
            let isCategory = split.isCategory
            let missingLeft = split.defaultLeft
            columns.value.withUnsafeBufferPointer { columns in
                let column = columns.baseAddress! + f * rows
                for i in range {
                    let row = rowIndex[i]
                    let b = Int(column[Int(row)])
                    // Branch-free: write the row to both sides, advance the side it belongs to.
                    let goLeft = isCategory ? b != bin : (b == 0 ? missingLeft : b <= bin)
                    leftScratch[l] = row
                    rightScratch[r] = row
                    let step = goLeft ? 1 : 0
                    l &+= step
                    r &+= 1 &- step
                }
            }
            counts[t] = l - range.lowerBound
        }
        var leftCounts: [Int: Int] = [:]
        var k = 0
        while k < tasks.count {
            let node = tasks[k].node
            var end = k
            while end < tasks.count, tasks[end].node == node { end += 1 }
            var write = nodes[node].start
            for t in k..<end {
                (rowIndex + write).update(from: leftScratch + tasks[t].range.lowerBound, count: counts[t])
                write += counts[t]
            }
            let leftTotal = write - nodes[node].start
            for t in k..<end {
                let rights = tasks[t].range.count - counts[t]
                (rowIndex + write).update(from: rightScratch + tasks[t].range.lowerBound, count: rights)
                write += rights
            }
            leftCounts[node] = leftTotal
            k = end
        }
        return leftCounts
    }

    /// Builds the histograms of `targets`, row blocks in parallel, partial sums added in block order.
    private func buildHistograms(
        for targets: [Int], nodes: inout [GrowingNode], gh: UnsafePointer<SIMD2<Float>>, allowed: [Bool]
    ) {
        var tasks: [(node: Int, range: Range<Int>)] = []
        for node in targets {
            let start = nodes[node].start
            let end = start + nodes[node].count
            var s = start
            repeat {
                tasks.append((node, s..<min(end, s + Self.blockSize)))
                s += Self.blockSize
            } while s < end
        }
        let buffers = tasks.map { _ in takeHistogram() }
        let activeFeatures = allowed.indices.filter { allowed[$0] }
        let allActive = activeFeatures.count == width
        let width = self.width
        let rowIndex = self.rowIndex
        let bins = UncheckedBox(data.bins)
        let ghBox = UncheckedBox(gh)
        parallelFor(tasks.count) { t in
            let hist = buffers[t]
            let gh = ghBox.value
            bins.value.withUnsafeBufferPointer { bins in
                let base = bins.baseAddress!
                if allActive {
                    for i in tasks[t].range {
                        let row = Int(rowIndex[i])
                        let b = base + row * width
                        let v = SIMD2<Double>(gh[row])
                        for f in 0..<width { hist[(f &<< 8) | Int(b[f])] += v }
                    }
                } else {
                    activeFeatures.withUnsafeBufferPointer { active in
                        for i in tasks[t].range {
                            let row = Int(rowIndex[i])
                            let b = base + row * width
                            let v = SIMD2<Double>(gh[row])
                            for f in active { hist[(f &<< 8) | Int(b[f])] += v }
                        }
                    }
                }
            }
        }
        var k = 0
        while k < tasks.count {
            let node = tasks[k].node
            let target = buffers[k]
            var end = k + 1
            while end < tasks.count, tasks[end].node == node {
                let partial = buffers[end]
                for i in 0..<(width * binStride) { target[i] += partial[i] }
                give(partial)
                end += 1
            }
            nodes[node].histogram = target
            k = end
        }
    }

    @inline(__always)
    private func score(_ s: SIMD2<Double>) -> Double { s.x * s.x / (s.y + parameters.l2) }

    /// The best split of `node`, or nil when none gains enough.
    func bestSplit(_ node: GrowingNode, allowed: [Bool], allowedBin: [[Bool]]?) -> SplitCandidate? {
        guard let hist = node.histogram, node.count >= 2 else { return nil }
        let total = node.sum
        let parentScore = score(total)
        let minWeight = parameters.minChildWeight
        var best: SplitCandidate?
        var bestGain = max(parameters.minSplitGain, 1e-10)
        for f in 0..<width where allowed[f] {
            let feature = data.features[f]
            let h = hist + f * binStride
            switch feature.kind {
            case .numeric:
                let missing = h[0]
                var cumulative = SIMD2<Double>.zero
                if feature.bins < 3 { continue }
                for t in 1...(feature.bins - 2) {
                    cumulative += h[t]
                    // Missing values to the right.
                    var left = cumulative
                    var right = total - left
                    if left.y >= minWeight, right.y >= minWeight {
                        let gain = score(left) + score(right) - parentScore
                        if gain > bestGain {
                            bestGain = gain
                            best = SplitCandidate(
                                feature: f, bin: t, isCategory: false, defaultLeft: false, gain: gain, leftSum: left)
                        }
                    }
                    // Missing values to the left.
                    if missing.y > 0 {
                        left = cumulative + missing
                        right = total - left
                        if left.y >= minWeight, right.y >= minWeight {
                            let gain = score(left) + score(right) - parentScore
                            if gain > bestGain {
                                bestGain = gain
                                best = SplitCandidate(
                                    feature: f, bin: t, isCategory: false, defaultLeft: true, gain: gain,
                                    leftSum: left)
                            }
                        }
                    }
                }
            case .categories:
                for t in 1..<feature.bins {
                    if let allowedBin, !allowedBin[f][t] { continue }
                    let right = h[t]
                    let left = total - right
                    guard left.y >= minWeight, right.y >= minWeight else { continue }
                    let gain = score(left) + score(right) - parentScore
                    if gain > bestGain {
                        bestGain = gain
                        best = SplitCandidate(
                            feature: f, bin: t, isCategory: true, defaultLeft: true, gain: gain, leftSum: left)
                    }
                }
            }
        }
        return best
    }
}
