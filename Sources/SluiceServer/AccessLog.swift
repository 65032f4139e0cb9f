import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The structured access log: one logfmt line per request (time, request id, method, path, status, duration,
/// model version), buffered and written in batches, so logging every request costs a string append rather than
/// a locked, flushed write (swift-log's stream handler halved the request rate).
public final class AccessLog: Sendable {
    private let descriptor: Int32
    private let buffer = Mutex<[UInt8]>([])

    /// Logs to a file descriptor (standard error by default).
    public init(descriptor: Int32 = 2) { self.descriptor = descriptor }

    func record(id: String, method: String, path: String, status: Int, seconds: Double, version: String?) {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let line =
            "ts=\(Self.thousandths(Int(now.tv_sec) * 1_000 + Int(now.tv_nsec) / 1_000_000)) level=info msg=request request_id=\(id) method=\(method) path=\(quote(path)) status=\(status) duration_ms=\(Self.thousandths(Int((seconds * 1e6).rounded()))) model_version=\(version ?? "-")\n"
        let full = buffer.withLock { buffer -> Bool in
            buffer.append(contentsOf: line.utf8)
            return buffer.count >= 64 * 1024
        }
        if full { flush() }
    }

    /// Writes what is buffered.
    public func flush() {
        let bytes = buffer.withLock { buffer -> [UInt8] in
            defer { buffer.removeAll(keepingCapacity: true) }
            return buffer
        }
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBufferPointer { Glibc.write(descriptor, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            written += n
        }
    }

    /// `n / 1000` with three decimals (`1234` → `1.234`), without going through Foundation's `String(format:)`.
    static func thousandths(_ n: Int) -> String {
        let fraction = String(abs(n) % 1_000)
        let sign = n < 0 ? "-" : ""
        return "\(sign)\(abs(n) / 1_000).\(String(repeating: "0", count: 3 - fraction.count))\(fraction)"
    }

    private func quote(_ text: String) -> String {
        text.utf8.contains(where: { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "=") })
            ? "\"\(text.replacingOccurrences(of: "\"", with: "\\\""))\"" : text
    }
}
