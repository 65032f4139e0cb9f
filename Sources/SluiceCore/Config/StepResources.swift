import Foundation

/// What a step asks of a cluster: a run config's `steps.STEP.resources`, or a Slurm stack's defaults.
///
/// ```yaml
/// steps:
///   train:
///     resources: {cpus: 4, memory: 8G, time: "01:00:00", partition: gpu, gres: "gpu:1"}
/// ```
public struct StepResources: Codable, Sendable, Equatable {
    /// CPUs for the step's one task (`sbatch --cpus-per-task`).
    public var cpus: Int?
    /// Memory as Slurm writes it: a number of megabytes, or with a K, M, G or T suffix (`--mem`).
    public var memory: String?
    /// The time limit in one of Slurm's forms: `MINUTES`, `MM:SS`, `HH:MM:SS`, `DAYS-HH[:MM[:SS]]` (`--time`).
    public var time: String?
    /// The partition the step's job goes to (`--partition`).
    public var partition: String?
    /// Generic resources such as `gpu:1` (`--gres`).
    public var gres: String?

    /// Resources with nothing asked.
    public init(
        cpus: Int? = nil, memory: String? = nil, time: String? = nil, partition: String? = nil, gres: String? = nil
    ) {
        self.cpus = cpus
        self.memory = memory
        self.time = time
        self.partition = partition
        self.gres = gres
    }

    /// Whether nothing is asked.
    public var isEmpty: Bool { self == StepResources() }

    /// These resources with `other`'s set values on top.
    public func overlaid(with other: StepResources) -> StepResources {
        StepResources(
            cpus: other.cpus ?? cpus, memory: other.memory ?? memory, time: other.time ?? time,
            partition: other.partition ?? partition, gres: other.gres ?? gres)
    }

    /// The set values as `(key, value)` pairs, keys as config files spell them.
    public var assignments: [(key: String, value: String)] {
        [("cpus", cpus.map(String.init)), ("memory", memory), ("time", time), ("partition", partition), ("gres", gres)]
            .compactMap { key, value in value.map { (key, $0) } }
    }

    /// Checks the values have forms Slurm takes, so a typo stops the run before any job is submitted.
    /// - Parameter path: where the resources were written (`steps.train.resources`), for the message.
    /// - Throws: ``ConfigError`` naming the key, the value and the forms that work.
    public func validate(at path: String, location: SourceLocation? = nil) throws {
        let place = location.map { "\($0): " } ?? ""
        if let cpus, cpus < 1 {
            throw ConfigError(
                problem: "\(place)\(path).cpus must be at least 1, but it is \(cpus).",
                fix: "write the number of CPUs the step uses, like `cpus: 4`.")
        }
        if let memory, memory.wholeMatch(of: /[0-9]+[KMGTkmgt]?/) == nil {
            throw ConfigError(
                problem: "\(place)\(path).memory is \"\(memory)\", which is not a size Slurm takes.",
                fix: "write megabytes (`4096`) or a size with K, M, G or T (`4G`, `512M`).")
        }
        if let time, time.wholeMatch(of: /[0-9]+(-[0-9]+)?(:[0-9]{1,2}){0,2}|UNLIMITED|INFINITE/) == nil {
            throw ConfigError(
                problem: "\(place)\(path).time is \"\(time)\", which is not a time limit Slurm takes.",
                fix: "write minutes (`90`), `HH:MM:SS` (`01:30:00`) or `DAYS-HH:MM:SS` (`2-00:00:00`), quoted.")
        }
        for (key, value) in [("partition", partition), ("gres", gres)] {
            if let value, value.isEmpty || value.contains(where: { $0.isWhitespace }) {
                throw ConfigError(
                    problem: "\(place)\(path).\(key) is \"\(value)\": a Slurm \(key) is one word.",
                    fix: "write it as `sinfo` (partitions) or `scontrol show node` (gres) shows it.")
            }
        }
    }
}

/// A stack's `slurm:` settings: the account its jobs are charged to and the resources a step gets when its run
/// config does not say.
///
/// ```yaml
/// stacks:
///   cluster:
///     orchestrator: slurm
///     metadata_store: postgres://sluice@db:5432/sluice
///     artifact_store: /shared/sluice/artifacts
///     slurm: {partition: batch, account: ml, cpus: 2, memory: 4G, time: "02:00:00"}
/// ```
public struct SlurmSettings: Codable, Sendable, Equatable {
    /// The account jobs are charged to (`sbatch --account`).
    public var account: String?
    /// The default partition.
    public var partition: String?
    /// Default CPUs per step.
    public var cpus: Int?
    /// Default memory per step.
    public var memory: String?
    /// Default time limit per step.
    public var time: String?
    /// Default generic resources per step.
    public var gres: String?

    /// Settings with nothing set.
    public init(
        account: String? = nil, partition: String? = nil, cpus: Int? = nil, memory: String? = nil,
        time: String? = nil, gres: String? = nil
    ) {
        self.account = account
        self.partition = partition
        self.cpus = cpus
        self.memory = memory
        self.time = time
        self.gres = gres
    }

    /// The default resources of every step.
    public var resources: StepResources {
        StepResources(cpus: cpus, memory: memory, time: time, partition: partition, gres: gres)
    }

    /// These settings with `other`'s set values on top.
    public func overlaid(with other: SlurmSettings) -> SlurmSettings {
        let resources = self.resources.overlaid(with: other.resources)
        return SlurmSettings(
            account: other.account ?? account, partition: resources.partition, cpus: resources.cpus,
            memory: resources.memory, time: resources.time, gres: resources.gres)
    }

    /// The set values as `(key, value)` pairs, keys as the stack file spells them.
    public var assignments: [(key: String, value: String)] {
        (account.map { [("account", $0)] } ?? []) + resources.assignments
    }
}
