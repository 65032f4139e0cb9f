import ArgumentParser
import Foundation
import SluiceCore

/// `sluice pipelines`: what this executable can run and what the store has seen.
struct PipelinesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pipelines", abstract: "List pipelines.", subcommands: [List.self], defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the pipelines compiled into this executable and those the metadata store has seen.")
        @Flag(help: "Print JSON.") var json = false

        struct Entry: Encodable {
            var name: String
            var steps: [String]?
            var dependencies: [String: [String]]?
            var runCount: Int
            var lastRunAt: Date?
        }

        func run() async throws {
            let compiled = Catalog.pipelines
            let seen = (try? Workspace.open(create: false)).map { workspace in workspace.metadata }
            let records = try await seen?.pipelines() ?? []
            var entries: [Entry] = []
            for name in Set(compiled.map(\.name) + records.map(\.name)).sorted() {
                let pipeline = compiled.first { $0.name == name }
                let record = records.first { $0.name == name }
                entries.append(
                    Entry(
                        name: name, steps: pipeline?.stepNames, dependencies: pipeline?.dependencies,
                        runCount: record?.runCount ?? 0, lastRunAt: record?.lastRunAt))
            }
            if json { return print(try jsonString(entries)) }
            guard !entries.isEmpty else {
                return print("No pipelines: this executable has none compiled in and no runs are recorded.")
            }
            let rows = entries.map { entry in
                [
                    entry.name, entry.steps.map { "\($0.count)" } ?? "-", "\(entry.runCount)",
                    entry.lastRunAt.map(formatDate) ?? "never",
                    entry.steps == nil ? "recorded only" : entry.steps!.joined(separator: ", "),
                ]
            }
            print(
                renderTable(["PIPELINE", "STEPS", "RUNS", "LAST RUN", "STEP NAMES"], rows, terminal: .standardOutput))
        }
    }
}

/// `sluice init`: creates `.sluice/` here.
struct InitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init", abstract: "Create a Sluice project (a .sluice/ folder) in the current directory.")

    func run() async throws {
        let here = Project.currentDirectory
        let existed = FileManager.default.fileExists(atPath: here.appending(path: ".sluice").path)
        let project = try Project.create(at: here)
        let workspace = try Workspace.open(create: false)
        _ = try await workspace.metadata.pipelines()
        print(
            existed
                ? "A Sluice project already exists here: \(project.directory.path)"
                : "Created \(project.directory.path)")
        print("  stack:    \(project.stackFile.path)")
        print("  metadata: \(workspace.metadataLocation)")
        print("  artifacts: \(workspace.artifacts.root.path)")
    }
}
