import Foundation
import Logging
import Synchronization

/// Writes a step run's log records to its own file, opened on the first record (most steps log nothing).
struct StepLogHandler: LogHandler {
    final class Sink: Sendable {
        let url: URL
        private let handle = Mutex<FileHandle?>(nil)
        init(url: URL) { self.url = url }

        func write(_ line: String) {
            handle.withLock { handle in
                if handle == nil {
                    try? FileManager.default.createDirectory(
                        at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
                    _ = FileManager.default.createFile(atPath: url.path, contents: nil)
                    handle = try? FileHandle(forWritingTo: url)
                    _ = try? handle?.seekToEnd()
                }
                handle?.write(Data(line.utf8))
            }
        }

        var wasWritten: Bool { handle.withLock { $0 != nil } }

        func close() { handle.withLock { try? $0?.close() } }
    }

    let sink: Sink
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let time = Date().formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true))
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        let tags =
            merged.isEmpty ? "" : " " + merged.sorted { $0.key < $1.key }.map { "\($0)=\($1)" }.joined(separator: " ")
        sink.write("\(time) \(event.level) \(event.message)\(tags)\n")
    }
}
