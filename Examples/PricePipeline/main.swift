// An example pipeline you can read in one sitting: predict house prices with ridge regression.
//
//   generate ─▶ split ─┬─▶ describe(train) ───────────────────────────┐
//                      ├─▶ fit_scaler(train) ─┬─▶ fit(train) ─▶ evaluate(eval) ─▶ report
//                      └──────────────────────┴──────────────────────┘
//
// Run it:   swift run sluice-example run prices
// Tweak it: swift run sluice-example run prices --set fit.l2=10   (only fit, evaluate and report re-run)
import Foundation
import Sluice

/// One house: four features and the price to predict.
struct House: Codable, Sendable {
    var area: Double  // m²
    var rooms: Double
    var age: Double  // years
    var distance: Double  // km to the centre
    var price: Double  // k€

    var features: [Double] { [area, rooms, age, distance] }
}

/// Makes a reproducible synthetic market: the step's seed comes from the run's seed.
struct Generate: Step {
    struct Parameters: Codable, Sendable {
        var rows = 20_000
        var noise = 25.0  // k€ of unexplained price
    }
    static let name = "generate"
    static let version = 1
    var parameters = Parameters()

    func run(_ input: Void, context: StepContext) async throws -> [House] {
        var random = context.random()
        var houses: [House] = []
        houses.reserveCapacity(parameters.rows)
        for index in 0..<parameters.rows {
            let area = Double.random(in: 30...220, using: &random)
            let rooms = (area / 30).rounded() + Double(Int.random(in: -1...1, using: &random))
            let age = Double.random(in: 0...80, using: &random)
            let distance = Double.random(in: 0.5...30, using: &random)
            // Box–Muller noise from the seeded generator.
            let u1 = Double.random(in: Double.ulpOfOne..<1, using: &random)
            let u2 = Double.random(in: 0..<1, using: &random)
            let noise = sqrt(-2 * log(u1)) * cos(2 * .pi * u2) * parameters.noise
            let price = 50 + 3.1 * area + 12 * rooms - 0.9 * age - 6.5 * distance + noise
            houses.append(House(area: area, rooms: max(1, rooms), age: age, distance: distance, price: price))
            if index % 5_000 == 0 { context.reportProgress(completed: index, total: parameters.rows, unit: "rows") }
        }
        context.setProperty("rows", .int(houses.count))
        return houses
    }
}

/// Training and evaluation rows: two named outputs, wired separately.
struct TrainEval: MultipleOutputs {
    var train: [House]
    var eval: [House]
    static let outputs: [NamedOutput<TrainEval>] = [.init("train", \.train), .init("eval", \.eval)]
}

/// Splits rows reproducibly: the same seed always puts the same rows in the same set.
struct Split: Step {
    struct Parameters: Codable, Sendable {
        var evalFraction = 0.2
        var seed: UInt64 = 42
    }
    static let name = "split"
    static let version = 1
    /// Draws nothing from the run seed: a new seed reuses its cached output.
    static let usesRunSeed = false
    var parameters = Parameters()

    func run(_ houses: [House], context: StepContext) async throws -> TrainEval {
        guard (0..<1).contains(parameters.evalFraction) else {
            throw ExampleError("eval_fraction must be in [0, 1), got \(parameters.evalFraction)")
        }
        var random = context.random(seed: parameters.seed)
        let shuffled = houses.shuffled(using: &random)
        let evalCount = Int(Double(houses.count) * parameters.evalFraction)
        context.setProperty("train_rows", .int(houses.count - evalCount))
        context.setProperty("eval_rows", .int(evalCount))
        return TrainEval(train: Array(shuffled.dropFirst(evalCount)), eval: Array(shuffled.prefix(evalCount)))
    }
}

/// Per-feature mean and standard deviation, fitted on training rows only.
struct Scaler: Codable, Sendable {
    var means: [Double]
    var deviations: [Double]

    func transform(_ house: House) -> [Double] {
        zip(house.features, zip(means, deviations)).map { value, stats in (value - stats.0) / stats.1 }
    }
}

/// Ridge regression weights over standardized features.
struct LinearModel: Codable, Sendable {
    var intercept: Double
    var weights: [Double]

    func predict(_ features: [Double]) -> Double {
        intercept + zip(weights, features).reduce(0) { $0 + $1.0 * $1.1 }
    }
}

/// Fits ridge regression by solving the normal equations (XᵀX + λI)w = Xᵀy.
struct Fit: Step {
    struct Parameters: Codable, Sendable {
        var l2 = 1.0
    }
    static let name = "fit"
    static let version = 1
    /// Draws nothing from the run seed: a new seed reuses its cached output.
    static let usesRunSeed = false
    var parameters = Parameters()

    func run(_ input: ([House], Scaler), context: StepContext) async throws -> LinearModel {
        let (train, scaler) = input
        let width = 5  // intercept + 4 features
        var gram = Array(repeating: Array(repeating: 0.0, count: width), count: width)
        var moment = Array(repeating: 0.0, count: width)
        for house in train {
            let x = [1.0] + scaler.transform(house)
            for i in 0..<width {
                moment[i] += x[i] * house.price
                for j in 0..<width { gram[i][j] += x[i] * x[j] }
            }
        }
        for i in 1..<width { gram[i][i] += parameters.l2 }  // the intercept is not penalized
        let solution = try solve(gram, moment)
        context.logger.info("fitted \(train.count) rows, weights \(solution)")
        return LinearModel(intercept: solution[0], weights: Array(solution.dropFirst()))
    }

    /// Gaussian elimination with partial pivoting.
    private func solve(_ a: [[Double]], _ b: [Double]) throws -> [Double] {
        var a = a
        var b = b
        let n = b.count
        for column in 0..<n {
            let pivot = (column..<n).max { abs(a[$0][column]) < abs(a[$1][column]) }!
            guard abs(a[pivot][column]) > 1e-12 else { throw ExampleError("the features are collinear; raise l2") }
            a.swapAt(column, pivot)
            b.swapAt(column, pivot)
            for row in (column + 1)..<n {
                let factor = a[row][column] / a[column][column]
                for k in column..<n { a[row][k] -= factor * a[column][k] }
                b[row] -= factor * b[column]
            }
        }
        var x = Array(repeating: 0.0, count: n)
        for row in stride(from: n - 1, through: 0, by: -1) {
            let rest = ((row + 1)..<n).reduce(0) { $0 + a[row][$1] * x[$1] }
            x[row] = (b[row] - rest) / a[row][row]
        }
        return x
    }
}

/// Regression quality on held-out rows.
struct Metrics: Codable, Sendable {
    var rmse: Double
    var mae: Double
    var r2: Double
}

struct ExampleError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

let prices = Pipeline("prices") { p in
    let houses = p.add(Generate())
    let sets = p.add(Split(), houses)

    // Two steps that only need the training rows: they run at the same time.
    let summary = p.step("describe", version: 1, sets.train) { train, context in
        let prices = train.map(\.price).sorted()
        return [
            "rows": Double(train.count), "median_price": prices[prices.count / 2],
            "mean_area": train.map(\.area).reduce(0, +) / Double(train.count),
        ]
    }
    let scaler = p.step("fit_scaler", version: 1, sets.train) { train, context in
        let columns = (0..<4).map { feature in train.map { $0.features[feature] } }
        let means = columns.map { $0.reduce(0, +) / Double($0.count) }
        let deviations = zip(columns, means).map { column, mean in
            max(1e-9, sqrt(column.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(column.count)))
        }
        return Scaler(means: means, deviations: deviations)
    }

    let model = p.add(Fit(), sets.train, scaler)
    let metrics = p.step("evaluate", version: 1, model, scaler, sets.eval) { model, scaler, eval, context in
        let errors = eval.map { model.predict(scaler.transform($0)) - $0.price }
        let mean = eval.map(\.price).reduce(0, +) / Double(eval.count)
        let total = eval.reduce(0) { $0 + ($1.price - mean) * ($1.price - mean) }
        let squared = errors.reduce(0) { $0 + $1 * $1 }
        let result = Metrics(
            rmse: sqrt(squared / Double(errors.count)), mae: errors.map(abs).reduce(0, +) / Double(errors.count),
            r2: 1 - squared / total)
        context.log(metric: "rmse", result.rmse)
        context.log(metric: "r2", result.r2)
        return result
    }
    p.step("report", version: 1, metrics, summary) { metrics, summary, context in
        """
        # House prices: ridge regression
        Trained on \(Int(summary["rows"] ?? 0)) houses (median price \(Int(summary["median_price"] ?? 0)) k€).
        Held-out RMSE \(String(format: "%.2f", metrics.rmse)) k€, MAE \(String(format: "%.2f", metrics.mae)) k€, R² \(String(format: "%.4f", metrics.r2)).
        """
    }
}

await Sluice.main(pipelines: [prices])
