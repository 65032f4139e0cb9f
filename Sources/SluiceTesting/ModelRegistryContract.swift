import Foundation
import SluiceCore
import Testing

/// The behaviour every ``ModelRegistry`` must have; run it like ``MetadataStoreContract``.
public enum ModelRegistryContract {
    /// The names of the checks.
    public static var names: [String] { checks.map(\.0) }

    /// Runs the check called `name` against `registry` (which must be empty).
    public static func check(_ name: String, on registry: any ModelRegistry) async throws {
        let check = try #require(checks.first { $0.0 == name }?.1, "no contract check named \(name)")
        try await check(registry)
    }

    static let checks: [(String, @Sendable (any ModelRegistry) async throws -> Void)] = [
        ("versions are numbered from 1 per model and start in stage none", numbering),
        ("promoting to production archives the previous production version and records why", oneProduction),
        ("rollback restores the previous production version", rollback),
        ("references resolve by stage, by number, and to production by default", references),
        ("unknown models and versions fail with what to use instead", errors),
        ("a profile attaches to a version and a newer one replaces it", profiles),
        ("an imported model keeps its numbers, stages, times and history, and is imported once", importModel),
        ("a move whose expectation no longer holds is refused, changes nothing and says who moved what", conflict),
        ("a rollback expecting a production version that was replaced is refused", rollbackConflict),
        ("concurrent registrations number versions without gaps or repeats", concurrentNumbering),
        ("concurrent registrations of one bundle add one version", concurrentSameBundle),
        ("concurrent first promotions put exactly one version in production", concurrentFirstPromotions),
        ("concurrent promotions, rollbacks and moves keep every registry invariant", concurrentMoves),
    ]

    /// The registry's invariants hold (``StoreInvariants``): fails the test naming each broken one.
    public static func expectInvariants(
        _ registry: any ModelRegistry, sourceLocation: Testing.SourceLocation = #_sourceLocation
    )
        async throws
    {
        let violations = try await StoreInvariants.registryViolations(registry)
        #expect(violations.isEmpty, "\(violations.joined(separator: "\n"))", sourceLocation: sourceLocation)
    }

    static func conflict(_ registry: any ModelRegistry) async throws {
        try await register(registry, "m", 3)
        _ = try await registry.moveModelVersion(
            "m", version: 1, to: .production, expecting: .production(nil), by: "ann", reason: "first")
        // bob decided with v1 in production; carol promotes v2 before bob's move commits.
        _ = try await registry.moveModelVersion(
            "m", version: 2, to: .production, expecting: .production(1), by: "carol", reason: "better recall")
        let before = try await registry.stageChanges("m")
        await #expect {
            try await registry.moveModelVersion(
                "m", version: 3, to: .production, expecting: .production(1), by: "bob", reason: "beats v1")
        } throws: { error in
            guard let conflict = error as? StageConflict else { return false }
            return conflict.production == 2 && conflict.stage == .none && conflict.latestChange?.by == "carol"
                && conflict.problem.contains("expected v1 in production, found v2 in production, v3 in none")
                && conflict.problem.contains("by carol") && conflict.problem.contains("better recall")
                && conflict.problem.hasSuffix("Nothing was changed.") && conflict.exitStatus == .conflict
        }
        #expect(try await registry.stageChanges("m") == before, "a refused move records nothing")
        #expect(try await registry.productionVersion("m")?.version == 2)
        // Expecting "no production version" fails the same way once one is in production.
        await #expect(throws: StageConflict.self) {
            try await registry.moveModelVersion(
                "m", version: 3, to: .production, expecting: .production(nil), by: "bot", reason: "first")
        }
        // The moved version's own stage is checked too: v3 is not in staging.
        await #expect(throws: StageConflict.self) {
            try await registry.moveModelVersion(
                "m", version: 3, to: .archived, expecting: StageExpectation(stage: .staging), by: "bot", reason: "")
        }
        // What the registry holds now is what a person's move expects, and that move goes through.
        let expected = try await registry.expectation("m", moving: 3)
        #expect(expected == StageExpectation(production: .some(2), stage: ModelStage.none))
        let moved = try await registry.moveModelVersion(
            "m", version: 3, to: .production, expecting: expected, by: "bob", reason: "beats v2")
        #expect(moved.stage == .production)
        try await expectInvariants(registry)
    }

    static func rollbackConflict(_ registry: any ModelRegistry) async throws {
        try await register(registry, "m", 3)
        _ = try await registry.moveModelVersion("m", version: 1, to: .production, by: "a", reason: "")
        _ = try await registry.moveModelVersion("m", version: 2, to: .production, by: "a", reason: "")
        // The on-call engineer saw v2 misbehave; meanwhile v3 went to production.
        _ = try await registry.moveModelVersion("m", version: 3, to: .production, by: "bot", reason: "")
        await #expect(throws: StageConflict.self) {
            try await registry.rollback("m", expectedProduction: 2, by: "oncall", reason: "v2 is slow")
        }
        #expect(try await registry.productionVersion("m")?.version == 3)
        #expect(try await registry.rollback("m", expectedProduction: 3, by: "oncall", reason: "").version == 2)
        try await expectInvariants(registry)
    }

    static func concurrentNumbering(_ registry: any ModelRegistry) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<8 {
                group.addTask {
                    for k in 0..<6 {
                        _ = try await registry.registerModelVersion(
                            model: "m", artifactID: "art-\(writer)-\(k)", runID: nil, createdBy: "w\(writer)",
                            metrics: [:], datasetVersion: nil)
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(try await registry.modelVersions("m").map(\.version).sorted() == Array(1...48))
        try await expectInvariants(registry)
    }

    static func concurrentSameBundle(_ registry: any ModelRegistry) async throws {
        try await register(registry, "m", 2)
        let outcomes = try await withThrowingTaskGroup(of: (Int, Bool).self) { group in
            for writer in 0..<10 {
                group.addTask {
                    let (version, isNew) = try await registry.registerModelVersionIfNew(
                        model: "m", artifactID: "art-same", contentHash: nil, runID: "run-\(writer)",
                        createdBy: "w\(writer)", metrics: [:], datasetVersion: nil)
                    return (version.version, isNew)
                }
            }
            return try await group.reduce(into: [(Int, Bool)]()) { $0.append($1) }
        }
        #expect(outcomes.filter(\.1).count == 1, "one registration added the version")
        #expect(Set(outcomes.map(\.0)) == [3], "every registration got version 3")
        #expect(try await registry.modelVersions("m").count == 3)
        // An earlier version's bundle registered again is that earlier version.
        let again = try await registry.registerModelVersionIfNew(
            model: "m", artifactID: "art-m-0", contentHash: nil, runID: nil, createdBy: "x", metrics: [:],
            datasetVersion: nil)
        #expect(again.version.version == 1 && !again.isNew)
        try await expectInvariants(registry)
    }

    /// What the register step's `first` policy does: promote when nothing is in production, expecting exactly
    /// that, and decide again on a conflict. Returns whether this writer promoted.
    static func promoteIfFirst(_ registry: any ModelRegistry, version: Int, writer: Int) async throws -> Bool {
        while true {
            guard try await registry.productionVersion("m") == nil else { return false }
            do {
                _ = try await registry.moveModelVersion(
                    "m", version: version, to: .production, expecting: .production(nil), by: "w\(writer)",
                    reason: "first blessed version")
                return true
            } catch is StageConflict {
                continue
            }
        }
    }

    static func concurrentFirstPromotions(_ registry: any ModelRegistry) async throws {
        for round in 0..<3 {
            let model = "m"
            if round > 0 {
                // Each round starts from no production version: archive the winner.
                let current = try #require(try await registry.productionVersion(model))
                _ = try await registry.moveModelVersion(
                    model, version: current.version, to: .archived, by: "reset", reason: "next round")
            }
            let promotions = try await withThrowingTaskGroup(of: Bool.self) { group in
                for writer in 0..<12 {
                    group.addTask {
                        let version = try await registry.registerModelVersion(
                            model: model, artifactID: "art-\(round)-\(writer)", runID: nil, createdBy: "w\(writer)",
                            metrics: [:], datasetVersion: nil)
                        return try await promoteIfFirst(registry, version: version.version, writer: writer)
                    }
                }
                return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            #expect(promotions == 1, "round \(round): \(promotions) writers promoted a first version")
        }
        let firsts = try await registry.stageChanges("m").filter { $0.reason == "first blessed version" }
        #expect(firsts.count == 3)
        try await expectInvariants(registry)
    }

    static func concurrentMoves(_ registry: any ModelRegistry) async throws {
        try await register(registry, "m", 6)
        _ = try await registry.moveModelVersion("m", version: 1, to: .production, by: "a", reason: "")
        _ = try await registry.moveModelVersion("m", version: 2, to: .production, by: "a", reason: "")
        let outcomes = try await withThrowingTaskGroup(of: (moved: Int, refused: Int).self) { group in
            for writer in 0..<8 {
                group.addTask {
                    var state: UInt64 = 0x9E37_79B9_7F4A_7C15 &* UInt64(writer + 1)
                    func next(_ n: Int) -> Int {
                        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                        return Int((state >> 33) % UInt64(n))
                    }
                    var (moved, refused) = (0, 0)
                    for _ in 0..<12 {
                        do {
                            switch next(4) {
                            case 0:
                                _ = try await registry.rollback("m", by: "w\(writer)", reason: "")
                            case 1:
                                let version = 1 + next(6)
                                let stage = ModelStage.allCases[next(4)]
                                _ = try await registry.moveModelVersion(
                                    "m", version: version, to: stage,
                                    expecting: try await registry.expectation("m", moving: version), by: "w\(writer)",
                                    reason: "")
                            default:
                                let version = 1 + next(6)
                                _ = try await registry.moveModelVersion(
                                    "m", version: version, to: .production,
                                    expecting: try await registry.expectation("m", moving: version), by: "w\(writer)",
                                    reason: "")
                            }
                            moved += 1
                        } catch is StageConflict {
                            refused += 1
                        } catch is RegistryError {
                            // Already in that stage, or nothing to roll back to: refused before any write.
                        }
                    }
                    return (moved, refused)
                }
            }
            return try await group.reduce((moved: 0, refused: 0)) { ($0.moved + $1.moved, $0.refused + $1.refused) }
        }
        #expect(outcomes.moved > 0)
        let changes = try await registry.stageChanges("m")
        // Every move that went through is in the history (a promotion that replaced a version adds two changes).
        #expect(changes.count >= 2 + outcomes.moved)
        try await expectInvariants(registry)
    }

    static func importModel(_ registry: any ModelRegistry) async throws {
        let at = Date(timeIntervalSince1970: 1_700_000_000.25)
        let versions = [
            ModelVersion(
                model: "m", version: 1, artifactID: "a1", runID: "r1", stage: .archived, createdAt: at,
                createdBy: "ada", metrics: ["auc": 0.8], datasetVersion: "d1"),
            ModelVersion(
                model: "m", version: 2, artifactID: "a2", runID: nil, stage: .production, createdAt: at + 60,
                createdBy: "bo", metrics: [:], datasetVersion: nil),
        ]
        let changes = [
            StageChange(model: "m", version: 1, from: .none, to: .production, at: at + 1, by: "ada", reason: "first"),
            StageChange(model: "m", version: 1, from: .production, to: .archived, at: at + 61, by: "bo", reason: "x"),
            StageChange(model: "m", version: 2, from: .none, to: .production, at: at + 61, by: "bo", reason: "better"),
        ]
        try await registry.importModel(versions, changes: changes)
        #expect(try await registry.modelVersions("m") == versions.reversed())
        #expect(try await registry.stageChanges("m") == changes)
        await #expect(throws: RegistryError.self) { try await registry.importModel(versions, changes: []) }
        // The registry's rules hold for what comes after.
        _ = try await registry.registerModelVersion(
            model: "m", artifactID: "a3", runID: nil, createdBy: "cy", metrics: [:], datasetVersion: nil)
        #expect(try await registry.modelVersions("m").first?.version == 3)
    }

    static func profiles(_ registry: any ModelRegistry) async throws {
        try await register(registry, "m", 2)
        #expect(try await registry.profile("m", version: 1) == nil)
        try await registry.attachProfile("m", version: 1, profile: Data(#"{"p50":1}"#.utf8), uri: "sha256/aa")
        try await registry.attachProfile("m", version: 1, profile: Data(#"{"p50":2}"#.utf8), uri: "sha256/bb")
        let stored = try #require(try await registry.profile("m", version: 1))
        #expect(String(decoding: stored.json, as: UTF8.self) == #"{"p50":2}"#)
        #expect(stored.uri == "sha256/bb")
        #expect(try await registry.profile("m", version: 2) == nil)
        await #expect(throws: (any Error).self) {
            try await registry.attachProfile("m", version: 9, profile: Data(), uri: "x")
        }
    }

    static func register(_ registry: any ModelRegistry, _ model: String, _ n: Int) async throws {
        for k in 0..<n {
            _ = try await registry.registerModelVersion(
                model: model, artifactID: "art-\(model)-\(k)", runID: "run-\(k)", createdBy: "tester",
                metrics: ["accuracy": 0.9 + Double(k) / 100], datasetVersion: "ds-\(k)")
        }
    }

    static func numbering(_ registry: any ModelRegistry) async throws {
        try await register(registry, "penguins", 3)
        try await register(registry, "houses", 1)
        let versions = try await registry.modelVersions("penguins")
        #expect(versions.map(\.version) == [3, 2, 1])
        #expect(versions.allSatisfy { $0.stage == .none })
        #expect(versions.last?.artifactID == "art-penguins-0")
        #expect(versions.first?.metrics == ["accuracy": 0.92])
        #expect(versions.first?.datasetVersion == "ds-2")
        let models = try await registry.registeredModels()
        #expect(models.map(\.name) == ["houses", "penguins"])
        #expect(models.last?.latestVersion == 3)
    }

    static func oneProduction(_ registry: any ModelRegistry) async throws {
        try await register(registry, "m", 3)
        _ = try await registry.moveModelVersion("m", version: 1, to: .production, by: "ann", reason: "first")
        _ = try await registry.moveModelVersion("m", version: 2, to: .staging, by: "bob", reason: "try it")
        let moved = try await registry.moveModelVersion(
            "m", version: 2, to: .production, by: "bob", reason: "better AUC")
        #expect(moved.stage == .production)
        let versions = try await registry.modelVersions("m")
        #expect(versions.filter { $0.stage == .production }.map(\.version) == [2])
        #expect(versions.first { $0.version == 1 }?.stage == .archived)
        let changes = try await registry.stageChanges("m")
        #expect(
            changes.map { "\($0.version):\($0.from)->\($0.to)" } == [
                "1:none->production", "2:none->staging", "1:production->archived", "2:staging->production",
            ])
        #expect(changes.last?.by == "bob")
        #expect(changes.last?.reason == "better AUC")
        #expect(changes[2].reason == "replaced by version 2")
        #expect(try await registry.registeredModels().first?.productionVersion == 2)
    }

    static func rollback(_ registry: any ModelRegistry) async throws {
        try await register(registry, "m", 3)
        _ = try await registry.moveModelVersion("m", version: 1, to: .production, by: "a", reason: "")
        _ = try await registry.moveModelVersion("m", version: 3, to: .production, by: "a", reason: "")
        let restored = try await registry.rollback("m", by: "oncall", reason: "latency regression")
        #expect(restored.version == 1)
        #expect(try await registry.productionVersion("m")?.version == 1)
        #expect(try await registry.modelVersion("m", version: 3)?.stage == .archived)
        #expect(try await registry.stageChanges("m").last?.reason == "latency regression")
    }

    static func references(_ registry: any ModelRegistry) async throws {
        try await register(registry, "m", 3)
        #expect(try await registry.resolve("m").version == 3)  // no production yet: the newest
        _ = try await registry.moveModelVersion("m", version: 2, to: .production, by: "a", reason: "")
        _ = try await registry.moveModelVersion("m", version: 1, to: .staging, by: "a", reason: "")
        #expect(try await registry.resolve("m").version == 2)
        #expect(try await registry.resolve("m@production").version == 2)
        #expect(try await registry.resolve("m@staging").version == 1)
        #expect(try await registry.resolve("m@3").version == 3)
        #expect(try await registry.resolve("m@v3").version == 3)
    }

    static func errors(_ registry: any ModelRegistry) async throws {
        try await register(registry, "penguins", 1)
        await #expect { try await registry.resolve("pengiuns") } throws: {
            "\($0)".contains("did you mean 'penguins'")
        }
        await #expect { try await registry.resolve("penguins@7") } throws: { "\($0)".contains("no version 7") }
        await #expect { try await registry.resolve("penguins@production") } throws: {
            "\($0)".contains("sluice models promote")
        }
        await #expect {
            try await registry.moveModelVersion("penguins", version: 1, to: .none, by: "a", reason: "")
        } throws: { "\($0)".contains("already in none") }
        await #expect { try await registry.rollback("penguins", by: "a", reason: "") } throws: {
            "\($0)".contains("no version in production")
        }
    }
}
