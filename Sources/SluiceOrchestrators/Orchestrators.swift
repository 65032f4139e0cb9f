import Foundation
import SluiceCore

/// The orchestrators this build has, by the name a stack file's `orchestrator:` gives them: where `Stack.open`
/// turns that setting (and the settings that only one orchestrator reads, `slurm:` and `container:`) into an
/// ``Orchestrator``. Adding an orchestrator is a type in this module and a case here.
public enum Orchestrators {
    /// The names a stack file may give, in the order errors list them.
    public static let names = ["in_process", "process", "slurm"]

    /// The orchestrators whose runs go on without the process that started them (`sluice run --detach`).
    public static let detaching: Set<String> = ["slurm"]

    /// Step properties that say where a step ran, of every orchestrator here (never carried to a cache hit).
    public static let placementProperties: Set<String> = [
        SlurmOrchestrator.jobProperty, ContainerRuntime.imageProperty,
    ]

    /// The orchestrator of stack `stack` of `project` with `settings`.
    /// - Throws: ``ConfigError`` for an orchestrator this build does not have, or settings it would ignore.
    public static func make(settings: StackSettings, stack: String, project: Project) throws -> any Orchestrator {
        let name = try validatedName(settings.orchestrator ?? "in_process", stack: stack)
        if let slurm = settings.slurm {
            guard name == "slurm" else {
                throw ConfigError(
                    problem: "stack '\(stack)' has `slurm:` settings, but its orchestrator is \(name): they would be "
                        + "ignored.",
                    fix: "set `orchestrator: slurm` on that stack in \(project.stackFile.path), or remove `slurm:`.")
            }
            try slurm.resources.validate(at: "stacks.\(stack).slurm")
            if let account = slurm.account, account.isEmpty || account.contains(where: \.isWhitespace) {
                throw ConfigError(
                    problem: "stack '\(stack)' has slurm.account \"\(account)\": a Slurm account is one word.",
                    fix: "write the account as `sacctmgr show assoc` lists it.")
            }
        }
        if settings.container != nil, name != "process" {
            throw ConfigError(
                problem: "stack '\(stack)' names a container image, but its orchestrator is \(name): only the "
                    + "process orchestrator starts steps in containers.",
                fix: "set `orchestrator: process` on that stack in \(project.stackFile.path), or remove `container:`.")
        }
        switch name {
        case "process":
            // Inside the container the step runs where it is; only the scheduling side starts containers. Podman and
            // the image are looked up when a run starts (`ContainerStepLauncher.prepare`), so commands that only
            // read records work without them.
            guard let image = settings.container, !ContainerRuntime.isInside else { return ProcessOrchestrator() }
            let artifacts = project.resolve(settings.artifactStore ?? "artifacts").path
            var mounts = [project.root.path]
            if !artifacts.hasPrefix(project.root.path + "/") { mounts.append(artifacts) }
            let container = ContainerRuntime(
                image: image, imageID: "", podman: "podman", mounts: mounts, workingDirectory: project.root.path,
                environment: ["SLUICE_PROJECT": project.root.path, "NO_COLOR": "1"],
                passThrough: settings.passwordEnv.map { [$0] } ?? [])
            return ProcessOrchestrator(launcher: ContainerStepLauncher(container: container, stack: stack))
        case "slurm":
            return SlurmOrchestrator(
                settings: settings.slurm ?? SlurmSettings(), directory: project.root,
                logDirectory: project.directory.appending(path: "logs"))
        default:
            return InProcessOrchestrator()
        }
    }

    /// `setting` when this build has an orchestrator by that name.
    /// - Throws: ``ConfigError`` saying which it has (and what to do for Airflow, which runs pipelines from a DAG).
    public static func validatedName(_ setting: String, stack: String) throws -> String {
        if names.contains(setting) { return setting }
        if setting == "airflow" {
            throw ConfigError(
                problem: "stack '\(stack)' asks for the 'airflow' orchestrator: Airflow runs Sluice pipelines "
                    + "from a DAG file, not from a stack.",
                fix: "write the DAG with `sluice export airflow PIPELINE -o DAGS-FOLDER`, and set "
                    + "`orchestrator:` to one of \(names.joined(separator: ", ")).")
        }
        let problem =
            setting == "container"
            ? "stack '\(stack)' asks for the 'container' orchestrator, which this build of Sluice does not have "
                + "yet: running in-process instead would be a different run than the one asked for."
            : "stack '\(stack)' names an unknown orchestrator '\(setting)'."
                + (names.closest(to: setting).map { " Did you mean '\($0)'?" } ?? "")
        throw ConfigError(
            problem: problem,
            fix: "set `orchestrator:` to one of \(names.joined(separator: ", ")) in .sluice/stack.yaml.")
    }

    /// The orchestrator that owns a run recorded as handed to `name` (its owner's external orchestrator), built
    /// with `stack`'s settings when that stack uses it and defaults otherwise: what `runs show`, `runs wait` and
    /// `runs cancel` ask about a run started elsewhere. `nil` for names this build has no orchestrator for
    /// (Airflow's runs).
    public static func owning(_ name: String, stack: Stack, project: Project) -> (any Orchestrator)? {
        if stack.orchestrator.name == name { return stack.orchestrator }
        guard name == "slurm" else { return nil }
        return SlurmOrchestrator(
            settings: SlurmSettings(), directory: project.root, logDirectory: project.directory.appending(path: "logs"))
    }
}
