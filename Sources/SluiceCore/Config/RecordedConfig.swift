import Foundation

extension RunConfig {
    /// The fully resolved config recorded with `run` when it started; with `step`, only that step's settings
    /// under `steps` (what a step run binds), so a step process of a long pipeline does not parse every step's.
    public init(recordedIn run: Run, step: String? = nil) throws {
        let text = step.map { Self.recordedText(run.config, keepingStep: $0) } ?? run.config
        var tree = try ConfigValue.parseYAML(text, source: "the config recorded with run \(run.id)")
        if let entries = tree.entries { tree = ConfigValue(.object(entries.filter { $0.key != "pipeline" })) }
        try self.init(tree: tree)
    }

    /// A recorded config's text without the blocks of `steps` other than `step`'s. The recorded config is Sluice's
    /// own block-style YAML: a step's block starts with its name indented two spaces under `steps:` and goes on
    /// with deeper lines. A block is dropped only when its name is a plain word that is not `step`; anything else
    /// (a quoted name, flow style) is kept, so the result parses to the same settings for `step`.
    static func recordedText(_ text: String, keepingStep step: String) -> String {
        // Over UTF-8 bytes: a step process of a 1,000-step pipeline scans 3,000 lines, and splitting them into
        // Substrings of Characters cost it 3 ms. The syntax looked at (spaces, colons, newlines, word characters)
        // is ASCII, so byte offsets are character boundaries; a name with other bytes is not plain, and kept.
        let bytes = Array(text.utf8)
        let wanted = Array(step.utf8)
        let (space, colon, newline) = (UInt8(ascii: " "), UInt8(ascii: ":"), UInt8(ascii: "\n"))
        var kept: [Range<Int>] = []
        var inSteps = false
        var keeping = true
        var stepsLine: Int?
        var blocks = 0
        var start = 0
        while start <= bytes.count {
            let end = bytes[start...].firstIndex(of: newline) ?? bytes.count
            let line = bytes[start..<end]
            let indent = line.prefix { $0 == space }.count
            if indent == 0 && !line.isEmpty {
                inSteps = line.elementsEqual("steps:".utf8)
                if inSteps { stepsLine = kept.count }
                keeping = true
            } else if inSteps && indent == 2 {
                let key = line.dropFirst(2).prefix { $0 != colon }
                let plain = !key.isEmpty && key.allSatisfy(Self.isPlainNameByte)
                keeping = !plain || key.elementsEqual(wanted) || line.dropFirst(2 + key.count).first != colon
                if keeping { blocks += 1 }
            }
            if keeping { kept.append(start..<end) }
            start = end + 1
        }
        var result: [UInt8] = []
        result.reserveCapacity(bytes.count)
        for (index, range) in kept.enumerated() {
            if index > 0 { result.append(newline) }
            // No block left (a step the pipeline does not have): an empty mapping, not a null.
            if index == stepsLine && blocks == 0 {
                result.append(contentsOf: "steps: {}".utf8)
            } else {
                result.append(contentsOf: bytes[range])
            }
        }
        return String(decoding: result, as: UTF8.self)
    }

    /// Whether `byte` may appear in a step name `recordedText` drops a block by: ASCII letters, digits, `_-.`.
    private static func isPlainNameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"), UInt8(ascii: "."):
            true
        default: false
        }
    }
}
