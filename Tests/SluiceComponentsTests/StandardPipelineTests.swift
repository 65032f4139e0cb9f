import Foundation
import Sluice
import SluiceComponents
import SluiceML
import SluiceStoreSQLite
import SluiceTesting
import Testing

/// A temporary project: the penguins data in a file, a SQLite store (metadata and registry), an engine.
struct Project {
    let directory: TemporaryDirectory
    let store: SQLiteMetadataStore
    let engine: TestEngine
    let data: URL
    /// Build the pipeline from the repo's YAML example (`Examples/penguins.yaml`) instead of in Swift.
    var viaYAML = false

    init(viaYAML: Bool = false) throws {
        self.viaYAML = viaYAML
        directory = try TemporaryDirectory(prefix: "sluice-components")
        store = try SQLiteMetadataStore(path: directory.path("metadata.sqlite").path)
        engine = try TestEngine(metadata: store, materializers: .standard)
        data = directory.path("penguins.csv")
        try Data(DemoData.penguinsCSV.utf8).write(to: data)
    }

    func options() -> StandardPipeline.Options {
        var options = StandardPipeline.Options(model: "penguins", paths: [data.path], label: "species")
        options.slices = ["island"]
        options.thresholds = [
            MetricThreshold(metric: "accuracy", atLeast: 0.9),
            MetricThreshold(metric: "accuracy", maxDegradation: 0.02),
        ]
        options.rounds = 30
        options.maxDepth = 3
        return options
    }

    func run(_ overrides: [String] = [], options: StandardPipeline.Options? = nil) async throws -> RunResult {
        let baseline = try await Baseline.production(
            of: "penguins", registry: store, artifacts: engine.engine.artifacts)
        let reference = try await TrainingReference.production(
            of: "penguins", registry: store, artifacts: engine.engine.artifacts)
        if viaYAML {
            let example = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().appending(path: "Examples/penguins.yaml")
            let text = try String(contentsOf: example, encoding: .utf8)
                .replacingOccurrences(of: ".sluice/demo/penguins.csv", with: data.path)
            let yaml = try YAMLPipeline.parse(text, source: "penguins.yaml")
            var config = yaml.config
            try config.apply(overrides: ["train.rounds=30", "train.max_depth=3"] + overrides)
            let pipeline = try yaml.build(
                context: ComponentContext(
                    registry: store, baselines: baseline.map { ["register": $0] } ?? [:], reference: reference,
                    artifacts: engine.engine.artifacts))
            return try await engine.run(pipeline, config: config)
        }
        var config = RunConfig()
        try config.apply(overrides: overrides)
        return try await engine.run(
            StandardPipeline.make(
                options ?? self.options(), registry: store, baseline: baseline, reference: reference,
                artifacts: engine.engine.artifacts), config: config)
    }

    /// Builds the pipeline against the registry as it is now, lets `meanwhile` change the registry (a teammate's
    /// promotion while the run goes on), then runs it.
    func run(
        _ overrides: [String], options: StandardPipeline.Options, meanwhile: () async throws -> Void
    ) async throws -> RunResult {
        let baseline = try await Baseline.production(
            of: "penguins", registry: store, artifacts: engine.engine.artifacts)
        let pipeline = StandardPipeline.make(
            options, registry: store, baseline: baseline, artifacts: engine.engine.artifacts)
        try await meanwhile()
        var config = RunConfig()
        try config.apply(overrides: overrides)
        return try await engine.run(pipeline, config: config)
    }
}

@Suite("Standard pipeline, built in Swift and from YAML")
struct StandardPipelineTests {
    @Test(
        "the standard pipeline runs end to end: every artifact, a registered production version, lineage both ways",
        arguments: [false, true])
    func endToEnd(viaYAML: Bool) async throws {
        let project = try Project(viaYAML: viaYAML)
        let result = try await project.run()
        #expect(result.run.status == .completed, "\(result.run.error ?? "")")
        #expect(result.stepRuns.count == 9)

        let info = try result.value(DatasetInfo.self, step: "ingest", output: "info")
        #expect(info.rows == 344)
        #expect(info.version.hasPrefix("sha256:"))
        let statistics = try result.value(DatasetStatistics.self, step: "statistics", output: "statistics")
        #expect(statistics["bill_length_mm"]?.missing == 2)
        let report = try result.value(FileArtifact.self, step: "statistics", output: "report")
        #expect(try String(contentsOf: report.url, encoding: .utf8).contains("<svg"))
        let schema = try result.value(Schema.self, step: "schema")
        #expect(schema.columns.map(\.name).contains("species"))
        #expect(try result.value(Validation.self, step: "validate").passed)
        let sets = try (
            result.value(Table.self, step: "split", output: "train"),
            result.value(Table.self, step: "split", output: "eval")
        )
        #expect(sets.0.rowCount + sets.1.rowCount == 344)
        #expect(abs(sets.1.rowCount - 69) <= 2)  // stratified 20%
        let model = try result.value(TrainedModel.self, step: "train")
        #expect(model.task == .classification(classes: ["Adelie", "Chinstrap", "Gentoo"]))
        let evaluation = try result.value(Evaluation.self, step: "evaluate", output: "evaluation")
        #expect(try #require(evaluation.overall.value("accuracy")) > 0.9)
        #expect(Set(evaluation.slices.map(\.value)) == ["Biscoe", "Dream", "Torgersen"])
        let bundle = try result.value(ModelBundle.self, step: "evaluate", output: "bundle")
        #expect(bundle.datasetVersion == info.version)
        #expect(bundle.trainingRun == nil, "content names no run: the same inputs give the same bundle bytes")
        #expect(bundle.signature.inputs.first { $0.name == "island" }?.required == true)
        #expect(bundle.signature.inputs.first { $0.name == "sex" }?.required == false)
        #expect(bundle.card.contains("# Model card: penguins"))
        // The bundle predicts from raw rows exactly what the evaluation measured.
        let predictions = try bundle.predict(sets.1)
        #expect(predictions.values == model.predict(try bundle.transforms.transform(sets.1)).values)
        let one = try bundle.predict(rows: [
            [
                "island": .text("Biscoe"), "bill_length_mm": .number(47.5), "bill_depth_mm": .number(14.2),
                "flipper_length_mm": .number(220), "body_mass_g": .number(5200), "sex": .text("male"),
                "year": .number(2008),
            ]
        ])
        #expect(one.predictedClasses == [2])  // a Gentoo

        let registration = try result.value(Registration.self, step: "register")
        #expect(registration.blessing.passed)
        #expect(registration.isNew)
        let version = try #require(try await project.store.productionVersion("penguins"))
        #expect(version.version == 1)
        #expect(version.runID == result.run.id.description)
        #expect(version.datasetVersion == info.version)
        #expect(version.artifactID == result.outputs["evaluate"]?["bundle"]?.id)

        // Lineage: from the model version back to the raw data, and from the data forward to the model.
        let bundleRecord = try #require(try await project.store.artifact(version.artifactID))
        let upstream = try await Lineage.trace(bundleRecord, .upstream, in: project.store)
        let ingested = try #require(upstream.artifacts.first { $0.name == "table" })
        #expect(ingested.properties["dataset_version"] == .string(info.version))
        let downstream = try await Lineage.trace(ingested, .downstream, in: project.store)
        #expect(downstream.artifacts.contains { $0.id == version.artifactID })
    }

    @Test("promote: when_blessed promotes the first version, not a worse one, and one that matches production")
    func promotionWhenBlessed() async throws {
        let project = try Project()
        var options = project.options()
        options.promote = .whenBlessed
        options.thresholds = [MetricThreshold(metric: "accuracy", atLeast: 0.5)]
        func accuracy(_ result: RunResult) throws -> Double {
            try #require(
                try result.value(Evaluation.self, step: "evaluate", output: "evaluation").overall.value("accuracy"))
        }

        let first = try await project.run(options: options)
        let registered = try first.value(Registration.self, step: "register")
        #expect(registered.promoted && registered.version?.stage == .production)

        // Blessed (above 0.5) but worse than production on the same rows: registered, not promoted.
        let worse = try await project.run(["train.rounds=1", "train.max_depth=1"], options: options)
        try #require(try accuracy(worse) < accuracy(first))
        let notPromoted = try worse.value(Registration.self, step: "register")
        #expect(notPromoted.blessing.passed && notPromoted.isNew && !notPromoted.promoted)
        #expect(notPromoted.version?.stage != .production)
        #expect(try await project.store.productionVersion("penguins")?.version == 1)

        // As good as production or better: promoted, and the stage history says by which run and why.
        let better = try await project.run(["train.rounds=60", "train.max_depth=4"], options: options)
        try #require(try accuracy(better) >= accuracy(first))
        let promoted = try better.value(Registration.self, step: "register")
        #expect(promoted.promoted)
        let production = try #require(try await project.store.productionVersion("penguins"))
        #expect(production.version == promoted.version?.version && production.version == 3)
        let change = try #require(try await project.store.stageChanges("penguins").last)
        #expect(change.version == 3 && change.to == .production)
        #expect(change.reason.contains("run \(better.run.id)"))
        #expect(change.reason.contains("beats or matches production v1"))
        #expect(better.stepRun("register")?.properties["promoted"] == .bool(true))
    }

    @Test(
        "a promotion made during the run is what a when_blessed candidate is compared with, on the same rows"
    )
    func promotionDuringRun() async throws {
        let project = try Project()
        var options = project.options()
        options.thresholds = [MetricThreshold(metric: "accuracy", atLeast: 0.5)]
        func accuracy(_ result: RunResult) throws -> Double {
            try #require(
                try result.value(Evaluation.self, step: "evaluate", output: "evaluation").overall.value("accuracy"))
        }
        // v1: a strong model in production; v2: a weak one, registered only.
        options.promote = .first
        let strong = try await project.run(["train.rounds=60", "train.max_depth=4"], options: options)
        options.promote = .never
        let weak = try await project.run(["train.rounds=1", "train.max_depth=1"], options: options)
        try #require(try accuracy(weak) < accuracy(strong))
        _ = try await project.store.moveModelVersion("penguins", version: 2, to: .production, by: "ann", reason: "")

        // A weak candidate's run starts against v2 in production; meanwhile v1 is put back. The candidate beats v2
        // but not v1, which it would replace: it is compared with v1 on its rows and not promoted.
        options.promote = .whenBlessed
        let candidate = try await project.run(["train.rounds=2", "train.max_depth=1"], options: options) {
            _ = try await project.store.rollback("penguins", by: "bob", reason: "v2 is worse")
        }
        try #require(try accuracy(candidate) < accuracy(strong))
        let registration = try candidate.value(Registration.self, step: "register")
        #expect(registration.baseline?.version == 2, "the run started against v2")
        #expect(!registration.promoted)
        let why = try #require(candidate.stepRun("register")?.properties["promotion"]?.description)
        #expect(why.contains("does not beat or match production v1 on the same rows"), "\(why)")
        #expect(try await project.store.productionVersion("penguins")?.version == 1)

        // A candidate as good as v1, started against v1 while a teammate promotes v2 again: it is compared with v2,
        // beats it, and replaces v2 (not v1), saying so.
        let good = try await project.run(["train.rounds=70", "train.max_depth=4"], options: options) {
            _ = try await project.store.moveModelVersion(
                "penguins", version: 2, to: .production, by: "carol", reason: "")
        }
        let promoted = try good.value(Registration.self, step: "register")
        #expect(promoted.baseline?.version == 1 && promoted.promoted)
        let change = try #require(try await project.store.stageChanges("penguins").last)
        #expect(change.to == .production && change.version == promoted.version?.version)
        #expect(change.reason.contains("beats or matches production v2"), "\(change.reason)")
        let replaced = try await project.store.stageChanges("penguins").dropLast().last
        #expect(replaced?.version == 2 && replaced?.to == .archived)
        try await ModelRegistryContract.expectInvariants(project.store)
    }

    @Test(
        "a second run reuses every step but register, which finds the version already registered",
        arguments: [false, true])
    func secondRunCached(viaYAML: Bool) async throws {
        let project = try Project(viaYAML: viaYAML)
        _ = try await project.run()
        // There is a production version now: schema and validate check against it once (their keys hold it); the
        // same data gives the same schema and report, so every step after them is reused.
        let checked = try await project.run()
        #expect(
            Set(checked.stepRuns.filter { $0.status == .completed }.map(\.stepName)) == [
                "schema", "validate", "register",
            ])
        let second = try await project.run()
        #expect(second.run.status == .completed)
        #expect(second.stepRuns.filter { $0.status == .cached }.count == 8)
        #expect(second.stepRun("register")?.status == .completed)
        let registration = try second.value(Registration.self, step: "register")
        #expect(!registration.isNew)
        #expect(registration.version?.version == 1)
        #expect(registration.baseline?.version == 1)
        #expect(try await project.store.modelVersions("penguins").count == 1)
    }

    @Test(
        "a changed training parameter re-runs exactly train, evaluate and register; the new version is registered",
        arguments: [false, true])
    func changedParameter(viaYAML: Bool) async throws {
        let project = try Project(viaYAML: viaYAML)
        _ = try await project.run()
        _ = try await project.run()  // schema and validate check against the new production version once
        let changed = try await project.run(["train.rounds=12"])
        let ran = Set(changed.stepRuns.filter { $0.status == .completed }.map(\.stepName))
        #expect(ran == ["train", "evaluate", "register"])
        let registration = try changed.value(Registration.self, step: "register")
        #expect(registration.blessing.checks.contains { $0.baseline != nil })
        if registration.blessing.passed {
            #expect(registration.version?.version == 2)
            #expect(try await project.store.productionVersion("penguins")?.version == 1)  // promotion is explicit
        }
    }

    @Test(
        "a drifted dataset stops the pipeline at validation with a readable report, and nothing is registered",
        arguments: [false, true])
    func driftStopsAtValidation(viaYAML: Bool) async throws {
        let project = try Project(viaYAML: viaYAML)
        let first = try await project.run()
        let schema = try first.value(Schema.self, step: "schema")
        let schemaFile = project.directory.path("schema.yaml")
        try schema.yaml().write(to: schemaFile, atomically: true, encoding: .utf8)
        // Drifted data: body mass in pounds, and a new island.
        var lines = DemoData.penguinsCSV.split(separator: "\n").map(String.init)
        for k in 1..<lines.count {
            var fields = lines[k].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            if let grams = Double(fields[5]) { fields[5] = String(Int(grams * 2.2046)) }
            if k % 5 == 0 { fields[1] = "Anvers" }
            lines[k] = fields.joined(separator: ",")
        }
        try lines.joined(separator: "\n").write(to: project.data, atomically: true, encoding: .utf8)
        let drifted = try await project.run(["schema.curated=\(schemaFile.path)"])
        #expect(drifted.run.status == .failed)
        #expect(drifted.stepRun("ingest")?.status == .completed)  // new content, new version: not cached
        let validate = try #require(drifted.stepRun("validate"))
        #expect(validate.status == .failed)
        let message = try #require(validate.error)
        #expect(message.contains("body_mass_g"))
        #expect(message.contains("Anvers"))
        #expect(message.contains("To fix"))
        for step in ["split", "transform", "train", "evaluate", "register"] {
            #expect(drifted.stepRun(step)?.status == .skipped, "\(step)")
        }
        #expect(try await project.store.modelVersions("penguins").count == 1)
    }

    @Test(
        "new data is validated against the production model's training data, not a schema inferred from itself",
        arguments: [false, true])
    func validatesAgainstProduction(viaYAML: Bool) async throws {
        let project = try Project(viaYAML: viaYAML)
        let first = try await project.run()
        #expect(first.stepRun("schema")?.properties["schema_source"] == .string("inferred"))
        let version = try #require(try await project.store.productionVersion("penguins"))

        // A second arrival: flipper length in tenths of a millimetre instead of millimetres, and a third of the rows
        // on an island never seen. No curated schema: the reference is what penguins@1 was trained on.
        var lines = DemoData.penguinsCSV.split(separator: "\n").map(String.init)
        for k in 1..<lines.count {
            var fields = lines[k].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            if let millimetres = Int(fields[4]) { fields[4] = String(millimetres * 10) }
            if k % 3 == 0 { fields[1] = "Anvers" }
            lines[k] = fields.joined(separator: ",")
        }
        try lines.joined(separator: "\n").write(to: project.data, atomically: true, encoding: .utf8)
        let drifted = try await project.run()
        #expect(drifted.run.status == .failed)
        let schemaRun = try #require(drifted.stepRun("schema"))
        #expect(
            schemaRun.properties["schema_source"] == .string("penguins@1 (dataset version \(version.datasetVersion!))"))
        let validate = try #require(drifted.stepRun("validate"))
        #expect(validate.status == .failed)
        let message = try #require(validate.error)
        #expect(message.contains("what penguins@1 (dataset version \(version.datasetVersion!)) was trained on"))
        #expect(message.contains("flipper_length_mm: [out_of_range]"), "\(message)")
        #expect(message.contains("flipper_length_mm: [drift]"), "\(message)")
        #expect(message.contains("island: [unseen_categories]") && message.contains("'Anvers'"), "\(message)")
        #expect(
            validate.properties["checked_against"] == .string("penguins@1 (dataset version \(version.datasetVersion!))")
        )
        for step in ["split", "train", "register"] {
            #expect(drifted.stepRun(step)?.status == .skipped, "\(step)")
        }
        #expect(try await project.store.modelVersions("penguins").count == 1)

        // The very data penguins@1 was trained on: checked as it was then (no drift to itself), so the steps after
        // validation are reused from the first run.
        try Data(DemoData.penguinsCSV.utf8).write(to: project.data)
        let good = try await project.run()
        #expect(good.run.status == .completed, "\(good.run.error ?? "")")
        #expect(
            good.stepRun("schema")?.properties["schema_source"]
                == .string("the training data of penguins@1 (dataset version \(version.datasetVersion!))"))
        #expect(try good.value(Validation.self, step: "validate").passed)
        #expect(good.stepRun("train")?.status == .cached)
    }

    @Test("validation can warn instead of stopping", arguments: [false, true])
    func warnOnly(viaYAML: Bool) async throws {
        let project = try Project(viaYAML: viaYAML)
        let first = try await project.run()
        let schemaFile = project.directory.path("schema.yaml")
        var schema = try first.value(Schema.self, step: "schema")
        schema.columns.removeAll { $0.name == "year" }  // now an unexpected column
        try schema.yaml().write(to: schemaFile, atomically: true, encoding: .utf8)
        let warned = try await project.run(["schema.curated=\(schemaFile.path)", "validate.warn_only=true"])
        #expect(warned.run.status == .completed)
        #expect(try warned.value(Validation.self, step: "validate").passed == false)
    }

    @Test("a binary model's bundle, with infinite ROC thresholds, loads back from the artifact store")
    func binaryBundleFromArtifacts() async throws {
        let project = try Project()
        var lines = DemoData.penguinsCSV.split(separator: "\n").map(String.init)
        lines = [lines[0]] + lines.dropFirst().filter { !$0.hasPrefix("Chinstrap") }  // two species: binary
        try lines.joined(separator: "\n").write(to: project.data, atomically: true, encoding: .utf8)
        let result = try await project.run()
        #expect(result.run.status == .completed, "\(result.run.error ?? "")")
        let version = try #require(try await project.store.productionVersion("penguins"))
        let bundle = try ModelBundle.load(
            try await bundleData(of: version, in: project.store, artifacts: project.engine.engine.artifacts))
        #expect(bundle.evaluation?.overall.value("roc_auc") != nil)
        guard case .classification(let metrics)? = bundle.evaluation?.overall else {
            Issue.record("expected classification metrics")
            return
        }
        #expect(metrics.rocCurve?.first?.threshold == .infinity)
    }
}
