import Foundation
import Testing

@testable import SluiceData

@Suite("Splits")
struct SplitTests {
    func table(rows: Int, offset: Int = 0) throws -> Table {
        var lines = ["id,label,when"]
        for k in offset..<(offset + rows) {
            lines.append(
                "user\(k),\(k % 10 < 3 ? "yes" : "no"),2024-01-01T00:\(String(format: "%02d", k / 60 % 60)):\(String(format: "%02d", k % 60))Z"
            )
        }
        return try read(lines.joined(separator: "\n"))
    }

    func ids(_ table: Table) -> Set<String> { Set((0..<table.rowCount).compactMap { table["id"]!.string($0) }) }

    @Test("a random split is reproducible from its seed and records its seed and sizes")
    func random() throws {
        let data = try table(rows: 1_000)
        let a = try data.split(.random(seed: 7), evalFraction: 0.2)
        let b = try data.split(.random(seed: 7), evalFraction: 0.2)
        let c = try data.split(.random(seed: 8), evalFraction: 0.2)
        #expect(a == b)
        #expect(ids(a.eval) != ids(c.eval))
        #expect(a.info == SplitInfo(method: .random(seed: 7), evalFraction: 0.2, trainRows: 800, evalRows: 200))
        #expect(ids(a.train).isDisjoint(with: ids(a.eval)))
        #expect(ids(a.train).union(ids(a.eval)).count == 1_000)
    }

    @Test("a stratified split keeps the label's proportions in both sets")
    func stratified() throws {
        let result = try table(rows: 1_000).split(.stratified(label: "label", seed: 1), evalFraction: 0.25)
        func share(_ t: Table) -> Double {
            Double((0..<t.rowCount).filter { t["label"]!.string($0) == "yes" }.count) / Double(t.rowCount)
        }
        #expect(result.eval.rowCount == 250)
        #expect(abs(share(result.eval) - 0.3) < 0.005)
        #expect(abs(share(result.train) - 0.3) < 0.005)
    }

    @Test("a hashed split never moves a row when new data arrives")
    func hashedIsStable() throws {
        let before = try table(rows: 2_000).split(.hashed(key: "id"), evalFraction: 0.2)
        let after = try table(rows: 3_000).split(.hashed(key: "id"), evalFraction: 0.2)
        #expect(ids(before.eval).isSubset(of: ids(after.eval)))
        #expect(ids(before.train).isSubset(of: ids(after.train)))
        #expect(abs(Double(after.eval.rowCount) / 3_000 - 0.2) < 0.03)
    }

    @Test("a split by time puts the latest rows in evaluation and records the cutoff")
    func byTime() throws {
        let result = try table(rows: 600).split(.byTime(column: "when"), evalFraction: 0.1)
        let latestTrain = (0..<result.train.rowCount).compactMap { result.train["when"]!.double($0) }.max()!
        let earliestEval = (0..<result.eval.rowCount).compactMap { result.eval["when"]!.double($0) }.min()!
        #expect(result.eval.rowCount == 60)
        #expect(latestTrain <= earliestEval)
        #expect(result.info.cutoff == Int64(earliestEval))
    }

    @Test("a missing column or a bad fraction is explained")
    func errors() throws {
        let data = try table(rows: 10)
        let missing = #expect(throws: SplitError.self) { try data.split(.hashed(key: "user"), evalFraction: 0.2) }
        #expect(missing?.problem == "there is no column 'user' to hash")
        #expect(missing?.fix == "use one of id, label, when.")
        let fraction = #expect(throws: SplitError.self) { try data.split(.random(seed: 1), evalFraction: 1.5) }
        #expect(fraction?.problem == "the evaluation fraction must be at least 0 and below 1, but it is 1.5")
    }
}
