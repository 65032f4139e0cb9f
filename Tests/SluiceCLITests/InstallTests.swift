import Foundation
import SluiceTesting
import Testing

@Suite("Installing the CLI")
struct InstallTests {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appending(path: "Scripts/install.sh")

    @Test("Scripts/install.sh puts sluice on a prefix with bash, zsh and fish completions and a manual page")
    func install() async throws {
        let directory = try TemporaryDirectory(prefix: "sluice-install")
        let prefix = directory.path("prefix")
        let result = try await CommandProcess.run(
            "/usr/bin/env",
            [
                "bash", Self.script.path, "--prefix", prefix.path, "--binary",
                try CommandProcess.executable("sluice").path,
            ], in: directory.url)
        #expect(result.status == 0, "\(result.errors)")
        #expect(
            result.errors.contains("installed sluice") || result.errors.contains("installed 0."), "\(result.errors)")

        let installed = try await CommandProcess.run(prefix.path + "/bin/sluice", ["--version"], in: directory.url)
        #expect(installed.status == 0 && !installed.output.isEmpty)
        // The step processes' executable beside it: the same version, without the serving commands.
        let step = try await CommandProcess.run(prefix.path + "/bin/sluice-step", ["--version"], in: directory.url)
        #expect(step.status == 0 && step.output == installed.output)

        let bash = prefix.appending(path: "share/bash-completion/completions/sluice")
        let loaded = try await CommandProcess.run(
            "/usr/bin/env", ["bash", "-c", "source '\(bash.path)' && complete -p sluice"], in: directory.url)
        #expect(loaded.status == 0 && loaded.output.contains("sluice"), "\(loaded.errors)")
        let zsh = try String(contentsOf: prefix.appending(path: "share/zsh/site-functions/_sluice"), encoding: .utf8)
        #expect(zsh.hasPrefix("#compdef sluice"))
        let fish = try String(
            contentsOf: prefix.appending(path: "share/fish/vendor_completions.d/sluice.fish"), encoding: .utf8)
        #expect(fish.contains("complete -c 'sluice'") || fish.contains("complete -c sluice"))

        let manual = try String(contentsOf: prefix.appending(path: "share/man/man1/sluice.1"), encoding: .utf8)
        #expect(manual.hasPrefix(".TH SLUICE 1"))
        #expect(manual.contains(#".SS "sluice ui""#))
        #expect(manual.contains(#".SS "sluice tokens create""#))
        #expect(manual.contains(#"\fB\-\-require\-token\fR"#))
        #expect(manual.contains(#"\fB\-\-set\fR \fIkey=value\fR"#))
        #expect(
            !manual.split(separator: "\n").contains { $0.hasPrefix(".") && $0.contains("sluice_") },
            "no text line is taken for a roff request")

        if FileManager.default.isExecutableFile(atPath: "/usr/bin/groff") {
            let lint = try await CommandProcess.run(
                "/usr/bin/groff", ["-man", "-ww", "-z", prefix.path + "/share/man/man1/sluice.1"], in: directory.url)
            #expect(lint.status == 0 && lint.errors.isEmpty, "groff warns: \(lint.errors)")
        }

        let wrong = try await CommandProcess.run(
            "/usr/bin/env", ["bash", Self.script.path, "--prefx", prefix.path], in: directory.url)
        #expect(wrong.status == 2)
        #expect(wrong.errors.contains("unknown option '--prefx'"))
    }

    @Test("Scripts/step-binary-flags.sh prints the fast-start flags and links the static C archives this machine has")
    func stepBinaryFlags() async throws {
        let directory = try TemporaryDirectory(prefix: "sluice-flags")
        let script = Self.script.deletingLastPathComponent().appending(path: "step-binary-flags.sh")
        let result = try await CommandProcess.run(
            "/usr/bin/env", ["bash", script.path, "libs"], in: directory.url)
        #expect(result.status == 0, "\(result.errors)")
        let flags = result.output.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: " ").map(String.init)
        #expect(
            flags.dropLast() == [
                "--static-swift-stdlib", "-Xlinker", "--no-export-dynamic", "-Xlinker", "-no-pie", "-Xswiftc", "-L",
                "-Xswiftc",
            ])
        let folder = directory.path("libs").resolvingSymlinksInPath().path
        #expect(flags.last.map { URL(fileURLWithPath: $0).resolvingSymlinksInPath().path } == folder)
        // libsqlite3-dev (which GRDB needs to build) ships the archive; every link made points at a real archive.
        let linked = try FileManager.default.contentsOfDirectory(atPath: folder)
        #expect(linked.contains("libsqlite3.a"), "\(linked) \(result.errors)")
        for name in linked {
            let target = try FileManager.default.destinationOfSymbolicLink(atPath: folder + "/" + name)
            #expect(target.hasSuffix("/" + name) && FileManager.default.fileExists(atPath: target), "\(target)")
        }
    }
}
