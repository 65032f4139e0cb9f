import Dispatch
import Foundation

/// Finding and running the outside programs orchestrators drive (Slurm's commands, podman, ldd).
package enum ExternalCommand {
    /// The absolute path of `command` on PATH (or /usr/bin, /usr/local/bin), or `nil`.
    package static func find(_ command: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for folder in path.split(separator: ":") + ["/usr/bin", "/usr/local/bin"] {
            let candidate = "\(folder)/\(command)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Runs a program to its end on a thread of its own, capturing its output.
    package static func capture(_ path: String, _ arguments: [String], environment: [String: String]) async -> (
        status: Int32, output: String, error: String
    ) {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                let process = Process()
                process.executableURL = URL(fileURLWithPath: path)
                process.arguments = arguments
                var env = ProcessInfo.processInfo.environment
                for (key, value) in environment { env[key] = value }
                process.environment = env
                let output = Pipe()
                let error = Pipe()
                process.standardOutput = output
                process.standardError = error
                process.standardInput = FileHandle.nullDevice
                do {
                    try process.run()
                } catch {
                    continuation.resume(returning: (127, "", "\(error)"))
                    return
                }
                // Read both pipes before waiting, so a chatty command never blocks on a full pipe.
                final class Box: @unchecked Sendable { var data = Data() }
                let errorData = Box()
                let done = DispatchSemaphore(value: 0)
                Thread.detachNewThread {
                    errorData.data = error.fileHandleForReading.readDataToEndOfFile()
                    done.signal()
                }
                let outputData = output.fileHandleForReading.readDataToEndOfFile()
                process.waitUntilExit()
                done.wait()
                continuation.resume(
                    returning: (
                        process.terminationStatus, String(decoding: outputData, as: UTF8.self),
                        String(decoding: errorData.data, as: UTF8.self)
                    ))
            }
        }
    }
}
