import SluiceData

extension TrainingError: SluiceError {
    public var exitStatus: ExitStatus { .failed }
}

extension TransformError: SluiceError {
    public var exitStatus: ExitStatus { .failed }
}
