import ArgumentParser
import Foundation
import SluiceCore

/// `sluice manual`: the manual page, in roff, built from the commands' own help (so it cannot drift from them).
struct ManualCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "manual",
        abstract: "Print the manual page (roff) for man(1): every command, option and example.",
        discussion: "Example: sluice manual > ~/.local/share/man/man1/sluice.1 && man sluice")

    /// ArgumentParser's description of a command (`--experimental-dump-help`), as far as the page uses it.
    struct Command: Decodable {
        var commandName: String
        var abstract: String?
        var discussion: String?
        var shouldDisplay: Bool?
        var arguments: [Argument]?
        var subcommands: [Command]?
    }

    struct Argument: Decodable {
        struct Name: Decodable {
            var kind: String
            var name: String
        }
        var kind: String
        var names: [Name]?
        var valueName: String?
        var abstract: String?
        var isOptional: Bool?
        var isRepeating: Bool?
        var shouldDisplay: Bool?
        var defaultValue: String?
    }

    struct Dump: Decodable {
        var command: Command
    }

    func run() async throws {
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        let process = Process()
        process.executableURL =
            FileManager.default.isExecutableFile(atPath: executable.path)
            ? executable : URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        process.arguments = ["--experimental-dump-help"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let dump = try JSONDecoder().decode(Dump.self, from: data)
        print(Self.page(dump.command, version: RunEnvironment.sluiceVersion), terminator: "")
    }

    /// The whole page: name, synopsis, description, then one section per command.
    static func page(_ root: Command, version: String) -> String {
        let name = root.commandName
        var out = """
            .TH \(name.uppercased()) 1 "" "\(escape(name)) \(escape(version))" "Sluice Manual"
            .SH NAME
            \(escape(name)) \\- \(escape(root.abstract ?? ""))
            .SH SYNOPSIS
            .B \(escape(name))
            .I COMMAND
            .RI [ OPTIONS ]
            .SH DESCRIPTION
            Sluice turns machine-learning work into reproducible, traceable pipelines: typed steps, content-addressed
            artifacts, a metadata store that answers lineage both ways, caching, a model registry, a model server and
            a dashboard. Every command that opens a project takes
            .B \\-\\-stack
            .IR NAME .
            Exit status: 0 success, 1 the run or validation failed, 2 unusable input or usage, 3 a wait timed
            out, 4 a conflicting change came first (nothing changed), 130 interrupted.
            .SH COMMANDS

            """
        func walk(_ command: Command, path: [String]) {
            for sub in command.subcommands ?? [] where sub.shouldDisplay != false && sub.commandName != "help" {
                let full = path + [sub.commandName]
                out += ".SS \"\(escape(full.joined(separator: " ")))\"\n"
                if let abstract = sub.abstract, !abstract.isEmpty { out += escape(abstract) + "\n" }
                if let discussion = sub.discussion, !discussion.isEmpty {
                    out += ".PP\n.nf\n" + escape(discussion) + "\n.fi\n"
                }
                for argument in sub.arguments ?? [] where argument.shouldDisplay != false {
                    if argument.names?.contains(where: { $0.name == "help" || $0.name == "version" }) == true {
                        continue
                    }
                    out += ".TP\n" + synopsis(argument) + "\n"
                    var text = argument.abstract ?? ""
                    if let value = argument.defaultValue, !value.isEmpty { text += " (default: \(value))" }
                    if argument.isRepeating == true && argument.kind != "flag" { text += " Repeatable." }
                    out += escape(text) + "\n"
                }
                walk(sub, path: full)
            }
        }
        walk(root, path: [name])
        out += """
            .SH FILES
            .TP
            .I .sluice/stack.yaml
            The project's stacks: metadata store, artifact store, orchestrator.
            .TP
            .I .sluice/metadata.sqlite
            The embedded metadata store and model registry.
            .SH SEE ALSO
            The README and docs/ of the Sluice repository.

            """
        return out
    }

    /// `--set key=value`, `-c, --config config`, `<pipeline>`.
    static func synopsis(_ argument: Argument) -> String {
        let value = argument.valueName.map { "\\fI\(escape($0))\\fR" } ?? ""
        guard argument.kind != "positional" else { return value }
        let names = (argument.names ?? []).map { name -> String in
            let dashes = name.kind == "short" ? "\\-" : "\\-\\-"
            return "\\fB\(dashes)\(escape(name.name))\\fR"
        }.joined(separator: ", ")
        return argument.kind == "flag" ? names : "\(names) \(value)"
    }

    /// Text safe in roff: backslashes and dashes escaped, characters beyond ASCII as `\[uXXXX]`, lines never
    /// starting with a control character.
    static func escape(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": out += "\\e"
            case "-": out += "\\-"
            case _ where scalar.isASCII: out.unicodeScalars.append(scalar)
            default:
                let hex = String(scalar.value, radix: 16, uppercase: true)
                out += "\\[u" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex + "]"
            }
        }
        return out.split(separator: "\n", omittingEmptySubsequences: false)
            .map { line in line.hasPrefix(".") || line.hasPrefix("'") ? "\\&" + line : String(line) }
            .joined(separator: "\n")
    }
}
