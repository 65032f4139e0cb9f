import Foundation
import SluiceCore
import SluiceTesting
import Testing

@testable import SluiceOrchestrators

@Suite("Orchestrators: the names a stack file gives and the settings each reads")
struct OrchestratorsTests {
    @Test("an orchestrator this build does not have is refused, not silently run in-process")
    func orchestrators() throws {
        #expect(try Orchestrators.validatedName("in_process", stack: "local") == "in_process")
        #expect(try Orchestrators.validatedName("slurm", stack: "hpc") == "slurm")
        let container = #expect(throws: ConfigError.self) { try Orchestrators.validatedName("container", stack: "c") }
        #expect(container?.problem.contains("'container'") == true)
        #expect(container?.fix.contains("in_process") == true)
        let airflow = #expect(throws: ConfigError.self) { try Orchestrators.validatedName("airflow", stack: "a") }
        #expect(airflow?.fix.contains("sluice export airflow") == true)
        let typo = #expect(throws: ConfigError.self) { try Orchestrators.validatedName("in_proces", stack: "x") }
        #expect(typo?.problem.contains("Did you mean 'in_process'?") == true)
    }

    @Test("a stack's orchestrator is built from its settings, and settings another orchestrator reads are refused")
    func madeFromSettings() throws {
        let directory = try TemporaryDirectory()
        let project = try Project.create(at: directory.url)
        func make(_ settings: StackSettings) throws -> any Orchestrator {
            try Orchestrators.make(settings: settings, stack: "s", project: project)
        }
        #expect(try make(StackSettings()).name == "in_process")
        #expect(try make(StackSettings()).runsStepsHere)
        #expect(try make(StackSettings(orchestrator: "process")) is ProcessOrchestrator)
        let boxed = try make(StackSettings(orchestrator: "process", container: "localhost/x:1"))
        #expect((boxed as? ProcessOrchestrator)?.launcher is ContainerStepLauncher)
        let slurm = try make(StackSettings(orchestrator: "slurm", slurm: SlurmSettings(account: "ml", cpus: 2)))
        #expect((slurm as? SlurmOrchestrator)?.settings.account == "ml")
        #expect((slurm as? SlurmOrchestrator)?.directory.path == project.root.path)
        let ignored = #expect(throws: ConfigError.self) {
            try make(StackSettings(orchestrator: "process", slurm: SlurmSettings(account: "ml")))
        }
        #expect(ignored?.problem.contains("would be ignored") == true)
        let notProcess = #expect(throws: ConfigError.self) {
            try make(StackSettings(orchestrator: "slurm", container: "localhost/x:1"))
        }
        #expect(notProcess?.problem.contains("only the process orchestrator starts steps in containers") == true)
        let account = #expect(throws: ConfigError.self) {
            try make(StackSettings(orchestrator: "slurm", slurm: SlurmSettings(account: "two words")))
        }
        #expect(account?.problem.contains("one word") == true)
    }

    @Test("a step's resources become sbatch options, the stack's defaults under the run config's")
    func sbatchOptions() throws {
        let defaults = SlurmSettings(account: "ml", partition: "batch", cpus: 2, memory: "4G", time: "01:00:00")
        let resources = defaults.resources.overlaid(with: StepResources(cpus: 4, time: "00:30:00", gres: "gpu:1"))
        #expect(
            resources.sbatchOptions == [
                "--partition=batch", "--cpus-per-task=4", "--mem=4G", "--time=00:30:00", "--gres=gpu:1",
            ])
    }

    @Test("a step process records where it runs from its environment, and only its own orchestrator's keys")
    func placement() throws {
        let slurm = SlurmOrchestrator(
            settings: SlurmSettings(), directory: URL(fileURLWithPath: "/tmp"),
            logDirectory: URL(fileURLWithPath: "/tmp"))
        #expect(slurm.placement(environment: ["SLURM_JOB_ID": "42"]) == [SlurmOrchestrator.jobProperty: .string("42")])
        #expect(slurm.placement(environment: [ContainerRuntime.imageVariable: "x@sha256:1"]).isEmpty)
        let process = ProcessOrchestrator()
        #expect(
            process.placement(environment: [ContainerRuntime.imageVariable: "x@sha256:1"])
                == [ContainerRuntime.imageProperty: .string("x@sha256:1")])
        #expect(process.placement(environment: ["SLURM_JOB_ID": "42"]).isEmpty)
        #expect(
            Orchestrators.placementProperties.isSuperset(of: slurm.placementProperties + process.placementProperties))
    }

    @Test("a launcher given an executable puts it in place of the request's path, keeping its leading arguments")
    func launcherCommandLine() {
        let request = StepLaunch(
            runID: "run-1", step: "train", stepRunID: "step-1", outputFile: URL(fileURLWithPath: "/tmp/x.out"),
            command: StepCommandLine(executable: ["/bin/pipe", "cli-x"], arguments: ["--stack", "local"]))
        #expect(
            ProcessStepLauncher().arguments(of: request) == [
                "/bin/pipe", "cli-x", "step", "run", "--run", "run-1", "--step", "train", "--step-run", "step-1",
                "--stack", "local",
            ])
        #expect(
            ProcessStepLauncher(executable: ["podman", "run", "img"]).arguments(of: request) == [
                "podman", "run", "img", "cli-x", "step", "run", "--run", "run-1", "--step", "train", "--step-run",
                "step-1", "--stack", "local",
            ])
    }
}
