import ArgumentParser
import Foundation
import SluiceCore

extension Lineage.Direction: ExpressibleByArgument {}

/// `sluice artifacts`: stored outputs and their lineage.
struct ArtifactsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "artifacts", abstract: "List artifacts, inspect one, and trace its lineage.",
        subcommands: [List.self, Show.self, LineageCommand.self], defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List artifacts, newest first.")
        @Option(help: "Only artifacts written in this run (ID or prefix).") var run: String?
        @Option(help: "Only artifacts with this output name.") var name: String?
        @Option(help: "At most this many.") var limit = 30
        @Flag(help: "Print JSON.") var json = false

        @OptionGroup var stackOption: StackOption

        func run() async throws {
            let workspace = try await Workspace.open(create: false, stack: stackOption.name)
            var runID: RunID?
            if let run { runID = try await workspace.requireRun(run).id }
            let artifacts = try await workspace.metadata.artifacts(
                ArtifactFilter(runID: runID, name: name, limit: limit))
            if json { return print(try jsonString(artifacts)) }
            guard !artifacts.isEmpty else { return print("No artifacts yet. Run a pipeline with `sluice run`.") }
            var rows: [[String]] = []
            for a in artifacts {
                let producer = try await workspace.metadata.stepRun(a.producerStepRunID)
                rows.append([
                    a.id, producer.map { "\($0.stepName).\(a.name)" } ?? a.name, shortType(a.typeName),
                    formatBytes(a.size), String(a.contentHash.prefix(19)), producer?.runID ?? "?",
                ])
            }
            print(renderTable(["ARTIFACT", "OUTPUT", "TYPE", "SIZE", "HASH", "RUN"], rows, terminal: .standardOutput))
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show an artifact: where it lives, who wrote and read it.")
        @Argument(help: "An artifact ID or a unique prefix of one.") var artifact: String
        @Flag(help: "Print JSON.") var json = false

        struct Details: Encodable {
            var artifact: ArtifactRecord
            var producer: StepRun?
            var events: [Event]
        }

        @OptionGroup var stackOption: StackOption

        func run() async throws {
            let workspace = try await Workspace.open(create: false, stack: stackOption.name)
            let a = try await workspace.requireArtifact(artifact)
            let producer = try await workspace.metadata.stepRun(a.producerStepRunID)
            let events = try await workspace.metadata.events(ofArtifact: a.id)
            if json { return print(try jsonString(Details(artifact: a, producer: producer, events: events))) }
            let t = Terminal.standardOutput
            print("\(t.paint("Artifact", .bold)) \(a.id)")
            print("  output        \(a.name)")
            print("  type          \(a.typeName)")
            print("  content       \(a.contentHash)  (\(formatBytes(a.size)))")
            print("  location      \(a.uri)")
            print("  materializer  \(a.materializer) v\(a.materializerVersion)")
            print("  created       \(formatDate(a.createdAt))")
            if let producer {
                print("  written by    step '\(producer.stepName)' (\(producer.id)) in run \(producer.runID)")
            }
            for (key, value) in a.properties.sorted(by: { $0.key < $1.key }) { print("  \(key): \(value)") }
            let readers = events.filter { $0.kind == .input }
            let reusers = events.filter { $0.kind == .output && $0.stepRunID != a.producerStepRunID }
            if !readers.isEmpty {
                print("  read by:")
                for event in readers {
                    let s = try await workspace.metadata.stepRun(event.stepRunID)
                    print("    \(s?.stepName ?? "?") in run \(s?.runID ?? "?") (as '\(event.name)')")
                }
            }
            if !reusers.isEmpty {
                print("  reused from cache by \(reusers.count) later step run\(reusers.count == 1 ? "" : "s")")
            }
        }
    }

    struct LineageCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "lineage",
            abstract: "Trace what an artifact was made from (upstream) or what was made from it (downstream).")
        @Argument(help: "An artifact ID or a unique prefix of one.") var artifact: String
        @Option(help: "upstream or downstream (default: both).") var direction: Lineage.Direction?
        @Option(help: "How many steps away to go (default: all the way).") var depth: Int?
        @Flag(help: "Print JSON.") var json = false

        @OptionGroup var stackOption: StackOption

        func run() async throws {
            let workspace = try await Workspace.open(create: false, stack: stackOption.name)
            let root = try await workspace.requireArtifact(artifact)
            let directions = direction.map { [$0] } ?? [.upstream, .downstream]
            var graphs: [Lineage.Graph] = []
            for direction in directions {
                graphs.append(try await Lineage.trace(root, direction, in: workspace.metadata, depth: depth))
            }
            if json { return print(try jsonString(graphs.count == 1 ? [graphs[0]] : graphs)) }
            let t = Terminal.standardOutput
            print(
                "\(t.paint(root.id, .bold)) \(root.name) (\(shortType(root.typeName))) \(String(root.contentHash.prefix(19)))"
            )
            for graph in graphs {
                print(
                    "\n\(t.paint(graph.direction == .upstream ? "Upstream (made from)" : "Downstream (made from it)", .bold))"
                )
                var lines: [String] = []
                var expanded: Set<String> = [root.id]
                render(graph, artifact: root.id, indent: 1, expanded: &expanded, into: &lines, t: t)
                print(lines.isEmpty ? "  (nothing)" : lines.joined(separator: "\n"))
            }
        }

        /// Prints the lineage as a tree; an artifact reached again is shown once more with "(see above)".
        private func render(
            _ graph: Lineage.Graph, artifact: String, indent: Int, expanded: inout Set<String>,
            into lines: inout [String],
            t: Terminal
        ) {
            let pad = String(repeating: "  ", count: indent)
            let upstream = graph.direction == .upstream
            let links = graph.events.filter { $0.artifactID == artifact && $0.kind == (upstream ? .output : .input) }
            for link in links {
                guard let stepRun = graph.stepRuns.first(where: { $0.id == link.stepRunID }) else { continue }
                let verb = upstream ? "← written by" : "→ read by"
                let status = stepRun.status == .cached ? " (cached)" : ""
                lines.append("\(pad)\(t.paint(verb, .dim)) \(stepRun.stepName)\(status) in \(stepRun.runID)")
                let next = graph.events.filter {
                    $0.stepRunID == stepRun.id && $0.kind == (upstream ? .input : .output)
                }
                for event in next {
                    guard let record = graph.artifacts.first(where: { $0.id == event.artifactID }) else { continue }
                    let first = expanded.insert(record.id).inserted
                    lines.append(
                        "\(pad)  \(upstream ? "◂" : "▸") \(record.id) \(record.name) (\(shortType(record.typeName)))"
                            + (first ? "" : t.paint(" (see above)", .dim)))
                    if first {
                        render(graph, artifact: record.id, indent: indent + 2, expanded: &expanded, into: &lines, t: t)
                    }
                }
            }
        }
    }
}

/// A type name without module prefixes: `Swift.Array<PricePipeline.House>` → `Array<House>`.
func shortType(_ name: String) -> String {
    name.replacingOccurrences(of: #"\b[A-Za-z_][A-Za-z0-9_]*\."#, with: "", options: .regularExpression)
}
