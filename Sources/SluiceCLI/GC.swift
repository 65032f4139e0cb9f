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
            the cache). Small artifacts packed with others are kept. Shard folders that sharded steps' jobs left \
            when their run ended without merging them (a failed shard) are deleted too. --dry-run deletes nothing.
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

    /// The folders under `ARTIFACTS/.shards` whose step run's run has ended (the merge would have removed them),
    /// or, with no record of the step run, that were last changed more than `olderThan` ago; with their sizes.
    static func abandonedShardFolders(in root: URL, metadata: any MetadataStore, olderThan: TimeInterval)
        async throws -> [(url: URL, bytes: Int64)]
    {
        let shards = root.appending(path: ".shards", directoryHint: .isDirectory)
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: shards.path) else { return [] }
        var found: [(URL, Int64)] = []
        for name in names.sorted() {
            let folder = shards.appending(path: name, directoryHint: .isDirectory)
            if let stepRun = try await metadata.stepRun(name) {
                guard let run = try await metadata.run(stepRun.runID), run.status != .running else { continue }
            } else {
                let changed =
                    (try? FileManager.default.attributesOfItem(atPath: folder.path)[.modificationDate] as? Date)
                    ?? Date()
                guard Date().timeIntervalSince(changed) >= olderThan else { continue }
            }
            var bytes: Int64 = 0
            let files = FileManager.default.enumerator(at: folder, includingPropertiesForKeys: [.fileSizeKey])
            while let file = files?.nextObject() as? URL {
                bytes += Int64((try? file.resourceValues(forKeys: [.fileSizeKey]).fileSize) ?? 0)
            }
            found.append((folder, bytes))
        }
        return found
    }

    func run() async throws {
        guard keepLast >= 0 else { throw ValidationError("--keep-last must be 0 or more.") }
        let retention = Retention(olderThan: try Self.seconds(olderThan), keepLast: keepLast)
        let workspace = try await Workspace.open(create: false, stack: stackOption.name)
        let t = Terminal.standardOutput
        // Shard folders a sharded step's jobs left when its run ended without merging them (a failed shard).
        let leftovers = try await Self.abandonedShardFolders(
            in: workspace.artifacts.root, metadata: workspace.metadata, olderThan: retention.olderThan)
        if !leftovers.isEmpty {
            let bytes = formatBytes(leftovers.reduce(0) { $0 + $1.bytes })
            if dryRun {
                print("\(leftovers.count) shard folders of ended step runs, \(bytes) (dry run: nothing deleted)")
            } else {
                for folder in leftovers { try FileManager.default.removeItem(at: folder.url) }
                print(t.paint("deleted \(leftovers.count) shard folders of ended step runs, freed \(bytes)", .bold))
            }
        }
        // Runs deleted (`sluice runs delete`) longer ago than the retention period go whatever their rank.
        let deleted = try await workspace.stack.tracking.runsDeleted(
            before: Date().addingTimeInterval(-retention.olderThan))
        let plan = try await retention.plan(metadata: workspace.metadata, deletedRuns: deleted)
        print(
            "\(plan.oldRuns.count) run\(plan.oldRuns.count == 1 ? "" : "s") started more than \(olderThan) ago "
                + "beyond the newest \(keepLast) of each pipeline, or deleted more than \(olderThan) ago")
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
        let outcome = try await retention.apply(plan, metadata: workspace.metadata, artifacts: workspace.artifacts)
        print("  " + t.paint("deleted \(outcome.deleted) artifacts, freed \(formatBytes(outcome.freed))", .bold))
        if outcome.keptSince > 0 {
            print("  kept \(outcome.keptSince) artifacts a run or a model version started using while gc planned")
        }
        await workspace.stack.close()
    }
}
