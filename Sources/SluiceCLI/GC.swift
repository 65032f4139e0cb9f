import ArgumentParser
import Foundation
import SluiceCore

/// `sluice gc`: deletes the content of old runs' artifacts, keeping what models and recent runs need.
struct GCCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc",
        abstract: "Delete old runs' artifacts, keeping what registered models and recent runs need.",
        discussion: """
            A run is old when it started more than --older-than ago and is not among the newest --keep-last runs \
            of its pipeline. Its artifacts' content is deleted unless a registered model version's lineage or a \
            kept run needs it; their records stay, marked content_deleted (a deleted artifact is never reused from \
            the cache). Small artifacts packed with others are kept. --dry-run deletes nothing.
            Examples:
              sluice gc --dry-run
              sluice gc --older-than 30d --keep-last 3
            """)

    @Option(help: "Runs younger than this keep their artifacts: 30d, 12h, 45m, 90s.") var olderThan = "30d"
    @Option(help: "The newest runs of each pipeline kept whatever their age.") var keepLast = 3
    @Flag(help: "Report what would be deleted, delete nothing.") var dryRun = false
    @OptionGroup var stackOption: StackOption

    static func seconds(_ text: String) throws -> TimeInterval {
        let units: [Character: TimeInterval] = ["s": 1, "m": 60, "h": 3_600, "d": 86_400, "w": 604_800]
        guard let unit = text.last, let scale = units[unit], let value = Double(text.dropLast()), value >= 0 else {
            throw CLIError(
                problem: "--older-than \(text): not a duration.",
                fix: "write a number and a unit: 90s, 45m, 12h, 30d or 2w.")
        }
        return value * scale
    }

    func run() async throws {
        guard keepLast >= 0 else { throw ValidationError("--keep-last must be 0 or more.") }
        let retention = Retention(olderThan: try Self.seconds(olderThan), keepLast: keepLast)
        let workspace = try await Workspace.open(create: false, stack: stackOption.name)
        let plan = try await retention.plan(metadata: workspace.metadata)
        let t = Terminal.standardOutput
        print(
            "\(plan.oldRuns.count) run\(plan.oldRuns.count == 1 ? "" : "s") started more than \(olderThan) ago "
                + "beyond the newest \(keepLast) of each pipeline")
        print("  kept for registered models' lineage: \(plan.keptForModels.count) artifacts")
        print("  kept because recent runs use them:   \(plan.keptForRuns.count) artifacts")
        print("  kept, packed with others:            \(plan.packed.count) artifacts")
        let size = formatBytes(plan.bytes)
        guard !plan.deletable.isEmpty else { return print("  nothing to delete") }
        if dryRun {
            print("  would delete: \(plan.deletable.count) artifacts, \(size) (dry run: nothing deleted)")
            for artifact in plan.deletable.prefix(20) {
                print("    \(artifact.id)  \(artifact.name)  \(formatBytes(artifact.size))")
            }
            return
        }
        let freed = try await retention.apply(plan, metadata: workspace.metadata, artifacts: workspace.artifacts)
        print("  " + t.paint("deleted \(plan.deletable.count) artifacts, freed \(formatBytes(freed))", .bold))
        await workspace.stack.close()
    }
}
