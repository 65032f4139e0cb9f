import Foundation

/// The feature values of one entity in one feature view, as the online store keeps them: the event time of the
/// source row they were taken from (for the TTL at lookup) and the values, encoded by the feature store.
public struct OnlineRecord: Sendable, Equatable {
    /// Microseconds since 1970 of the newest source row the values come from (`Int64.min` when no as-of row, only
    /// aggregations).
    public var eventTime: Int64
    /// The encoded values.
    public var values: Data

    /// Creates a record.
    public init(eventTime: Int64, values: Data) {
        self.eventTime = eventTime
        self.values = values
    }
}

/// When a view's online values were last brought up to date, and how far.
public struct ViewFreshness: Codable, Sendable, Equatable {
    /// The feature view.
    public var view: String
    /// The view's definition version the values were computed with.
    public var version: String
    /// Values reflect every source row with an event time up to this instant.
    public var watermark: Date
    /// When the materialization finished.
    public var materializedAt: Date
    /// Entities written by the last materialization.
    public var rowsWritten: Int
    /// Entities the view holds in the store.
    public var entities: Int
    /// The run that recorded the materialization.
    public var runID: String?

    /// Creates a freshness record.
    public init(
        view: String, version: String, watermark: Date, materializedAt: Date, rowsWritten: Int, entities: Int,
        runID: String? = nil
    ) {
        self.view = view
        self.version = version
        self.watermark = watermark
        self.materializedAt = materializedAt
        self.rowsWritten = rowsWritten
        self.entities = entities
        self.runID = runID
    }
}

/// Where the feature store keeps each entity's latest feature values for lookups at serving time: the embedded
/// SQLite file, PostgreSQL, or Redis. Opened lazily from the stack's `online_store` setting.
///
/// Writes of one view are exclusive (``lock(view:)``) and atomic (``write(view:records:freshness:)``): two
/// materializations never interleave, and one that is killed leaves the previous values and freshness in place.
public protocol OnlineStore: Sendable {
    /// Where the store is, for people to read (a path, or a URL without a password).
    var location: String { get }
    /// The records of `keys` in `view`, in order (`nil` for a key the view has no values for).
    func read(view: String, keys: [String]) async throws -> [OnlineRecord?]
    /// Every view's freshness.
    func freshness() async throws -> [ViewFreshness]
    /// Takes the view's materialization lock, waiting for another holder; released by the returned lock's
    /// ``OnlineStoreLock/release()`` (and by the holder's death).
    func lock(view: String) async throws -> any OnlineStoreLock
    /// In one transaction: upserts `records` (entity key → record), and sets the view's freshness.
    func write(view: String, records: [(key: String, record: OnlineRecord)], freshness: ViewFreshness) async throws
    /// Releases connections.
    func close() async
}

/// A held materialization lock.
public protocol OnlineStoreLock: Sendable {
    /// Releases it.
    func release() async
}

extension OnlineStore {
    public func close() async {}
}

/// An online store that cannot be opened or reached, with what to do.
public struct OnlineStoreOpenError: SluiceError, Sendable {
    /// The store's location (a path, or a URL without its password).
    public var location: String
    /// What went wrong.
    public var underlying: String

    /// Creates the error.
    public init(location: String, underlying: String) {
        self.location = location
        self.underlying = underlying
    }

    public var problem: String { "cannot open the online store at \(location): \(underlying)" }
    public var fix: String {
        "check that it is reachable (a writable folder, a running server), or point `online_store` in "
            + ".sluice/stack.yaml elsewhere."
    }
    public var exitStatus: ExitStatus { .failed }
}
