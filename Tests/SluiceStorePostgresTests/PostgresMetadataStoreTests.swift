import Foundation
import SluiceCore
import SluiceStack
import SluiceTesting
import Testing

@testable import SluiceStorePostgres

/// A store on a fresh database of the test server.
func freshStore() async throws -> PostgresMetadataStore {
    let admin = try TestPostgres.adminURL()
    let url = try await PostgresDatabases.create("t_\(UUID().uuidString.prefix(12).lowercased())", on: admin)
    return try await PostgresMetadataStore(url: url, password: TestPostgres.password)
}

@Suite("PostgreSQL metadata store and registry (a real PostgreSQL 15 server)")
struct PostgresMetadataStoreTests {
    @Test("passes the metadata store contract", arguments: MetadataStoreContract.names)
    func contract(_ check: String) async throws {
        let store = try await freshStore()
        try await MetadataStoreContract.check(check, on: store)
        await store.close()
    }

    @Test("passes the tracking store contract", arguments: TrackingStoreContract.names)
    func trackingContract(_ check: String) async throws {
        let store = try await freshStore()
        try await TrackingStoreContract.check(check, on: store)
        await store.close()
    }

    @Test("passes the model registry contract", arguments: ModelRegistryContract.names)
    func registryContract(_ check: String) async throws {
        let store = try await freshStore()
        try await ModelRegistryContract.check(check, on: store)
        await store.close()
    }

    @Test("migrations are applied once, also when several stores open a new database at the same moment")
    func concurrentMigration() async throws {
        let admin = try TestPostgres.adminURL()
        let url = try await PostgresDatabases.create("m_\(UUID().uuidString.prefix(12).lowercased())", on: admin)
        let stores = try await withThrowingTaskGroup(of: PostgresMetadataStore.self) { group in
            for _ in 0..<6 {
                group.addTask { try await PostgresMetadataStore(url: url, password: TestPostgres.password) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let applied = try await stores[0].appliedMigrations()
        #expect(applied.count == PostgresMigrations.all.count)
        #expect(Set(applied).count == applied.count)
        for store in stores { await store.close() }
    }

    @Test("concurrent promotions of different versions leave exactly one production version and every change")
    func concurrentPromotions() async throws {
        let store = try await freshStore()
        for _ in 0..<8 {
            _ = try await store.registerModelVersion(
                model: "m", artifactID: "a", runID: nil, createdBy: "t", metrics: [:], datasetVersion: nil)
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for version in 1...8 {
                group.addTask {
                    _ = try await store.moveModelVersion(
                        "m", version: version, to: .production, by: "u\(version)", reason: "r")
                }
            }
            try await group.waitForAll()
        }
        let versions = try await store.modelVersions("m")
        #expect(versions.filter { $0.stage == .production }.count == 1)
        #expect(versions.filter { $0.stage == .archived }.count == 7)
        let changes = try await store.stageChanges("m")
        // 8 promotions, and 7 archivals of the version each one replaced.
        #expect(changes.filter { $0.to == .production }.count == 8)
        #expect(changes.filter { $0.to == .archived }.count == 7)
        await store.close()
    }

    @Test("a wrong password is refused with an error naming the server and never the password")
    func wrongPassword() async throws {
        let admin = try TestPostgres.adminURL()
        let target = try PostgresURL(admin)
        let url = "postgres://postgres:not-the-password@\(target.host):\(target.port)/postgres"
        do {
            _ = try await PostgresMetadataStore(url: url)
            Issue.record("a wrong password was accepted")
        } catch let error as PostgresStoreError {
            let text = "\(error)"
            #expect(text.contains("postgres://postgres@127.0.0.1:\(target.port)/postgres"))
            #expect(text.contains("password authentication failed"))
            #expect(!text.contains("not-the-password"))
        }
    }

    @Test("a stack file's postgres:// store opens with the password from password_env, and is refused without it")
    func stackWithPostgres() async throws {
        let admin = try TestPostgres.adminURL()
        let url = try await PostgresDatabases.create("s_\(UUID().uuidString.prefix(12).lowercased())", on: admin)
        let directory = try TemporaryDirectory()
        let project = try Project.create(
            at: directory.url, settings: StackSettings(metadataStore: url, passwordEnv: "SLUICE_TEST_PG_PASSWORD_X"))
        await #expect(throws: ConfigError.self) { try await Stack.open(project: project) }
        // Not setenv: the test process launches child processes from other threads meanwhile.
        let stack = try await Stack.open(
            project: project, environment: ["SLUICE_TEST_PG_PASSWORD_X": TestPostgres.password])
        #expect(stack.metadataLocation == url)
        #expect(stack.metadata is PostgresMetadataStore)
        #expect(try await stack.metadata.registeredModels().isEmpty)
        await stack.close()
    }

    @Test("URLs are parsed and shown without their password")
    func urls() throws {
        let url = try PostgresURL("postgres://ada:s3cret@db.example:6543/team")
        #expect(url.user == "ada")
        #expect(url.password == "s3cret")
        #expect(url.port == 6543)
        #expect(url.display == "postgres://ada@db.example:6543/team")
        #expect(PostgresURL.redacting("postgres://ada:s3cret@db/team") == "postgres://ada:***@db/team")
        #expect(throws: ConfigError.self) { try PostgresURL("postgres://db.example/team") }
        #expect(throws: ConfigError.self) { try PostgresURL("postgres://ada@db.example") }
    }
}
