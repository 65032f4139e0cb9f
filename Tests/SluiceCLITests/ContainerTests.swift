import Foundation
import SluiceCore
import SluiceOrchestrators
import SluiceTesting
import Testing

/// `sluice export container` and the process orchestrator starting every step run in the image, with a real podman
/// (installed by the tests when missing).
@Suite("Containers: export container builds an image the process orchestrator runs every step in", .serialized)
struct ContainerTests {
    struct Shown: Decodable {
        struct Step: Decodable {
            var stepName: String
            var status: String
            var cacheKey: CacheKey?
            var properties: [String: PropertyValue]
        }
        struct Details: Decodable { var stepRun: Step }
        var steps: [Details]
    }

    func steps(stack: String, in directory: URL) async throws -> [Shown.Step] {
        let list = try await CommandProcess.run(
            "sluice-example", ["runs", "list", "--json", "--limit", "1", "--stack", stack], in: directory)
        let runs = try #require(try JSONSerialization.jsonObject(with: Data(list.output.utf8)) as? [[String: Any]])
        let run = try #require(runs.first?["id"] as? String)
        let show = try await CommandProcess.run(
            "sluice-example", ["runs", "show", run, "--json", "--stack", stack], in: directory)
        return try JSONDecoder().decode(Shown.self, from: Data(show.output.utf8)).steps.map(\.stepRun)
    }

    @Test(
        "the Swift example runs with every step in a podman image built by export container, records as a local run's")
    func exampleInContainers() async throws {
        _ = try await TestPodman.installed()
        let directory = try TemporaryDirectory(prefix: "sluice-container")
        let tag = "localhost/sluice-test-\(getpid()):latest"
        defer { _ = try? TestPodman.run(["rmi", "-f", tag]) }

        let exported = try await CommandProcess.run(
            "sluice-example", ["export", "container", "prices", "-o", "image", "--build", "--tag", tag],
            in: directory.url)
        try #require(exported.status == 0, "\(exported.errors)")
        #expect(exported.output.contains(tag))
        // The context holds the executable and its libraries at image paths: nothing from this machine's build.
        let containerfile = try String(contentsOf: directory.path("image/Containerfile"), encoding: .utf8)
        #expect(containerfile.contains("ENTRYPOINT [\"/app/sluice-example\"]"))
        #expect(!containerfile.contains(".build") && !containerfile.contains(directory.url.path))
        let rootfs = directory.path("image/rootfs").path
        let files = try #require(FileManager.default.subpathsOfDirectory(atPath: rootfs) as [String]?)
        let allowed = ["app", "lib", "lib64", "usr", "etc", "tmp"]
        #expect(files.allSatisfy { allowed.contains(String($0.split(separator: "/").first ?? "")) }, "\(files)")
        #expect(files.contains("usr/lib/sluice/libswiftCore.so"))
        #expect(files.contains("app/sluice-example"))

        try FileManager.default.createDirectory(at: directory.path(".sluice"), withIntermediateDirectories: true)
        try Data(
            """
            default: local
            stacks:
              local: {metadata_store: metadata.sqlite}
              boxed: {orchestrator: process, container: "\(tag)", metadata_store: boxed.sqlite}
              wrong: {orchestrator: in_process, container: "\(tag)"}
              missing: {orchestrator: process, container: "localhost/no-such-image:1"}

            """.utf8
        ).write(to: directory.path(".sluice/stack.yaml"))
        let local = try await CommandProcess.run("sluice-example", ["run", "prices"], in: directory.url)
        #expect(local.status == 0, "\(local.errors)")
        let boxed = try await CommandProcess.run(
            "sluice-example", ["run", "prices", "--stack", "boxed"], in: directory.url)
        #expect(boxed.status == 0, "\(boxed.errors)")
        #expect(boxed.output.contains("7 done"), "\(boxed.output)")

        let inContainers = try await steps(stack: "boxed", in: directory.url)
        let here = try await steps(stack: "local", in: directory.url)
        #expect(inContainers.count == 7)
        #expect(inContainers.map(\.stepName).sorted() == here.map(\.stepName).sorted())
        #expect(inContainers.allSatisfy { $0.status == "completed" })
        let keys = Dictionary(uniqueKeysWithValues: here.map { ($0.stepName, $0.cacheKey) })
        #expect(inContainers.allSatisfy { keys[$0.stepName] == $0.cacheKey }, "same inputs, same outputs")
        let inspected = try TestPodman.run(["image", "inspect", "--format", "{{.Id}}", tag]).output
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let image = PropertyValue.string("\(tag)@sha256:\(inspected.replacingOccurrences(of: "sha256:", with: ""))")
        #expect(inContainers.allSatisfy { $0.properties[ContainerRuntime.imageProperty] == image })
        #expect(here.allSatisfy { $0.properties[ContainerRuntime.imageProperty] == nil })

        let wrong = try await CommandProcess.run(
            "sluice-example", ["run", "prices", "--stack", "wrong"], in: directory.url)
        #expect(wrong.status == 2)
        #expect(wrong.errors.contains("only the process orchestrator starts steps in containers"))
        let missing = try await CommandProcess.run(
            "sluice-example", ["run", "prices", "--stack", "missing"], in: directory.url)
        #expect(missing.status == 2)
        #expect(missing.errors.contains("export container"), "\(missing.errors)")
        // Refused before anything was recorded; and reading records never needs the image (or podman).
        let listed = try await CommandProcess.run(
            "sluice-example", ["runs", "list", "--json", "--stack", "missing"], in: directory.url)
        #expect(listed.status == 0, "\(listed.errors)")
        let recorded = try JSONSerialization.jsonObject(with: Data(listed.output.utf8)) as? [[String: Any]]
        #expect(recorded?.count == 1, "the local run only (the stack shares its store)")
    }
}
