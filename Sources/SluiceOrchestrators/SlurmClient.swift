import Foundation
import SluiceCore

/// A Slurm job as the cluster reports it.
public struct SlurmJob: Sendable, Equatable {
    /// The job's ID.
    public var id: String
    /// The step it runs (the job's comment), `runs finish` for the job that ends the run.
    public var step: String
    /// Slurm's state: `PENDING`, `RUNNING`, `COMPLETED`, `FAILED`, `TIMEOUT`, `OUT_OF_MEMORY`, `CANCELLED`…
    public var state: String
    /// Why it is in that state (`Dependency`, `Resources`, `TimeLimit`…), when Slurm says.
    public var reason: String?

    /// Whether the job has ended.
    public var hasEnded: Bool { !["PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED"].contains(state) }

    /// End states where the cluster, not the step, ended the job: the step is recorded failed with the state.
    public static let clusterFailures: Set<String> = [
        "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED", "DEADLINE", "BOOT_FAIL",
    ]
}

/// The Slurm commands Sluice uses (`sbatch`, `squeue`, `scontrol`, `scancel`), run as this user with this process's
/// environment (`SLURM_CONF` and the rest).
public struct SlurmClient: Sendable {
    /// Creates a client.
    public init() {}

    /// The Slurm command failed or is not installed.
    public struct CommandError: SluiceError {
        public var problem: String
        public var fix: String
        public var exitStatus: ExitStatus { .unusableInput }
    }

    /// Runs a Slurm command and returns its standard output.
    func run(_ command: String, _ arguments: [String], environment: [String: String] = [:]) async throws -> String {
        guard let path = ExternalCommand.find(command) else {
            throw CommandError(
                problem: "`\(command)` is not on PATH: this stack's orchestrator is slurm, and Sluice submits and "
                    + "follows its jobs with Slurm's commands.",
                fix: "run on a machine with Slurm's client installed (Debian: apt install slurm-client) and "
                    + "SLURM_CONF set, or choose another stack with --stack.")
        }
        let result = await ExternalCommand.capture(path, arguments, environment: environment)
        guard result.status == 0 else {
            let said = result.error.trimmingCharacters(in: .whitespacesAndNewlines)
            throw CommandError(
                problem: "`\(command) \(arguments.filter { !$0.hasPrefix("--wrap") }.joined(separator: " "))` "
                    + "failed (exit \(result.status)): \(said.isEmpty ? result.output : said)",
                fix: command == "sbatch"
                    ? "check the stack's `slurm:` settings and the steps' `resources:` against `sinfo`."
                    : "check the cluster answers (`sinfo`) and SLURM_CONF points at its slurm.conf.")
        }
        return result.output
    }

    /// Submits a batch job; returns its ID.
    public func submit(_ options: [String], command: [String], environment: [String: String]) async throws -> String {
        let script = "exec " + command.map(Self.shellQuoted).joined(separator: " ")
        let output = try await run("sbatch", ["--parsable"] + options + ["--wrap", script], environment: environment)
        // `--parsable` prints `ID` or `ID;CLUSTER`.
        let id = output.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
        guard !id.isEmpty, id.allSatisfy(\.isNumber) else {
            throw CommandError(
                problem: "sbatch answered \"\(output)\" instead of a job ID.",
                fix: "check `sbatch --parsable --wrap true` works on this machine.")
        }
        return id
    }

    /// The jobs called `name` still known to the controller's queue (pending, running, completing).
    public func queuedJobs(named name: String) async throws -> [SlurmJob] {
        let output = try await run("squeue", ["-h", "--name=\(name)", "-o", "%i|%k|%T|%r"])
        return output.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            guard fields.count == 4 else { return nil }
            return SlurmJob(
                id: fields[0], step: fields[1], state: fields[2],
                reason: fields[3] == "None" || fields[3].isEmpty ? nil : fields[3])
        }
    }

    /// A job's state from `scontrol show job` (ended jobs stay there for the cluster's MinJobAge); `nil` when the
    /// controller no longer knows it.
    public func job(_ id: String) async -> SlurmJob? {
        guard let output = try? await run("scontrol", ["show", "job", "-o", id]) else { return nil }
        var fields: [String: String] = [:]
        for token in output.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
            guard let equals = token.firstIndex(of: "=") else { continue }
            let key = String(token[..<equals])
            if fields[key] == nil { fields[key] = String(token[token.index(after: equals)...]) }
        }
        guard let state = fields["JobState"] else { return nil }
        let reason = fields["Reason"].flatMap { $0 == "None" ? nil : $0 }
        return SlurmJob(id: id, step: fields["Comment"] ?? "", state: state, reason: reason)
    }

    /// Replaces a pending job's dependency (`scontrol update JobId=ID Dependency=…`).
    public func setDependency(of job: String, to dependency: String) async throws {
        _ = try await run("scontrol", ["update", "JobId=\(job)", "Dependency=\(dependency)"])
    }

    /// Lets a job submitted with `--hold` be scheduled (`scontrol release`).
    public func release(_ job: String) async throws {
        _ = try await run("scontrol", ["release", job])
    }

    /// Cancels every job called `name` (`scancel --name`).
    public func cancelJobs(named name: String) async throws {
        _ = try await run("scancel", ["--name=\(name)"])
    }

    static func shellQuoted(_ word: String) -> String {
        if !word.isEmpty, word.allSatisfy({ $0.isLetter || $0.isNumber || "-_./=:@,+".contains($0) }) { return word }
        return "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

}

extension StepResources {
    /// The `sbatch` options asking for these resources.
    var sbatchOptions: [String] {
        var options: [String] = []
        if let partition { options.append("--partition=\(partition)") }
        if let cpus { options.append("--cpus-per-task=\(cpus)") }
        if let memory { options.append("--mem=\(memory)") }
        if let time { options.append("--time=\(time)") }
        if let gres { options.append("--gres=\(gres)") }
        return options
    }
}
