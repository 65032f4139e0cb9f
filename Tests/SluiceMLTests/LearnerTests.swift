import Foundation
import Testing

@testable import SluiceML

@Suite("Learners")
struct LearnerTests {
    let linear: [String: Any]
    let x: FeatureMatrix

    init() throws {
        linear = try Reference().section("linear")
        let values = linear.doubles("x")
        let rows = Int(linear.double("rows"))
        x = FeatureMatrix(rows: (0..<rows).map { Array(values[($0 * 3)..<($0 * 3 + 3)]) })
    }

    @Test("ridge regression solves the normal equations to scikit-learn's Ridge coefficients")
    func ridge() throws {
        let r = linear.section("ridge")
        let model = try LinearRegression(l2: r.double("alpha") / Double(x.rowCount)).fit(
            x, targets: r.doubles("target"))
        for (mine, theirs) in zip(model.weights, r.doubles("coef")) { #expect(abs(mine - theirs) < 1e-9) }
        #expect(abs(model.intercepts[0] - r.double("intercept")) < 1e-9)
        #expect(model.convergence.converged)
    }

    @Test("logistic regression converges to scikit-learn's coefficients for the same penalty")
    func logistic() throws {
        let r = linear.section("logistic")
        let progress = Recorder<Int>()
        let model = try LogisticRegression(l2: 1 / (r.double("C") * Double(x.rowCount)), tolerance: 1e-10)
            .fit(x, labels: r.labels("labels")) { progress.append($0.iteration) }
        for (mine, theirs) in zip(model.weights, r.doubles("coef")) { #expect(abs(mine - theirs) < 1e-5) }
        #expect(abs(model.intercepts[0] - r.double("intercept")) < 1e-5)
        #expect(model.convergence.converged)
        #expect(progress.values == Array(1...model.convergence.iterations))
    }

    @Test("softmax regression matches scikit-learn's multinomial logistic regression")
    func softmax() throws {
        let r = linear.section("softmax")
        let model = try SoftmaxRegression(l2: 1 / (r.double("C") * Double(x.rowCount)), tolerance: 1e-10)
            .fit(x, labels: r.labels("labels"), classes: 3)
        for (mine, theirs) in zip(model.weights, r.doubles("coef")) { #expect(abs(mine - theirs) < 1e-5) }
        let intercepts = r.doubles("intercept")
        let shift = intercepts.reduce(0, +) / 3 - model.intercepts.reduce(0, +) / 3
        for (mine, theirs) in zip(model.intercepts, intercepts) { #expect(abs(mine + shift - theirs) < 1e-5) }
    }

    @Test("linear learners refuse missing features and say to impute")
    func missingFeatures() throws {
        let x = FeatureMatrix(rows: [[1, .nan], [2, 3]], names: ["a", "b"])
        #expect { try LogisticRegression().fit(x, labels: [0, 1]) } throws: {
            "\($0)".contains("feature 'b' has a missing") && "\($0)".contains("impute")
        }
    }

    @Test("a depth-1 tree finds the step and hand-computed leaf values")
    func stump() throws {
        var learner = GradientBoosting(objective: .squaredError)
        learner.rounds = 1
        learner.maxDepth = 1
        learner.learningRate = 1
        learner.l2 = 0
        learner.minChildWeight = 0
        let model = try learner.fit(FeatureMatrix(rows: [[1], [2], [3], [4]]), targets: [0, 0, 10, 10])
        // Base 5; gradients 5, 5, −5, −5; leaves −10/2 = −5 and +5; split at the first value of the right side.
        #expect(model.baseScores == [5])
        #expect(model.trees[0].threshold[0] == 3)
        #expect(model.trees[0].value.filter { $0 != 0 } == [-5, 5])
        #expect(model.margins(FeatureMatrix(rows: [[1.5], [2.99], [3], [100]])) == [0, 0, 10, 10])
    }

    @Test("trees learn a default direction for missing values")
    func missingDirection() throws {
        var rows: [[Double]] = []
        var targets: [Double] = []
        for k in 0..<300 {
            let value = Double(k % 100)
            if k % 3 == 0 {
                rows.append([.nan])
                targets.append(50)  // missing behaves like the high group
            } else {
                rows.append([value])
                targets.append(value < 50 ? 0 : 50)
            }
        }
        var learner = GradientBoosting(objective: .squaredError)
        learner.rounds = 20
        learner.maxDepth = 2
        let model = try learner.fit(FeatureMatrix(rows: rows), targets: targets)
        let p = model.margins(FeatureMatrix(rows: [[.nan], [10], [90]]))
        #expect(abs(p[0] - 50) < 1)
        #expect(abs(p[1]) < 1)
        #expect(abs(p[2] - 50) < 1)
    }

    static func classificationData(rows: Int, classes: Int, seed: UInt64) -> (FeatureMatrix, [Int32]) {
        var random = TestRandom(seed)
        let layout = FeatureLayout([
            FeatureSlot(name: "a", kind: .numeric), FeatureSlot(name: "b", kind: .numeric),
            FeatureSlot(name: "c", kind: .categorical(width: 4)),
        ])
        var numeric: [Double] = []
        var categorical: [Int32] = []
        var labels: [Int32] = []
        for _ in 0..<rows {
            let a = random.normal()
            let b = random.normal()
            let c = Int32(random.unit() * 4)
            numeric += [random.unit() < 0.05 ? .nan : a, b]
            categorical.append(c)
            let score = a * a + (c == 2 ? 1.5 : 0) - b + 0.3 * random.normal()
            if classes == 2 {
                labels.append(score > 1 ? 1 : 0)
            } else {
                labels.append(score < 0 ? 0 : (score < 1.5 ? 1 : 2))
            }
        }
        return (FeatureMatrix(layout: layout, rowCount: rows, numeric: numeric, categorical: categorical), labels)
    }

    @Test("binary and multiclass boosting fit nonlinear data with missing values and one-hot features")
    func classification() throws {
        for classes in [2, 3] {
            let (x, y) = Self.classificationData(rows: 4_000, classes: classes, seed: 5)
            let (xt, yt) = Self.classificationData(rows: 2_000, classes: classes, seed: 6)
            var learner = GradientBoosting(objective: classes == 2 ? .logistic : .softmax)
            learner.rounds = 40
            learner.maxDepth = 4
            let recorder = Recorder<TrainingProgress>()
            let model = try learner.fit(x, labels: y, classes: classes) { recorder.append($0) }
            let seen = recorder.values
            let trained = TrainedModel(
                task: .classification(classes: (0..<classes).map(String.init)), learner: .trees(model))
            let metrics = ClassificationMetrics(
                labels: yt, probabilities: trained.predict(xt).values, classes: (0..<classes).map(String.init))
            #expect(metrics.accuracy > 0.85, "accuracy \(metrics.accuracy) with \(classes) classes")
            #expect(seen.map(\.iteration) == Array(1...40))
            #expect(seen.last!.loss < seen.first!.loss)
            #expect(model.trees.count == 40 * (classes == 2 ? 1 : classes))
            #expect(model.featureImportance().contains { $0.feature == "c=2" })
        }
    }

    @Test("rows scored eight at a time give the margins of rows scored one by one, to the bit")
    func batchedTraversal() throws {
        for classes in [2, 3] {
            let (x, y) = Self.classificationData(rows: 3_000, classes: classes, seed: 7)
            var learner = GradientBoosting(objective: classes == 2 ? .logistic : .softmax)
            learner.rounds = 25
            learner.maxDepth = 5
            let model = try learner.fit(x, labels: y, classes: classes)
            // 2,501 rows: whole groups of eight and a remainder, NaNs, infinities and every category among them.
            var (xt, _) = Self.classificationData(rows: 2_501, classes: classes, seed: 8)
            for row in stride(from: 3, to: 2_501, by: 97) {
                xt.numeric[row * 2 + row % 2] = row % 3 == 0 ? -.infinity : .infinity
            }
            let batched = model.margins(xt)
            // The saved trees walked plainly, on the expanded (one-hot) row: what the fast path must equal.
            var reference: [Double] = []
            for row in 0..<xt.rowCount {
                let expanded = xt.expandedRow(row)
                var sums = model.baseScores
                for (t, tree) in model.trees.enumerated() {
                    var node = 0
                    while tree.feature[node] >= 0 {
                        let value = expanded[Int(tree.feature[node])]
                        let goLeft = value.isNaN ? tree.defaultLeft[node] : value < tree.threshold[node]
                        node = Int(goLeft ? tree.left[node] : tree.right[node])
                    }
                    sums[t % model.outputs] += tree.value[node]
                }
                reference += sums
            }
            #expect(batched.map(\.bitPattern) == reference.map(\.bitPattern))
            let nN = xt.layout.numericCount
            let nC = xt.layout.categoricalCount
            var single: [Double] = []
            for row in 0..<xt.rowCount {
                let one = FeatureMatrix(
                    layout: xt.layout, rowCount: 1, numeric: Array(xt.numeric[(row * nN)..<((row + 1) * nN)]),
                    categorical: Array(xt.categorical[(row * nC)..<((row + 1) * nC)]))
                single += model.margins(one)
            }
            #expect(batched.map(\.bitPattern) == single.map(\.bitPattern))
        }
    }

    @Test("a leaf limit caps every tree, keeping the highest-gain splits")
    func leafLimit() throws {
        let (x, y) = Self.classificationData(rows: 2_000, classes: 2, seed: 12)
        var learner = GradientBoosting(objective: .logistic)
        learner.rounds = 10
        learner.maxDepth = 8
        learner.maxLeaves = 5
        let limited = try learner.fit(x, labels: y, classes: 2)
        #expect(limited.trees.allSatisfy { $0.leafCount <= 5 })
        #expect(limited.trees.contains { $0.leafCount == 5 })
        learner.maxLeaves = nil
        let free = try learner.fit(x, labels: y, classes: 2)
        #expect(free.trees.contains { $0.leafCount > 5 })
    }

    @Test("early stopping keeps the best round on the evaluation set")
    func earlyStopping() throws {
        let (x, y) = Self.classificationData(rows: 2_000, classes: 2, seed: 7)
        let (xe, ye) = Self.classificationData(rows: 1_000, classes: 2, seed: 8)
        var learner = GradientBoosting(objective: .logistic)
        learner.rounds = 300
        learner.learningRate = 0.5
        learner.maxDepth = 6
        learner.earlyStoppingRounds = 5
        let model = try learner.fit(x, labels: y, classes: 2, eval: (xe, ye))
        #expect(model.rounds < 300)
        let metrics = model.history.compactMap(\.evalMetric)
        #expect(metrics.last == metrics.min())
        #expect(model.bestRound == model.rounds)
    }

    @Test("the same seed gives the same model bytes; another seed with sampling gives another model")
    func determinism() throws {
        let (x, y) = Self.classificationData(rows: 3_000, classes: 2, seed: 9)
        var learner = GradientBoosting(objective: .logistic)
        learner.rounds = 15
        learner.subsample = 0.7
        learner.columnSample = 0.6
        learner.seed = 1
        func bytes(_ learner: GradientBoosting) throws -> Data {
            try TrainedModel(
                task: .classification(classes: ["0", "1"]), learner: .trees(learner.fit(x, labels: y, classes: 2))
            )
            .serialized()
        }
        let first = try bytes(learner)
        #expect(try bytes(learner) == first)
        learner.seed = 2
        #expect(try bytes(learner) != first)
        let logistic = {
            try TrainedModel(
                task: .classification(classes: ["0", "1"]),
                learner: .linear(
                    LogisticRegression().fit(
                        FeatureMatrix(rows: (0..<x.rowCount).map { [x.numeric[2 * $0 + 1]] }), labels: y))
            ).serialized()
        }
        #expect(try logistic() == logistic())
    }

    /// `x` as batches of `size` rows.
    static func batches(_ x: FeatureMatrix, size: Int) -> FeatureBatches {
        FeatureBatches(rowCount: x.rowCount, layout: x.layout) { consume in
            for start in stride(from: 0, to: x.rowCount, by: size) {
                try consume(x.rows(Array(start..<min(x.rowCount, start + size))), start)
            }
        }
    }

    @Test("boosting from batches gives the same model bytes as one batch or a matrix in memory, held-out rows too")
    func batchedBoostingEqualsInMemory() throws {
        let (x, y) = Self.classificationData(rows: 5_000, classes: 3, seed: 21)
        var learner = GradientBoosting(objective: .softmax)
        learner.rounds = 12
        learner.subsample = 0.8
        learner.seed = 5
        func bytes(_ model: TreeEnsemble) throws -> Data {
            try TrainedModel(task: .classification(classes: ["a", "b", "c"]), learner: .trees(model)).serialized()
        }
        let inMemory = try bytes(learner.fit(x, labels: y, classes: 3))
        #expect(try bytes(learner.fit(FeatureBatches(x), labels: y, classes: 3)) == inMemory)
        #expect(try bytes(learner.fit(Self.batches(x, size: 333), labels: y, classes: 3)) == inMemory)

        learner.earlyStoppingRounds = 3
        let marks = (0..<x.rowCount).map { $0 % 10 == 4 }
        let kept = (0..<x.rowCount).filter { !marks[$0] }
        let held = (0..<x.rowCount).filter { marks[$0] }
        let withEval = try bytes(
            learner.fit(
                x.rows(kept), labels: kept.map { y[$0] }, classes: 3, eval: (x.rows(held), held.map { y[$0] })))
        #expect(
            try bytes(learner.fit(Self.batches(x, size: 1_000), labels: y, classes: 3, holdOut: marks)) == withEval)
    }

    @Test("the linear learners fit rows given in batches to the weights they fit in memory")
    func batchedLinearEqualsInMemory() throws {
        let (x, y) = Self.classificationData(rows: 3_000, classes: 3, seed: 23)
        let dense = FeatureMatrix(rows: (0..<x.rowCount).map { [x.numeric[2 * $0 + 1], Double(x.categorical[$0])] })
        func close(_ a: LinearModel, _ b: LinearModel) -> Bool {
            zip(a.weights + a.intercepts, b.weights + b.intercepts).allSatisfy { abs($0 - $1) < 1e-6 }
        }
        let binary = y.map { $0 == 2 ? Int32(1) : 0 }
        #expect(
            close(
                try LogisticRegression().fit(Self.batches(dense, size: 250), labels: binary),
                try LogisticRegression().fit(dense, labels: binary)))
        #expect(
            close(
                try SoftmaxRegression().fit(Self.batches(dense, size: 999), labels: y, classes: 3),
                try SoftmaxRegression().fit(dense, labels: y, classes: 3)))
        let targets = (0..<x.rowCount).map { row -> Double in
            let a: Double = dense.numeric[2 * row]
            let b: Double = dense.numeric[2 * row + 1]
            return 3 * a - b + 0.5
        }
        let ridge = try LinearRegression().fit(Self.batches(dense, size: 128), targets: targets)
        #expect(close(ridge, try LinearRegression().fit(dense, targets: targets)))
        #expect(abs(ridge.weights[0] - 3) < 1e-3)
        // A missing value names its row among all batches.
        var holes = dense
        holes.numeric[2 * 2_500] = .nan
        #expect {
            try LinearRegression().fit(Self.batches(holes, size: 1_000), targets: targets)
        } throws: { "\($0)".contains("row 2501") }
    }

    @Test("bins chosen from a sample of batched rows are those chosen from the matrix in memory")
    func batchedBinningEqualsInMemory() throws {
        let (x, _) = Self.classificationData(rows: 4_000, classes: 2, seed: 22)
        let whole = BinnedMatrix.fit(x, maxBins: 32, sampleSize: 250)
        let batched = try BinnedMatrix.fit(Self.batches(x, size: 777), include: nil, maxBins: 32, sampleSize: 250)
        #expect(String(describing: batched.map(\.kind)) == String(describing: whole.map(\.kind)))
        let matrix = try BinnedMatrix(Self.batches(x, size: 777), features: batched, include: nil)
        let reference = BinnedMatrix(x, features: whole)
        #expect(matrix.bins == reference.bins)
        #expect(matrix.columns == reference.columns)
    }

    @Test("a saved model loads and predicts the same numbers, bit for bit")
    func saveAndLoad() throws {
        let (x, y) = Self.classificationData(rows: 2_000, classes: 3, seed: 10)
        var learner = GradientBoosting(objective: .softmax)
        learner.rounds = 10
        let models = [
            TrainedModel(
                task: .classification(classes: ["a", "b", "c"]),
                learner: .trees(try learner.fit(x, labels: y, classes: 3))),
            TrainedModel(
                task: .regression,
                learner: .linear(
                    try LinearRegression().fit(
                        FeatureMatrix(rows: (0..<100).map { [Double($0), 1 / Double($0 + 1)] }),
                        targets: (0..<100).map { 2 * Double($0) + 1 }))),
        ]
        for model in models {
            let loaded = try TrainedModel.load(try model.serialized())
            #expect(loaded == model)
            let input = model.layout.categoricalCount > 0 ? x : FeatureMatrix(rows: [[3, 0.25], [7, 0.125]])
            #expect(loaded.predict(input).values.map(\.bitPattern) == model.predict(input).values.map(\.bitPattern))
        }
        var future = String(decoding: try models[1].serialized(), as: UTF8.self)
        future = future.replacingOccurrences(of: "\"format_version\":1", with: "\"format_version\":99")
        #expect { try TrainedModel.load(Data(future.utf8)) } throws: { "\($0)".contains("upgrade Sluice") }
    }
}
