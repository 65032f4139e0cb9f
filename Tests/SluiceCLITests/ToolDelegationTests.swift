import Foundation
import SluiceTesting
import Testing

@testable import SluiceCLI

@Suite("A pipeline executable runs the sluice tool for serve, ui and profile")
struct ToolDelegationTests {
    @Test("serve, ui and profile in a pipeline executable run the tool with the same arguments, in place of it")
    func delegatesWithTheSameArguments() async throws {
        let directory = try TemporaryDirectory(prefix: "sluice-delegate")
        for command in ["serve", "ui", "profile"] {
            let result = try await CommandProcess.run(
                "sluice-example", [command, "penguins@production", "--port", "9", "--stack", "team"],
                in: directory.url, environment: ["SLUICE_TOOL": "/bin/echo"])
            #expect(result.status == 0, "\(result.errors)")
            #expect(result.output == "\(command) penguins@production --port 9 --stack team\n")
        }
    }

    @Test(
        "without SLUICE_TOOL the sluice beside the executable answers (its own help), and a missing tool says what to do"
    )
    func findsTheToolOrSaysHow() async throws {
        let directory = try TemporaryDirectory(prefix: "sluice-delegate")
        let help = try await CommandProcess.run("sluice-example", ["serve", "--help"], in: directory.url)
        #expect(help.status == 0, "\(help.errors)")
        #expect(help.output.contains("--grpc-port"), "the tool's own serve help: \(help.output)")
        let missing = try await CommandProcess.run(
            "sluice-example", ["ui"], in: directory.url, environment: ["SLUICE_TOOL": directory.path("none").path])
        #expect(missing.status == 2)
        #expect(missing.errors.contains("could not run"), "\(missing.errors)")
        #expect(missing.errors.contains("SLUICE_TOOL"), "\(missing.errors)")
        #expect(ToolDelegation.tool(environment: ["SLUICE_TOOL": "/opt/sluice"]) == "/opt/sluice")
    }

    @Test("the sluice tool starts its step processes with the sluice-step beside it; a pipeline executable with itself")
    func stepExecutable() throws {
        // The test bundle sits in the build folder beside `sluice` and `sluice-step`.
        let found = try #require(Workspace.stepExecutable(tool: true))
        #expect(found.hasSuffix("/sluice-step"))
        #expect(FileManager.default.isExecutableFile(atPath: found))
        #expect(Workspace.stepExecutable(tool: false) == nil)
    }
}
