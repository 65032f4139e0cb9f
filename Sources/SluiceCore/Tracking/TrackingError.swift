import Foundation
import SluiceErrors

/// A tracking call that cannot be done as asked, with the MLflow protocol's error code it is answered with.
public struct TrackingError: Error, Equatable {
    /// The protocol's error codes (MLflow's `error_code` values) and the HTTP status each is answered with.
    public enum Code: String, Sendable, Equatable {
        case invalidParameterValue = "INVALID_PARAMETER_VALUE"
        case resourceDoesNotExist = "RESOURCE_DOES_NOT_EXIST"
        case resourceAlreadyExists = "RESOURCE_ALREADY_EXISTS"
        case invalidState = "INVALID_STATE"
        case badRequest = "BAD_REQUEST"
        case endpointNotFound = "ENDPOINT_NOT_FOUND"

        /// The HTTP status MLflow's server answers the code with.
        public var httpStatus: Int {
            switch self {
            case .invalidParameterValue, .invalidState, .badRequest, .resourceAlreadyExists: 400
            case .resourceDoesNotExist, .endpointNotFound: 404
            }
        }
    }

    public var code: Code
    public var message: String
    /// What to do next, for the command line.
    public var hint: String?

    /// Creates the error.
    public init(_ code: Code, _ message: String, hint: String? = nil) {
        self.code = code
        self.message = message
        self.hint = hint
    }

    /// The run does not exist.
    public static func noRun(_ id: String) -> TrackingError {
        TrackingError(
            .resourceDoesNotExist, "Run with id=\(id) not found",
            hint: "list runs with `sluice runs list` and pass one of their IDs (or a unique prefix).")
    }

    /// The experiment does not exist.
    public static func noExperiment(_ id: String) -> TrackingError {
        TrackingError(.resourceDoesNotExist, "No Experiment with id=\(id) exists")
    }
}

extension TrackingError: SluiceError {
    public var problem: String { message }
    public var fix: String {
        if let hint { return hint }
        switch code {
        case .resourceDoesNotExist: return "check the ID or name (`sluice runs list` lists runs)."
        case .resourceAlreadyExists: return "choose another name, or restore the deleted one."
        case .invalidState: return "restore it first, or act on another one."
        case .endpointNotFound: return "docs/tracking.md lists what Sluice's tracking server answers."
        case .invalidParameterValue, .badRequest: return "correct the value named above and try again."
        }
    }
    public var exitStatus: ExitStatus { code == .resourceAlreadyExists ? .conflict : .unusableInput }
}

extension TrackingError: HTTPRefusal {
    public var httpStatus: Int { code.httpStatus }
    public var httpMessage: String { message }
}
