import Foundation
import SluiceCore
import SluiceStoreSQLite
import SluiceTesting
import Testing

@Suite("sluice runs tag, note, rename, delete, restore and list --filter on pipeline runs")
struct RunTrackingCommandTests {
    @Test(
        "runs are tagged, noted, renamed and searched; a deleted run leaves lists, comes back on restore, and gc removes its own outputs once deleted longer than the retention period"
    )
    func lifecycle() async throws {
        let directory = try TemporaryDirectory(prefix: "sluice-runs-tracking")
        try TwoClassPipeline.write(in: directory, name: "tracked", file: "p.yaml", rows: 3_000)
        var ids: [String] = []
        for rounds in [5, 9] {
            let run = try await CommandProcess.run(
                "sluice", ["run", "p.yaml", "--set", "train.rounds=\(rounds)", "--json"], in: directory.url)
            #expect(run.status == 0, "\(run.errors)")
            ids.append(try CommandProcess.jsonDecoder.decode(Run.self, from: Data(run.output.utf8)).id)
        }
        func sluice(_ arguments: String...) async throws -> (status: Int32, output: String, errors: String) {
            try await CommandProcess.run("sluice", arguments, in: directory.url)
        }
        #expect(try await sluice("runs", "tag", ids[0], "team=fraud", "stage=review").status == 0)
        #expect(try await sluice("runs", "tag", ids[0], "--remove", "stage").output.contains("team=fraud"))
        #expect(try await sluice("runs", "note", ids[0], "First **baseline**.").status == 0)
        #expect(try await sluice("runs", "rename", ids[0], "baseline").status == 0)
        let shown = try await sluice("runs", "show", ids[0])
        #expect(shown.output.contains("name      baseline"), "\(shown.output)")
        #expect(shown.output.contains("team=fraud") && shown.output.contains("First **baseline**."))

        // A pipeline run's params and metrics are its steps', keyed STEP.NAME.
        let filtered = try await sluice(
            "runs", "list", "--filter", "params.train.rounds = '9' and attributes.kind = 'pipeline'", "--order-by",
            "metrics.evaluate.accuracy DESC")
        #expect(filtered.status == 0, "\(filtered.errors)")
        #expect(filtered.output.contains(ids[1]) && !filtered.output.contains(ids[0]), "\(filtered.output)")
        let tagged = try await sluice("runs", "list", "--filter", "tags.team = 'fraud'", "--json")
        #expect(tagged.output.contains(ids[0]) && !tagged.output.contains(ids[1]))
        let bad = try await sluice("runs", "list", "--filter", "metrics.accuracy > high")
        #expect(bad.status == 2)
        #expect(bad.errors.contains("column 20") && bad.errors.contains("To fix"), "\(bad.errors)")

        #expect(try await sluice("runs", "delete", ids[0]).status == 0)
        #expect(!(try await sluice("runs", "list").output.contains(ids[0])))
        #expect(try await sluice("runs", "list", "--deleted").output.contains(ids[0]))
        // Deleted just now: gc with a day's retention keeps it (restorable with its artifacts).
        let keep = try await sluice("gc", "--older-than", "1d", "--keep-last", "5", "--dry-run")
        #expect(keep.output.contains("0 runs"), "\(keep.output)")
        #expect(try await sluice("runs", "restore", ids[0]).status == 0)
        #expect(try await sluice("runs", "list").output.contains(ids[0]))

        #expect(try await sluice("runs", "delete", ids[0]).status == 0)
        try await Task.sleep(for: .seconds(1.1))
        let gc = try await sluice("gc", "--older-than", "1s", "--keep-last", "5")
        #expect(gc.status == 0, "\(gc.errors)")
        #expect(gc.output.contains("1 run started more than 1s ago"), "\(gc.output)")
        let store = try SQLiteMetadataStore(path: directory.path(".sluice/metadata.sqlite").path)
        let gone = try await store.artifacts(ArtifactFilter(runID: ids[0], limit: 100)).filter {
            $0.properties[Retention.deletedProperty] != nil
        }
        #expect(!gone.isEmpty, "the deleted run's own outputs went: \(gc.output)")
        let kept = try await store.artifacts(ArtifactFilter(runID: ids[1], limit: 100))
        #expect(!kept.isEmpty && kept.allSatisfy { $0.properties[Retention.deletedProperty] == nil })
    }
}
