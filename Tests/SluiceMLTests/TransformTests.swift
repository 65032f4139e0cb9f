import Foundation
import SluiceData
import Testing
import Yams

@testable import SluiceML

@Suite("Transforms")
struct TransformTests {
    let table = Table(columns: [
        Tables.numbers("x", [1, 2, nil, 4, 10]),
        Tables.integers("n", [3, nil, 3, 5, 7]),
        Tables.texts("color", ["red", "blue", "red", nil, "green"]),
        Tables.texts("city", ["a", "b", "c", "a", "a"]),
    ])

    func numbers(_ graph: TransformGraph, _ table: Table, feature: Int) throws -> [Double] {
        let x = try graph.transform(table)
        return (0..<x.rowCount).map { x.numeric[$0 * x.layout.numericCount + feature] }
    }

    func categories(_ graph: TransformGraph, _ table: Table, feature: Int) throws -> [Int32] {
        let x = try graph.transform(table)
        return (0..<x.rowCount).map { x.categorical[$0 * x.layout.categoricalCount + feature] }
    }

    @Test("mean, median, most-frequent and constant imputation fill missing values from the training data")
    func imputation() throws {
        let spec = TransformSpec(features: [
            FeatureSpec("x", name: "mean", .impute(.mean)),
            FeatureSpec("x", name: "median", .impute(.median)),
            FeatureSpec("n", name: "frequent", .impute(.mostFrequent)),
            FeatureSpec("x", name: "constant", .impute(.number(-1))),
            FeatureSpec("color", name: "color", .impute(.text("none")), .oneHot()),
        ])
        let graph = try TransformGraph.fit(spec, on: table)
        #expect(try numbers(graph, table, feature: 0) == [1, 2, 4.25, 4, 10])
        let odd = Table(columns: [Tables.numbers("x", [1, 5, 2, nil, 9, 7])])
        let median = try TransformGraph.fit(TransformSpec(features: [FeatureSpec("x", .impute(.median))]), on: odd)
        #expect(abs(try numbers(median, odd, feature: 0)[3] - 5) <= 5 * 0.01)
        #expect(try numbers(graph, table, feature: 2) == [3, 3, 3, 5, 7])
        #expect(try numbers(graph, table, feature: 3) == [1, 2, -1, 4, 10])
        let colors = try categories(graph, table, feature: 0)
        let slot = graph.layout.slots[4]
        #expect(slot.categories![Int(colors[3])] == "none")
        #expect(colors[0] == colors[2])
    }

    @Test("standardization matches scikit-learn's StandardScaler, min-max maps the training range to 0…1")
    func scaling() throws {
        let reference = try Reference().section("linear")
        let x = reference.doubles("x")
        let rows = Int(reference.double("rows"))
        let table = Table(columns: (0..<3).map { j in Tables.numbers("c\(j)", (0..<rows).map { x[$0 * 3 + j] }) })
        let graph = try TransformGraph.fit(
            TransformSpec(features: (0..<3).map { FeatureSpec("c\($0)", .standardize) }), on: table)
        let first = try graph.transform(table).expandedRow(0)
        for (mine, theirs) in zip(first, reference.doubles("standardized_first_row")) {
            #expect(abs(mine - theirs) < 1e-12)
        }
        let minMax = try TransformGraph.fit(TransformSpec(features: [FeatureSpec("x", .minMax)]), on: self.table)
        #expect(try numbers(minMax, self.table, feature: 0).map { $0.isNaN ? -1 : $0 } == [0, 1.0 / 9, -1, 3.0 / 9, 1])
    }

    @Test("log transform shifts by its offset and marks impossible values missing")
    func logTransform() throws {
        let table = Table(columns: [Tables.numbers("v", [0, Foundation.exp(1) - 1, -2])])
        let graph = try TransformGraph.fit(TransformSpec(features: [FeatureSpec("v", .log(offset: 1))]), on: table)
        let values = try numbers(graph, table, feature: 0)
        #expect(values[0] == 0)
        #expect(abs(values[1] - 1) < 1e-15)
        #expect(values[2].isNaN)
    }

    @Test("bucketizing by quantiles gives buckets of about equal size and labels their ranges")
    func bucketize() throws {
        let table = Table(columns: [Tables.numbers("v", (0..<1_000).map { Double($0) })])
        let graph = try TransformGraph.fit(
            TransformSpec(features: [FeatureSpec("v", .bucketize(buckets: 4))]), on: table)
        let buckets = try categories(graph, table, feature: 0)
        let sizes = (0..<4).map { b in buckets.count { $0 == b } }
        #expect(sizes.allSatisfy { abs($0 - 250) <= 5 })
        #expect(graph.layout.slots[0].kind == .categorical(width: 4))
        #expect(graph.layout.slots[0].categories!.first!.hasPrefix("< "))
        let probe = Table(columns: [Tables.numbers("v", [nil, -5, 5_000])])
        #expect(try categories(graph, probe, feature: 0) == [-1, 0, 3])
    }

    @Test("one-hot keeps values seen often enough, most frequent first, and sends the rest to the OOV bucket")
    func oneHot() throws {
        let graph = try TransformGraph.fit(
            TransformSpec(features: [FeatureSpec("city", .oneHot(minFrequency: 2, oovBuckets: 1))]), on: table)
        #expect(graph.layout.slots[0].categories == ["a", "<oov>"])
        let probe = Table(columns: [Tables.texts("city", ["a", "b", "zzz", nil])])
        #expect(try categories(graph, probe, feature: 0) == [0, 1, 1, -1])
        let capped = try TransformGraph.fit(
            TransformSpec(features: [FeatureSpec("color", .oneHot(maxTokens: 1, oovBuckets: 0))]), on: table)
        #expect(capped.layout.slots[0].categories == ["red"])
        #expect(try categories(capped, probe.renamed("city", to: "color"), feature: 0) == [-1, -1, -1, -1])
        let numbersAsTokens = try TransformGraph.fit(TransformSpec(features: [FeatureSpec("n", .oneHot())]), on: table)
        #expect(numbersAsTokens.layout.slots[0].categories == ["3", "5", "7", "<oov>"])
    }

    @Test("hashing is stable FNV-1a modulo the bucket count, and crosses hash category pairs")
    func hashingAndCrosses() throws {
        #expect(stableHash("a") == 0xaf63_dc4c_8601_ec8c)
        let graph = try TransformGraph.fit(
            TransformSpec(
                features: [FeatureSpec("city", .hash(buckets: 7)), FeatureSpec("color", .oneHot())],
                crosses: [CrossSpec(features: ["city", "color"], buckets: 5)]), on: table)
        let hashed = try categories(graph, table, feature: 0)
        #expect(hashed[0] == Int32(stableHash("a") % 7))
        let crossed = try categories(graph, table, feature: 2)
        let colors = try categories(graph, table, feature: 1)
        #expect(crossed[0] == Int32(stableHash([hashed[0], colors[0]]) % 5))
        #expect(crossed[3] == -1)  // color missing, and no imputation
        #expect(graph.layout.slots.map(\.name) == ["city", "color", "city_x_color"])
    }

    @Test("fitting on chunks gives the same graph as fitting on the whole table")
    func chunkedFit() throws {
        var random = TestRandom(3)
        let rows = 5_000
        let big = Table(columns: [
            Tables.numbers("x", (0..<rows).map { _ in random.unit() < 0.1 ? nil : random.normal() * 3 + 1 }),
            Tables.texts("c", (0..<rows).map { _ in ["p", "q", "r", "s"][Int(random.unit() * 4)] }),
        ])
        let spec = TransformSpec(features: [
            FeatureSpec("x", .impute(.mean), .standardize), FeatureSpec("c", .oneHot(minFrequency: 2)),
        ])
        let whole = try TransformGraph.fit(spec, on: big)
        let chunked = try TransformGraph.fit(spec) { consume in
            for start in stride(from: 0, to: rows, by: 700) { try consume(big.slice(start..<min(rows, start + 700))) }
        }
        guard case .scale(let c1, let d1) = whole.features[0].steps[1],
            case .scale(let c2, let d2) = chunked.features[0].steps[1]
        else {
            Issue.record("expected a scale step")
            return
        }
        #expect(abs(c1 - c2) < 1e-12)
        #expect(abs(d1 - d2) < 1e-12)
        #expect(whole.features[1] == chunked.features[1])
    }

    @Test("no skew: features from the training path equal those from single serving rows, bit for bit")
    func noSkew() throws {
        var random = TestRandom(11)
        let rows = 2_000
        let train = Table(columns: [
            Tables.numbers(
                "amount", (0..<rows).map { _ in random.unit() < 0.05 ? nil : Foundation.exp(random.normal()) }),
            Tables.integers("age", (0..<rows).map { _ in random.unit() < 0.05 ? nil : Int64(18 + random.unit() * 60) }),
            Tables.texts(
                "plan",
                (0..<rows).map { _ in random.unit() < 0.05 ? nil : ["free", "pro", "team"][Int(random.unit() * 3)] }),
            Tables.texts("user", (0..<rows).map { _ in "u\(Int(random.unit() * 500))" }),
        ])
        let spec = TransformSpec(
            features: [
                FeatureSpec("amount", .impute(.median), .log(offset: 1), .standardize),
                FeatureSpec("amount", name: "amount_bucket", .bucketize(buckets: 5)),
                FeatureSpec("age", .impute(.mean), .minMax),
                FeatureSpec("age", name: "age_bucket", .impute(.mean), .bucketize(buckets: 4)),
                FeatureSpec("plan", .impute(.mostFrequent), .oneHot(minFrequency: 10)),
                FeatureSpec("user", .hash(buckets: 64)),
            ],
            crosses: [CrossSpec(features: ["age_bucket", "plan"], buckets: 16)])
        let graph = try TransformGraph.fit(spec, on: train)
        // New data, with values the training data never had.
        let serving = Table(columns: [
            Tables.numbers("amount", [nil, 0, -5, 1e9, 3.25]),
            Tables.integers("age", [nil, 200, 18, 40, 33]),
            Tables.texts("plan", ["enterprise", nil, "pro", "free", "team"]),
            Tables.texts("user", ["u1", "new", "u499", "u7", "u250"]),
        ])
        for data in [train, serving] {
            let batch = try graph.transform(data)
            for row in 0..<data.rowCount {
                var raw: [String: RawValue] = [:]
                for column in data.columns {
                    if column.type == .string {
                        raw[column.name] = column.string(row).map(RawValue.text) ?? .missing
                    } else {
                        raw[column.name] = column.double(row).map(RawValue.number) ?? .missing
                    }
                }
                let single = try graph.transform(rows: [raw])
                #expect(
                    single.categorical
                        == Array(
                            batch.categorical[
                                (row * batch.layout.categoricalCount)..<((row + 1) * batch.layout.categoricalCount)]))
                let expected = batch.numeric[
                    (row * batch.layout.numericCount)..<((row + 1) * batch.layout.numericCount)]
                #expect(single.numeric.map(\.bitPattern) == expected.map(\.bitPattern))
            }
        }
    }

    @Test("a serving batch transforms bit for bit like the table and counts unseen values once per column and row")
    func servingBatch() throws {
        let spec = TransformSpec(
            features: [
                FeatureSpec("x", .impute(.mean), .standardize),
                FeatureSpec("color", .oneHot()),
                FeatureSpec("color", name: "color_strict", .oneHot(oovBuckets: 0)),
                FeatureSpec("city", .impute(.mostFrequent), .oneHot()),
                FeatureSpec("n", .impute(.mean), .bucketize(buckets: 2)),
            ],
            crosses: [CrossSpec(features: ["color", "n"], buckets: 8)])
        let graph = try TransformGraph.fit(spec, on: table)
        let serving = Table(columns: [
            Tables.numbers("x", [nil, 3, 1e6]),
            Tables.integers("n", [3, nil, 9]),
            Tables.texts("color", ["purple", nil, "red"]),
            Tables.texts("city", ["a", "zurich", nil]),
        ])
        var columns: [String: [RawValue]] = [:]
        for column in serving.columns {
            columns[column.name] = (0..<serving.rowCount).map { row in
                column.type == .string
                    ? column.string(row).map(RawValue.text) ?? .missing
                    : column.double(row).map(RawValue.number) ?? .missing
            }
        }
        var unknown: [String: Int] = [:]
        let batch = try graph.transform(RawBatch(rowCount: 3, columns: columns), unknownCategories: &unknown)
        let whole = try graph.transform(serving)
        #expect(batch.categorical == whole.categorical)
        #expect(batch.numeric.map(\.bitPattern) == whole.numeric.map(\.bitPattern))
        // "purple" (two features read color: counted once) and "zurich"; missing values are not unknown.
        #expect(unknown == ["color": 1, "city": 1])
        // Rows given as dictionaries go the same way; a column left out is missing.
        let rows = try graph.transform(rows: [["x": .number(3), "color": .text("purple")]])
        #expect(
            rows
                == (try graph.transform(
                    RawBatch(rowCount: 1, columns: ["x": [.number(3)], "color": [.text("purple")]]))))
    }

    @Test("a fitted graph survives JSON encoding and transforms identically after loading")
    func roundTrip() throws {
        let spec = TransformSpec(features: [
            FeatureSpec("x", .impute(.mean), .standardize), FeatureSpec("color", .oneHot()),
            FeatureSpec("n", .impute(.mean), .bucketize(buckets: 3)),
        ])
        let graph = try TransformGraph.fit(spec, on: table)
        let data = try ModelCoding.encoder().encode(graph)
        let loaded = try ModelCoding.decoder().decode(TransformGraph.self, from: data)
        #expect(loaded == graph)
        #expect(try loaded.transform(table) == graph.transform(table))
        #expect(try ModelCoding.encoder().encode(loaded) == data)
    }

    @Test("specs read from YAML in snake_case, and a misspelt step gets a did-you-mean")
    func yaml() throws {
        let yaml = """
            features:
              - column: x
                steps: [{impute: mean}, standardize]
              - column: color
                steps: [{one_hot: {min_frequency: 2, oov_buckets: 0}}]
              - column: city
                name: city_hash
                steps: [{hash: 32}]
            crosses:
              - {name: both, features: [color, city_hash], buckets: 8}
            """
        let spec = try YAMLDecoder().decode(TransformSpec.self, from: yaml)
        #expect(spec.features[0].steps == [.impute(.mean), .standardize])
        #expect(spec.features[1].steps == [.oneHot(minFrequency: 2, maxTokens: nil, oovBuckets: 0)])
        #expect(spec.features[2].name == "city_hash")
        #expect(spec.features[2].steps == [.hash(buckets: 32)])
        let again = try YAMLDecoder().decode(TransformSpec.self, from: try YAMLEncoder().encode(spec))
        #expect(again == spec)
        #expect {
            try YAMLDecoder().decode(TransformSpec.self, from: "features: [{column: x, steps: [standardise]}]")
        } throws: { error in
            "\(error)".contains("did you mean 'standardize'")
        }
    }

    @Test("bad specs fail before fitting with what to change")
    func badSpecs() throws {
        #expect {
            try TransformGraph.fit(TransformSpec(features: [FeatureSpec("colour", .oneHot())]), on: table)
        } throws: { "\($0)".contains("did you mean 'color'") }
        #expect {
            try TransformGraph.fit(TransformSpec(features: [FeatureSpec("color", .standardize)]), on: table)
        } throws: { "\($0)".contains("numeric step to text column 'color'") }
        #expect {
            try TransformGraph.fit(TransformSpec(features: [FeatureSpec("color")]), on: table)
        } throws: { "\($0)".contains("ends as text") }
        let graph = try TransformGraph.fit(TransformSpec(features: [FeatureSpec("x", .impute(.mean))]), on: table)
        #expect { try graph.transform(rows: [["x": .text("ten")]]) } throws: {
            "\($0)".contains("column 'x' holds numbers")
        }
        #expect { try graph.transform(Table(columns: [Tables.numbers("y", [1])])) } throws: {
            "\($0)".contains("no column 'x'")
        }
    }
}

extension Table {
    func renamed(_ old: String, to new: String) -> Table {
        Table(
            columns: columns.map { column in
                var column = column
                if column.name == old { column.name = new }
                return column
            })
    }
}

@Suite("Model cards")
struct ModelCardTests {
    @Test("text from data reads as itself in a model card: Markdown's characters in names are escaped")
    func escaping() throws {
        let weird = #"a_b*c[d]<e>&"'`$"#
        #expect(Markdown.escaped(weird) == #"a\_b\*c\[d\]\<e\>\&"'\`$"#)
        #expect(Markdown.escaped("bill_length_mm") == #"bill\_length\_mm"#)
        #expect(Markdown.escaped("two\nlines") == "two lines")
        #expect(Markdown.code("a`b") == #"a\`b"#)
        #expect(Markdown.code("a_b") == "`a_b`")
        #expect(Markdown.code("plain") == "`plain`")

        let table = Table(columns: [
            Tables.numbers("bill_length_mm", [1, 2, 3, 4, 5, 6, 7, 8]),
            Tables.numbers(weird, [0, 1, 0, 1, 0, 1, 1, 0]),
            Tables.texts("is_adult", ["x_y", "x_y", "z*", "z*", "x_y", "z*", "z*", "x_y"]),
        ])
        let spec = TransformSpec(features: [
            FeatureSpec("bill_length_mm", .impute(.mean)), FeatureSpec(weird, .impute(.mean)),
        ])
        let graph = try TransformGraph.fit(spec, on: table)
        let labels = try LabelMapping(fitting: table["is_adult"]!)
        let linear = try LogisticRegression().fit(
            try graph.transform(table), labels: try labels.encode(table["is_adult"]!))
        let bundle = ModelBundle(
            name: "pen_guins", transforms: graph,
            model: TrainedModel(task: .classification(classes: labels.classes), learner: .linear(linear)),
            label: "is_adult", trainingStatistics: nil, evaluation: nil, trainingRun: nil, datasetVersion: nil,
            trainingFacts: ["rows_seen": "8"])
        #expect(bundle.card.contains("# Model card: pen\\_guins"))
        #expect(bundle.card.contains("Predicts **is\\_adult**"))
        #expect(bundle.card.contains("| bill\\_length\\_mm | "))
        #expect(bundle.card.contains("| \(Markdown.escaped(weird)) | "))
        #expect(bundle.card.contains("`x_y`, `z*`") || bundle.card.contains("`z*`, `x_y`"))
        #expect(bundle.card.contains("- rows\\_seen: 8"))
    }
}
