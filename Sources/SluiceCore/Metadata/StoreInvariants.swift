import Foundation

/// The rules a metadata store and its registry keep however many writers share them: `sluice store check`, the
/// store contract suites and the concurrency stress tests read a store and list every record that breaks one.
///
/// Registry: version numbers of a model run 1, 2, 3… without gaps or repeats; at most one version is in production;
/// replaying the stage history from `none` passes through states with at most one production version, each
/// change's "from" is where the previous change of that version left it, and the replay ends where the versions
/// stand. Runs: a run that ended has one final status, an end time not before its start, and no step run still
/// running; a completed run's last step run of each step produced its outputs.
package enum StoreInvariants {
    /// Every broken registry rule, one sentence each naming the model and version; empty when all hold.
    public static func registryViolations(_ registry: any ModelRegistry) async throws -> [String] {
        var violations: [String] = []
        for model in try await registry.registeredModels() {
            // The versions and the history come from two reads; while writers go on, a move may land between them.
            // Read the versions again after the history: when they are unchanged, the history is the one that
            // led to them (a move committed in between would have changed them).
            var versions = try await registry.modelVersions(model.name)
            var changes = try await registry.stageChanges(model.name)
            for _ in 0..<50 {
                let again = try await registry.modelVersions(model.name)
                if again == versions { break }
                versions = again
                changes = try await registry.stageChanges(model.name)
            }
            violations += registryViolations(model: model.name, versions: versions, changes: changes)
        }
        return violations
    }

    /// The registry rules checked on one model's versions and its stage history (oldest change first).
    public static func registryViolations(model: String, versions: [ModelVersion], changes: [StageChange])
        -> [String]
    {
        var violations: [String] = []
        let numbers = versions.map(\.version).sorted()
        if !numbers.isEmpty, numbers != Array(1...numbers.count) {
            violations.append(
                "model '\(model)': version numbers are \(compact(numbers)), not 1…\(numbers.count) without gaps or repeats"
            )
        }
        let production = versions.filter { $0.stage == .production }.map(\.version).sorted()
        if production.count > 1 {
            violations.append(
                "model '\(model)': \(production.count) versions are in production (\(production.map { "v\($0)" }.joined(separator: ", ")))"
            )
        }
        var stages = Dictionary(versions.map { ($0.version, ModelStage.none) }, uniquingKeysWith: { first, _ in first })
        for (index, change) in changes.enumerated() {
            let position = "change \(index + 1) of \(changes.count)"
            guard let before = stages[change.version] else {
                violations.append("model '\(model)': \(position) moves v\(change.version), which is not registered")
                continue
            }
            if change.from != before {
                violations.append(
                    "model '\(model)': \(position) moves v\(change.version) from \(change.from), but the history left it in \(before)"
                )
            }
            stages[change.version] = change.to
            let inProduction = stages.filter { $0.value == .production }.keys.sorted()
            if inProduction.count > 1 {
                violations.append(
                    "model '\(model)': after \(position), \(inProduction.map { "v\($0)" }.joined(separator: " and ")) are all in production"
                )
            }
        }
        for version in versions where stages[version.version] != version.stage {
            violations.append(
                "model '\(model)': v\(version.version) is in \(version.stage), but its stage history ends in \(stages[version.version] ?? .none)"
            )
        }
        return violations
    }

    /// Every broken run rule among the newest `limit` runs, one sentence each naming the run; empty when all hold.
    public static func runViolations(_ store: any MetadataStore, limit: Int = 100_000) async throws -> [String] {
        var violations: [String] = []
        for run in try await store.runs(RunFilter(limit: limit)) {
            violations += runViolations(run, stepRuns: try await store.stepRuns(ofRun: run.id))
        }
        return violations
    }

    /// The run rules checked on one run and its step runs.
    public static func runViolations(_ run: Run, stepRuns: [StepRun]) -> [String] {
        guard run.status.isFinal else { return [] }
        var violations: [String] = []
        if let ended = run.endedAt {
            if ended < run.startedAt.addingTimeInterval(-1) {
                violations.append("run \(run.id) (\(run.status)) ended before it started")
            }
        } else {
            violations.append("run \(run.id) is \(run.status) without an end time")
        }
        for stepRun in stepRuns where stepRun.status == .running {
            violations.append("run \(run.id) is \(run.status), but its step '\(stepRun.stepName)' is still running")
        }
        if run.status == .completed {
            var last: [String: StepRun] = [:]
            for stepRun in stepRuns { last[stepRun.stepName] = stepRun }
            for (step, stepRun) in last.sorted(by: { $0.key < $1.key }) where !stepRun.status.producedOutputs {
                violations.append("run \(run.id) is completed, but its step '\(step)' ended \(stepRun.status)")
            }
        }
        return violations
    }

    /// Numbers as ranges: [1, 2, 3, 5] is "1…3, 5".
    static func compact(_ numbers: [Int]) -> String {
        var parts: [String] = []
        var index = 0
        while index < numbers.count {
            var end = index
            while end + 1 < numbers.count, numbers[end + 1] == numbers[end] + 1 { end += 1 }
            parts.append(end > index ? "\(numbers[index])…\(numbers[end])" : "\(numbers[index])")
            index = end + 1
        }
        return parts.joined(separator: ", ")
    }
}
