@_exported import SluiceErrors

extension CSVError: SluiceError {
    public var exitStatus: ExitStatus { .unusableInput }
}

extension SchemaError: SluiceError {
    public var fix: String {
        "correct the schema file, or write a fresh one with `sluice data schema DATA > schema.yaml`."
    }
    public var exitStatus: ExitStatus { .unusableInput }
}

extension SplitError: SluiceError {
    public var exitStatus: ExitStatus { .unusableInput }
}

extension ArrowFile.FormatError: SluiceError {
    public var fix: String { "check that the file is an uncompressed Arrow IPC (Feather v2) file written whole." }
    public var exitStatus: ExitStatus { .unusableInput }
}

extension TableFileError: SluiceError {
    public var exitStatus: ExitStatus { .unusableInput }
}
