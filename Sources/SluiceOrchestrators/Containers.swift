import Foundation
import SluiceCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// How the `process` orchestrator starts each step run inside a container image with podman (a stack's
/// `container: IMAGE`): `podman run --rm … IMAGE step run …`, the image's entry point being the pipeline's
/// executable (`sluice export container` writes such an image). The project folder, the artifact store and any
/// YAML pipeline's folder are mounted at the same paths, the host's network is shared (a PostgreSQL store on
/// loopback stays reachable), and the step run records the image it ran in.
public struct ContainerRuntime: Sendable, Equatable {
    /// The image as the stack names it.
    public var image: String
    /// Its ID (`sha256:…`), recorded on every step run it runs (`container.image`); empty until
    /// ``resolved(stack:)``.
    public var imageID: String
    /// The podman executable (`podman` until ``resolved(stack:)`` finds it).
    public var podman: String
    /// Host folders mounted at the same path inside the container.
    public var mounts: [String]
    /// The step's working directory inside the container (the project's root).
    public var workingDirectory: String
    /// Variables set inside the container.
    public var environment: [String: String]
    /// Variables passed through from the host by name (the PostgreSQL password's).
    public var passThrough: [String]

    /// The variable a step run reads the image from (and knows it runs inside it).
    public static let imageVariable = "SLUICE_CONTAINER_IMAGE"
    /// The step property holding the image a step run ran in: `IMAGE@sha256:…`.
    public static let imageProperty = "container.image"

    /// Creates a runtime.
    public init(
        image: String, imageID: String, podman: String, mounts: [String], workingDirectory: String,
        environment: [String: String] = [:], passThrough: [String] = []
    ) {
        self.image = image
        self.imageID = imageID
        self.podman = podman
        self.mounts = mounts
        self.workingDirectory = workingDirectory
        self.environment = environment
        self.passThrough = passThrough
    }

    /// Whether this process is a step run inside a container the orchestrator started.
    public static var isInside: Bool { ProcessInfo.processInfo.environment[imageVariable] != nil }

    /// The command that starts a step process in the image; the step's arguments follow it.
    public func command(extraMounts: [String] = []) -> [String] {
        var command = [podman, "run", "--rm", "--network=host", "--log-driver=none"]
        // runc where it is installed: crun refuses the hybrid cgroup layout some hosts have.
        if ExternalCommand.find("runc") != nil { command += ["--runtime", "runc"] }
        // Podman asks for more open files and processes than the hard limits here may allow (even root cannot
        // raise them): ask for exactly the limits, processes capped at podman's own default.
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_max != rlim_t.max {
            command += ["--ulimit", "nofile=\(limit.rlim_max):\(limit.rlim_max)"]
        }
        if getrlimit(__rlimit_resource_t(6), &limit) == 0 {  // RLIMIT_NPROC
            let processes = min(limit.rlim_max, 32_768)
            command += ["--ulimit", "nproc=\(processes):\(processes)"]
        }
        for folder in Array(Set(mounts + extraMounts)).sorted() { command += ["-v", "\(folder):\(folder)"] }
        command += ["-w", workingDirectory]
        var variables = environment
        variables[Self.imageVariable] = "\(image)@\(imageID)"
        for (key, value) in variables.sorted(by: { $0.key < $1.key }) { command += ["-e", "\(key)=\(value)"] }
        for name in passThrough.sorted() { command += ["-e", name] }
        return command + [image]
    }

    /// The podman executable, or an error saying how to get it.
    public static func podmanPath(stack: String) throws -> String {
        guard let path = ExternalCommand.find("podman") else {
            throw ConfigError(
                problem: "stack '\(stack)' runs steps in a container, but `podman` is not on PATH.",
                fix: "install podman (Debian: apt install podman runc), or remove `container:` from the stack.")
        }
        return path
    }

    /// This runtime with podman found and the image's ID read from podman's store: what a launcher needs before
    /// it starts a step. Opening a container stack does not ask podman, so commands that only read records work
    /// where podman is not installed.
    /// - Throws: ``ConfigError`` when podman is missing or does not have the image, saying how to get them.
    public func resolved(stack: String) async throws -> ContainerRuntime {
        var runtime = self
        runtime.podman = try Self.podmanPath(stack: stack)
        runtime.imageID = try await Self.imageID(of: image, podman: runtime.podman, stack: stack)
        return runtime
    }

    /// The ID of `image` in podman's local store.
    /// - Throws: ``ConfigError`` when podman does not have it, saying how to build it.
    public static func imageID(of image: String, podman: String, stack: String) async throws -> String {
        let result = await ExternalCommand.capture(
            podman, ["image", "inspect", "--format", "{{.Id}}", image], environment: [:])
        let id = result.output.trimmingCharacters(in: .whitespacesAndNewlines)
        guard result.status == 0, !id.isEmpty else {
            throw ConfigError(
                problem: "stack '\(stack)' runs steps in the image '\(image)', which podman does not have: "
                    + result.error.trimmingCharacters(in: .whitespacesAndNewlines),
                fix: "build it with `sluice export container -o DIR --build --tag \(image)` (or the pipeline "
                    + "executable's `export container`), or pull it with podman.")
        }
        return id.hasPrefix("sha256:") ? id : "sha256:\(id)"
    }
}

/// The `process` orchestrator's launcher for a container stack: every step run in its own container of the
/// stack's image (``ContainerRuntime``), whose entry point is the pipeline's executable; a YAML pipeline's folder is
/// mounted too, so the step reads the same file inside. ``prepare()`` finds podman and the image before the run is
/// recorded, so a missing image stops `run` with the fix (exit status 2) and nothing recorded.
public final class ContainerStepLauncher: StepLauncher {
    let container: ContainerRuntime
    let stack: String
    private let ready = Mutex<ContainerRuntime?>(nil)

    /// Creates a launcher over `container` (not resolved yet) of stack `stack`.
    public init(container: ContainerRuntime, stack: String) {
        self.container = container
        self.stack = stack
    }

    public func prepare() async throws { _ = try await runtime() }

    public func launch(_ request: StepLaunch) async -> StepProcessEnd {
        let runtime: ContainerRuntime
        do {
            runtime = try await self.runtime()
        } catch {
            return .notStarted("\(error)")
        }
        let folder = request.command.pipelineFile.map { URL(fileURLWithPath: $0).deletingLastPathComponent().path }
        return await ProcessStepLauncher(executable: runtime.command(extraMounts: folder.map { [$0] } ?? []))
            .launch(request)
    }

    private func runtime() async throws -> ContainerRuntime {
        if let ready = ready.withLock({ $0 }) { return ready }
        let runtime = try await container.resolved(stack: stack)
        ready.withLock { $0 = runtime }
        return runtime
    }
}
