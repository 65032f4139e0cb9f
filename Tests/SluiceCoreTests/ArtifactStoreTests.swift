import Foundation
import SluiceTesting
import Testing

@testable import SluiceCore

@Suite("Artifact store and materializers")
struct ArtifactStoreTests {
    @Test("content is addressed by its SHA-256 and identical content is stored once")
    func contentAddressing() throws {
        let directory = try TemporaryDirectory()
        let store = try LocalArtifactStore(root: directory.path("a"))
        let first = try store.store { try Data("hello".utf8).write(to: $0) }
        let second = try store.store { try Data("hello".utf8).write(to: $0) }
        #expect(first == second)
        // sha256("hello")
        #expect(first.contentHash == "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
        #expect(first.size == 5)
        #expect(first.uri == "sha256/2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path("a/.tmp").path).isEmpty)
        // Bytes from memory, when not packed, land at the same address as the same bytes written through a file.
        let unpacked = try LocalArtifactStore(root: directory.path("a"), packThreshold: 0)
        #expect(try unpacked.store(data: Data("hello".utf8)) == first)
    }

    @Test("a write that fails midway leaves nothing behind, in the store or in its temporaries")
    func failedWriteLeavesNothing() throws {
        let directory = try TemporaryDirectory()
        let store = try LocalArtifactStore(root: directory.path("a"))
        #expect(throws: Boom.self) {
            try store.store { url in
                try Data(repeating: 7, count: 1 << 20).write(to: url)
                throw Boom()
            }
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path("a/.tmp").path).isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path("a/sha256").path).isEmpty)
    }

    @Test("a step whose output cannot be written fails with the artifact and step named, storing nothing")
    func failingMaterializer() async throws {
        struct Broken: Materializer {
            static var identifier: String { "broken" }
            static var version: Int { 1 }
            func write(_ value: [Int], to url: URL) throws {
                try Data("partial".utf8).write(to: url)
                throw Boom()
            }
            func read(from url: URL) throws -> [Int] { [] }
        }
        var registry = MaterializerRegistry()
        registry.register(Broken())
        let engine = try TestEngine(materializers: registry)
        let result = try await engine.run(Pipeline("p") { p in p.add(Numbers()) })
        #expect(result.stepRun("numbers")?.status == .failed)
        #expect(
            result.stepRun("numbers")?.error
                == "while saving artifact 'output' of step 'numbers': boom: the step gave up")
        let root = engine.engine.artifacts.root
        #expect(try FileManager.default.contentsOfDirectory(atPath: root.appending(path: ".tmp").path).isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: root.appending(path: "sha256").path).isEmpty)
    }

    @Test("directories hash over their sorted paths and contents")
    func directoryHash() throws {
        let directory = try TemporaryDirectory()
        func tree(_ name: String, _ files: [(String, String)]) throws -> URL {
            let root = directory.path(name)
            for (path, text) in files {
                let url = root.appending(path: path)
                try FileManager.default.createDirectory(
                    at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
                try Data(text.utf8).write(to: url)
            }
            return root
        }
        let a = try ContentHasher.hash(tree("a", [("x.txt", "1"), ("sub/y.txt", "22")]))
        let b = try ContentHasher.hash(tree("b", [("sub/y.txt", "22"), ("x.txt", "1")]))
        let c = try ContentHasher.hash(tree("c", [("x.txt", "1"), ("sub/y.txt", "23")]))
        let d = try ContentHasher.hash(tree("d", [("z.txt", "1"), ("sub/y.txt", "22")]))
        #expect(a.hash == b.hash)
        #expect(a.hash != c.hash)
        #expect(a.hash != d.hash)
        #expect(a.size == 3)
    }

    @Test("temporaries of a process that is gone are swept; this process's are kept")
    func sweep() throws {
        let directory = try TemporaryDirectory()
        let store = try LocalArtifactStore(root: directory.path("a"))
        let tmp = directory.path("a/.tmp")
        // PID 2^22+1 is above Linux's default pid_max, so no live process has it.
        try Data("x".utf8).write(to: tmp.appending(path: "4194305-dead"))
        try Data("x".utf8).write(to: tmp.appending(path: "\(getpid())-mine"))
        store.sweepAbandonedTemporaries()
        #expect(try FileManager.default.contentsOfDirectory(atPath: tmp.path) == ["\(getpid())-mine"])
    }

    @Test("on a shared store, another host's temporary is never swept, whatever its PID; this host's dead ones are")
    func sweepSharedStore() throws {
        let directory = try TemporaryDirectory()
        let store = try LocalArtifactStore(root: directory.path("a"))
        let tmp = directory.path("a/.tmp")
        let uuid = "0D6E2C4A-9F57-4A5B-8C43-2B7A6E1D9F00"
        let other = "4194305-\(uuid)-otherhost"
        try Data("x".utf8).write(to: tmp.appending(path: other))
        try Data("x".utf8).write(to: tmp.appending(path: "4194305-\(uuid)-\(LocalArtifactStore.hostTag)"))
        store.sweepAbandonedTemporaries()
        #expect(try FileManager.default.contentsOfDirectory(atPath: tmp.path) == [other])
        // What this store writes carries this host's name.
        #expect(LocalArtifactStore.temporaryName().hasSuffix("-" + LocalArtifactStore.hostTag))
        #expect(LocalArtifactStore.temporaryName().split(separator: "-").count == 7)
    }

    @Test("small in-memory artifacts are packed into one file and read back by range")
    func packing() throws {
        let directory = try TemporaryDirectory()
        let store = try LocalArtifactStore(root: directory.path("a"), packThreshold: 1024)
        let small = try (0..<50).map { try store.store(data: Data("value \($0)".utf8)) }
        let large = try store.store(data: Data(repeating: 1, count: 4096))
        #expect(Set(small.map { $0.uri.split(separator: "#")[0] }).count == 1, "one pack for all small objects")
        #expect(small[7].uri.hasSuffix("#offset=\(7 * 7)&length=7"))
        #expect(try store.data(for: small[42].uri) == Data("value 42".utf8))
        #expect(small[42].contentHash == ContentHasher.hash(Data("value 42".utf8)))
        #expect(store.url(for: small[0].uri) == nil)
        #expect(store.contains(uri: small[49].uri))
        #expect(!store.contains(uri: small[49].uri.replacingOccurrences(of: "length=8", with: "length=800")))
        #expect(large.uri.hasPrefix("sha256/"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path("a/packs").path).count == 1)
    }

    @Test("a pack deleted while a store writes to it is replaced, not written into the void")
    func deletedPack() throws {
        let directory = try TemporaryDirectory()
        let store = try LocalArtifactStore(root: directory.path("a"))
        let first = try store.store(data: Data("one".utf8))
        try FileManager.default.removeItem(at: directory.path("a/packs"))
        #expect(!store.contains(uri: first.uri))
        let second = try store.store(data: Data("two".utf8))
        #expect(try store.data(for: second.uri) == Data("two".utf8))
    }

    @Test("power durability stores the same content at the same address")
    func durableWrites() throws {
        let directory = try TemporaryDirectory()
        let fast = try LocalArtifactStore(root: directory.path("fast"))
        let safe = try LocalArtifactStore(root: directory.path("safe"), durability: .power)
        let a = try fast.store { try Data("same".utf8).write(to: $0) }
        let b = try safe.store { try Data("same".utf8).write(to: $0) }
        #expect(a.contentHash == b.contentHash)
        #expect(safe.contains(uri: b.uri))
    }

    @Test("Codable values round-trip as canonical JSON: equal values, equal hashes")
    func codableMaterializer() throws {
        struct Model: Codable, Sendable, Equatable {
            var weights: [String: Double]
            var name: String
        }
        let directory = try TemporaryDirectory()
        let store = try LocalArtifactStore(root: directory.path("a"))
        let materializer = try #require(MaterializerRegistry().materializer(for: Model.self))
        #expect(materializer.identifier == "json")
        let model = Model(weights: ["b": 2, "a": 1, "c": .infinity], name: "m")
        var hashes: Set<String> = []
        for _ in 0..<5 {
            hashes.insert(try store.store { try materializer.write(model, $0) }.contentHash)
        }
        #expect(hashes.count == 1)
        let stored = try store.store { try materializer.write(model, $0) }
        #expect(try materializer.load(stored.uri, from: store) as? Model == model)
    }

    @Test("bytes and files are stored as they are")
    func bytesAndFiles() async throws {
        let pipeline = Pipeline("files") { p in
            p.step("bytes", version: 1) { _ in Data([0, 1, 2, 255]) }
            p.step("folder", version: 1) { context in
                let folder = context.scratchDirectory.appending(path: "report")
                try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
                try Data("<h1>hi</h1>".utf8).write(to: folder.appending(path: "index.html"))
                return FileArtifact(url: folder)
            }
        }
        let result = try await TestEngine().run(pipeline)
        #expect(try result.value(Data.self, step: "bytes") == Data([0, 1, 2, 255]))
        #expect(result.outputs["bytes"]?["output"]?.materializer == "bytes")
        let folder = try result.value(FileArtifact.self, step: "folder")
        #expect(try String(contentsOf: folder.url.appending(path: "index.html"), encoding: .utf8) == "<h1>hi</h1>")
        #expect(result.outputs["folder"]?["output"]?.materializer == "file")
    }

    @Test("a registered materializer is chosen over the Codable one for its type")
    func registeredWins() throws {
        struct CSVInts: Materializer {
            static var identifier: String { "csv-ints" }
            static var version: Int { 1 }
            func write(_ value: [Int], to url: URL) throws {
                try Data(value.map(String.init).joined(separator: ",").utf8).write(to: url)
            }
            func read(from url: URL) throws -> [Int] {
                try String(contentsOf: url, encoding: .utf8).split(separator: ",").compactMap { Int($0) }
            }
            func properties(of value: [Int]) -> [String: PropertyValue] { ["count": .int(value.count)] }
        }
        var registry = MaterializerRegistry()
        #expect(registry.materializer(for: [Int].self)?.identifier == "json")
        registry.register(CSVInts())
        #expect(registry.materializer(for: [Int].self)?.identifier == "csv-ints")
        #expect(registry.materializer(for: [String].self)?.identifier == "json")
    }
}
