/// An error Sluice raises: what is wrong, what to do next, and the exit status the command line ends with.
///
/// Every error type of Sluice's modules conforms, so the CLI reports any of them the same way ("error: PROBLEM",
/// then "To fix: FIX") and exits with a status that means something: ``ExitStatus``.
public protocol SluiceError: Error, CustomStringConvertible {
    /// What is wrong, naming the file, line, key, record or store involved.
    var problem: String { get }
    /// What the user can do next.
    var fix: String { get }
    /// How the command line ends when this error stops it.
    var exitStatus: ExitStatus { get }
}

extension SluiceError {
    /// The problem, then what to do next: how the command line, logs and step records show every Sluice error.
    /// Types whose problem needs a prefix (a CSV file's `file:line:column`) write their own.
    public var description: String { "\(problem)\n  To fix: \(fix)" }
}

/// What a `sluice` command's exit status means.
public enum ExitStatus: Int32, Sendable, CaseIterable {
    /// It did what was asked.
    case success = 0
    /// The run, the validation or the work itself failed (a step threw, data failed its checks, a store broke).
    case failed = 1
    /// The input or the usage cannot be used as given: a bad config, an unknown name, unreadable data.
    case unusableInput = 2
    /// A wait gave up at its time limit (`runs wait --timeout`) while the work goes on.
    case timedOut = 3
    /// Someone else changed the record first (a promotion meanwhile): nothing was changed; look, then try again.
    case conflict = 4
    /// The user interrupted it (Ctrl-C); the run is recorded as cancelled.
    case interrupted = 130
}

/// An error an HTTP surface (the model server over HTTP and gRPC, the dashboard) answers on purpose, with its own
/// status (a 4xx for the caller's mistake, 409 for a conflict) and its reason sent as it is. Every other error is
/// unexpected: ``UnexpectedErrorAnswer``.
public protocol HTTPRefusal: Error {
    /// The HTTP status it is answered with.
    var httpStatus: Int { get }
    /// The reason sent back, for the caller to act on.
    var httpMessage: String { get }
}

/// What an HTTP surface (the model server, the dashboard) answers when a request meets an error it did not expect:
/// the status is 500 and the text names the request, never the error's own words (which may hold paths, SQL or
/// records); the error itself goes to the server's log under the same request ID.
public enum UnexpectedErrorAnswer {
    /// The answer's text: `internal error, request ID ID (the server's log has the details)`.
    public static func message(requestID: String) -> String {
        "internal error, request ID \(requestID) (the server's log has the details)"
    }

    /// The status and text an HTTP surface answers `error` with: an ``HTTPRefusal``'s own, otherwise 500 naming the
    /// request (`nil` message tells the caller to log the error under `requestID`).
    public static func answer(for error: any Error, requestID: String) -> (status: Int, message: String, expected: Bool)
    {
        if let refusal = error as? any HTTPRefusal { return (refusal.httpStatus, refusal.httpMessage, true) }
        return (500, message(requestID: requestID), false)
    }
}
