import Foundation
import SluiceTesting

/// A generated two-class data set and the standard pipeline over it in YAML (registering model `m` with
/// `promote: first`): what the gc and registry stress tests run as real `sluice run` processes.
enum TwoClassPipeline {
    /// Writes `data.csv` (columns x1, x2, label; `rows` rows, the same every time) and the pipeline `name` to
    /// `file` in `directory`.
    static func write(in directory: TemporaryDirectory, name: String, file: String, rows: Int) throws {
        var csv = "x1,x2,label\n"
        var state: UInt64 = 7
        func next() -> Double {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Double(state >> 11) / Double(1 << 53)
        }
        for _ in 0..<rows {
            let (a, b) = (next(), next())
            csv += String(format: "%.6f,%.6f,%@\n", a, b, a + b + (next() - 0.5) * 0.4 > 1 ? "yes" : "no")
        }
        try Data(csv.utf8).write(to: directory.path("data.csv"))
        try Data(
            """
            pipeline: \(name)
            steps:
              ingest: {component: ingest_csv, parameters: {paths: [data.csv]}}
              statistics: {component: statistics, inputs: {table: ingest.table}}
              schema: {component: schema, inputs: {statistics: statistics.statistics}}
              validate: {component: validate, inputs: {statistics: statistics.statistics, schema: schema}}
              split: {component: split, inputs: {table: ingest.table, validation: validate}}
              transform: {component: transform, inputs: {train: split.train}, parameters: {label: label}}
              train:
                component: train
                inputs: {train: split.train, transforms: transform}
                parameters: {label: label, learner: gbdt, rounds: 5, max_depth: 3}
              evaluate:
                component: evaluate
                inputs: {eval: split.eval, transforms: transform, model: train, dataset: ingest.info,
                         statistics: statistics.statistics}
                parameters: {label: label}
              register:
                component: register
                inputs: {eval: split.eval, bundle: evaluate.bundle, evaluation: evaluate.evaluation}
                parameters: {model: m, label: label, promote: first, thresholds: [{metric: accuracy, at_least: 0.5}]}

            """.utf8
        ).write(to: directory.path(file))
    }
}
