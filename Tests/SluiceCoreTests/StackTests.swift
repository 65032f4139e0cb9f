import Foundation
import SluiceTesting
import Testing

@testable import SluiceCore

@Suite("Stacks: the stack file and artifact locations that survive a move")
struct StackTests {
    func stackFile(_ text: String) throws -> StackFile { try StackFile(yaml: text, source: "stack.yaml") }

    @Test("named stacks are read with their defaults filled in, and the default one is chosen")
    func namedStacks() throws {
        let file = try stackFile(
            """
            default: team
            stacks:
              local: {metadata_store: metadata.sqlite}
              team:
                metadata_store: postgres://ada@db:5432/sluice
                password_env: PGPASS
                artifact_store: /mnt/shared/artifacts
            """)
        #expect(file.defaultStack == "team")
        #expect(file.stacks.map(\.name) == ["local", "team"])
        let team = try #require(file.settings(of: "team"))
        #expect(team.metadataStore == "postgres://ada@db:5432/sluice")
        #expect(team.passwordEnv == "PGPASS")
        #expect(team.orchestrator == "in_process")
        #expect(team.durability == .process)
        #expect(file.settings(of: "local")?.artifactStore == "artifacts")
    }

    @Test("a stack file without `stacks:` (the older form) is one stack called local")
    func flatForm() throws {
        let file = try stackFile("orchestrator: in_process\nmetadata_store: other.sqlite\n")
        #expect(file.defaultStack == "local")
        #expect(file.settings(of: "local")?.metadataStore == "other.sqlite")
    }

    @Test("an unknown key is refused with its line and a did-you-mean, in either form")
    func unknownKeys() throws {
        let named = #expect(throws: ConfigError.self) {
            try stackFile("stacks:\n  local:\n    metadata_stor: x.sqlite\n")
        }
        #expect(named?.problem.contains("stack.yaml:3") == true)
        #expect(named?.problem.contains("metadata_store") == true)
        let flat = #expect(throws: ConfigError.self) { try stackFile("orchestrater: in_process\n") }
        #expect(flat?.problem.contains("orchestrator") == true)
        let top = #expect(throws: ConfigError.self) { try stackFile("stacks: {local: {}}\ndefualt: local\n") }
        #expect(top?.problem.contains("default") == true)
    }

    @Test("a default that names no stack is refused, naming the stacks there are")
    func missingDefault() throws {
        let error = #expect(throws: ConfigError.self) { try stackFile("default: tem\nstacks: {team: {}}\n") }
        #expect(error?.problem.contains("Did you mean 'team'?") == true)
    }

    @Test("a project picks the named stack, refuses an unknown name, and applies overrides on top")
    func projectStacks() throws {
        let directory = try TemporaryDirectory()
        let project = try Project.create(at: directory.url)
        let (name, settings) = try project.stack(overrides: StackSettings(durability: .power))
        #expect(name == "local")
        #expect(settings.durability == .power)
        #expect(settings.metadataStore == "metadata.sqlite")
        #expect(throws: ConfigError.self) { try project.stack(named: "team") }
        // The stack file `sluice init` writes reads back as written.
        let custom = try Project.create(
            at: directory.path("other"),
            settings: StackSettings(metadataStore: "postgres://ada@db:5432/s", passwordEnv: "PGPASS"))
        let read = try custom.stack().settings
        #expect(read.metadataStore == "postgres://ada@db:5432/s")
        #expect(read.passwordEnv == "PGPASS")
    }

    @Test("artifact URIs are relative to the store's root, so a moved store resolves every artifact")
    func movedStore() throws {
        let directory = try TemporaryDirectory()
        let store = try LocalArtifactStore(root: directory.path("a"), packThreshold: 16)
        let big = try store.store(data: Data(repeating: 1, count: 100))
        let small = try store.store(data: Data("small".utf8))
        #expect(!big.uri.hasPrefix("/") && !big.uri.hasPrefix("file:"))
        #expect(small.uri.hasPrefix("packs/"))
        try FileManager.default.moveItem(at: directory.path("a"), to: directory.path("b"))
        let moved = try LocalArtifactStore(root: directory.path("b"))
        #expect(try moved.data(for: big.uri) == Data(repeating: 1, count: 100))
        #expect(try moved.data(for: small.uri) == Data("small".utf8))
        #expect(moved.contains(uri: small.uri))
    }

    @Test("URIs recorded as absolute file:// URIs still resolve, under the new root once the store has moved")
    func legacyURIs() throws {
        let directory = try TemporaryDirectory()
        let store = try LocalArtifactStore(root: directory.path("a"), packThreshold: 16)
        let big = try store.store(data: Data(repeating: 2, count: 100))
        let small = try store.store(data: Data("tiny".utf8))
        let oldRoot = "file://" + directory.path("a").standardizedFileURL.path + "/"
        let legacyBig = oldRoot + big.uri
        let legacySmall = oldRoot + small.uri
        #expect(try store.data(for: legacyBig) == Data(repeating: 2, count: 100))
        try FileManager.default.moveItem(at: directory.path("a"), to: directory.path("b"))
        let moved = try LocalArtifactStore(root: directory.path("b"))
        #expect(try moved.data(for: legacyBig) == Data(repeating: 2, count: 100))
        #expect(try moved.data(for: legacySmall) == Data("tiny".utf8))
        #expect(LocalArtifactStore.relativeURI(legacy: legacyBig) == big.uri)
        #expect(LocalArtifactStore.relativeURI(legacy: legacySmall) == small.uri)
        #expect(LocalArtifactStore.relativeURI(legacy: "file:///elsewhere/file.bin") == nil)
    }

    @Test("a stack's slurm settings and a step's resources are read, overlaid and checked before any job")
    func slurmSettings() throws {
        let file = try stackFile(
            """
            stacks:
              hpc:
                orchestrator: slurm
                slurm: {account: ml, partition: batch, cpus: 2, memory: 4G, time: "01:00:00"}
            """)
        let slurm = try #require(file.settings(of: "hpc")?.slurm)
        #expect(slurm.account == "ml" && slurm.cpus == 2 && slurm.memory == "4G")
        var config = try RunConfig(
            tree: try ConfigValue.parseYAML(
                "steps:\n  train:\n    resources: {cpus: 4, gres: \"gpu:1\"}\n", source: "run.yaml"))
        try config.apply(overrides: ["steps.train.resources.time=00:30:00"])
        let resources = slurm.resources.overlaid(with: try #require(config.steps["train"]?.resources))
        #expect(resources == StepResources(cpus: 4, memory: "4G", time: "00:30:00", partition: "batch", gres: "gpu:1"))
        let memory = #expect(throws: ConfigError.self) {
            _ = try RunConfig(
                tree: try ConfigValue.parseYAML(
                    "steps:\n  train:\n    resources: {memory: lots}\n", source: "run.yaml"))
        }
        #expect(memory?.problem.contains("run.yaml:3") == true)
        #expect(memory?.problem.contains("steps.train.resources.memory") == true)
        let time = #expect(throws: ConfigError.self) { try StepResources(time: "an hour").validate(at: "slurm") }
        #expect(time?.fix.contains("HH:MM:SS") == true)
        let unknown = #expect(throws: ConfigError.self) {
            _ = try RunConfig(
                tree: try ConfigValue.parseYAML("steps:\n  train:\n    resources: {gpus: 1}\n", source: "run.yaml"))
        }
        #expect(unknown?.problem.contains("gpus") == true)
    }

    @Test("a project created with Slurm or container settings writes a stack file that reads them back")
    func createdStackFileKeepsEverySetting() throws {
        for settings in [
            StackSettings(orchestrator: "slurm", slurm: SlurmSettings(account: "ml", cpus: 2, memory: "4G")),
            StackSettings(orchestrator: "process", container: "localhost/prices:1"),
        ] {
            let directory = try TemporaryDirectory(prefix: "sluice-stackfile")
            let project = try Project.create(at: directory.url, settings: settings)
            let read = try #require(try project.stacks().settings(of: "local"))
            #expect(read.orchestrator == settings.orchestrator)
            #expect(read.slurm == settings.slurm)
            #expect(read.container == settings.container)
        }
    }
}
