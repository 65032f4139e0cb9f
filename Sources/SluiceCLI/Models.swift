import ArgumentParser
import Foundation
import SluiceComponents
import SluiceCore
import SluiceML

/// `sluice models`: the model registry.
struct ModelsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "models",
        abstract: "List, inspect, promote, roll back and export registered models.",
        subcommands: [List.self, Show.self, Promote.self, Rollback.self, Export.self])

    static var user: String { ProcessInfo.processInfo.environment["USER"] ?? NSUserName() }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Registered models with their production version.")
        @Flag(help: "Print JSON.") var json = false

        @OptionGroup var stackOption: StackOption

        func run() async throws {
            let workspace = try await Workspace.open(create: false, stack: stackOption.name)
            let models = try await workspace.metadata.registeredModels()
            if json {
                print(try jsonString(models))
                return
            }
            guard !models.isEmpty else {
                print("No registered models yet. Run `sluice demo` to train and register one.")
                return
            }
            let rows = models.map { model in
                [
                    model.name, String(model.versions), String(model.latestVersion),
                    model.productionVersion.map(String.init) ?? "–", model.stagingVersion.map(String.init) ?? "–",
                ]
            }
            print(
                renderTable(["MODEL", "VERSIONS", "LATEST", "PRODUCTION", "STAGING"], rows, terminal: .standardOutput))
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "A model's versions, stages and stage history; with @VERSION, its model card too.",
            discussion: "Examples: sluice models show penguins · sluice models show penguins@production")
        @Argument(help: "MODEL, MODEL@STAGE or MODEL@VERSION.") var reference: String
        @Flag(help: "Print JSON.") var json = false

        @OptionGroup var stackOption: StackOption

        func run() async throws {
            let workspace = try await Workspace.open(create: false, stack: stackOption.name)
            let registry = workspace.metadata
            let model = String(reference.split(separator: "@").first ?? "")
            let versions = try await registry.modelVersions(model)
            guard !versions.isEmpty else {
                throw RegistryRules.unknownModel(model, known: try await registry.registeredModels())
            }
            let changes = try await registry.stageChanges(model)
            if json {
                struct Output: Encodable {
                    var versions: [ModelVersion]
                    var stageChanges: [StageChange]
                }
                print(try jsonString(Output(versions: versions, stageChanges: changes)))
                return
            }
            let t = Terminal.standardOutput
            print(t.paint("Model \(model)", .bold))
            let metricNames = Array(Set(versions.flatMap { $0.metrics.keys })).sorted()
                .filter { ["accuracy", "macro_f1", "roc_auc", "log_loss", "rmse", "r2"].contains($0) }
            let rows = versions.map { v in
                [String(v.version), v.stage.rawValue, v.runID ?? "–", formatDate(v.createdAt), v.createdBy]
                    + metricNames.map { name in v.metrics[name].map { String(format: "%.4f", $0) } ?? "–" }
            }
            print(
                renderTable(
                    ["VERSION", "STAGE", "RUN", "CREATED", "BY"] + metricNames.map { $0.uppercased() }, rows,
                    terminal: .standardOutput))
            if !changes.isEmpty {
                print("\n" + t.paint("Stage changes", .bold))
                for change in changes {
                    print(
                        "  \(formatDate(change.at))  v\(change.version) \(change.from) → \(change.to)  by \(change.by): \(change.reason)"
                    )
                }
            }
            if reference.contains("@") {
                let version = try await registry.resolve(reference)
                let bundle = try ModelBundle.load(
                    try await bundleData(of: version, in: registry, artifacts: workspace.artifacts))
                print("\n" + t.paint("Version \(version.version)", .bold) + " bundle \(version.artifactID)")
                if let dataset = version.datasetVersion { print("  dataset version \(dataset)") }
                if let stored = try await registry.profile(model, version: version.version) {
                    if let profile = try? ModelProfile(json: stored.json) {
                        print(profile.summary)
                    } else {
                        print(
                            "  the stored profile (\(stored.uri)) is not readable by this Sluice: sluice profile \(model)@\(version.version) measures it again"
                        )
                    }
                } else {
                    print("  not profiled yet: sluice profile \(model)@\(version.version)")
                }
                print("")
                print(bundle.card)
            }
        }
    }

    struct Promote: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move a version to a stage (production by default), recording who and why.",
            discussion: "Example: sluice models promote penguins 3 --reason 'better macro F1 on the new data'")
        @Argument(help: "The model.") var model: String
        @Argument(help: "The version number.") var version: Int
        @Option(help: "none, staging, production or archived.") var to: String = "production"
        @Option(help: "Why (recorded).") var reason: String = ""
        @Option(
            help: ArgumentHelp(
                "Move only if this version (or none) is in production when the move commits.",
                discussion: "Without it the move expects what the registry holds when the command reads it; either "
                    + "way a promotion that lands first stops the move (exit status 4) and changes nothing.",
                valueName: "VERSION|none"))
        var expectProduction: String?

        @OptionGroup var stackOption: StackOption

        func run() async throws {
            guard let stage = ModelStage(rawValue: to) else {
                throw ValidationError("--to must be one of none, staging, production, archived.")
            }
            let expected = try expectProduction.map { text -> Int? in
                guard let version = StageExpectation.productionVersion(parsing: text) else {
                    throw ValidationError("--expect-production takes a version number or 'none', not '\(text)'.")
                }
                return version
            }
            let workspace = try await Workspace.open(create: false, stack: stackOption.name)
            let registry = workspace.metadata
            let expectation = try await registry.expectation(model, moving: version, production: expected)
            let moved = try await registry.moveModelVersion(
                model, version: version, to: stage, expecting: expectation, by: ModelsCommand.user, reason: reason)
            var line = "\(moved.model)@\(moved.version) is now in \(moved.stage)"
            // The move held to its expectation, so the version it expected in production is the one it replaced.
            if stage == .production, let replaced = expectation.production ?? nil, replaced != moved.version {
                line += " (v\(replaced) archived)"
            }
            print(line)
        }
    }

    struct Rollback: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Put back in production the version that was there before the current one.")
        @Argument(help: "The model.") var model: String
        @Option(help: "Why (recorded).") var reason: String = ""
        @Option(
            help: ArgumentHelp(
                "Roll back only if this version is the one in production when the move commits.",
                discussion: "Without it the rollback expects the production version it reads; either way a "
                    + "promotion that lands first stops it (exit status 4) and changes nothing.",
                valueName: "VERSION"))
        var expectProduction: String?

        @OptionGroup var stackOption: StackOption

        func run() async throws {
            var expected: Int?
            if let text = expectProduction {
                guard let version = StageExpectation.productionVersion(parsing: text), let version else {
                    throw ValidationError("--expect-production takes the version number in production, not '\(text)'.")
                }
                expected = version
            }
            let workspace = try await Workspace.open(create: false, stack: stackOption.name)
            let restored = try await workspace.metadata.rollback(
                model, expectedProduction: expected, by: ModelsCommand.user, reason: reason)
            print("\(restored.model)@\(restored.version) is back in production")
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a version's model bundle (JSON) to a file, or its model card with --card.",
            discussion: "Examples: sluice models export penguins@production -o penguins.json")
        @Argument(help: "MODEL, MODEL@STAGE or MODEL@VERSION.") var reference: String
        @Option(name: .shortAndLong, help: "The file to write (default: standard output).") var output: String?
        @Flag(help: "Write the model card (Markdown) instead of the bundle.") var card = false

        @OptionGroup var stackOption: StackOption

        func run() async throws {
            let workspace = try await Workspace.open(create: false, stack: stackOption.name)
            let registry = workspace.metadata
            let version = try await registry.resolve(reference)
            let bundle = try ModelBundle.load(
                try await bundleData(of: version, in: registry, artifacts: workspace.artifacts))
            let data = card ? Data(bundle.card.utf8) : try bundle.serialized()
            if let output {
                try data.write(to: URL(fileURLWithPath: output), options: .atomic)
                printError("wrote \(version.model)@\(version.version) to \(output)")
            } else {
                FileHandle.standardOutput.write(data)
            }
        }
    }
}
