import SluiceCore
import SluiceTesting
import Testing

@Suite("In-memory metadata store")
struct InMemoryMetadataStoreTests {
    @Test("passes the metadata store contract", arguments: MetadataStoreContract.names)
    func contract(_ check: String) async throws {
        try await MetadataStoreContract.check(check, on: InMemoryMetadataStore())
    }
}

@Suite("In-memory model registry")
struct InMemoryModelRegistryTests {
    @Test(arguments: ModelRegistryContract.names)
    func contract(_ check: String) async throws {
        try await ModelRegistryContract.check(check, on: InMemoryModelRegistry())
    }
}
