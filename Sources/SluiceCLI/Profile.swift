import ArgumentParser
import Foundation
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
            print(Self.text(profile))
            print("stored with \(version.model)@\(version.version) (\(stored.uri))")
        }
    }

    static func text(_ p: ModelProfile) -> String {
        func latency(_ l: LatencySummary) -> String {
            String(
                format: "p50 %.1f µs, p90 %.1f µs, p99 %.1f µs, p99.9 %.1f µs (%d requests)", l.p50, l.p90, l.p99,
                l.p999, l.samples)
        }
        var lines = [
            "Profile of \(p.version) on \(p.cores) cores, \(p.measuredAt.formatted(.iso8601))",
            String(
                format: "  bundle %.1f KB, loads in %.2f ms, %.1f MB resident after load",
                Double(p.bundleBytes) / 1_000, p.loadMilliseconds, Double(p.residentBytes) / 1_000_000),
            "  single row in process: " + latency(p.inProcess),
        ]
        if let http = p.http { lines.append("  single row over HTTP:   " + latency(http)) }
        lines.append(
            "  throughput: "
                + ["1", "32", "1024"].compactMap { size in
                    p.rowsPerSecond[size].map { "batch \(size) → " + String(format: "%.0f rows/s", $0) }
                }.joined(separator: ", "))
        return lines.joined(separator: "\n")
    }
}
