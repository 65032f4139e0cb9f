import Foundation
import Sluice
import SluiceComponents
import SluiceML
import SluiceStoreSQLite
import SluiceTesting
import Synchronization
import Testing

@Suite("YAML pipelines")
struct YAMLPipelineTests {
    /// The repo's example pipeline with its data path pointed at the project's file.
    func example(_ project: Project) throws -> String {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appending(path: "Examples/penguins.yaml")
        return try String(contentsOf: url, encoding: .utf8).replacingOccurrences(
            of: ".sluice/demo/penguins.csv", with: project.data.path)
    }

    func run(_ text: String, _ project: Project, overrides: [String] = []) async throws -> RunResult {
        let yaml = try YAMLPipeline.parse(text, source: "penguins.yaml")
        var config = yaml.config
        try config.apply(overrides: overrides)
        var baselines: [String: Baseline] = [:]
        for (step, model) in yaml.registeredModels(config: config) {
            baselines[step] = try await Baseline.production(
                of: model, registry: project.store, artifacts: project.engine.engine.artifacts)
        }
        let pipeline = try yaml.build(context: ComponentContext(registry: project.store, baselines: baselines))
        return try await project.engine.run(pipeline, config: config)
    }

    @Test("the example YAML pipeline runs end to end, registers the model, and reruns from the cache")
    func exampleRuns() async throws {
        let project = try Project()
        let text = try example(project)
        let first = try await run(text, project)
        #expect(first.run.status == .completed, "\(first.run.error ?? "")")
        #expect(first.run.pipeline == "penguins-yaml")
        #expect(first.stepRuns.count == 9)
        let registration = try first.value(Registration.self, step: "register")
        #expect(registration.isNew && registration.version?.stage == .production)
        #expect(try first.value(Evaluation.self, step: "evaluate", output: "evaluation").slices.count == 3)
        #expect(first.run.config.contains("rounds: 50"))

        let second = try await run(text, project)
        #expect(second.stepRuns.filter { $0.status == .cached }.count == 8)

        let changed = try await run(text, project, overrides: ["train.rounds=20"])
        let ran = Set(changed.stepRuns.filter { $0.status == .completed }.map(\.stepName))
        #expect(ran == ["train", "evaluate", "register"])
    }

    @Test("wiring mistakes are reported before running, each with file:line:column and a did-you-mean")
    func wiringErrors() throws {
        let text = """
            pipeline: broken
            steps:
              ingest: {component: ingest_csv, parameters: {paths: [x.csv]}}
              stats: {component: statistcs, inputs: {table: ingest.table}}
              schema: {component: schema, inputs: {statistic: ingest.table}}
              validate: {component: validate, inputs: {statistics: ingest.table, schema: schem}}
              split: {component: split, inputs: {table: ingest}}
              fit: {component: transform, inputs: {train: ingest.tabel}}
            """
        let yaml = try YAMLPipeline.parse(text, source: "broken.yaml")
        #expect(throws: ConfigError.self) { try yaml.build(context: ComponentContext(registry: nil)) }
        do {
            _ = try yaml.build(context: ComponentContext(registry: nil))
        } catch {
            let message = "\(error)"
            #expect(message.contains("broken.yaml:4:"))
            #expect(message.contains("unknown component 'statistcs'. Did you mean 'statistics'?"))
            #expect(message.contains("'schema' has no input 'statistic'. Did you mean 'statistics'?"))
            #expect(message.contains("step 'schema' does not wire input 'statistics'"))
            #expect(
                message.contains("input 'validate.statistics' expects DatasetStatistics, but 'ingest.table' is Table"))
            #expect(message.contains("reads step 'schem', which is not in the pipeline. Did you mean 'schema'?"))
            #expect(message.contains("'ingest' has several outputs; say which: ingest.table, ingest.info"))
            #expect(message.contains("step 'ingest' has no output 'tabel'. Did you mean 'table'?"))
        }
    }

    @Test("a misspelt parameter is reported at resolve time with its line and the known parameters")
    func parameterErrors() async throws {
        let project = try Project()
        let text = try example(project).replacingOccurrences(of: "max_depth: 4", with: "max_dept: 4")
        await #expect {
            _ = try await run(text, project)
        } throws: { error in
            let message = "\(error)"
            return message.contains("penguins.yaml:") && message.contains("max_dept")
                && message.contains("Did you mean 'max_depth'?")
        }
    }

    @Test("a renamed parameter (promote_first) still works for a release, with a warning naming the new form")
    func renamedParameter() async throws {
        let project = try Project()
        let warnings = Mutex<[String]>([])
        for (old, promoted) in [("promote_first: true", true), ("promote_first: false", false)] {
            let project = try Project()
            let text = try example(project).replacingOccurrences(of: "promote: first", with: old)
            #expect(text.contains(old))
            let collect: @Sendable (String) -> Void = { message in warnings.withLock { $0.append(message) } }
            let result = try await ConfigWarnings.$report.withValue(collect) { try await run(text, project) }
            #expect(result.run.status == .completed, "\(result.run.error ?? "")")
            #expect(try result.value(Registration.self, step: "register").promoted == promoted)
        }
        let said = warnings.withLock { $0 }
        #expect(
            said.contains { $0.contains("penguins.yaml:") && $0.contains("write `promote: first` instead") }, "\(said)")
        #expect(said.contains { $0.contains("write `promote: never` instead") }, "\(said)")
        // Both names at once, or an old value that is not a boolean, are refused with the fix.
        let both = try example(project).replacingOccurrences(
            of: "promote: first", with: "promote: first\n      promote_first: true")
        await #expect { _ = try await run(both, project) } throws: { "\($0)".contains("sets both 'promote_first'") }
        let text = try example(project).replacingOccurrences(of: "promote: first", with: "promote_first: maybe")
        await #expect { _ = try await run(text, project) } throws: { "\($0)".contains("write `promote: first`") }
    }

    @Test("a cycle is refused")
    func cycle() throws {
        let text = """
            steps:
              a: {component: transform, inputs: {train: b.train}}
              b: {component: split, inputs: {table: c.table, validation: d}}
              c: {component: ingest_csv}
              d: {component: validate, inputs: {statistics: e.statistics, schema: f}}
              e: {component: statistics, inputs: {table: c.table}}
              f: {component: schema, inputs: {statistics: e.statistics}}
              g: {component: split, inputs: {table: c.table, validation: d}}
              h: {component: transform, inputs: {train: h2.train}}
              h2: {component: split, inputs: {table: c.table, validation: d}}
            """
        // No cycle here: the order in the file does not matter.
        _ = try YAMLPipeline.parse(text, source: "ok.yaml").build(context: ComponentContext(registry: nil))
        let cyclic = """
            steps:
              s: {component: statistics, inputs: {table: t.train}}
              v: {component: validate, inputs: {statistics: s.statistics, schema: sc}}
              sc: {component: schema, inputs: {statistics: s.statistics}}
              t: {component: split, inputs: {table: t.eval, validation: v}}
            """
        #expect {
            try YAMLPipeline.parse(cyclic, source: "cyclic.yaml").build(context: ComponentContext(registry: nil))
        } throws: { "\($0)".contains("in a cycle") }
    }
}
