import Foundation
import SluiceTesting
import Testing

/// Wiring mistakes are compile errors: these tests type-check small programs against the built
/// `SluiceCore` module with `swiftc`, as a user's build would.
@Suite("Compile-time wiring checks")
struct CompileTimeWiringTests {
    static let program = """
        import SluiceCore
        struct Combine: Step {
            static let name = "combine"
            static let version = 1
            func run(_ input: ([Int], String), context: StepContext) async throws -> String { "" }
        }
        let pipeline = Pipeline("p") { p in
            let numbers = p.step("numbers", version: 1) { _ in [1, 2] }
            let label = p.step("label", version: 1) { _ in "sum" }
            p.add(Combine(), WIRING)
        }
        """

    func typecheck(wiring: String) throws -> (status: Int32, errors: String) {
        let directory = try TemporaryDirectory(prefix: "sluice-typecheck")
        let source = directory.path("main.swift")
        try Data(Self.program.replacingOccurrences(of: "WIRING", with: wiring).utf8).write(to: source)
        let products = CommandProcess.productsDirectory
        let checkouts = products.deletingLastPathComponent().deletingLastPathComponent().appending(path: "checkouts")
        var arguments = ["swiftc", "-typecheck", "-I", products.appending(path: "Modules").path]
        // C modules of dependencies (Yams' CYaml, swift-crypto's BoringSSL) are found through their module maps.
        let enumerator = FileManager.default.enumerator(atPath: checkouts.path)
        while let path = enumerator?.nextObject() as? String {
            if path.hasSuffix("include/module.modulemap") && path.contains("/Sources/") {
                arguments += ["-Xcc", "-fmodule-map-file=\(checkouts.appending(path: path).path)"]
            }
        }
        arguments.append(source.path)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let data = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test("inputs wired in their declared order type-check")
    func correctWiringCompiles() throws {
        let result = try typecheck(wiring: "numbers, label")
        #expect(result.status == 0, "expected no errors, got:\n\(result.errors)")
    }

    @Test(
        "inputs of the wrong types do not compile",
        arguments: [
            ("label, numbers", "requires the types '([Int], String)' and '(String, [Int])' be equivalent"),
            ("numbers", "requires the types '([Int], String)' and '(_: [Int])' be equivalent"),
            (
                "numbers, label, label",
                "requires the types '([Int], String)' and '([Int], String, String)' be equivalent"
            ),
        ])
    func miswiringDoesNotCompile(wiring: String, message: String) throws {
        let result = try typecheck(wiring: wiring)
        #expect(result.status != 0)
        #expect(result.errors.contains(message), "compiler said:\n\(result.errors)")
    }
}
