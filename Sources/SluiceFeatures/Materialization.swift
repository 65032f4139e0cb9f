import Foundation
import SluiceCore
import SluiceData

/// Loads each entity's latest feature values into an online store, view by view, incrementally from the view's
/// last watermark: only entities with source rows after it (or, for windowed aggregations, rows still inside a
/// window after it) are recomputed, as of the new watermark, by the same point-in-time join as training sets, so
/// online and training values cannot differ. Each view is written in one transaction under its lock; each
/// materialization is recorded as a run of ``pipeline``.
public struct FeatureMaterialization: Sendable {
    /// The pipeline name materializations are recorded under.
    public static let pipeline = "sluice.features.materialize"

    public let store: FeatureStore
    public let online: any OnlineStore
    /// Where temporary entity rows and join buckets go.
    public let scratch: URL

    /// Creates a materialization over a project's feature store and an online store.
    public init(store: FeatureStore, online: any OnlineStore, scratch: URL) {
        self.store = store
        self.online = online
        self.scratch = scratch
    }

    /// What one view's materialization did.
    public struct Outcome: Sendable, Equatable {
        public var view: String
        /// The watermark before (nil: first materialization, or the definition changed).
        public var from: Date?
        /// The watermark now.
        public var until: Date
        /// Entities written.
        public var rowsWritten: Int
        /// Source rows read.
        public var sourceRows: Int
        /// Whether there was nothing to do (the watermark was already at or past `until`).
        public var upToDate: Bool
    }

    /// Materializes `views` (every view when empty) up to `until`, recording a run by the user `environment` names.
    /// - Throws: ``FeatureError`` when a view is unknown or not applied as written.
    public func run(views requested: [String], until: Date, environment: RunEnvironment) async throws -> (
        [Outcome], Run
    ) {
        let (definitions, problems, sources) = try await store.checkReading()
        if let problem = problems.first { throw problem }
        let applied = try await store.registry.latest()?.definitions
        let names = requested.isEmpty ? definitions.views.keys.sorted() : requested
        for name in names {
            guard definitions.views[name] != nil else {
                let guess = definitions.views.keys.closest(to: name).map { " Did you mean '\($0)'?" } ?? ""
                throw FeatureError(
                    problem: "there is no feature view '\(name)'.\(guess)",
                    fix: "use one of: \(definitions.views.keys.sorted().joined(separator: ", ")).")
            }
            let version = definitions.version(of: DefinitionName(kind: .view, name: name))
            guard applied?[DefinitionName(kind: .view, name: name)]?.version == version else {
                throw FeatureError(
                    problem: "feature view '\(name)' is not applied as written.",
                    fix: "run `sluice features apply` first, so the online values' version is recorded.")
            }
        }
        let started = Date()
        let runID = RecordID.make("run", at: started)
        var run = Run(
            id: runID, pipeline: Self.pipeline, status: .running,
            config: "# feature materialization\nviews: [\(names.joined(separator: ", "))]\nuntil: "
                + "\(until.formatted(.iso8601))\n", environment: environment, owner: ProcessOwner.current,
            startedAt: started)
        let metadata = store.registry.metadata
        try await metadata.registerPipeline(Self.pipeline)
        try await metadata.insert(run)
        var outcomes: [Outcome] = []
        do {
            for name in names {
                let stepStart = Date()
                var step = StepRun(
                    id: RecordID.make("step", at: stepStart), runID: runID, stepName: name, kind: "Materialize",
                    status: .running, cacheKey: nil, codeVersion: 1, parameters: "{}", seed: 0, startedAt: stepStart,
                    properties: [StepRun.upstreamProperty: .string("")])
                try await metadata.insert(step, inputs: [])
                let outcome = try await materialize(
                    name, definitions: definitions, source: sources[definitions.views[name]!.source]!, until: until,
                    runID: runID)
                outcomes.append(outcome)
                step.status = .completed
                step.endedAt = Date()
                step.properties["watermark"] = .string(outcome.until.formatted(.iso8601))
                step.properties["online_store"] = .string(online.location)
                try await metadata.finishStepRun(
                    step,
                    metrics: [
                        MetricRecord(
                            name: "rows_written", value: Double(outcome.rowsWritten), step: nil, loggedAt: Date()),
                        MetricRecord(
                            name: "source_rows", value: Double(outcome.sourceRows), step: nil, loggedAt: Date()),
                    ])
            }
        } catch {
            _ = try? await metadata.finishRun(runID, status: .failed, endedAt: Date(), error: "\(error)")
            throw error
        }
        try await metadata.finishRun(runID, status: .completed, endedAt: Date(), error: nil)
        run.status = .completed
        run.endedAt = Date()
        return (outcomes, run)
    }

    private func materialize(
        _ name: String, definitions: FeatureDefinitions, source: ResolvedSource, until: Date, runID: String
    ) async throws -> Outcome {
        let lock = try await online.lock(view: name)
        do {
            let outcome = try await materializeLocked(
                name, definitions: definitions, source: source, until: until, runID: runID)
            await lock.release()
            return outcome
        } catch {
            await lock.release()
            throw error
        }
    }

    private func materializeLocked(
        _ name: String, definitions: FeatureDefinitions, source: ResolvedSource, until: Date, runID: String
    ) async throws -> Outcome {
        let view = definitions.views[name]!
        let version = definitions.version(of: DefinitionName(kind: .view, name: name))!
        let previous = try await online.freshness().first { $0.view == name }
        // A changed definition recomputes every entity.
        let from = previous?.version == version ? previous?.watermark : nil
        let untilMicros = Int64((until.timeIntervalSince1970 * 1_000_000).rounded(.down))
        if let from, from >= until {
            return Outcome(
                view: name, from: from, until: from, rowsWritten: 0, sourceRows: 0, upToDate: true)
        }
        let entity = definitions.entities[view.entity]!
        let keyNames = entity.joinKeys.map(\.name)
        let timestamp = definitions.sources[view.source]!.timestamp
        let longestWindow = view.aggregations.map(\.window).max() ?? 0
        let fromMicros = from.map { Int64(($0.timeIntervalSince1970 * 1_000_000).rounded(.down)) }
        let recomputeAfter = fromMicros.map { $0 &- longestWindow * 1_000_000 }

        // The entities to recompute: those with rows after the watermark (within a window of it, for aggregations).
        var integerKeys = Set<Int64>()
        var textKeys = Set<[String]>()
        let integer = entity.joinKeys.count == 1 && entity.joinKeys[0].type == .integer
        var sourceRows = 0
        for table in source.tables {
            try table.forEachBatch(columns: keyNames + [timestamp]) { batch, _ in
                sourceRows += batch.rowCount
                guard case .timestamp(let times, let valid) = batch[timestamp]?.storage else { return }
                let keyColumns = keyNames.map { batch[$0]! }
                for row in 0..<batch.rowCount where valid[row] && times[row] <= untilMicros {
                    if let after = recomputeAfter, times[row] <= after { continue }
                    if integer, case .integer(let values, let present) = keyColumns[0].storage {
                        if present[row] { integerKeys.insert(values[row]) }
                    } else {
                        let parts = keyColumns.compactMap { $0.string(row) }
                        if parts.count == keyColumns.count { textKeys.insert(parts) }
                    }
                }
            }
        }
        let count = integer ? integerKeys.count : textKeys.count
        var records: [(key: String, record: OnlineRecord)] = []
        if count > 0 {
            records = try joinLatest(
                name, view: view, entity: entity, definitions: definitions, source: source,
                integerKeys: integerKeys.sorted(), textKeys: textKeys.sorted { $0.lexicographicallyPrecedes($1) },
                at: untilMicros)
        }
        let freshness = ViewFreshness(
            view: name, version: version, watermark: until, materializedAt: Date(), rowsWritten: records.count,
            entities: 0, runID: runID)
        try await online.write(view: name, records: records, freshness: freshness)
        return Outcome(
            view: name, from: from, until: until, rowsWritten: records.count, sourceRows: sourceRows, upToDate: false)
    }

    /// Each entity's values as of `at` by the point-in-time join (without the TTL: it is applied at lookup, against
    /// the event time kept beside the values).
    private func joinLatest(
        _ name: String, view: FeatureView, entity: Entity, definitions: FeatureDefinitions, source: ResolvedSource,
        integerKeys: [Int64], textKeys: [[String]], at micros: Int64
    ) throws -> [(key: String, record: OnlineRecord)] {
        let count = integerKeys.isEmpty ? textKeys.count : integerKeys.count
        var columns: [Column] = []
        for (k, key) in entity.joinKeys.enumerated() {
            if !integerKeys.isEmpty {
                columns.append(
                    Column(name: key.name, storage: .integer(integerKeys, valid: .init(repeating: true, count: count))))
            } else if key.type == .integer {
                let values = textKeys.map { Int64($0[k]) }
                columns.append(
                    Column(name: key.name, storage: .integer(values.map { $0 ?? 0 }, valid: values.map { $0 != nil })))
            } else {
                var dictionary: [String] = []
                var index: [String: Int32] = [:]
                let codes = textKeys.map { parts -> Int32 in
                    if let code = index[parts[k]] { return code }
                    index[parts[k]] = Int32(dictionary.count)
                    dictionary.append(parts[k])
                    return Int32(dictionary.count - 1)
                }
                columns.append(Column(name: key.name, storage: .string(codes: codes, dictionary: dictionary)))
            }
        }
        let timeColumn = "__materialized_at"
        columns.append(
            Column(
                name: timeColumn,
                storage: .timestamp(.init(repeating: micros, count: count), valid: .init(repeating: true, count: count))
            ))
        let directory = scratch.appending(path: "materialize-\(name)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let entityRows = try TableFile.write(Table(columns: columns), to: directory.appending(path: "entities.arrow"))
        var untimed = definitions
        untimed.views[name]!.ttl = nil
        var join = PointInTimeJoin(
            definitions: untimed, features: view.featureNames.map { .init(view: name, feature: $0) },
            sources: [view.source: source], timestampColumn: timeColumn)
        join.includeEventTimes = true
        let output = directory.appending(path: "latest.arrow")
        _ = try join.run(entityRows: entityRows, output: output, scratch: directory.appending(path: "join"))
        var records: [(key: String, record: OnlineRecord)] = []
        records.reserveCapacity(count)
        try TableFile(contentsOf: output).forEachBatch { batch, _ in
            let keys = entity.joinKeys.map { batch[$0.name]! }
            let eventTimes = batch["__event_time.\(name)"]!
            let features = view.featureNames.map { batch[$0]! }
            for row in 0..<batch.rowCount {
                let key = OnlineKey.text(keys.map { $0.string(row) ?? "" })
                let time: Int64
                if case .timestamp(let values, let valid) = eventTimes.storage, valid[row] {
                    time = values[row]
                } else {
                    time = .min
                }
                records.append((key, OnlineRecord(eventTime: time, values: OnlineValues.encode(features, row: row))))
            }
        }
        return records
    }
}

/// How entity keys are written in an online store: the join keys' values as text, joined by U+001F.
public enum OnlineKey {
    /// The key of these join key values.
    public static func text(_ parts: [String]) -> String { parts.joined(separator: "\u{1F}") }
}

/// How a view's values are encoded in an online store: for each present feature, its name, a type tag and the
/// value (8-byte little-endian numbers, length-prefixed UTF-8 text; timestamps as text). Binary, so numbers come
/// back bit for bit and a lookup parses no JSON.
public enum OnlineValues {
    /// Row `row` of `columns`.
    public static func encode(_ columns: [Column], row: Int) -> Data {
        var bytes: [UInt8] = []
        func append<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
        func text(_ value: String) {
            let utf8 = Array(value.utf8)
            append(UInt32(utf8.count))
            bytes += utf8
        }
        for column in columns where column.isPresent(row) {
            text(column.name)
            switch column.storage {
            case .float(let values, _):
                bytes.append(1)
                append(values[row].bitPattern)
            case .integer(let values, _):
                bytes.append(2)
                append(values[row])
            case .boolean(let values, _):
                bytes.append(3)
                bytes.append(values[row] ? 1 : 0)
            case .string, .timestamp:
                bytes.append(4)
                text(column.string(row) ?? "")
            }
        }
        return Data(bytes)
    }

    /// The values of an encoded record, by feature name (an unreadable record reads as empty).
    public static func decode(_ data: Data) -> [String: OnlineFeatures.Value] {
        var values: [String: OnlineFeatures.Value] = [:]
        data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            var at = 0
            func integer<T: FixedWidthInteger>(_: T.Type) -> T? {
                guard at + MemoryLayout<T>.size <= raw.count else { return nil }
                var value: T = 0
                withUnsafeMutableBytes(of: &value) {
                    $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[at..<(at + MemoryLayout<T>.size)]))
                }
                at += MemoryLayout<T>.size
                return T(littleEndian: value)
            }
            func text() -> String? {
                guard let count = integer(UInt32.self), at + Int(count) <= raw.count else { return nil }
                defer { at += Int(count) }
                return String(decoding: UnsafeRawBufferPointer(rebasing: raw[at..<(at + Int(count))]), as: UTF8.self)
            }
            while at < raw.count {
                guard let name = text(), at < raw.count else { return }
                let tag = raw[at]
                at += 1
                switch tag {
                case 1:
                    guard let bits = integer(UInt64.self) else { return }
                    values[name] = .number(Double(bitPattern: bits))
                case 2:
                    guard let value = integer(Int64.self) else { return }
                    values[name] = .integer(value)
                case 3:
                    guard at < raw.count else { return }
                    values[name] = .boolean(raw[at] != 0)
                    at += 1
                case 4:
                    guard let value = text() else { return }
                    values[name] = .text(value)
                default: return
                }
            }
        }
        return values
    }
}
