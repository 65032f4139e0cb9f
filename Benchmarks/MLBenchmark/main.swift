// Fits Sluice's logistic regression and gradient-boosted trees on the shared benchmark CSV and prints the figures
// as one JSON object per learner. `Benchmarks/ml_bench.py` runs it beside scikit-learn and XGBoost on the same
// split. Usage: MLBenchmark FILE.csv [--label label] [--split-out FILE] [--repeat N] [--rounds 100]
import Foundation
import SluiceData
import SluiceML

var arguments = Array(CommandLine.arguments.dropFirst())
@MainActor func option(_ name: String) -> String? {
    guard let k = arguments.firstIndex(of: name), k + 1 < arguments.count else { return nil }
    defer { arguments.removeSubrange(k...(k + 1)) }
    return arguments[k + 1]
}
let labelName = option("--label") ?? "label"
let splitOut = option("--split-out")
let repeats = Int(option("--repeat") ?? "1") ?? 1
let rounds = Int(option("--rounds") ?? "100") ?? 100
let only = option("--only")
guard let path = arguments.first else {
    FileHandle.standardError.write(
        "usage: MLBenchmark FILE.csv [--label label] [--split-out FILE] [--repeat N]\n".data(using: .utf8)!)
    exit(2)
}

func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
func emit(_ object: [String: Any]) {
    let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    print(String(decoding: data, as: UTF8.self))
}

var start = now()
let table = try CSVReader(paths: [path]).readTable()
let readSeconds = now() - start
let (trainRows, evalRows, _) = try table.splitRows(.random(seed: 42), evalFraction: 0.2)
if let splitOut {
    var mask = [UInt8](repeating: 0, count: table.rowCount)
    for row in evalRows { mask[row] = 1 }
    try Data(mask).write(to: URL(fileURLWithPath: splitOut))
}
let train = table.rows(trainRows)
let test = table.rows(evalRows)

var features: [FeatureSpec] = []
for column in table.columns where column.name != labelName {
    if column.type == .string {
        features.append(FeatureSpec(column.name, .oneHot(minFrequency: 1, oovBuckets: 0)))
    } else {
        features.append(FeatureSpec(column.name, .impute(.mean), .standardize))
    }
}
let spec = TransformSpec(features: features)
start = now()
let graph = try TransformGraph.fit(spec, on: train)
let fitTransformSeconds = now() - start
start = now()
let xTrain = try graph.transform(train)
let xTest = try graph.transform(test)
let transformSeconds = now() - start
let mapping = try LabelMapping(fitting: train[labelName]!)
let yTrain = try mapping.encode(train[labelName]!)
let yTest = try mapping.encode(test[labelName]!)
emit([
    "learner": "prepare", "rows": table.rowCount, "train_rows": trainRows.count,
    "features": xTrain.layout.expandedCount,
    "read_s": readSeconds, "fit_transform_s": fitTransformSeconds, "transform_s": transformSeconds,
])

@MainActor func auc(_ margins: [Double]) -> Double {
    BinaryCurves.rocAUC(positive: yTest.map { $0 == 1 }, scores: margins)!
}

if only == nil || only == "logistic" {
    var fits: [Double] = []
    var model: LinearModel?
    for _ in 0..<repeats {
        start = now()
        // scikit-learn's default C = 1 is l2 = 1 / rows in Sluice's mean-loss form.
        model = try LogisticRegression(l2: 1 / Double(xTrain.rowCount), maxIterations: 100, tolerance: 1e-4)
            .fit(xTrain, labels: yTrain)
        fits.append(now() - start)
    }
    start = now()
    let margins = model!.margins(xTest)
    let predictSeconds = now() - start
    emit([
        "learner": "sluice logistic", "fit_s": median(fits), "fits": fits, "auc": auc(margins),
        "predict_rows_per_s": Double(xTest.rowCount) / predictSeconds,
        "iterations": model!.convergence.iterations, "converged": model!.convergence.converged,
    ])
}

if only == nil || only == "gbdt" {
    var fits: [Double] = []
    var model: TreeEnsemble?
    for _ in 0..<repeats {
        var learner = GradientBoosting(objective: .logistic)
        learner.rounds = rounds
        learner.maxDepth = 6
        learner.learningRate = 0.3
        start = now()
        model = try learner.fit(xTrain, labels: yTrain, classes: 2)
        fits.append(now() - start)
    }
    start = now()
    let margins = model!.margins(xTest)
    let predictSeconds = now() - start
    emit([
        "learner": "sluice gbdt", "fit_s": median(fits), "fits": fits, "auc": auc(margins),
        "predict_rows_per_s": Double(xTest.rowCount) / predictSeconds, "rounds": model!.rounds,
        "leaves": model!.trees.map(\.leafCount).reduce(0, +),
    ])
}
