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
    ]

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
