import Foundation

/// A fresh directory under the system's temporary folder, removed when the value is released
/// (unless `SLUICE_KEEP_TEMP` is set, to look inside after a failure).
public final class TemporaryDirectory: Sendable {
    /// The directory.
    public let url: URL

    /// Creates an empty directory whose name starts with `prefix`.
    public init(prefix: String = "sluice-test") throws {
        url = FileManager.default.temporaryDirectory
            .appending(path: "\(prefix)-\(UUID().uuidString.prefix(8))", directoryHint: .isDirectory)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    /// A path inside the directory.
    public func path(_ relative: String) -> URL { url.appending(path: relative) }

    deinit {
        if ProcessInfo.processInfo.environment["SLUICE_KEEP_TEMP"] == nil {
            try? FileManager.default.removeItem(at: url)
        }
    }
}
