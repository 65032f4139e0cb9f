import Foundation
import Synchronization

/// A fresh directory under the system's temporary folder, removed when the test process exits
/// (unless `SLUICE_KEEP_TEMP` is set, to look inside after a failure).
///
/// Removal waits for exit rather than `deinit` so that values read lazily from a directory (artifacts of a
/// run, say) stay readable however early the optimizer releases the owner.
public final class TemporaryDirectory: Sendable {
    /// The directory.
    public let url: URL

    /// Creates an empty directory whose name starts with `prefix`.
    public init(prefix: String = "sluice-test") throws {
        url = FileManager.default.temporaryDirectory
            .appending(path: "\(prefix)-\(UUID().uuidString.prefix(8))", directoryHint: .isDirectory)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        Self.register(url)
    }

    /// A path inside the directory.
    public func path(_ relative: String) -> URL { url.appending(path: relative) }

    private static let created = Mutex<[URL]?>(nil)

    private static func register(_ url: URL) {
        created.withLock { list in
            if list == nil {
                list = []
                atexit {
                    guard ProcessInfo.processInfo.environment["SLUICE_KEEP_TEMP"] == nil else { return }
                    for url in TemporaryDirectory.created.withLock({ $0 ?? [] }) {
                        try? FileManager.default.removeItem(at: url)
                    }
                }
            }
            list?.append(url)
        }
    }
}
