import ArgumentParser
import Foundation
import SluiceCore
import SluiceStack

/// `sluice store`: moving a project's records between metadata stores, and checking a store's invariants.
struct StoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "store", abstract: "Move a project's records between metadata stores, or check a store.",
        subcommands: [Copy.self, Check.self])

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the registry's and the run records' invariants on a stack's store.",
            discussion: """
                Reads every model's versions and stage history and the newest runs: version numbers without gaps                 or repeats, at most one production version at every point of the history, each stage change                 starting where the previous one left the version, and every ended run with one final status, an                 end time and no step still running. Exit status 0 when all hold, 1 listing what does not.
                """)
        @Option(help: "Check the newest N runs.") var runs: Int = 100_000
        @OptionGroup var stackOption: StackOption

        func run() async throws {
            let workspace = try await Workspace.open(create: false, stack: stackOption.name)
            let violations =
                try await StoreInvariants.registryViolations(workspace.metadata)
                + StoreInvariants.runViolations(workspace.metadata, limit: runs)
            let models = try await workspace.metadata.registeredModels().count
            guard violations.isEmpty else {
                for line in violations { print(line) }
                printError("\(violations.count) invariant violations in \(workspace.metadataLocation)")
                throw ExitCode(ExitStatus.failed.rawValue)
            }
            print(
                "OK: \(models) models and their stage histories, and the newest runs (up to \(runs)), keep every invariant"
            )
        }
    }

    struct Copy: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Copy runs, artifacts' records, lineage, metrics and the model registry to another stack's store.",
            discussion: """
                Keeps IDs, times and stage history, so `runs list`, `artifacts lineage` and `models show` answer the \
                same on the target. Runs and models the target already has are skipped: an interrupted copy can be \
                run again. Artifact content is not moved: point the target stack's artifact_store at the same files.
                """)
        @Option(help: "The stack to copy into (a name in .sluice/stack.yaml).") var to: String
        @Option(help: "The stack to copy from (default: the stack file's default).") var from: String?

        func run() async throws {
            let project = try Workspace.requireProject()
            let source = try await Stack.open(project: project, name: from)
            guard source.name != to else {
                throw CLIError(problem: "--to names the stack being copied from ('\(to)').", fix: "name another stack.")
            }
            let target = try await Stack.open(project: project, name: to)
            let progress = ProgressLine(label: "copying runs")
            let summary = try await StoreCopy(from: source.metadata, to: target.metadata).run { _ in progress.tick() }
            progress.finish()
            await source.close()
            await target.close()
            print(
                "Copied \(summary.runs) runs (\(summary.stepRuns) step runs, \(summary.artifacts) artifacts' records) "
                    + "and \(summary.models) models from \(source.metadataLocation) to \(target.metadataLocation).")
            if summary.skippedRuns + summary.skippedModels > 0 {
                print("Skipped \(summary.skippedRuns) runs and \(summary.skippedModels) models the target already had.")
            }
            if summary.runningRuns > 0 {
                print(
                    "Left out \(summary.runningRuns) runs still running in \(source.metadataLocation): copy again once "
                        + "they end.")
            }
            if target.artifacts.root != source.artifacts.root {
                print(
                    "Artifact content stays in \(source.artifacts.root.path); stack '\(target.name)' reads "
                        + "\(target.artifacts.root.path): copy the files there (or point it at the same folder).")
            }
        }
    }
}

/// A count of finished items on standard error, redrawn in place on a terminal.
final class ProgressLine: @unchecked Sendable {
    private let label: String
    private var count = 0
    private let terminal = Terminal.standardError

    init(label: String) { self.label = label }

    func tick() {
        count += 1
        if terminal.isInteractive { FileHandle.standardError.write(Data("\r\(label): \(count)".utf8)) }
    }

    func finish() {
        if terminal.isInteractive { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }
}
