import Foundation
import SluiceTesting
import Testing

@testable import SluiceData

@Suite("Dataset versions")
struct DatasetVersionTests {
    @Test("the version is the content: equal files give equal versions, a change gives a new one")
    func contentDefinesVersion() throws {
        let directory = try TemporaryDirectory(prefix: "sluice-version")
        let a = try csvFile("x\n1\n", name: "a/data.csv", in: directory)
        let b = try csvFile("x\n1\n", name: "b/data.csv", in: directory)
        let first = try DatasetVersion.compute([URL(fileURLWithPath: a)])
        #expect(first == (try DatasetVersion.compute([URL(fileURLWithPath: a)])))
        #expect(first.id == (try DatasetVersion.compute([URL(fileURLWithPath: b)])).id)
        try Data("x\n2\n".utf8).write(to: URL(fileURLWithPath: a))
        #expect(try DatasetVersion.compute([URL(fileURLWithPath: a)]).id != first.id)
    }

    @Test("unchanged files are not re-hashed, and a rewrite is noticed even when the modification time is restored")
    func fastPathStaysCorrect() throws {
        let directory = try TemporaryDirectory(prefix: "sluice-version")
        let path = try csvFile("x\n1\n", name: "data.csv", in: directory)
        let url = URL(fileURLWithPath: path)
        let cacheURL = directory.path("hashes.json")
        let original = try DatasetVersion.compute([url], cache: FileHashCache(url: cacheURL))
        let again = FileHashCache(url: cacheURL)
        #expect(try DatasetVersion.compute([url], cache: again) == original)
        #expect(again.hashedFiles == 0)
        // Same size, new content, and the old modification time put back.
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        try Data("x\n9\n".utf8).write(to: url)
        try FileManager.default.setAttributes([.modificationDate: attributes[.modificationDate]!], ofItemAtPath: path)
        let afterRewrite = FileHashCache(url: cacheURL)
        #expect(try DatasetVersion.compute([url], cache: afterRewrite).id != original.id)
        #expect(afterRewrite.hashedFiles == 1)
    }

    @Test("the log records each version once per set of paths")
    func log() throws {
        let directory = try TemporaryDirectory(prefix: "sluice-version")
        let path = try csvFile("x\n1\n", name: "data.csv", in: directory)
        let log = DatasetVersionLog(url: directory.path("versions.jsonl"))
        let v1 = try DatasetVersion.compute([URL(fileURLWithPath: path)])
        #expect(try log.record(v1, paths: [path]))
        #expect(try !log.record(v1, paths: [path]))
        try Data("x\n1\n2\n".utf8).write(to: URL(fileURLWithPath: path))
        let v2 = try DatasetVersion.compute([URL(fileURLWithPath: path)])
        #expect(try log.record(v2, paths: [path]))
        #expect(log.entries().map(\.version) == [v1.id, v2.id])
        #expect(log.entries().last?.bytes == 6)
    }
}
