import ArgumentParser
import Foundation
import SluiceCore
import SluiceStack
import SluiceStorePostgres

/// `sluice stack`: the named stacks of the project's stack file.
struct StackCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stack", abstract: "List the project's stacks and show one opened.",
        subcommands: [List.self, Show.self], defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The stacks in .sluice/stack.yaml.")
        @Flag(help: "Print JSON.") var json = false

        struct Entry: Encodable {
            var name: String
            var isDefault: Bool
            var settings: StackSettings
        }

        func run() async throws {
            let project = try Workspace.requireProject()
            let file = try project.stacks()
            if json {
                return print(
                    try jsonString(
                        file.stacks.map {
                            Entry(name: $0.name, isDefault: $0.name == file.defaultStack, settings: $0.settings)
                        }
                    ))
            }
            let rows = file.stacks.map { entry in
                [
                    (entry.name == file.defaultStack ? "* " : "  ") + entry.name, entry.settings.orchestrator ?? "",
                    entry.settings.metadataStore.map(PostgresURL.redacting) ?? "", entry.settings.artifactStore ?? "",
                ]
            }
            print(renderTable(["STACK", "ORCHESTRATOR", "METADATA", "ARTIFACTS"], rows, terminal: .standardOutput))
            print("(* default; pick another with --stack NAME)")
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Open a stack (the default, or NAME) and show where its records and artifacts are.")
        @Argument(help: "The stack's name (default: the stack file's default).") var name: String?
        @Flag(help: "Print JSON.") var json = false

        struct Details: Encodable {
            var name: String
            var orchestrator: String
            var metadata: String
            var artifacts: String
            var durability: String
            var runs: Int
            var models: Int
        }

        func run() async throws {
            let project = try Workspace.requireProject()
            let stack = try await Stack.open(project: project, name: name)
            let runs = try await stack.metadata.pipelines().reduce(0) { $0 + $1.runCount }
            let models = try await stack.metadata.registeredModels().count
            await stack.close()
            let details = Details(
                name: stack.name, orchestrator: stack.orchestrator.name, metadata: stack.metadataLocation,
                artifacts: stack.artifacts.root.path, durability: stack.settings.durability?.rawValue ?? "process",
                runs: runs, models: models)
            if json { return print(try jsonString(details)) }
            let t = Terminal.standardOutput
            print("\(t.paint("Stack", .bold)) \(details.name)  (\(project.stackFile.path))")
            print("  orchestrator  \(details.orchestrator)")
            print("  metadata      \(details.metadata)  (\(runs) runs, \(models) models)")
            print("  artifacts     \(details.artifacts)")
            print("  durability    \(details.durability)")
        }
    }
}
