/// Walks events upstream (what an artifact was made from) or downstream (what was made from it),
/// across runs.
public enum Lineage {
    /// Which way to walk.
    public enum Direction: String, Codable, Sendable, CaseIterable {
        case upstream, downstream
    }

    /// The artifacts and step runs reached, and the events between them.
    public struct Graph: Codable, Sendable, Equatable {
        /// The artifact the walk started from.
        public var root: ArtifactRecord
        public var direction: Direction
        /// Every artifact reached, including the root, in the order reached.
        public var artifacts: [ArtifactRecord]
        /// Every step run reached, in the order reached.
        public var stepRuns: [StepRun]
        /// The events that connect them.
        public var events: [Event]

        /// The step run that wrote an artifact, among those reached.
        public func producer(of artifactID: String) -> StepRun? {
            guard let event = events.first(where: { $0.artifactID == artifactID && $0.kind == .output }) else {
                return nil
            }
            return stepRuns.first { $0.id == event.stepRunID }
        }
    }

    /// Walks from `artifact` in `direction`, at most `depth` steps away (`nil`: all the way).
    public static func trace(
        _ artifact: ArtifactRecord, _ direction: Direction, in store: any MetadataStore, depth: Int? = nil
    ) async throws -> Graph {
        var graph = Graph(root: artifact, direction: direction, artifacts: [artifact], stepRuns: [], events: [])
        var seenArtifacts: Set<String> = [artifact.id]
        var seenStepRuns: Set<String> = []
        var seenEvents: Set<Event> = []
        var frontier = [artifact.id]
        var level = 0
        while !frontier.isEmpty, depth.map({ level < $0 }) ?? true {
            level += 1
            var next: [String] = []
            for artifactID in frontier {
                let events = try await store.events(ofArtifact: artifactID)
                let links: [Event]
                switch direction {
                case .upstream:
                    // The step run that first wrote it (cached step runs only reused it).
                    let producerID = try await store.artifact(artifactID)?.producerStepRunID
                    links = events.filter { $0.kind == .output && $0.stepRunID == producerID }
                case .downstream:
                    links = events.filter { $0.kind == .input }
                }
                for link in links {
                    if seenEvents.insert(link).inserted { graph.events.append(link) }
                    guard seenStepRuns.insert(link.stepRunID).inserted,
                        let stepRun = try await store.stepRun(link.stepRunID)
                    else { continue }
                    graph.stepRuns.append(stepRun)
                    let wanted: Event.Kind = direction == .upstream ? .input : .output
                    for event in try await store.events(ofStepRun: stepRun.id) where event.kind == wanted {
                        if seenEvents.insert(event).inserted { graph.events.append(event) }
                        guard seenArtifacts.insert(event.artifactID).inserted,
                            let record = try await store.artifact(event.artifactID)
                        else { continue }
                        graph.artifacts.append(record)
                        next.append(record.id)
                    }
                }
            }
            frontier = next
        }
        return graph
    }
}
