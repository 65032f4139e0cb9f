import Foundation
import SluiceTesting
import Testing

@testable import SluiceData

@Suite("Statistics")
struct StatisticsTests {
    func numbers(_ count: Int, seed: UInt64) -> [Double] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let u = Double(state >> 11) / Double(1 << 53)
            return (u - 0.3) * 100
        }
    }

    @Test("counts, moments, extremes and zeros are exact")
    func exactFields() {
        let values: [Double] = [1, 2, 0, 4, 0, 10]
        let column = Column(
            name: "x", storage: .float(values + [99], valid: Array(repeating: true, count: 6) + [false]))
        let stats = ColumnStatistics(column)
        #expect(stats.count == 6)
        #expect(stats.missing == 1)
        #expect(stats.zeros == 2)
        #expect(stats.min == 0)
        #expect(stats.max == 10)
        #expect(abs(stats.mean - 17.0 / 6) < 1e-12)
        let variance = values.map { ($0 - 17.0 / 6) * ($0 - 17.0 / 6) }.reduce(0, +) / 5
        #expect(abs(stats.standardDeviation - variance.squareRoot()) < 1e-12)
        #expect(abs(stats.missingRate - 1.0 / 7) < 1e-12)
    }

    @Test("NaN read as a value (when it is not a missing token) counts as missing, not as a number")
    func notANumber() throws {
        var options = CSVOptions()
        options.missingValues = [""]
        let table = try read("x\n1\nNaN\n3\n", options: options)
        let stats = ColumnStatistics(table["x"]!)
        #expect(stats.count == 2)
        #expect(stats.missing == 1)
        #expect(stats.mean == 2)
        #expect(stats.quantiles.count == 2)
    }

    @Test("merging chunk statistics gives the one-pass answer: exact fields equal, sketches identical")
    func mergeEqualsWhole() {
        let values = numbers(50_000, seed: 3)
        let whole = ColumnStatistics(
            Column(name: "x", storage: .float(values, valid: Array(repeating: true, count: values.count))))
        var merged = ColumnStatistics(name: "x", type: .float)
        for start in stride(from: 0, to: values.count, by: 7_919) {
            let part = Array(values[start..<min(start + 7_919, values.count)])
            merged.merge(
                ColumnStatistics(
                    Column(name: "x", storage: .float(part, valid: Array(repeating: true, count: part.count)))))
        }
        #expect(merged.count == whole.count)
        #expect(merged.min == whole.min)
        #expect(merged.max == whole.max)
        #expect(abs(merged.mean - whole.mean) < 1e-9)
        #expect(abs(merged.standardDeviation - whole.standardDeviation) < 1e-9)
        #expect(merged.quantiles == whole.quantiles)
        #expect(merged.distinct == whole.distinct)
    }

    @Test(
        "quantiles are within the sketch's stated relative accuracy",
        arguments: [0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99])
    func quantileAccuracy(q: Double) throws {
        let values = numbers(100_000, seed: 11)
        let stats = ColumnStatistics(
            Column(name: "x", storage: .float(values, valid: Array(repeating: true, count: values.count))))
        let sorted = values.sorted()
        let exact = sorted[Int((q * Double(sorted.count - 1)).rounded(.down))]
        let estimate = try #require(stats.quantile(q))
        #expect(abs(estimate - exact) <= abs(exact) * QuantileSketch.relativeAccuracy * 1.001)
    }

    @Test("distinct counts are estimated within 5%, exact for text below the limit")
    func distinct() {
        let values = (0..<200_000).map { Double($0 % 100_000) }
        let stats = ColumnStatistics(
            Column(name: "x", storage: .float(values, valid: Array(repeating: true, count: values.count))))
        #expect(abs(Double(stats.distinctCount) - 100_000) / 100_000 < 0.05)
        let text = Column(name: "s", storage: .string(codes: [0, 1, 1, 2, -1, 2, 2], dictionary: ["a", "b", "c"]))
        let textStats = ColumnStatistics(text)
        #expect(textStats.distinctCount == 3)
        #expect(textStats.topValues(2).map(\.value) == ["c", "b"])
        #expect(textStats.topValues(2).map(\.count) == [3, 2])
        #expect(textStats.missing == 1)
    }

    @Test("histogram bins add up to the count and cover min to max")
    func histogram() {
        let values = numbers(10_000, seed: 5)
        let stats = ColumnStatistics(
            Column(name: "x", storage: .float(values, valid: Array(repeating: true, count: values.count))))
        let bins = stats.histogram(bins: 10)
        #expect(bins.count == 10)
        #expect(abs(bins.map(\.count).reduce(0, +) - 10_000) < 1e-6)
        #expect(bins.first?.low == stats.min)
        #expect(bins.last?.high == stats.max)
        // Uniform data: every bin holds about a tenth.
        #expect(bins.allSatisfy { abs($0.count - 1_000) < 150 })
    }

    @Test("statistics of a CSV dataset streamed in small windows equal those of the whole table")
    func streamedDataset() throws {
        var lines = ["x,c"]
        for k in 0..<20_000 { lines.append("\(k % 500 == 0 ? "" : String(Double(k) / 3)),\(["a", "b", "c"][k % 3])") }
        let path = try csvFile(lines.joined(separator: "\n"))
        var options = CSVOptions()
        options.windowSize = 1 << 16
        let (streamed, summary) = try DatasetStatistics.compute(CSVReader(paths: [path], options: options))
        let whole = DatasetStatistics(try CSVReader(paths: [path]).readTable())
        #expect(summary.rows == 20_000)
        #expect(streamed.rows == whole.rows)
        #expect(streamed["x"]?.count == whole["x"]?.count)
        #expect(streamed["x"]?.missing == 40)
        #expect(streamed["x"]?.quantiles == whole["x"]?.quantiles)
        #expect(streamed["c"]?.valueCounts == ["a": 6_667, "b": 6_667, "c": 6_666])
    }

    @Test("statistics taken while parsing equal those of the parsed table, for every type, bad rows and widening")
    func fusedStatisticsMatchTable() throws {
        var lines = ["f,i,t,b,s,w"]
        for k in 0..<5_000 {
            let f = k % 97 == 0 ? "" : String(Double(k % 613) * (k % 2 == 0 ? -0.37 : 1.9))
            let i = k % 89 == 0 ? "NA" : String(k % 41 - 20)
            let t = "2024-03-\(String(format: "%02d", k % 28 + 1))T\(String(format: "%02d", k % 24)):00:00Z"
            let b = k % 3 == 0 ? "true" : (k % 3 == 1 ? "false" : "")
            let s = ["red", "green", "blue", ""][k % 4]
            let w = k > 4_000 && k % 7 == 0 ? "\(k).5" : String(k)  // an integer column that widens late
            lines.append([f, i, t, b, s, w].joined(separator: ","))
            if k > 2_000 && k % 1_000 == 500 { lines.append("1.5,oops,2024-01-01T00:00:00Z,true,red,3") }  // a bad row
        }
        let path = try csvFile(lines.joined(separator: "\n"))
        var options = CSVOptions()
        options.windowSize = 1 << 16
        options.skipBadRows = true
        options.missingValues = ["", "NA"]
        let reader = CSVReader(files: [URL(fileURLWithPath: path)], options: options)
        let (fused, summary) = try DatasetStatistics.compute(reader)
        let table = try reader.readTable()
        let whole = DatasetStatistics(table)
        #expect(summary.badRowCount == 3)
        #expect(fused.rows == whole.rows)
        #expect(table.columns.map(\.type) == [.float, .integer, .timestamp, .boolean, .string, .float])
        for (a, b) in zip(fused.columns, whole.columns) {
            #expect(a.name == b.name)
            #expect(a.type == b.type, "\(a.name)")
            #expect(a.count == b.count, "\(a.name)")
            #expect(a.missing == b.missing, "\(a.name)")
            #expect(a.zeros == b.zeros, "\(a.name)")
            #expect(a.min == b.min, "\(a.name)")
            #expect(a.max == b.max, "\(a.name)")
            #expect(abs(a.mean - b.mean) <= 1e-9 * max(1, abs(b.mean)), "\(a.name)")
            #expect(abs(a.m2 - b.m2) <= 1e-9 * max(1, b.m2), "\(a.name)")
            #expect(a.quantiles == b.quantiles, "\(a.name)")
            #expect(a.distinct == b.distinct, "\(a.name)")
            #expect(a.valueCounts == b.valueCounts, "\(a.name)")
        }
    }

    @Test("the HTML report has a chart per column and escapes names")
    func htmlReport() throws {
        let table = try read("x,<name>\n1,a\n2,b\n3,a\n")
        let html = StatisticsReport.html(DatasetStatistics(table), title: "t")
        #expect(html.hasPrefix("<!doctype html>"))
        #expect(html.components(separatedBy: "<svg").count - 1 == 2)
        #expect(html.contains("&lt;name&gt;"))
        #expect(!html.contains("<name>"))
        #expect(StatisticsReport.text(DatasetStatistics(table)).contains("3 rows, 2 columns"))
    }
}
