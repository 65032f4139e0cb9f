extension DatasetStatistics {
    /// Statistics of a CSV dataset in one streaming pass: each chunk is summarized on the parsing threads and
    /// the summaries are merged, so memory stays bounded by the reader's window.
    /// - Parameter progress: called after each chunk with the bytes read so far and in all.
    public static func compute(
        _ reader: CSVReader, progress: (CSVProgress) -> Void = { _ in }
    ) throws -> (statistics: DatasetStatistics, summary: CSVSummary) {
        var statistics = DatasetStatistics()
        // Statistics are updated while fields are parsed: no table is built in between.
        let summary = try reader.pass(
            sink: StatisticsSink.self, finish: { $0.finish() },
            { part, position in
                statistics.merge(part)
                progress(position)
            })
        if statistics.columns.isEmpty {
            statistics.columns = zip(summary.columnNames, summary.columnTypes).map {
                ColumnStatistics(name: $0, type: $1)
            }
        }
        for index in statistics.columns.indices where index < summary.columnTypes.count {
            statistics.columns[index].type = summary.columnTypes[index]
        }
        return (statistics, summary)
    }
}
