import Foundation
import SluiceData

/// The rows of one view's source that fall in one key bucket, in source order (the last tie-breaker): keys (integer
/// keys, or interned string keys), event and created times, and the value columns the requested features read.
struct FeatureRows {
    var keys: [Int64] = []
    var times: [Int64] = []
    /// Created times (`Int64.min` where a row has none); empty when the source has no created-timestamp column.
    var created: [Int64] = []
    /// Value columns, by source column name.
    var values: [Column] = []
}

/// The entity rows that fall in one key bucket: key, lookup time, and whether the row has both.
struct EntityRows {
    var keys: [Int64] = []
    var times: [Int64] = []
    /// False where the row's key or timestamp is missing: it gets no features.
    var usable: [Bool] = []
}

/// What a view computes for each entity row of a bucket.
struct ViewResult {
    /// Per entity row: the feature row (an index into the bucket's `FeatureRows`) holding the as-of values, or -1.
    var asOf: [Int32]
    /// Per aggregation, per entity row: the value (`last` aggregations: the row index, as a Double) or NaN.
    var aggregates: [[Double]]
    /// (key, event time) pairs that appear more than once among the feature rows (ties broken deterministically).
    var duplicateKeyTimes: Int
}

/// The sort-merge at the centre of the point-in-time join: feature rows grouped by key and ordered by (event time,
/// created time, source order); entity rows grouped by key and ordered by time; one pass per key with an as-of
/// pointer and one window pointer per distinct window.
enum JoinKernel {
    /// Computes the as-of row and the aggregations of one view for one bucket.
    /// - Parameters:
    ///   - aggregations: each with the index into `features.values` of the column it reads (nil for a count of rows).
    static func run(
        entities: EntityRows, features: FeatureRows, ttl: Int64?, aggregations: [(Aggregation, Int?)]
    ) -> ViewResult {
        let featureCount = features.keys.count
        // Dense group IDs for the keys that have feature rows: a direct table when the keys span a range not much
        // larger than the rows (integer IDs, interned text), a hash map otherwise.
        let groupOf = KeyGroups(features.keys)
        let groups = groupOf.count
        // Counting sort of feature rows by group (stable: source order kept within a group).
        var groupStart = [Int](repeating: 0, count: groups + 1)
        for g in 0..<groups { groupStart[g + 1] = groupStart[g] + Int(groupOf.sizes[g]) }
        var sorted = [Int32](repeating: 0, count: featureCount)
        var fill = groupStart
        groupOf.rowGroups.withUnsafeBufferPointer { rowGroup in
            sorted.withUnsafeMutableBufferPointer { sorted in
                for i in 0..<featureCount {
                    let g = Int(rowGroup[i])
                    sorted[fill[g]] = Int32(i)
                    fill[g] += 1
                }
            }
        }
        // Within each group: by (event time, created time, source order). Times are gathered in group order first,
        // so the checks, the sort and the merge below read them sequentially; event logs are usually in time order
        // already, which is checked first; groups are small, so a stable insertion sort does the rest (source order
        // stays the last tie-breaker).
        let created = features.created
        let hasCreated = !created.isEmpty
        var times = [Int64](repeating: 0, count: featureCount)
        features.times.withUnsafeBufferPointer { source in
            for k in 0..<featureCount { times[k] = source[Int(sorted[k])] }
        }
        var duplicates = 0
        times.withUnsafeMutableBufferPointer { times in
            sorted.withUnsafeMutableBufferPointer { sorted in
                @inline(__always) func before(_ i: Int, _ j: Int) -> Bool {
                    times[i] < times[j]
                        || (times[i] == times[j] && (!hasCreated || created[Int(sorted[i])] <= created[Int(sorted[j])]))
                }
                for g in 0..<groups {
                    let lower = groupStart[g]
                    let upper = groupStart[g + 1]
                    guard upper - lower > 1 else { continue }
                    var inOrder = true
                    for k in (lower + 1)..<upper where !before(k - 1, k) {
                        inOrder = false
                        break
                    }
                    if !inOrder {
                        if upper - lower <= 64 {
                            for k in (lower + 1)..<upper {
                                let time = times[k]
                                let row = sorted[k]
                                let stamp = hasCreated ? created[Int(row)] : 0
                                var j = k
                                while j > lower
                                    && (times[j - 1] > time
                                        || (hasCreated && times[j - 1] == time && created[Int(sorted[j - 1])] > stamp))
                                {
                                    times[j] = times[j - 1]
                                    sorted[j] = sorted[j - 1]
                                    j -= 1
                                }
                                times[j] = time
                                sorted[j] = row
                            }
                        } else {
                            var pairs = (lower..<upper).map {
                                (times[$0], hasCreated ? created[Int(sorted[$0])] : 0, sorted[$0])
                            }
                            pairs.sort { ($0.0, $0.1, $0.2) < ($1.0, $1.1, $1.2) }
                            for (offset, pair) in pairs.enumerated() {
                                times[lower + offset] = pair.0
                                sorted[lower + offset] = pair.2
                            }
                        }
                    }
                    for k in (lower + 1)..<upper where times[k - 1] == times[k] { duplicates += 1 }
                }
            }
        }

        // Entity rows: their group (or none), then by time within a group.
        let entityCount = entities.keys.count
        var entityGroup = [Int32](repeating: -1, count: entityCount)
        var entitySizes = [Int32](repeating: 0, count: groups)
        for i in 0..<entityCount where entities.usable[i] {
            if let g = groupOf.group(of: entities.keys[i]) {
                entityGroup[i] = g
                entitySizes[Int(g)] += 1
            }
        }
        var entityStart = [Int](repeating: 0, count: groups + 1)
        for g in 0..<groups { entityStart[g + 1] = entityStart[g] + Int(entitySizes[g]) }
        var entitySorted = [Int32](repeating: 0, count: entityStart[groups])
        var entityFill = entityStart
        for i in 0..<entityCount where entityGroup[i] >= 0 {
            let g = Int(entityGroup[i])
            entitySorted[entityFill[g]] = Int32(i)
            entityFill[g] += 1
        }
        let lookupTimes = entities.times
        for g in 0..<groups {
            let range = entityStart[g]..<entityStart[g + 1]
            guard range.count > 1 else { continue }
            var inOrder = true
            for k in range.dropFirst() where lookupTimes[Int(entitySorted[k - 1])] > lookupTimes[Int(entitySorted[k])] {
                inOrder = false
                break
            }
            if !inOrder {
                entitySorted[range].sort {
                    lookupTimes[Int($0)] != lookupTimes[Int($1)] ? lookupTimes[Int($0)] < lookupTimes[Int($1)] : $0 < $1
                }
            }
        }

        // Prefix sums per aggregated column over the sorted feature rows, restarting at each group: a window's sum
        // then depends only on its key's rows, so results do not change with how keys fall into buckets.
        var isGroupStart = [Bool](repeating: false, count: featureCount + 1)
        for g in 0..<groups { isGroupStart[groupStart[g]] = true }
        let aggregated = Array(Set(aggregations.compactMap(\.1))).sorted()
        var numbers: [Int: [Double]] = [:]
        var present: [Int: [Bool]] = [:]
        var prefixSum: [Int: [Double]] = [:]
        var prefixCount: [Int: [Int32]] = [:]
        var lastPresent: [Int: [Int32]] = [:]
        for column in aggregated {
            let source = features.values[column]
            var value = [Double](repeating: .nan, count: featureCount)
            var has = [Bool](repeating: false, count: featureCount)
            var sum = [Double](repeating: 0, count: featureCount + 1)
            var count = [Int32](repeating: 0, count: featureCount + 1)
            var last = [Int32](repeating: -1, count: featureCount)
            for k in 0..<featureCount {
                let row = Int(sorted[k])
                let ok = source.isPresent(row)
                let v = ok ? (source.double(row) ?? .nan) : .nan
                value[k] = v
                has[k] = ok
                sum[k + 1] = (isGroupStart[k] ? 0 : sum[k]) + (ok && !v.isNaN ? v : 0)
                count[k + 1] = (isGroupStart[k] ? 0 : count[k]) + (ok ? 1 : 0)
                last[k] = ok ? Int32(k) : (k > 0 ? last[k - 1] : -1)
            }
            numbers[column] = value
            present[column] = has
            prefixSum[column] = sum
            prefixCount[column] = count
            lastPresent[column] = last
        }

        var asOf = [Int32](repeating: -1, count: entityCount)
        var aggregates = aggregations.map { aggregation -> [Double] in
            // A count or sum over an entity row with no feature rows is 0; everything else is missing (and everything is
            // missing for a row without a key or time).
            let empty = aggregation.0.function == .count || aggregation.0.function == .sum ? 0.0 : .nan
            return (0..<entityCount).map { entities.usable[$0] ? empty : .nan }
        }
        let windows = Array(Set(aggregations.map(\.0.window))).sorted()
        var windowStart = [Int](repeating: 0, count: windows.count)
        // Sliding minimum/maximum: a deque of sorted-row positions per min/max aggregation.
        var deques = [[Int]](repeating: [], count: aggregations.count)
        var dequeHeads = [Int](repeating: 0, count: aggregations.count)
        var dequeFilled = [Int](repeating: 0, count: aggregations.count)

        for g in 0..<groups {
            let lower = groupStart[g]
            let upper = groupStart[g + 1]
            var next = lower
            for w in windowStart.indices { windowStart[w] = lower }
            for a in aggregations.indices {
                deques[a].removeAll(keepingCapacity: true)
                dequeHeads[a] = 0
                dequeFilled[a] = lower
            }
            for k in entityStart[g]..<entityStart[g + 1] {
                let entity = Int(entitySorted[k])
                let t = lookupTimes[entity]
                while next < upper && times[next] <= t { next += 1 }
                if next > lower {
                    let candidate = sorted[next - 1]
                    if let ttl, t - times[next - 1] > ttl {
                        asOf[entity] = -1
                    } else {
                        asOf[entity] = candidate
                    }
                }
                for w in windows.indices {
                    let from = t &- windows[w]
                    while windowStart[w] < next && times[windowStart[w]] <= from { windowStart[w] += 1 }
                }
                for (a, (aggregation, column)) in aggregations.enumerated() {
                    let start = windowStart[windows.firstIndex(of: aggregation.window)!]
                    let end = next
                    switch aggregation.function {
                    case .count:
                        if let column {
                            let c = prefixCount[column]!
                            aggregates[a][entity] = end == start ? 0 : Double(c[end] - (start == lower ? 0 : c[start]))
                        } else {
                            aggregates[a][entity] = Double(end - start)
                        }
                    case .sum:
                        let s = prefixSum[column!]!
                        aggregates[a][entity] = end == start ? 0 : s[end] - (start == lower ? 0 : s[start])
                    case .mean:
                        let c = prefixCount[column!]!
                        let s = prefixSum[column!]!
                        let n = end == start ? 0 : c[end] - (start == lower ? 0 : c[start])
                        let total = end == start ? 0 : s[end] - (start == lower ? 0 : s[start])
                        aggregates[a][entity] = n > 0 ? total / Double(n) : .nan
                    case .last:
                        let last = lastPresent[column!]!
                        if end > start, last[end - 1] >= start {
                            aggregates[a][entity] = Double(sorted[Int(last[end - 1])])
                        }
                    case .min, .max:
                        let values = numbers[column!]!
                        let has = present[column!]!
                        let isMin = aggregation.function == .min
                        // Push rows that entered the window, keeping the deque's values monotonic.
                        while dequeFilled[a] < end {
                            let p = dequeFilled[a]
                            dequeFilled[a] += 1
                            guard has[p], !values[p].isNaN else { continue }
                            while deques[a].count > dequeHeads[a] {
                                let back = values[deques[a][deques[a].count - 1]]
                                if isMin ? back >= values[p] : back <= values[p] {
                                    deques[a].removeLast()
                                } else {
                                    break
                                }
                            }
                            deques[a].append(p)
                        }
                        while dequeHeads[a] < deques[a].count && deques[a][dequeHeads[a]] < start { dequeHeads[a] += 1 }
                        if dequeHeads[a] < deques[a].count { aggregates[a][entity] = values[deques[a][dequeHeads[a]]] }
                    }
                }
            }
        }
        return ViewResult(asOf: asOf, aggregates: aggregates, duplicateKeyTimes: duplicates)
    }
}

/// Dense group numbers for join keys, in first-seen order, with each row's group and each group's size.
struct KeyGroups {
    /// Each row's group.
    var rowGroups: [Int32]
    /// Each group's row count.
    var sizes: [Int32] = []
    private var table: [Int32] = []
    private var minimum: Int64 = 0
    private var map: [Int64: Int32] = [:]
    private let direct: Bool

    /// Groups `keys`.
    init(_ keys: [Int64]) {
        rowGroups = [Int32](repeating: 0, count: keys.count)
        let low = keys.min() ?? 0
        let high = keys.max() ?? 0
        let (span, overflow) = high.subtractingReportingOverflow(low)
        direct = !overflow && span < Int64(max(keys.count * 4, 1 << 16)) && span < (1 << 28)
        if direct {
            minimum = low
            table = [Int32](repeating: -1, count: keys.isEmpty ? 0 : Int(span) + 1)
            table.withUnsafeMutableBufferPointer { table in
                rowGroups.withUnsafeMutableBufferPointer { rowGroups in
                    for (i, key) in keys.enumerated() {
                        let slot = Int(key &- low)
                        var g = table[slot]
                        if g < 0 {
                            g = Int32(sizes.count)
                            table[slot] = g
                            sizes.append(0)
                        }
                        rowGroups[i] = g
                        sizes[Int(g)] += 1
                    }
                }
            }
        } else {
            map.reserveCapacity(min(keys.count, 1 << 22))
            for (i, key) in keys.enumerated() {
                if let g = map[key] {
                    rowGroups[i] = g
                    sizes[Int(g)] += 1
                } else {
                    let g = Int32(sizes.count)
                    map[key] = g
                    rowGroups[i] = g
                    sizes.append(1)
                }
            }
        }
    }

    /// Groups.
    var count: Int { sizes.count }

    /// The group of `key`, if any row has it.
    @inline(__always) func group(of key: Int64) -> Int32? {
        if direct {
            let (offset, overflow) = key.subtractingReportingOverflow(minimum)
            guard !overflow, offset >= 0, offset < Int64(table.count) else { return nil }
            let g = table[Int(offset)]
            return g < 0 ? nil : g
        }
        return map[key]
    }
}
