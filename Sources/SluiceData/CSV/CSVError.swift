/// Input a CSV reader cannot use: which file, line and column, what was found and what was expected.
public struct CSVError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file.
    public var file: String
    /// The 1-based line (physical line in the file), when known.
    public var line: Int?
    /// The 1-based byte column within the line, when known.
    public var column: Int?
    /// What is wrong, and what was expected.
    public var problem: String
    /// What the user can do.
    public var fix: String

    /// Creates an error.
    public init(file: String, line: Int?, column: Int?, problem: String, fix: String) {
        self.file = file
        self.line = line
        self.column = column
        self.problem = problem
        self.fix = fix
    }

    /// `file:line:column`.
    public var place: String {
        var text = file
        if let line { text += ":\(line)" }
        if let column { text += ":\(column)" }
        return text
    }

    public var description: String { "\(place): \(problem)\n  To fix: \(fix)" }
}

/// A row skipped because it could not be parsed (with `skipBadRows`).
public struct BadRow: Sendable, Equatable, Codable {
    /// Where it is: `file:line:column`.
    public var place: String
    /// What was wrong with it.
    public var problem: String
}
