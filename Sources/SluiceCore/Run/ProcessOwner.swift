import Foundation

/// The process that owns a running run: host, boot, PID and the PID's start time, so a reused PID
/// is never mistaken for the original process.
public struct ProcessOwner: Codable, Sendable, Equatable {
    public var host: String
    public var bootID: String
    public var pid: Int32
    /// The process start time in clock ticks since boot (field 22 of `/proc/PID/stat`).
    public var startTicks: UInt64

    /// Creates an owner record.
    public init(host: String, bootID: String, pid: Int32, startTicks: UInt64) {
        self.host = host
        self.bootID = bootID
        self.pid = pid
        self.startTicks = startTicks
    }

    /// This process.
    public static let current: ProcessOwner = {
        let pid = getpid()
        return ProcessOwner(
            host: ProcessInfo.processInfo.hostName, bootID: currentBootID, pid: pid,
            startTicks: startTicks(of: pid) ?? 0)
    }()

    /// Whether the owning process is known to be gone. An owner on another host is never declared dead here.
    public var isKnownDead: Bool {
        let me = ProcessOwner.current
        guard host == me.host else { return false }
        if bootID != me.bootID { return true }
        guard let ticks = ProcessOwner.startTicks(of: pid) else { return true }
        return ticks != startTicks
    }

    private static let currentBootID: String = {
        // A UUID and a newline. Trimmed by hand: `trimmingCharacters(in:)` goes through NSString and sets up
        // CoreFoundation's character sets, 2% of a step process (every one reads its run's owner).
        guard let text = try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8) else {
            return "unknown"
        }
        let trimmed = text.utf8.split(whereSeparator: { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\n") }).first
        return trimmed.map { String(decoding: $0, as: UTF8.self) } ?? "unknown"
    }()

    static func startTicks(of pid: Int32) -> UInt64? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else {
            // Without /proc (macOS) fall back to asking the kernel whether the PID exists at all.
            #if os(Linux)
                return nil
            #else
                return kill(pid, 0) == 0 ? 0 : nil
            #endif
        }
        // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
        guard let closing = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: closing)...].split(separator: " ")
        // After the name, field 3 (state) is index 0, so field 22 is index 19.
        guard fields.count > 19, let ticks = UInt64(fields[19]) else { return nil }
        // A zombie has exited; its work is gone.
        if fields[0] == "Z" { return nil }
        return ticks
    }
}
