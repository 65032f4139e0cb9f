import Dispatch
import Foundation
import SluiceData
import Synchronization

/// The point-in-time join: for every entity row (join keys and a timestamp), each requested feature's value as of
/// that time: the newest source row at or before it within the view's TTL, never a later one, ties broken by created
/// time and then source order; and windowed aggregations over the events before it.
///
/// Out of core: when the rows would not fit in ``memoryLimit``, both sides are partitioned by a hash of the key into
/// spill files, each bucket is joined on its own (two at a time on two cores), and the output is assembled in the
/// entity rows' order, batch by batch.
public struct PointInTimeJoin: Sendable {
    /// The definitions the features come from.
    public var definitions: FeatureDefinitions
    /// The features, in output order (`*` expanded).
    public var features: [FeatureService.Reference]
    /// The views' sources, read.
    public var sources: [String: ResolvedSource]
    /// The entity rows' timestamp column.
    public var timestampColumn: String
    /// Roughly how much memory the join may hold at once; above it, the rows are spilled in key buckets.
    public var memoryLimit: Int
    /// "Now", for counting future events (microseconds since 1970).
    public var now: Int64
    /// Buckets to use regardless of size (tests use it to take the out-of-core path on small data).
    public var bucketsOverride: Int?
    /// Adds, per view, a column `__event_time.VIEW`: the event time of the source row its as-of values came from
    /// (what an online store keeps to apply the TTL at lookup time).
    public var includeEventTimes = false

    /// Creates a join of `features` (each view's source in `sources`).
    public init(
        definitions: FeatureDefinitions, features: [FeatureService.Reference], sources: [String: ResolvedSource],
        timestampColumn: String = "event_timestamp", memoryLimit: Int = 768 << 20, now: Date = Date()
    ) {
        self.definitions = definitions
        self.features = features
        self.sources = sources
        self.timestampColumn = timestampColumn
        self.memoryLimit = memoryLimit
        self.now = Int64(now.timeIntervalSince1970 * 1_000_000)
    }

    /// One view's part of the join.
    struct ViewPlan: Sendable {
        var name: String
        var view: FeatureView
        var keys: [String]
        var integerKey: Bool
        var source: ResolvedSource
        var timestamp: String
        var created: String?
        /// Source value columns read (as-of features and aggregated columns), with their unified types.
        var valueColumns: [(String, ColumnType)]
        /// Requested as-of features: output name, index into valueColumns, output type.
        var asOf: [(String, Int, ColumnType)]
        /// Requested aggregations with the value column they read.
        var aggregations: [(Aggregation, Int?, ColumnType)]
        /// Output columns of this view, in service order.
        var outputs: [(String, ColumnType)]
    }

    /// Joins and writes `output` (an Arrow table file: the entity rows' columns, then the features).
    /// - Throws: ``FeatureError`` when the entity rows lack a key or timestamp column or a feature name collides
    ///   with one of their columns.
    public func run(
        entityRows: TableFile, output: URL, scratch: URL, progress: (@Sendable (String) -> Void)? = nil
    ) throws -> JoinReport {
        let plans = try plan(entityRows: entityRows)
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        var report = JoinReport(entityRows: entityRows.rowCount)
        var viewResults: [ViewBuckets] = []
        for plan in plans {
            progress?("joining view \(plan.name) (\(plan.source.rowCount) rows of \(plan.source.name))")
            let (buckets, viewReport) = try join(plan, entityRows: entityRows, scratch: scratch)
            viewResults.append(buckets)
            report.views.append(viewReport)
        }
        progress?("writing \(entityRows.rowCount) rows")
        try assemble(entityRows: entityRows, plans: plans, results: viewResults, output: output)
        for result in viewResults { try? FileManager.default.removeItem(at: result.directory) }
        return report
    }

    /// Checks the entity rows against the requested features and plans each view.
    func plan(entityRows: TableFile) throws -> [ViewPlan] {
        let columns = Dictionary(
            zip(entityRows.columnNames, entityRows.columnTypes), uniquingKeysWith: { first, _ in first })
        guard columns[timestampColumn] == .timestamp else {
            throw FeatureError(
                problem: columns[timestampColumn] == nil
                    ? "the entity rows have no '\(timestampColumn)' column (their columns: "
                        + "\(entityRows.columnNames.joined(separator: ", ")))."
                    : "the entity rows' '\(timestampColumn)' column holds \(columns[timestampColumn]!.rawValue) "
                        + "values, not timestamps.",
                fix: "give each row the time to look features up at (ISO 8601), or name the column with "
                    + "--timestamp-column.")
        }
        var order: [String] = []
        var byView: [String: [String]] = [:]
        for reference in features {
            if byView[reference.view] == nil { order.append(reference.view) }
            byView[reference.view, default: []].append(reference.feature)
            if columns[reference.feature] != nil {
                throw FeatureError(
                    problem: "the entity rows already have a column '\(reference.feature)', the name of feature "
                        + "\(reference).",
                    fix: "drop or rename that column in the entity rows.")
            }
        }
        return try order.map { name in
            guard let view = definitions.views[name], let entity = definitions.entities[view.entity],
                let sourceDefinition = definitions.sources[view.source], let source = sources[view.source]
            else {
                throw FeatureError(
                    problem: "view '\(name)' or its entity or source is not defined.",
                    fix: "run `sluice features plan`.")
            }
            for key in entity.joinKeys {
                guard let type = columns[key.name] else {
                    throw FeatureError(
                        problem: "the entity rows have no column '\(key.name)', the join key of entity "
                            + "'\(view.entity)' (view '\(name)').",
                        fix: "add the key column (columns now: \(entityRows.columnNames.joined(separator: ", "))).")
                }
                guard key.type.accepts(type) else {
                    throw FeatureError(
                        problem: "the entity rows' '\(key.name)' holds \(type.rawValue) values; entity "
                            + "'\(view.entity)' declares it \(key.type.rawValue).",
                        fix: "make the column \(key.type.rawValue) values.")
                }
            }
            let types = definitions.featureTypes(of: view, source: source)
            var valueColumns: [(String, ColumnType)] = []
            func valueIndex(_ column: String) -> Int {
                if let index = valueColumns.firstIndex(where: { $0.0 == column }) { return index }
                valueColumns.append((column, source.columns[column] ?? .float))
                return valueColumns.count - 1
            }
            var asOf: [(String, Int, ColumnType)] = []
            var aggregations: [(Aggregation, Int?, ColumnType)] = []
            var outputs: [(String, ColumnType)] = []
            if includeEventTimes { outputs.append(("__event_time.\(name)", .timestamp)) }
            for feature in byView[name]! {
                let type = types[feature] ?? .float
                outputs.append((feature, type))
                if let column = view.features.first(where: { $0.name == feature }) {
                    asOf.append((feature, valueIndex(column.name), type))
                } else if let aggregation = view.aggregations.first(where: { $0.name == feature }) {
                    aggregations.append((aggregation, aggregation.column.map(valueIndex), type))
                }
            }
            return ViewPlan(
                name: name, view: view, keys: entity.joinKeys.map(\.name),
                integerKey: entity.joinKeys.count == 1 && entity.joinKeys[0].type == .integer, source: source,
                timestamp: sourceDefinition.timestamp, created: sourceDefinition.createdTimestamp,
                valueColumns: valueColumns, asOf: asOf, aggregations: aggregations, outputs: outputs)
        }
    }

    /// The buckets of one view's results, with which bucket each entity row went to.
    struct ViewBuckets {
        var sink: BucketSink
        /// Per entity row, its bucket (empty when there is one bucket).
        var bucketOf: [UInt16]
        /// The view's spill folder.
        var directory: URL
    }

    private func join(_ plan: ViewPlan, entityRows: TableFile, scratch: URL) throws -> (ViewBuckets, ViewReport) {
        let encoder = KeyEncoder(columns: plan.keys, integer: plan.integerKey)
        // Bytes a row holds at the join's peak: its columns (8 bytes and a validity byte each: key, time, created,
        // values), the bucket's table they are gathered into, and the kernel's arrays (group, order, sorted times),
        // measured: 1M x 10M rows with two features peaked at 1.5x the columns' size.
        let featureRowBytes = 56 + (plan.valueColumns.count + (plan.created == nil ? 0 : 1)) * 18
        let entityRowBytes = 64 + plan.outputs.count * 14
        let estimate = plan.source.rowCount * featureRowBytes + entityRows.rowCount * entityRowBytes
        let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)
        // In memory when it fits: in two buckets joined side by side on two cores when the source is large enough
        // for that to pay; else spilled in buckets of which two at a time fit.
        let spill = estimate > memoryLimit || (bucketsOverride ?? 1) > 1
        let buckets =
            bucketsOverride
            ?? (spill
                ? min(4096, (estimate / max(1, memoryLimit / min(cores, 2))) + 1)
                : (cores > 1 && plan.source.rowCount >= 1_000_000 ? 2 : 1))
        let directory = scratch.appending(path: "\(plan.name)-\(UUID().uuidString.prefix(8))")
        var report = ViewReport(view: plan.name, source: plan.source.name, sourceVersion: plan.source.version)
        report.buckets = buckets
        report.spilled = spill

        // Entity side: key, time (valid only where both are present).
        let entitySink = try BucketSink(
            buckets: buckets, directory: spill ? directory.appending(path: "entities") : nil,
            names: ["__key", "__time"], types: [.integer, .integer])
        var bucketOf: [UInt16] = []
        if buckets > 1 { bucketOf.reserveCapacity(entityRows.rowCount) }
        try entityRows.forEachBatch(columns: plan.keys + [timestampColumn]) { batch, _ in
            let (keys, present) = encoder.keys(of: batch)
            guard case .timestamp(let times, let timeValid) = batch[timestampColumn]!.storage else { return }
            let usable = (0..<batch.rowCount).map { present[$0] && timeValid[$0] }
            report.entityRowsWithoutKey += usable.lazy.filter { !$0 }.count
            let table = Table(columns: [
                Column(name: "__key", storage: .integer(keys, valid: usable)),
                Column(name: "__time", storage: .integer(times, valid: usable)),
            ])
            if buckets == 1 {
                try entitySink.append(table, bucket: 0)
                return
            }
            var rows = [[Int32]](repeating: [], count: buckets)
            for row in 0..<batch.rowCount {
                let b = usable[row] ? encoder.bucket(keys[row], of: buckets) : row % buckets
                rows[b].append(Int32(row))
                bucketOf.append(UInt16(b))
            }
            for b in 0..<buckets where !rows[b].isEmpty {
                try entitySink.append(Table(columns: table.columns.map { $0.gathered(rows[b]) }), bucket: b)
            }
        }
        try entitySink.finish()

        // Feature side: key, event time, created time (when the source has one), value columns; rows stay in source
        // order within a bucket, which is the last tie-breaker.
        let valueNames = plan.valueColumns.map(\.0)
        let createdColumns = plan.created == nil ? [String]() : ["__created"]
        let featureSink = try BucketSink(
            buckets: buckets, directory: spill ? directory.appending(path: "features") : nil,
            names: ["__key", "__time"] + createdColumns + valueNames,
            types: [.integer, .integer] + createdColumns.map { _ in .integer } + plan.valueColumns.map(\.1))
        let wanted = Array(Set(plan.keys + [plan.timestamp] + (plan.created.map { [$0] } ?? []) + valueNames))
        for table in plan.source.tables {
            try table.forEachBatch(columns: wanted) { batch, _ in
                let count = batch.rowCount
                let (keys, present) = encoder.keys(of: batch)
                guard case .timestamp(let times, let timeValid) = batch[plan.timestamp]?.storage else {
                    throw FeatureError(
                        problem: "source '\(plan.source.name)' (\(plan.source.origin)): '\(plan.timestamp)' is not a "
                            + "timestamp column in \(table.url.lastPathComponent).",
                        fix: "run `sluice features plan` to see the source's columns.")
                }
                var kept: [Int32] = []
                kept.reserveCapacity(count)
                for row in 0..<count {
                    if present[row] && timeValid[row] {
                        kept.append(Int32(row))
                        if times[row] > now { report.futureRows += 1 }
                    } else {
                        report.rowsWithoutKeyOrTime += 1
                    }
                }
                let all = kept.count == count
                func take(_ column: Column) -> Column { all ? column : column.gathered(kept) }
                var columns = [
                    take(Column(name: "__key", storage: .integer(keys, valid: present))),
                    take(Column(name: "__time", storage: .integer(times, valid: timeValid))),
                ]
                if let name = plan.created {
                    var created = [Int64](repeating: .min, count: count)
                    if case .timestamp(let values, let valid) = batch[name]?.storage {
                        for row in 0..<count where valid[row] { created[row] = values[row] }
                    }
                    columns.append(
                        take(
                            Column(
                                name: "__created",
                                storage: .integer(created, valid: .init(repeating: true, count: count)))))
                }
                for (name, type) in plan.valueColumns {
                    let column = batch[name] ?? Column.missing(name, type, count: count)
                    columns.append(take(column.conformed(to: type)))
                }
                let table = Table(columns: columns)
                report.featureRows += table.rowCount
                if buckets == 1 {
                    try featureSink.append(table, bucket: 0)
                    return
                }
                guard case .integer(let bucketKeys, _) = table.columns[0].storage else { return }
                var rows = [[Int32]](repeating: [], count: buckets)
                for row in 0..<table.rowCount { rows[encoder.bucket(bucketKeys[row], of: buckets)].append(Int32(row)) }
                for b in 0..<buckets where !rows[b].isEmpty {
                    try featureSink.append(Table(columns: table.columns.map { $0.gathered(rows[b]) }), bucket: b)
                }
            }
        }
        try featureSink.finish()

        // Each bucket on its own, two at a time; results spilled (or kept, with one bucket) in entity row order.
        let resultSink = try BucketSink(
            buckets: buckets, directory: spill ? directory.appending(path: "results") : nil,
            names: plan.outputs.map(\.0), types: plan.outputs.map(\.1))
        let failure = Mutex<(any Error)?>(nil)
        let duplicates = Atomic<Int>(0)
        let next = Atomic<Int>(0)
        let workers = buckets == 1 ? 1 : min(cores, 2)
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            while true {
                let b = next.add(1, ordering: .relaxed).oldValue
                guard b < buckets, failure.withLock({ $0 == nil }) else { return }
                do {
                    // The bucket's rows as one table each; the pieces they were made of are let go at once.
                    let entities = try entitySink.table(b)
                    let features = try featureSink.table(b)
                    entitySink.release(b)
                    featureSink.release(b)
                    let result = try joinBucket(plan, entities: entities, features: features)
                    duplicates.add(result.1, ordering: .relaxed)
                    try resultSink.append(result.0, bucket: b)
                } catch {
                    failure.withLock { $0 = $0 ?? error }
                    return
                }
            }
        }
        if let error = failure.withLock({ $0 }) { throw error }
        try resultSink.finish()
        entitySink.remove()
        featureSink.remove()
        report.duplicateKeyTimes = duplicates.load(ordering: .relaxed)
        return (ViewBuckets(sink: resultSink, bucketOf: bucketOf, directory: directory), report)
    }

    /// Joins one bucket: the view's output columns for the bucket's entity rows, in their order.
    private func joinBucket(_ plan: ViewPlan, entities: Table, features: Table) throws -> (Table, Int) {
        var entityRows = EntityRows()
        if case .integer(let keys, let valid) = entities.columns[0].storage,
            case .integer(let times, _) = entities.columns[1].storage
        {
            entityRows = EntityRows(keys: keys, times: times, usable: valid)
        }
        var featureRows = FeatureRows()
        let hasCreated = plan.created != nil
        if case .integer(let keys, _) = features.columns[0].storage,
            case .integer(let times, _) = features.columns[1].storage
        {
            var created: [Int64] = []
            if hasCreated, case .integer(let values, _) = features.columns[2].storage { created = values }
            featureRows = FeatureRows(
                keys: keys, times: times, created: created,
                values: Array(features.columns.dropFirst(hasCreated ? 3 : 2)))
        }
        let result = JoinKernel.run(
            entities: entityRows, features: featureRows, ttl: plan.view.ttl.map { $0 * 1_000_000 },
            aggregations: plan.aggregations.map {
                var aggregation = $0.0
                aggregation.window *= 1_000_000
                return (aggregation, $0.1)
            })
        var columns: [Column] = []
        for (name, type) in plan.outputs {
            if name.hasPrefix("__event_time.") {
                let times = result.asOf.map { $0 >= 0 ? featureRows.times[Int($0)] : 0 }
                columns.append(Column(name: name, storage: .timestamp(times, valid: result.asOf.map { $0 >= 0 })))
            } else if let feature = plan.asOf.first(where: { $0.0 == name }) {
                columns.append(featureRows.values[feature.1].gathered(result.asOf, as: name).conformed(to: type))
            } else if let a = plan.aggregations.firstIndex(where: { $0.0.name == name }) {
                let values = result.aggregates[a]
                let aggregation = plan.aggregations[a]
                if aggregation.0.function == .last, let column = aggregation.1 {
                    let rows = values.map { $0.isNaN ? Int32(-1) : Int32($0) }
                    columns.append(featureRows.values[column].gathered(rows, as: name).conformed(to: type))
                } else {
                    columns.append(Self.numbers(values, name: name, type: type))
                }
            }
        }
        return (Table(columns: columns), result.duplicateKeyTimes)
    }

    private static func numbers(_ values: [Double], name: String, type: ColumnType) -> Column {
        let valid = values.map { !$0.isNaN }
        switch type {
        case .integer:
            return Column(name: name, storage: .integer(values.map { $0.isNaN ? 0 : Int64($0) }, valid: valid))
        default:
            return Column(name: name, storage: .float(values.map { $0.isNaN ? 0 : $0 }, valid: valid))
        }
    }

    /// Streams the entity rows in order and writes them with each view's features beside them.
    private func assemble(entityRows: TableFile, plans: [ViewPlan], results: [ViewBuckets], output: URL) throws {
        let writer = try TableFileWriter(url: output)
        let cursors = results.map { result in
            (0..<result.sink.buckets).map { BucketCursor(sink: result.sink, bucket: $0) }
        }
        var names = entityRows.columnNames
        var types = entityRows.columnTypes
        for plan in plans {
            names += plan.outputs.map(\.0)
            types += plan.outputs.map(\.1)
        }
        var position = 0
        try entityRows.forEachBatch { batch, _ in
            var columns = batch.columns
            let count = batch.rowCount
            for (v, plan) in plans.enumerated() {
                let result = results[v]
                if result.sink.buckets == 1 {
                    let part = try cursors[v][0].take(count)
                    columns += part.columns
                    continue
                }
                let selector = Array(result.bucketOf[position..<(position + count)])
                var counts = [Int](repeating: 0, count: result.sink.buckets)
                for b in selector { counts[Int(b)] += 1 }
                let parts = try (0..<result.sink.buckets).map { try cursors[v][$0].take(counts[$0]) }
                for (k, (name, type)) in plan.outputs.enumerated() {
                    columns.append(
                        Column.interleaving(parts.map { $0.columns[k] }, selector: selector, name: name, type: type))
                }
            }
            position += count
            try writer.append(Table(columns: columns))
        }
        _ = try writer.finish(columnNames: names, columnTypes: types)
    }
}

/// What a join did: rows joined, and per view the rows read, skipped and tied.
public struct JoinReport: Sendable, Equatable, Codable {
    /// Entity rows (and so output rows).
    public var entityRows: Int
    /// Per view, in output order.
    public var views: [ViewReport] = []

    /// Creates a report.
    public init(entityRows: Int, views: [ViewReport] = []) {
        self.entityRows = entityRows
        self.views = views
    }
}

/// What a join read from one view's source.
public struct ViewReport: Sendable, Equatable, Codable {
    public var view: String
    public var source: String
    /// The source's content version.
    public var sourceVersion: String
    /// Source rows joined.
    public var featureRows = 0
    /// Source rows without a key or an event time (skipped).
    public var rowsWithoutKeyOrTime = 0
    /// Source rows whose event time is in the future (kept: they match entity rows at or after that time).
    public var futureRows = 0
    /// Source rows with the same key and event time as the row before them (the later created time, then the
    /// later source row, wins).
    public var duplicateKeyTimes = 0
    /// Entity rows without a key or a timestamp (their features are missing).
    public var entityRowsWithoutKey = 0
    /// Key buckets the join used.
    public var buckets = 1
    /// Whether the buckets went to disk (the rows would not fit in the memory limit).
    public var spilled = false

    /// Creates a report.
    public init(view: String, source: String, sourceVersion: String) {
        self.view = view
        self.source = source
        self.sourceVersion = sourceVersion
    }
}
