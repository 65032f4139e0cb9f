import ArgumentParser
import Foundation
import SluiceCLI
import SluiceComponents
import SluiceCore
import SluiceML
import SluiceServer

/// `sluice profile`: a model version's size, load time, memory and latency, stored with the version.
struct ProfileCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "profile",
        abstract: "Measure a model version: bundle size, load time, memory, latency percentiles, batch throughput.",
        discussion: """
            Latency is for single rows, in the process and over HTTP on loopback (the real server, KServe V2
            infer), recorded in an HdrHistogram; throughput for batches of 1, 32 and 1024 rows. The profile is
            stored in the artifact store, attached to the version, and shown by `sluice models show MODEL@VERSION`.
            Example: sluice profile penguins@production
            """)

    @Argument(help: "MODEL, MODEL@STAGE or MODEL@VERSION.") var reference: String
    @Option(help: "Single-row predictions to time in the process (a quarter of them over HTTP).") var samples = 4_000
    @Flag(help: "Skip the HTTP measurement.") var noHttp = false
    @Flag(help: "Print JSON.") var json = false

    @OptionGroup var stackOption: StackOption

    func run() async throws {
        let workspace = try await Workspace.open(create: false, stack: stackOption.name)
        let registry = workspace.metadata
        let version = try await registry.resolve(reference)
        let data = try await bundleData(of: version, in: registry, artifacts: workspace.artifacts)
        printError("profiling \(version.model)@\(version.version)…")
        let profile = try await ModelProfiler.profile(
            bundle: data, model: version.model, version: "\(version.model)@\(version.version)", samples: samples,
            http: !noHttp)
        let bytes = try profile.json()
        let stored = try workspace.artifacts.store(data: bytes)
        try await registry.attachProfile(version.model, version: version.version, profile: bytes, uri: stored.uri)
        if json {
            print(String(decoding: bytes, as: UTF8.self))
        } else {
            print(profile.summary)
            print("stored with \(version.model)@\(version.version) (\(stored.uri))")
        }
    }
}
