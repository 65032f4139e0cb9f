import ArgumentParser
import Foundation
import SluiceCore

/// `sluice tokens`: access tokens for a dashboard bound beyond loopback.
struct TokensCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokens", abstract: "Create, list and revoke the dashboard's access tokens.",
        subcommands: [Create.self, List.self, Revoke.self], defaultSubcommand: List.self)

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a token and print its secret (shown once; the store keeps only its hash).")
        @Argument(help: "What the token is for (unique among live tokens), like ci or alice-laptop.") var name: String
        @Flag(help: "Allow changing state (promote, roll back, cancel), not only reading.") var write = false
        @Flag(help: "Print JSON.") var json = false
        @OptionGroup var stackOption: StackOption

        struct Created: Encodable {
            var id: String
            var name: String
            var canWrite: Bool
            var token: String
        }

        func run() async throws {
            guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || "-_.@".contains($0) }) else {
                throw ValidationError("a token name is letters, digits and - _ . @ (like ci or alice-laptop)")
            }
            let workspace = try await Workspace.open(create: false, stack: stackOption.name)
            let user = ProcessInfo.processInfo.environment["USER"] ?? "unknown"
            let (record, secret) = AccessToken.make(name: name, canWrite: write, createdBy: user)
            try await workspace.stack.tokens.insertToken(record)
            if json {
                return print(try jsonString(Created(id: record.id, name: name, canWrite: write, token: secret)))
            }
            print(secret)
            printError(
                "created \(write ? "read-write" : "read-only") token '\(name)' (\(record.id)); it is shown only now. "
                    + "Send it as `Authorization: Bearer TOKEN`, or paste it at the dashboard's /login.")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List tokens (never their secrets).")
        @Flag(help: "Include revoked tokens.") var all = false
        @Flag(help: "Print JSON.") var json = false
        @OptionGroup var stackOption: StackOption

        struct Listed: Encodable {
            var id: String
            var name: String
            var canWrite: Bool
            var createdAt: Date
            var createdBy: String
            var revokedAt: Date?
        }

        func run() async throws {
            let workspace = try await Workspace.open(create: false, stack: stackOption.name)
            let tokens = try await workspace.stack.tokens.tokens().filter { all || $0.revokedAt == nil }
            if json {
                return print(
                    try jsonString(
                        tokens.map {
                            Listed(
                                id: $0.id, name: $0.name, canWrite: $0.canWrite, createdAt: $0.createdAt,
                                createdBy: $0.createdBy, revokedAt: $0.revokedAt)
                        }))
            }
            guard !tokens.isEmpty else { return print("No tokens. Create one with `sluice tokens create NAME`.") }
            let rows = tokens.map {
                [
                    $0.id, $0.name, $0.canWrite ? "read-write" : "read", formatDate($0.createdAt), $0.createdBy,
                    $0.revokedAt.map(formatDate) ?? "-",
                ]
            }
            print(
                renderTable(
                    ["ID", "NAME", "RIGHTS", "CREATED", "BY", "REVOKED"], rows, terminal: Terminal.standardOutput))
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke a token by name or ID: it opens nothing from the next request on.")
        @Argument(help: "The token's name or ID.") var token: String
        @OptionGroup var stackOption: StackOption

        func run() async throws {
            let workspace = try await Workspace.open(create: false, stack: stackOption.name)
            guard let revoked = try await workspace.stack.tokens.revokeToken(token, at: Date()) else {
                let live = try await workspace.stack.tokens.tokens().filter { $0.revokedAt == nil }.map(\.name)
                throw CLIError(
                    problem: "no live token is named or has the ID '\(token)'."
                        + (live.closest(to: token).map { " Did you mean '\($0)'?" } ?? ""),
                    fix: "list tokens with `sluice tokens list`.")
            }
            print("revoked token '\(revoked.name)' (\(revoked.id))")
        }
    }
}
