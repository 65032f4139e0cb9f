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

    /// `text` as an inline code span; text with a backtick in it is written escaped instead (a code span holding a
    /// backtick needs a longer fence, which CommonMark reads but not every renderer: the dashboard's does not).
    public static func code(_ text: String) -> String {
        let flat = String(text.map { $0.isNewline ? " " : $0 })
        guard !flat.contains("`") else { return escaped(flat) }
        return "`" + flat + "`"
    }
}
