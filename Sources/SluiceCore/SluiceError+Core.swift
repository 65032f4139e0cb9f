@_exported import SluiceErrors

extension ConfigError: SluiceError {
    public var exitStatus: ExitStatus { .unusableInput }
}

extension PipelineValidationError: SluiceError {
    public var problem: String { description }
    public var fix: String { "correct each problem listed (each names its step, key or file), then run again." }
    public var exitStatus: ExitStatus { .unusableInput }
}

extension RegistryError: SluiceError {
    public var exitStatus: ExitStatus { .unusableInput }
}

extension StageConflict: SluiceError {
    public var exitStatus: ExitStatus { .conflict }
}

extension AmbiguousIDError: SluiceError {
    public var problem: String { "'\(prefix)' matches several records (\(matches.prefix(5).joined(separator: ", ")))." }
    public var fix: String { "type more characters of the ID." }
    public var exitStatus: ExitStatus { .unusableInput }
}

extension ArtifactWriteError: SluiceError {
    public var problem: String { description }
    public var fix: String {
        "check the artifact store's free space and permissions, then run again (completed steps come from the cache)."
    }
    public var exitStatus: ExitStatus { .failed }
}

extension ArtifactReadError: SluiceError {
    public var problem: String {
        "cannot read artifact \(artifact.id) ('\(artifact.name)', \(artifact.uri)): \(underlying)"
    }
    public var fix: String { "re-run with --no-cache to rebuild it." }
    public var exitStatus: ExitStatus { .failed }
}

extension StoreFailure: SluiceError {
    public var problem: String { description }
    public var fix: String {
        "check that the metadata store is reachable and writable, then run again (completed steps come from the cache)."
    }
    public var exitStatus: ExitStatus { .failed }
}

extension UndeclaredSeedError: SluiceError {
    public var problem: String {
        "step '\(step)' (\(kind)) declares `usesRunSeed = false` but drew from context.random(), so its cache key "
            + "would not change with the seed."
    }
    public var fix: String {
        "remove `usesRunSeed = false` from \(kind), or draw from context.random(seed:) with a seed among its parameters."
    }
    public var exitStatus: ExitStatus { .failed }
}

/// A registry request that cannot be honoured is the caller's to fix: 400 with the reason and the fix.
extension RegistryError: HTTPRefusal {
    public var httpStatus: Int { 400 }
    public var httpMessage: String { "\(problem) \(fix)" }
}

/// A stage move decided on a state that changed meanwhile: 409, naming what is there now.
extension StageConflict: HTTPRefusal {
    public var httpStatus: Int { 409 }
    public var httpMessage: String { problem }
}

/// An ID prefix that matches several records: 400, listing them.
extension AmbiguousIDError: HTTPRefusal {
    public var httpStatus: Int { 400 }
    public var httpMessage: String { problem }
}
