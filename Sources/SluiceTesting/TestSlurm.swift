import Foundation
import Synchronization

/// A real single-node Slurm cluster for tests: munge, slurmctld and slurmd of Debian's slurm-wlm, started by hand
/// (no systemd, no cgroups, no accounting) with their configuration, state and logs in a temporary folder, on free
/// ports of 127.0.0.1, and stopped when the test process exits. Installs the packages with apt when they are
/// missing, so the test suite needs nothing set up beforehand. Clients find it through ``environment``
/// (`SLURM_CONF`).
public final class TestSlurm: Sendable {
    /// The cluster's slurm.conf.
    public let configPath: String
    /// The folder holding everything the cluster writes.
    public let folder: String
    /// The node's CPUs as the cluster counts them.
    public let cpus: Int

    private static let sharedCluster = Mutex<Result<TestSlurm, SetupError>?>(nil)

    /// The cluster the tests share, started on first use.
    /// - Throws: ``SetupError`` saying which step failed and what it printed.
    public static func shared() throws -> TestSlurm {
        try sharedCluster.withLock { state in
            if state == nil {
                do {
                    state = .success(try TestSlurm())
                } catch let error as SetupError {
                    state = .failure(error)
                } catch {
                    state = .failure(SetupError(problem: "\(error)", fix: "see the error above."))
                }
            }
            return try state!.get()
        }
    }

    /// ``shared()`` from async code, started on a thread of its own (starting a cluster blocks for seconds).
    public static func started() async throws -> TestSlurm { try await onOwnThread { try shared() } }

    /// What a Slurm client (`sbatch`, `squeue`, a Sluice command) needs in its environment to reach the cluster.
    public var environment: [String: String] { ["SLURM_CONF": configPath] }

    private var munge: String { "\(folder)/munge" }
    private var socket: String { "\(munge)/munge.socket.2" }

    /// Installs (when needed) and starts a cluster.
    public init() throws {
        try aptInstall(
            ["slurmctld", "slurmd", "slurm-client", "munge"],
            unlessPresent: ["/usr/sbin/slurmctld", "/usr/sbin/slurmd", "/usr/bin/sbatch", "/usr/sbin/munged"],
            what: "Slurm and munge")
        folder = "/tmp/sluice-test-slurm-\(getpid())"
        configPath = "\(folder)/etc/slurm.conf"
        try? FileManager.default.removeItem(atPath: folder)
        for sub in ["etc", "state", "spool", "log", "run", "munge"] {
            try FileManager.default.createDirectory(atPath: "\(folder)/\(sub)", withIntermediateDirectories: true)
        }
        // munge: its own key, socket and pid file, owned by the munge user, in a folder only it writes.
        var key = Data(count: 1024)
        for index in key.indices { key[index] = UInt8.random(in: 0...255) }
        try key.write(to: URL(fileURLWithPath: "\(folder)/munge/munge.key"))
        try TestPostgres.check(["chown", "-R", "munge:munge", "\(folder)/munge"], "give munge its folder")
        try TestPostgres.check(["chmod", "0755", "\(folder)/munge"], "open munge's folder")
        try TestPostgres.check(["chmod", "0400", "\(folder)/munge/munge.key"], "close munge's key")

        let host = try Self.output(["hostname", "-s"]).trimmingCharacters(in: .whitespacesAndNewlines)
        let hardware = try Self.output(["/usr/sbin/slurmd", "-C"])
        func field(_ name: String) -> Int? {
            hardware.split(whereSeparator: { $0 == " " || $0 == "\n" }).first { $0.hasPrefix("\(name)=") }
                .flatMap { Int($0.dropFirst(name.count + 1)) }
        }
        cpus = field("CPUs") ?? ProcessInfo.processInfo.activeProcessorCount
        let memory = field("RealMemory") ?? 1024
        let controllerPort = try TestPostgres.freePort()
        var nodePort = try TestPostgres.freePort()
        while nodePort == controllerPort { nodePort = try TestPostgres.freePort() }
        let configuration = """
            ClusterName=sluicetest
            SlurmctldHost=\(host)(127.0.0.1)
            SlurmUser=root
            SlurmdUser=root
            AuthType=auth/munge
            CredType=cred/munge
            AuthInfo=socket=\(socket)
            SlurmctldPort=\(controllerPort)
            SlurmdPort=\(nodePort)
            CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
            StateSaveLocation=\(folder)/state
            SlurmdSpoolDir=\(folder)/spool
            SlurmctldPidFile=\(folder)/run/slurmctld.pid
            SlurmdPidFile=\(folder)/run/slurmd.pid
            SlurmctldLogFile=\(folder)/log/slurmctld.log
            SlurmdLogFile=\(folder)/log/slurmd.log
            ProctrackType=proctrack/linuxproc
            TaskPlugin=task/none
            JobAcctGatherType=jobacct_gather/none
            AccountingStorageType=accounting_storage/none
            JobCompType=jobcomp/filetxt
            JobCompLoc=\(folder)/log/jobcomp.log
            SelectType=select/cons_tres
            SelectTypeParameters=CR_Core_Memory
            DefMemPerCPU=512
            SchedulerType=sched/backfill
            SchedulerParameters=batch_sched_delay=0
            MpiDefault=none
            MailProg=/bin/true
            ReturnToService=2
            MinJobAge=600
            KillWait=5
            InactiveLimit=0
            NodeName=\(host) NodeAddr=127.0.0.1 NodeHostname=\(host) CPUs=\(cpus) RealMemory=\(memory) State=UNKNOWN
            PartitionName=debug Nodes=\(host) Default=YES MaxTime=INFINITE State=UP

            """
        try Data(configuration.utf8).write(to: URL(fileURLWithPath: configPath))
        atexit { TestSlurm.sharedCluster.withLock { try? $0?.get() }?.stop() }
        do {
            try start(host: host)
        } catch {
            stop()
            throw error
        }
    }

    private func start(host: String) throws {
        try TestPostgres.check(
            [
                "runuser", "-u", "munge", "--", "/usr/sbin/munged", "--socket=\(socket)",
                "--key-file=\(munge)/munge.key", "--pid-file=\(munge)/munged.pid", "--log-file=\(munge)/munged.log",
                "--seed-file=\(munge)/munged.seed",
            ], "start munged")
        try wait(30, "munge to answer") {
            (try? runCommand(
                ["sh", "-c", "munge -S '\(socket)' -n | unmunge -S '\(socket)'"], environment: clientEnvironment))?
                .status == 0
        }
        try TestPostgres.check(
            ["/usr/sbin/slurmctld", "-c", "-i", "-f", configPath], "start slurmctld", environment: environment)
        try wait(60, "slurmctld to answer") {
            (try? runCommand(["scontrol", "ping"], environment: clientEnvironment))?.status == 0
        }
        try TestPostgres.check(
            ["/usr/sbin/slurmd", "-f", configPath, "-N", host], "start slurmd", environment: environment)
        try wait(90, "the node to be idle") {
            (try? runCommand(["sinfo", "-h", "-o", "%T"], environment: clientEnvironment))?.output
                .trimmingCharacters(in: .whitespacesAndNewlines) == "idle"
        }
    }

    private var clientEnvironment: [String: String] {
        ProcessInfo.processInfo.environment.merging(environment) { $1 }
    }

    private func wait(_ seconds: Double, _ what: String, until ready: () -> Bool) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while !ready() {
            guard Date() < deadline else {
                let logs = ["\(folder)/log/slurmctld.log", "\(folder)/log/slurmd.log", "\(munge)/munged.log"]
                    .compactMap { path in
                        (try? String(contentsOfFile: path, encoding: .utf8)).map {
                            "\(path):\n" + $0.split(separator: "\n").suffix(15).joined(separator: "\n")
                        }
                    }
                throw SetupError(
                    problem: "the test Slurm cluster did not come up: waited \(Int(seconds)) s for \(what).\n"
                        + logs.joined(separator: "\n"),
                    fix: "see the logs above (\(folder)/log).")
            }
            usleep(200_000)
        }
    }

    /// Runs `command` with the cluster's environment; returns its status and output.
    public func run(_ command: [String]) throws -> (status: Int32, output: String) {
        try runCommand(command, environment: clientEnvironment)
    }

    /// A job's state (`COMPLETED`, `TIMEOUT`…) from `scontrol show job`.
    public func state(ofJob id: String) throws -> String? {
        let output = try run(["scontrol", "show", "job", "-o", id]).output
        return output.split(separator: " ").first { $0.hasPrefix("JobState=") }.map { String($0.dropFirst(9)) }
    }

    /// Cancels every job, then stops slurmd, slurmctld and munged, and kills any job step left behind.
    func stop() {
        _ = try? run(["sh", "-c", "squeue -h -o %i | xargs -r scancel"])
        for pidFile in ["\(folder)/run/slurmd.pid", "\(folder)/run/slurmctld.pid", "\(munge)/munged.pid"] {
            guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
                let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
            else { continue }
            kill(pid, SIGTERM)
            for _ in 0..<50 where kill(pid, 0) == 0 { usleep(100_000) }
            if kill(pid, 0) == 0 { kill(pid, SIGKILL) }
        }
        _ = try? runCommand(
            [
                "sh", "-c",
                "for p in $(pgrep -x slurmstepd); do ls -l /proc/$p/fd 2>/dev/null | grep -q '\(folder)/' "
                    + "&& kill -9 $p; done; true",
            ], environment: ProcessInfo.processInfo.environment)
        try? FileManager.default.removeItem(atPath: folder)
    }

    private static func output(_ command: [String]) throws -> String {
        let result = try runCommand(command, environment: ProcessInfo.processInfo.environment)
        guard result.status == 0 else {
            throw SetupError(
                problem: "`\(command.joined(separator: " "))` exited \(result.status): \(result.output)",
                fix: "run it by hand to see why.")
        }
        return result.output
    }
}
