/// Text from data (column names, class labels, slice values) placed into Markdown, so it reads as itself: a
/// column called `bill_length_mm` must not turn into emphasis. Applied where the text is placed in a model card.
public enum Markdown {
    /// The characters CommonMark gives a meaning inline (emphasis, links, code, HTML, tables, escapes).
    static let special: Set<Character> = ["\\", "`", "*", "_", "[", "]", "<", ">", "&", "|", "~", "!", "#"]

    /// `text` with every character Markdown would read as markup backslash-escaped (CommonMark §2.4), and line
    /// breaks as spaces: `bill_length_mm` becomes `bill\_length\_mm`.
    public static func escaped(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.count + 8)
        for character in text {
            if character.isNewline {
                out.append(" ")
                continue
            }
            if special.contains(character) { out.append("\\") }
            out.append(character)
        }
        return out
    }

    /// `text` as an inline code span: fenced with one backtick more than the longest run of backticks inside it,
    /// padded with a space when it starts or ends with one (CommonMark §6.1).
    public static func code(_ text: String) -> String {
        let flat = String(text.map { $0.isNewline ? " " : $0 })
        var longest = 0
        var run = 0
        for character in flat {
            run = character == "`" ? run + 1 : 0
            longest = max(longest, run)
        }
        let fence = String(repeating: "`", count: longest + 1)
        let padded = flat.hasPrefix("`") || flat.hasSuffix("`") ? " \(flat) " : flat
        return fence + padded + fence
    }
}
