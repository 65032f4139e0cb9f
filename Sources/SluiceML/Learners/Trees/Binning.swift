import Foundation

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

    /// Chooses bins from `x` (quantiles of a deterministic sample of at most `sampleSize` rows) and bins it.
    static func fit(_ x: FeatureMatrix, maxBins: Int, sampleSize: Int = 131_072) -> [BinnedFeature] {
        let valueBins = max(2, min(maxBins, 256)) - 1  // bin 0 is missing
        var features: [BinnedFeature] = []
        let layout = x.layout
        let nN = layout.numericCount
        let stride = max(1, x.rowCount / sampleSize)
        let numericCuts: [[Double]] = parallelBlocks(count: nN, blockSize: 1) { range in
            let j = range.lowerBound
            var sample: [Double] = []
            sample.reserveCapacity(x.rowCount / stride + 1)
            var row = 0
            while row < x.rowCount {
                let value = x.numeric[row * nN + j]
                if !value.isNaN { sample.append(value) }
                row += stride
            }
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
        self.features = features
        rowCount = x.rowCount
        let width = features.count
        let nN = x.layout.numericCount
        let nC = x.layout.categoricalCount
        var bins = [UInt8](repeating: 0, count: x.rowCount * width)
        bins.withUnsafeMutableBufferPointer { buffer in
            let output = UncheckedBox(buffer.baseAddress!)
            _ = parallelBlocks(count: x.rowCount, blockSize: 32_768) { range in
                let out = output.value
                for (f, feature) in features.enumerated() {
                    switch feature.kind {
                    case .numeric(let j, let cuts):
                        cuts.withUnsafeBufferPointer { cuts in
                            for row in range {
                                out[row * width + f] = UInt8(Self.bin(x.numeric[row * nN + j], cuts: cuts))
                            }
                        }
                    case .categories(let c, let first, let count):
                        for row in range {
                            let k = x.categorical[row * nC + c] - first
                            out[row * width + f] = k >= 0 && Int(k) < count ? UInt8(k + 1) : 0
                        }
                    }
                }
            }
        }
        var columns = [UInt8](repeating: 0, count: x.rowCount * width)
        let rows = x.rowCount
        bins.withUnsafeBufferPointer { bins in
            columns.withUnsafeMutableBufferPointer { buffer in
                let output = UncheckedBox(buffer.baseAddress!)
                let input = UncheckedBox(bins.baseAddress!)
                parallelFor(width) { f in
                    for row in 0..<rows { output.value[f * rows + row] = input.value[row * width + f] }
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
