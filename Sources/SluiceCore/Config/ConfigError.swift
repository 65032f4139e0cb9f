/// A configuration that cannot be used as written: what is wrong (naming the file, line and key) and
/// what to do about it.
public struct ConfigError: Error, Equatable, CustomStringConvertible {
    /// What is wrong, naming the file, line and key.
    public var problem: String
    /// What the user can do next.
    public var fix: String

    /// Creates an error.
    public init(problem: String, fix: String) {
        self.problem = problem
        self.fix = fix
    }

    static func unknownKey(
        _ key: String, path: String, at location: SourceLocation?, known: [String], what: String = "key"
    ) -> ConfigError {
        let place = location.map { "\($0): " } ?? ""
        let guess = known.closest(to: key).map { " Did you mean '\($0)'?" } ?? ""
        let full = path.isEmpty ? key : "\(path).\(key)"
        let options = known.isEmpty ? "remove it" : "use one of \(known.sorted().joined(separator: ", "))"
        return ConfigError(problem: "\(place)unknown \(what) '\(full)'.\(guess)", fix: "\(options).")
    }

    static func yamlSyntax(_ error: Error, source: String) -> ConfigError {
        let text = "\(error)".split(separator: "\n").first.map(String.init) ?? "\(error)"
        var line = ""
        if let range = text.range(of: #"\d+:\d+"#, options: .regularExpression) {
            line = ":" + text[range]
        }
        return ConfigError(
            problem: "\(source)\(line): this is not valid YAML (\(text)).",
            fix: "check the indentation and the quoting near that line.")
    }
}

extension Collection where Element == String {
    /// The element nearest to `word` by edit distance, if any is near enough to be a likely typo.
    public func closest(to word: String) -> String? {
        let limit = Swift.max(1, word.count / 3 + 1)
        let scored = map { ($0, editDistance($0.lowercased(), word.lowercased())) }
        if let best = scored.min(by: { ($0.1, $0.0) < ($1.1, $1.0) }), best.1 <= limit { return best.0 }
        // Abbreviations: `params` for `parameters`, `eval` for `evaluate`.
        let stem = word.count > 4 ? String(word.dropLast()) : word
        guard stem.count >= 4 else { return nil }
        return filter { $0.lowercased().hasPrefix(stem.lowercased()) }.min { $0.count < $1.count }
    }
}

/// Damerau–Levenshtein distance (with adjacent transpositions), for typo suggestions.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a)
    let b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var d = Array(repeating: Array(repeating: 0, count: b.count + 1), count: a.count + 1)
    for i in 0...a.count { d[i][0] = i }
    for j in 0...b.count { d[0][j] = j }
    for i in 1...a.count {
        for j in 1...b.count {
            let cost = a[i - 1] == b[j - 1] ? 0 : 1
            d[i][j] = Swift.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
            if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                d[i][j] = Swift.min(d[i][j], d[i - 2][j - 2] + 1)
            }
        }
    }
    return d[a.count][b.count]
}
