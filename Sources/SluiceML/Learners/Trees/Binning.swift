import Foundation

/// Rows of features given one batch at a time, as often as a learner needs to read them: each call of the reading
/// closure is one pass over every row, in order.
public struct FeatureBatches {
    /// Rows in all batches.
    public let rowCount: Int
    /// The features' layout (every batch has it).
    public let layout: FeatureLayout
    private let reading: ((FeatureMatrix, Int) throws -> Void) throws -> Void

    /// Batches read by `forEach`, which must call its argument with every batch and the index of its first row, in
    /// order.
    public init(
        rowCount: Int, layout: FeatureLayout,
        forEach: @escaping (_ consume: (_ batch: FeatureMatrix, _ firstRow: Int) throws -> Void) throws -> Void
    ) {
        self.rowCount = rowCount
        self.layout = layout
        reading = forEach
    }

    /// One batch: a matrix in memory.
    public init(_ x: FeatureMatrix) {
        self.init(rowCount: x.rowCount, layout: x.layout) { consume in try consume(x, 0) }
    }

    /// One pass over every batch.
    public func forEach(_ consume: (_ batch: FeatureMatrix, _ firstRow: Int) throws -> Void) throws {
        try withoutActuallyEscaping(consume) { consume in try reading(consume) }
    }
}

/// How one binned column of the training matrix maps back to the model's features.
struct BinnedFeature: Sendable {
    enum Kind: Sendable {
        /// Numeric feature `index`; bin 0 is missing, bin `b ≥ 1` holds `cuts[b−2] ≤ x < cuts[b−1]`.
        case numeric(index: Int, cuts: [Double])
        /// Categories `first..<first+count` of categorical feature `index`; bin 0 is any other category (or none),
        /// bin `1+i` is category `first+i`.
        case categories(index: Int, first: Int32, count: Int)
    }

    var kind: Kind
    /// Number of bins used, including bin 0.
    var bins: Int
    /// Expanded column of each bin's split: for numeric, of the feature; for categories, of bin `1+i`.
    var expandedColumn: Int
}

/// The training matrix as bin indices, row-major, one byte per binned column.
struct BinnedMatrix: @unchecked Sendable {
    let features: [BinnedFeature]
    let rowCount: Int
    let bins: [UInt8]
    /// The same bins column-major (`feature × rows`): partitioning reads one feature of many rows, and a column
    /// stays in cache where the row-major matrix does not.
    let columns: [UInt8]

    var width: Int { features.count }

    /// Chooses bins from `x` (quantiles of a deterministic sample of at most `sampleSize` rows).
    static func fit(_ x: FeatureMatrix, maxBins: Int, sampleSize: Int = 131_072) -> [BinnedFeature] {
        // One batch in memory: nothing can fail.
        try! fit(FeatureBatches(x), include: nil, maxBins: maxBins, sampleSize: sampleSize)
    }

    /// Chooses bins from the rows of `batches` that `include` marks (all when nil): quantiles of every k-th of
    /// those rows, k chosen so that at most about `sampleSize` are taken. The sample depends only on the rows, not on
    /// how they are batched.
    static func fit(_ batches: FeatureBatches, include: [Bool]?, maxBins: Int, sampleSize: Int = 131_072) throws
        -> [BinnedFeature]
    {
        let valueBins = max(2, min(maxBins, 256)) - 1  // bin 0 is missing
        var features: [BinnedFeature] = []
        let layout = batches.layout
        let nN = layout.numericCount
        let included = include.map { $0.reduce(0) { $0 + ($1 ? 1 : 0) } } ?? batches.rowCount
        let stride = max(1, included / sampleSize)
        var samples = [[Double]](repeating: [], count: nN)
        for j in 0..<nN { samples[j].reserveCapacity(included / stride + 1) }
        var index = 0  // among included rows
        try batches.forEach { x, first in
            for row in 0..<x.rowCount {
                if let include, !include[first + row] { continue }
                defer { index += 1 }
                guard index % stride == 0 else { continue }
                for j in 0..<nN {
                    let value = x.numeric[row * nN + j]
                    if !value.isNaN { samples[j].append(value) }
                }
            }
        }
        let numericCuts: [[Double]] = parallelBlocks(count: nN, blockSize: 1) { range in
            var sample = samples[range.lowerBound]
            sample.sort()
            var distinct: [Double] = []
            for value in sample where distinct.last != value { distinct.append(value) }
            if distinct.count <= valueBins { return Array(distinct.dropFirst()) }
            var cuts: [Double] = []
            for k in 1..<valueBins {
                let cut = sample[k * sample.count / valueBins]
                if cut > (cuts.last ?? distinct[0]) { cuts.append(cut) }
            }
            return cuts
        }
        for (k, slot) in layout.slots.enumerated() {
            let index = layout.storageIndex[k]
            switch slot.kind {
            case .numeric:
                let cuts = numericCuts[index]
                features.append(
                    BinnedFeature(
                        kind: .numeric(index: index, cuts: cuts), bins: cuts.count + 2,
                        expandedColumn: layout.expandedOffset[k]))
            case .categorical(let width):
                var first = 0
                while first < max(width, 1) {
                    let count = min(255, width - first)
                    features.append(
                        BinnedFeature(
                            kind: .categories(index: index, first: Int32(first), count: count), bins: count + 1,
                            expandedColumn: layout.expandedOffset[k] + first))
                    first += 255
                }
            }
        }
        return features
    }

    /// Bins `x` with the given features' bins (training or evaluation data alike).
    init(_ x: FeatureMatrix, features: [BinnedFeature]) {
        // One batch in memory: nothing can fail.
        try! self.init(FeatureBatches(x), features: features, include: nil)
    }

    /// Bins the rows of `batches` that `include` marks (all when nil), in order, one batch at a time: only the bins
    /// (one byte per feature per row, kept row-major for histograms and column-major for partitioning) are kept.
    init(_ batches: FeatureBatches, features: [BinnedFeature], include: [Bool]?) throws {
        self.features = features
        let rows = include.map { $0.reduce(0) { $0 + ($1 ? 1 : 0) } } ?? batches.rowCount
        rowCount = rows
        let width = features.count
        var bins = [UInt8](repeating: 0, count: rows * width)
        var columns = [UInt8](repeating: 0, count: rows * width)
        var next = 0  // the matrix row of the batch's first included row
        try bins.withUnsafeMutableBufferPointer { bins in
            try columns.withUnsafeMutableBufferPointer { columns in
                let rowMajor = UncheckedBox(bins.baseAddress!)
                let columnMajor = UncheckedBox(columns.baseAddress!)
                try batches.forEach { x, first in
                    let nN = x.layout.numericCount
                    let nC = x.layout.categoricalCount
                    let sources: [Int] =
                        include.map { include in (0..<x.rowCount).filter { include[first + $0] } }
                        ?? Array(0..<x.rowCount)
                    let base = next
                    _ = parallelBlocks(count: sources.count, blockSize: 32_768) { range in
                        let out = rowMajor.value
                        let byColumn = columnMajor.value
                        for (f, feature) in features.enumerated() {
                            let column = byColumn + f * rows
                            switch feature.kind {
                            case .numeric(let j, let cuts):
                                cuts.withUnsafeBufferPointer { cuts in
                                    for k in range {
                                        let b = UInt8(Self.bin(x.numeric[sources[k] * nN + j], cuts: cuts))
                                        out[(base + k) * width + f] = b
                                        column[base + k] = b
                                    }
                                }
                            case .categories(let c, let first, let count):
                                for k in range {
                                    let code = x.categorical[sources[k] * nC + c] - first
                                    let b: UInt8 = code >= 0 && Int(code) < count ? UInt8(code + 1) : 0
                                    out[(base + k) * width + f] = b
                                    column[base + k] = b
                                }
                            }
                        }
                    }
                    next += sources.count
                }
            }
        }
        self.bins = bins
        self.columns = columns
    }

    @inline(__always)
    static func bin(_ x: Double, cuts: UnsafeBufferPointer<Double>) -> Int {
        if x.isNaN { return 0 }
        // Branch-free search for the number of cuts ≤ x.
        var n = cuts.count
        if n == 0 { return 1 }
        var base = 0
        while n > 1 {
            let half = n >> 1
            base = cuts[base + half] <= x ? base + half : base
            n -= half
        }
        return base + (cuts[base] <= x ? 1 : 0) + 1
    }
}
