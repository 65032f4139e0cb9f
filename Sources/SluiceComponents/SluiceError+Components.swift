import SluiceCore

extension ComponentError: SluiceError {
    public var exitStatus: ExitStatus { .unusableInput }
}
