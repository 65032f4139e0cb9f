import Foundation
import Synchronization

/// A step parameter renamed since an earlier release. A config (a run config, a YAML pipeline, `--set`) that still
/// writes the old key keeps working for a release: the value is converted to the new key's form and a warning
/// names the new form, with the file and line of the old key.
public struct RenamedParameter: Sendable {
    /// The old key, as configs wrote it (snake_case).
    public var old: String
    /// The new key (snake_case).
    public var new: String
    /// The new key's value for an old value; throws ``ConfigError`` when the old value cannot be read.
    public var convert: @Sendable (ConfigValue) throws -> ConfigValue

    /// Creates a rename; `convert` maps the old value to the new key's form (the same value by default).
    public init(
        old: String, new: String, convert: @escaping @Sendable (ConfigValue) throws -> ConfigValue = { $0 }
    ) {
        self.old = old
        self.new = new
        self.convert = convert
    }

    /// `parameters` (one step's configured parameters at `path`) with every old key written in its new form,
    /// warning once for each. An old key beside its new one is an error: which of the two was meant is unclear.
    static func apply(_ renames: [RenamedParameter], to parameters: ConfigValue, path: String) throws -> ConfigValue {
        guard !renames.isEmpty, var entries = parameters.entries else { return parameters }
        for rename in renames {
            guard let index = entries.firstIndex(where: { $0.key == rename.old || snakeCased($0.key) == rename.old })
            else { continue }
            let old = entries[index].value
            let place = old.location.map { "\($0): " } ?? ""
            if entries.contains(where: { $0.key == rename.new || snakeCased($0.key) == rename.new }) {
                throw ConfigError(
                    problem: "\(place)\(path) sets both '\(rename.old)' (its old name) and '\(rename.new)'",
                    fix: "remove '\(rename.old)': '\(rename.new)' replaces it.")
            }
            var converted = try rename.convert(old)
            converted.location = old.location
            entries[index] = (rename.new, converted)
            ConfigWarnings.warn(
                "\(place)\(path).\(rename.old) was renamed: write `\(rename.new): \(converted.plainText)` instead "
                    + "(the old key is accepted until the next release)")
        }
        return ConfigValue(.object(entries), at: parameters.location)
    }
}

/// Warnings about configuration that still works but should change, each reported once per process.
public enum ConfigWarnings {
    /// Where warnings go: standard error by default, as `warning: MESSAGE`.
    @TaskLocal public static var report: @Sendable (String) -> Void = { message in
        FileHandle.standardError.write(Data("warning: \(message)\n".utf8))
    }

    private static let reported = Mutex<Set<String>>([])

    /// Reports `message` unless this process reported it already (a pipeline is bound more than once per run).
    public static func warn(_ message: String) {
        guard reported.withLock({ $0.insert(message).inserted }) else { return }
        report(message)
    }
}

extension ConfigValue {
    /// A scalar as YAML would write it; collections as `…`.
    var plainText: String {
        switch kind {
        case .null: "null"
        case .bool(let value): String(value)
        case .int(let value): String(value)
        case .double(let value): String(value)
        case .string(let value): value
        case .array, .object: "…"
        }
    }
}
