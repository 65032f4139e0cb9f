/// How to read CSV files.
public struct CSVOptions: Sendable, Equatable {
    /// The field separator (one ASCII byte).
    public var delimiter: UInt8 = UInt8(ascii: ",")
    /// Whether the first row names the columns (otherwise they are `column_1`, `column_2`, …).
    public var hasHeader = true
    /// Field texts that mean "missing" (an empty field always does).
    public var missingValues: Set<String> = ["", "NA", "N/A", "NULL", "null", "NaN", "nan"]
    /// Column types by name; columns not listed are inferred from the first rows.
    public var schema: [String: ColumnType] = [:]
    /// How many rows type inference looks at.
    public var inferenceRows = 20_000
    /// Skip rows that cannot be parsed (counted, with the first examples kept) instead of failing.
    public var skipBadRows = false
    /// How many bad-row examples to keep.
    public var badRowExamples = 10
    /// Bytes read per window; a window is parsed by all cores, then released.
    public var windowSize = 32 << 20
    /// Worker threads; `nil` means one per core.
    public var threads: Int?

    /// The defaults: comma-separated, with a header, types inferred.
    public init() {}
}
