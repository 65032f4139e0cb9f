import Foundation
import SluiceCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Every step run that is not a cache hit runs as `BINARY step run …` in a process of its own, through a
/// ``StepLauncher``: a child process of this machine (``ProcessStepLauncher``), or a container of the stack's image
/// (``ContainerStepLauncher``); up to the run's parallelism at once.
public struct ProcessOrchestrator: Orchestrator {
    /// How each step's process starts.
    public var launcher: any StepLauncher

    /// Creates the orchestrator; child processes of this machine by default.
    public init(launcher: any StepLauncher = ProcessStepLauncher()) { self.launcher = launcher }

    public var name: String { "process" }
    public func prepare() async throws { try await launcher.prepare() }
    public func execute(_ step: ReadyStep) async -> StepExecution { .elsewhere(await launcher.launch(step.launch)) }
    public var placementProperties: [String] { [ContainerRuntime.imageProperty] }

    /// Inside a container the orchestrator started, the step run records the image.
    public func placement(environment: [String: String]) -> [String: PropertyValue] {
        guard let image = environment[ContainerRuntime.imageVariable], !image.isEmpty else { return [:] }
        return [ContainerRuntime.imageProperty: .string(image)]
    }
}

/// Starts one step run of a recorded run in a process of its own and waits for it to end. The process runs
/// ``StepLaunch/arguments`` (`BINARY step run --run RUN --step STEP --step-run ID …`), which writes the step run's
/// record under the given ID; the engine reads that record afterwards.
public protocol StepLauncher: Sendable {
    /// Checks the launcher can start steps (a container stack's image is there), before a run is recorded.
    func prepare() async throws

    /// Runs `request` and waits for it. Cancelling the calling task stops the step (it is recorded cancelled).
    func launch(_ request: StepLaunch) async -> StepProcessEnd
}

extension StepLauncher {
    /// Nothing to check.
    public func prepare() async throws {}
}

/// Every step run in its own child process of this machine: the request's command line, or with ``executable``
/// set, that in place of the request's executable path (its leading arguments kept).
///
/// Children get their own process group, so a Ctrl-C at the terminal reaches the scheduler only; it stops them with
/// SIGTERM (each records its step run cancelled) and, after ``terminationGrace``, SIGKILL.
public struct ProcessStepLauncher: StepLauncher {
    /// Words that start the step's process in place of the request's executable path (a container's
    /// `podman run … IMAGE`); `nil`: the request's own.
    public var executable: [String]?
    /// Variables set in the children's environment on top of this process's and the request's.
    public var environment: [String: String]
    /// How long a child may take to record itself cancelled after SIGTERM before it is killed.
    public var terminationGrace: Duration

    /// Creates a launcher.
    public init(
        executable: [String]? = nil, environment: [String: String] = [:], terminationGrace: Duration = .seconds(10)
    ) {
        precondition(executable?.isEmpty != true, "a step command needs an executable")
        self.executable = executable
        self.environment = environment
        self.terminationGrace = terminationGrace
    }

    /// The command line `request` starts with this launcher.
    public func arguments(of request: StepLaunch) -> [String] {
        guard let executable else { return request.arguments }
        return executable + request.arguments.dropFirst(1)
    }

    public func launch(_ request: StepLaunch) async -> StepProcessEnd {
        let child = ChildProcess()
        return await withTaskCancellationHandler {
            let argv = arguments(of: request)
            var env = ProcessInfo.processInfo.environment
            for (key, value) in request.command.environment { env[key] = value }
            for (key, value) in environment { env[key] = value }
            do {
                try FileManager.default.createDirectory(
                    at: request.outputFile.deletingLastPathComponent(), withIntermediateDirectories: true)
                try child.spawn(argv, environment: env, output: request.outputFile.path)
            } catch {
                return .notStarted("\(error)")
            }
            if Task.isCancelled { child.terminate(grace: terminationGrace) }
            return await child.wait()
        } onCancel: {
            child.terminate(grace: terminationGrace)
        }
    }
}

/// A child process started with `posix_spawn`, its output in a file, waited for on a thread of its own.
final class ChildProcess: Sendable {
    private struct State {
        var pid: pid_t?
        var terminateRequested = false
        var exited = false
    }
    private let state = Mutex(State())
    private let grace = Mutex<Duration>(.seconds(10))

    struct SpawnError: Error, CustomStringConvertible {
        var description: String
    }

    func spawn(_ arguments: [String], environment: [String: String], output: String) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Its own process group (a terminal's Ctrl-C goes to the scheduler, which stops children itself); default
        // dispositions for the signals this process may ignore; nothing blocked.
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGINT, SIGTERM, SIGPIPE, SIGHUP, SIGQUIT] { sigaddset(&defaults, signal) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(
            &attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, arguments[0], &actions, &attributes, argv, envp)
        guard status == 0 else {
            throw SpawnError(description: "\(arguments[0]): \(String(cString: strerror(status)))")
        }
        let terminate = state.withLock { state -> Bool in
            state.pid = pid
            return state.terminateRequested
        }
        if terminate { signalAndEscalate(pid) }
    }

    /// Waits for the child to exit, on a thread of its own (`waitpid` blocks).
    func wait() async -> StepProcessEnd {
        guard let pid = state.withLock({ $0.pid }) else { return .notStarted("no process") }
        let status = await withCheckedContinuation { (continuation: CheckedContinuation<Int32, Never>) in
            Thread.detachNewThread {
                var status: Int32 = 0
                while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
                self.state.withLock { $0.exited = true }
                continuation.resume(returning: status)
            }
        }
        let signal = status & 0x7f
        return signal == 0 ? .exited((status >> 8) & 0xff) : .signalled(signal)
    }

    /// SIGTERM now (or as soon as the child exists), SIGKILL after `grace` if it is still there.
    func terminate(grace: Duration) {
        self.grace.withLock { $0 = grace }
        let pid = state.withLock { state -> pid_t? in
            state.terminateRequested = true
            return state.pid
        }
        if let pid { signalAndEscalate(pid) }
    }

    /// Signals the child's process group (the child and whatever it started).
    private func signalAndEscalate(_ pid: pid_t) {
        kill(-pid, SIGTERM)
        let grace = self.grace.withLock { $0 }
        Task.detached { [self] in
            try? await Task.sleep(for: grace)
            // Until waitpid has reaped it the PID is still this child's (a zombie at worst), never a reused one.
            if !state.withLock({ $0.exited }) { kill(-pid, SIGKILL) }
        }
    }
}
