import Foundation
import SluiceData

extension TransformGraph {
    /// Fits `spec` on a table in memory.
    public static func fit(_ spec: TransformSpec, on table: Table) throws -> TransformGraph {
        try fit(spec) { consume in try consume(table) }
    }

    /// Fits `spec` on data given in chunks, for data larger than memory or sharded: `chunks` is called once per
    /// pass (a pass per step depth that needs statistics, usually one or two) and must hand every chunk to its
    /// argument. Steps fit from mergeable statistics (moments, quantile sketches, value counts), so the result does
    /// not depend on how the data is chunked (quantiles within the sketch's stated error).
    public static func fit(
        _ spec: TransformSpec, chunks: (_ consume: (Table) throws -> Void) throws -> Void
    ) throws -> TransformGraph {
        var columnTypes: [String: ColumnType]?
        var features: [FittedFeature] = []
        let depth = spec.features.map(\.steps.count).max() ?? 0
        var fitted: [[FittedStep]] = spec.features.map { _ in [] }
        try validateNames(spec)
        for stage in 0...depth {
            let needing = spec.features.indices.filter { stage < spec.features[$0].steps.count }
            let needsData =
                columnTypes == nil || needing.contains { needsStatistics(spec.features[$0].steps[stage]) }
            var numbers: [Int: ColumnStatistics] = [:]
            var tokens: [Int: [String: Int]] = [:]
            if needsData {
                try chunks { table in
                    if columnTypes == nil {
                        columnTypes = Dictionary(
                            table.columns.map { ($0.name, $0.type) }, uniquingKeysWith: { first, _ in first })
                        try checkColumns(spec, types: columnTypes!)
                    }
                    // Each feature's statistics for this chunk on all cores, merged in feature order.
                    let work = needing.filter { needsStatistics(spec.features[$0].steps[stage]) }
                    let types = columnTypes!
                    let partials = UnsafeMutableBufferPointer<(ColumnStatistics?, [String: Int]?)>.allocate(
                        capacity: work.count)
                    partials.initialize(repeating: (nil, nil))
                    defer {
                        partials.deinitialize()
                        partials.deallocate()
                    }
                    let box = UncheckedBox(partials)
                    let stepsSoFar = fitted
                    parallelFor(work.count) { k in
                        let f = work[k]
                        let feature = spec.features[f]
                        let partial = TransformGraph(
                            inputs: [InputColumn(name: feature.column, type: types[feature.column]!)],
                            features: [
                                FittedFeature(
                                    name: feature.name, column: feature.column, steps: stepsSoFar[f],
                                    slot: FeatureSlot(name: feature.name, kind: .numeric))
                            ], crosses: [])
                        box.value[k] = Self.accumulate(
                            partial.intermediate(table[feature.column]!, rows: table.rowCount),
                            countTokens: Self.countsTokens(feature.steps[stage]), name: feature.column)
                    }
                    for (k, f) in work.enumerated() {
                        let (statistics, counts) = partials[k]
                        if let statistics {
                            if numbers[f] == nil { numbers[f] = statistics } else { numbers[f]!.merge(statistics) }
                        }
                        if let counts { tokens[f, default: [:]].merge(counts, uniquingKeysWith: +) }
                    }
                }
            }
            guard let types = columnTypes else {
                throw TransformError(
                    problem: "there is no data to fit the transforms on", fix: "give at least one row.")
            }
            for f in needing {
                let feature = spec.features[f]
                let step = try fitStep(
                    feature.steps[stage], feature: feature, domain: domain(of: fitted[f], type: types[feature.column]!),
                    numbers: numbers[f], tokens: tokens[f])
                fitted[f].append(step)
            }
        }
        guard let types = columnTypes else {
            throw TransformError(problem: "there is no data to fit the transforms on", fix: "give at least one row.")
        }
        for (f, feature) in spec.features.enumerated() {
            let slot: FeatureSlot
            switch domain(of: fitted[f], type: types[feature.column]!) {
            case .number: slot = FeatureSlot(name: feature.name, kind: .numeric)
            case .category(let width, let labels):
                slot = FeatureSlot(name: feature.name, kind: .categorical(width: width), categories: labels)
            case .token:
                throw TransformError(
                    problem: "feature '\(feature.name)' ends as text, which a model cannot use",
                    fix: "end its steps with one_hot or hash.")
            }
            features.append(FittedFeature(name: feature.name, column: feature.column, steps: fitted[f], slot: slot))
        }
        for cross in spec.crosses {
            for name in cross.features {
                guard let feature = features.first(where: { $0.name == name }) else {
                    throw TransformError(
                        problem: "cross '\(cross.name)' names feature '\(name)', which is not defined",
                        fix: "name one of: \(features.map(\.name).joined(separator: ", ")).")
                }
                guard case .categorical = feature.slot.kind else {
                    throw TransformError(
                        problem: "cross '\(cross.name)' names feature '\(name)', which is numeric",
                        fix: "cross categorical features (bucketize numbers first).")
                }
            }
            guard cross.buckets > 0, cross.features.count >= 2 else {
                throw TransformError(
                    problem: "cross '\(cross.name)' needs at least two features and at least one bucket",
                    fix: "list two or more features and set buckets.")
            }
        }
        let inputs = spec.features.map(\.column).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        return TransformGraph(
            inputs: inputs.map { InputColumn(name: $0, type: types[$0]!) }, features: features, crosses: spec.crosses)
    }

    /// The mergeable statistics of one chunk's intermediate values.
    static func accumulate(_ values: Intermediate, countTokens: Bool, name: String) -> (
        ColumnStatistics?, [String: Int]?
    ) {
        switch values {
        case .numbers(let values):
            var statistics = ColumnStatistics(name: name, type: .float)
            statistics.add(Column(name: name, storage: .float(values, valid: values.map { !$0.isNaN })))
            var counts: [String: Int]?
            if countTokens {
                var tokens: [String: Int] = [:]
                for value in values where !value.isNaN { tokens[FittedStep.token(.number(value))!, default: 0] += 1 }
                counts = tokens
            }
            return (statistics, counts)
        case .tokens(let counts): return (nil, counts)
        }
    }

    enum Intermediate {
        case numbers([Double])
        case tokens([String: Int])
    }

    /// The values of a column after this one-feature graph's steps (for fitting the next step).
    func intermediate(_ column: Column, rows: Int) -> Intermediate {
        let feature = features[0]
        if case .string(let codes, let dictionary) = column.storage {
            var perCode = [Int](repeating: 0, count: dictionary.count)
            var missing = 0
            for code in codes {
                if code < 0 { missing += 1 } else { perCode[Int(code)] += 1 }
            }
            var counts: [String: Int] = [:]
            func run(_ token: String?) -> String? {
                var value = StepValue.token(token)
                for (s, step) in feature.steps.enumerated() { value = step.apply(value, lookup: lookups[0][s]) }
                guard case .token(let text) = value else { preconditionFailure("text stays text before its end") }
                return text
            }
            for (code, n) in perCode.enumerated() where n > 0 {
                if let token = run(dictionary[code]) { counts[token, default: 0] += n }
            }
            if missing > 0, let token = run(nil) { counts[token, default: 0] += missing }
            return .tokens(counts)
        }
        guard case .numbers(let values) = compute(0, on: column, rows: rows) else {
            preconditionFailure("numbers stay numbers before their end")
        }
        return .numbers(values)
    }

    enum Domain {
        case number
        case token
        case category(width: Int, labels: [String]?)
    }

    static func domain(of steps: [FittedStep], type: ColumnType) -> Domain {
        var domain: Domain = type == .string ? .token : .number
        for step in steps {
            switch step {
            case .fillNumber, .scale, .log: domain = .number
            case .fillToken: domain = .token
            case .bucketize(let cuts):
                var labels: [String] = []
                for k in 0...cuts.count {
                    if k == 0 {
                        labels.append("< \(format(cuts[0]))")
                    } else if k == cuts.count {
                        labels.append("≥ \(format(cuts[k - 1]))")
                    } else {
                        labels.append("[\(format(cuts[k - 1])), \(format(cuts[k])))")
                    }
                }
                domain = .category(width: cuts.count + 1, labels: labels)
            case .vocabulary(let tokens, let oov):
                domain = .category(
                    width: tokens.count + oov, labels: tokens + (0..<oov).map { oov == 1 ? "<oov>" : "<oov \($0)>" })
            case .hash(let buckets): domain = .category(width: buckets, labels: nil)
            }
        }
        return domain
    }

    private static func format(_ x: Double) -> String { String(format: "%.4g", x) }

    static func countsTokens(_ step: TransformStep) -> Bool {
        switch step {
        case .impute(.mostFrequent), .oneHot: true
        default: false
        }
    }

    static func needsStatistics(_ step: TransformStep) -> Bool {
        switch step {
        case .impute(.mean), .impute(.median), .impute(.mostFrequent), .standardize, .minMax, .bucketize, .oneHot:
            true
        case .impute(.number), .impute(.text), .log, .hash: false
        }
    }

    private static func validateNames(_ spec: TransformSpec) throws {
        var seen = Set<String>()
        for name in spec.features.map(\.name) + spec.crosses.map(\.name) {
            guard seen.insert(name).inserted else {
                throw TransformError(
                    problem: "two features are called '\(name)'", fix: "give each feature its own name.")
            }
        }
    }

    private static func checkColumns(_ spec: TransformSpec, types: [String: ColumnType]) throws {
        for feature in spec.features {
            guard let type = types[feature.column] else {
                let close = types.keys.min { editDistance($0, feature.column) < editDistance($1, feature.column) }
                let hint = close.map { editDistance($0, feature.column) <= 3 ? " (did you mean '\($0)'?)" : "" } ?? ""
                throw TransformError(
                    problem: "feature '\(feature.name)' reads column '\(feature.column)', which the data lacks\(hint)",
                    fix: "use one of: \(types.keys.sorted().joined(separator: ", ")).")
            }
            var domain: Domain = type == .string ? .token : .number
            for step in feature.steps {
                let problem: String?
                switch (step, domain) {
                case (_, .category):
                    problem = "has a step after it became categorical"
                case (.impute(.mean), .token), (.impute(.median), .token), (.standardize, .token),
                    (.minMax, .token), (.log, .token), (.bucketize, .token):
                    problem = "applies a numeric step to text column '\(feature.column)'"
                case (.impute(.text), .number):
                    problem = "fills the numeric column '\(feature.column)' with text"
                default: problem = nil
                }
                if let problem {
                    throw TransformError(
                        problem: "feature '\(feature.name)' \(problem) (\(step))",
                        fix: "text columns take impute (most_frequent or a text constant), one_hot or hash; "
                            + "numeric steps come before bucketize, one_hot or hash.")
                }
                switch step {
                case .bucketize(let n):
                    guard n >= 2 else {
                        throw TransformError(
                            problem: "feature '\(feature.name)' asks for \(n) buckets", fix: "use at least 2.")
                    }
                    domain = .category(width: n, labels: nil)
                case .hash(let n) where n < 1:
                    throw TransformError(
                        problem: "feature '\(feature.name)' hashes into 0 buckets", fix: "use at least 1.")
                case .oneHot, .hash: domain = .category(width: 0, labels: nil)
                default: break
                }
            }
        }
    }

    private static func fitStep(
        _ step: TransformStep, feature: FeatureSpec, domain: Domain, numbers: ColumnStatistics?,
        tokens: [String: Int]?
    ) throws -> FittedStep {
        func noValues() -> TransformError {
            TransformError(
                problem: "feature '\(feature.name)' cannot fit \(step): column '\(feature.column)' has no values",
                fix: "check the column, or use a constant imputation.")
        }
        switch step {
        case .impute(.mean):
            guard let numbers, numbers.count > 0 else { throw noValues() }
            return .fillNumber(numbers.mean)
        case .impute(.median):
            guard let numbers, let median = numbers.quantile(0.5) else { throw noValues() }
            return .fillNumber(median)
        case .impute(.mostFrequent):
            guard let tokens, let top = tokens.max(by: { ($0.value, $1.key) < ($1.value, $0.key) }) else {
                throw noValues()
            }
            if case .number = domain { return .fillNumber(Double(top.key)!) }
            return .fillToken(top.key)
        case .impute(.number(let value)):
            if case .number = domain { return .fillNumber(value) }
            return .fillToken(FittedStep.token(.number(value))!)
        case .impute(.text(let value)): return .fillToken(value)
        case .standardize:
            guard let numbers, numbers.count > 0 else { throw noValues() }
            let deviation = (numbers.m2 / Double(numbers.count)).squareRoot()
            return .scale(center: numbers.mean, divisor: deviation > 0 ? deviation : 1)
        case .minMax:
            guard let numbers, let low = numbers.min, let high = numbers.max else { throw noValues() }
            return .scale(center: low, divisor: high > low ? high - low : 1)
        case .log(let offset): return .log(offset: offset)
        case .bucketize(let buckets):
            guard let numbers, numbers.count > 0 else { throw noValues() }
            var cuts: [Double] = []
            for k in 1..<buckets {
                if let cut = numbers.quantile(Double(k) / Double(buckets)), cut > (cuts.last ?? -.infinity) {
                    cuts.append(cut)
                }
            }
            if cuts.isEmpty, let only = numbers.min { cuts = [only] }
            return .bucketize(cuts: cuts)
        case .oneHot(let minFrequency, let maxTokens, let oovBuckets):
            var vocabulary = (tokens ?? [:]).filter { $0.value >= max(minFrequency, 1) }
                .sorted { ($0.value, $1.key) > ($1.value, $0.key) }.map(\.key)
            if let maxTokens, vocabulary.count > maxTokens { vocabulary = Array(vocabulary.prefix(maxTokens)) }
            guard !vocabulary.isEmpty || oovBuckets > 0 else {
                throw TransformError(
                    problem: "feature '\(feature.name)': no value of '\(feature.column)' occurs \(minFrequency) times",
                    fix: "lower min_frequency or add an out-of-vocabulary bucket.")
            }
            return .vocabulary(tokens: vocabulary, oovBuckets: oovBuckets)
        case .hash(let buckets): return .hash(buckets: buckets)
        }
    }
}
