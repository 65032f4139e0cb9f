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

        @OptionGroup var stackOption: StackOption

        func run() async throws {
            let compiled = Catalog.pipelines
            let seen = (try? await Workspace.open(create: false, stack: stackOption.name)).map { workspace in
                workspace.metadata
            }
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

    @Option(help: "The metadata store of the new project's local stack: a SQLite file or postgres://USER@HOST:PORT/DB.")
    var metadata: String?
    @Option(help: "The artifact store folder of the new project's local stack (a shared path for a team).")
    var artifacts: String?
    @Option(help: "The environment variable that holds the PostgreSQL password.") var passwordEnv: String?
    @Option(help: "A file that holds the PostgreSQL password.") var passwordFile: String?

    @OptionGroup var stackOption: StackOption

    func run() async throws {
        let here = Project.currentDirectory
        let existing = Project(root: here)
        let existed = FileManager.default.fileExists(atPath: existing.stackFile.path)
        let settings = StackSettings(
            artifactStore: artifacts, metadataStore: metadata, passwordEnv: passwordEnv, passwordFile: passwordFile)
        if existed && settings != StackSettings() {
            throw CLIError(
                problem: "\(existing.stackFile.path) already exists; `sluice init` does not change it.",
                fix: "edit that file (add a stack under `stacks:`), or run `sluice init` in a new folder.")
        }
        let project = try Project.create(at: here, settings: settings)
        // Opening the stack checks it: the database is reachable, the schema is migrated.
        let workspace = try await Workspace.open(create: false, stack: stackOption.name)
        _ = try await workspace.metadata.pipelines()
        await workspace.stack.close()
        print(
            existed
                ? "A Sluice project already exists here: \(project.directory.path)"
                : "Created \(project.directory.path)")
        print("  stack:     \(workspace.stack.name) in \(project.stackFile.path)")
        print("  metadata:  \(workspace.metadataLocation)")
        print("  artifacts: \(workspace.artifacts.root.path)")
    }
}
