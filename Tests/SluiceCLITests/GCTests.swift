import Foundation
import SluiceCore
import SluiceStoreSQLite
import SluiceTesting
import Testing

@Suite("sluice gc: old runs' artifacts deleted, registered models and their lineage kept")
struct GCTests {
    /// The files of the project's artifact store (content that is not packed with others).
    func contentFiles(_ directory: TemporaryDirectory) -> Set<String> {
        let root = directory.path(".sluice/artifacts/sha256").path
        return Set((FileManager.default.subpaths(atPath: root) ?? []).filter { !$0.contains("/") })
    }

    @Test("a dry run deletes nothing; gc deletes only an unregistered old run's own outputs and marks their records")
    func retention() async throws {
        let directory = try TemporaryDirectory(prefix: "sluice-gc")
        try TwoClassPipeline.write(in: directory, name: "gcdemo", file: "p.yaml", rows: 6_000)
        // Run 1 registers m@1; run 2 is not blessed (registers nothing); run 3 registers m@2.
        let notBlessed = ["--set", "register.thresholds=[{metric: accuracy, at_least: 1.1}]"]
        for extra in [
            ["--set", "train.rounds=5"], ["--set", "train.rounds=6"] + notBlessed, ["--set", "train.rounds=7"],
        ] {
            let run = try await CommandProcess.run("sluice", ["run", "p.yaml"] + extra, in: directory.url)
            #expect(run.status == 0, "\(run.errors)")
        }
        let store = try SQLiteMetadataStore(path: directory.path(".sluice/metadata.sqlite").path)
        #expect(try await store.modelVersions("m").count == 2)
        let before = contentFiles(directory)

        let dry = try await CommandProcess.run(
            "sluice", ["gc", "--older-than", "0s", "--keep-last", "1", "--dry-run"], in: directory.url)
        #expect(dry.status == 0, "\(dry.errors)")
        #expect(dry.output.contains("2 runs started more than 0s ago"), "\(dry.output)")
        #expect(dry.output.contains("would delete"), "\(dry.output)")
        #expect(contentFiles(directory) == before, "a dry run deletes nothing")
        let listed = dry.output.split(separator: "\n").compactMap { line in
            line.split(separator: " ").first { $0.hasPrefix("art-") }.map(String.init)
        }
        try #require(!listed.isEmpty)

        let real = try await CommandProcess.run(
            "sluice", ["gc", "--older-than", "0s", "--keep-last", "1"], in: directory.url)
        #expect(real.status == 0, "\(real.errors)")
        #expect(real.output.contains("deleted \(listed.count) artifacts"), "\(real.output)")
        let after = contentFiles(directory)
        #expect(after.count == before.count - listed.count)
        let newest = try #require(try await store.runs(RunFilter()).first)
        for id in listed {
            let artifact = try #require(try await store.artifact(id))
            #expect(artifact.properties[Retention.deletedProperty] != nil)
            #expect(!after.contains(String(artifact.contentHash.dropFirst("sha256:".count))))
            // Only old runs' outputs went (reports, the unblessed run's model), never the kept newest run's.
            let producer = try #require(try await store.stepRun(artifact.producerStepRunID))
            #expect(producer.runID != newest.id)
        }
        // Every registered version still has its bundle and its whole upstream lineage.
        for version in try await store.modelVersions("m") {
            let bundle = try #require(try await store.artifact(version.artifactID))
            let lineage = try await Lineage.trace(bundle, .upstream, in: store)
            #expect(lineage.artifacts.allSatisfy { $0.properties[Retention.deletedProperty] == nil })
            let export = try await CommandProcess.run(
                "sluice", ["models", "export", "m@\(version.version)", "-o", directory.path("m.json").path],
                in: directory.url)
            #expect(export.status == 0, "\(export.errors)")
        }
        // The deleted run's config runs again: what is gone is computed again, not taken from the cache.
        let again = try await CommandProcess.run(
            "sluice", ["run", "p.yaml", "--set", "train.rounds=6"] + notBlessed, in: directory.url)
        #expect(again.status == 0, "\(again.errors)")
        // Shard folders: one a step run of an ended run left, one nobody recorded (old enough), and one too new.
        let ended = try #require(try await store.stepRuns(ofRun: newest.id).first)
        for (name, age) in [(ended.id, 0.0), ("step-unrecorded", 7_200.0), ("step-fresh", 0.0)] {
            let folder = directory.path(".sluice/artifacts/.shards/\(name)/files")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try Data(count: 1_000).write(to: folder.appending(path: "0.arrow"))
            try FileManager.default.setAttributes(
                [.modificationDate: Date().addingTimeInterval(-age)],
                ofItemAtPath: directory.path(".sluice/artifacts/.shards/\(name)").path)
        }
        let sweepDry = try await CommandProcess.run(
            "sluice", ["gc", "--older-than", "1h", "--dry-run"], in: directory.url)
        #expect(sweepDry.output.contains("2 shard folders of ended step runs"), "\(sweepDry.output)")
        let sweep = try await CommandProcess.run("sluice", ["gc", "--older-than", "1h"], in: directory.url)
        #expect(sweep.output.contains("deleted 2 shard folders"), "\(sweep.output)")
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: directory.path(".sluice/artifacts/.shards").path)
                == ["step-fresh"])
        let bad = try await CommandProcess.run("sluice", ["gc", "--older-than", "soon"], in: directory.url)
        #expect(bad.status == 2)
        #expect(bad.errors.contains("not a duration"))
    }
}
