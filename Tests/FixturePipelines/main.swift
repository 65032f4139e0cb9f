// Pipelines for the CLI tests, which run this executable as a real process and kill or interrupt it.
import Foundation
import Sluice

/// A large value whose materializer writes slowly, so a test can kill the process mid-write.
struct SlowBlob: Sendable {
    var bytes: Int
}

struct SlowBlobMaterializer: Materializer {
    static var identifier: String { "slow-blob" }
    static var version: Int { 1 }

    func write(_ value: SlowBlob, to url: URL) throws {
        FileHandle.standardError.write(Data("fixture: writing blob\n".utf8))
        _ = FileManager.default.createFile(atPath: url.path, contents: nil)
        let handle = try FileHandle(forWritingTo: url)
        defer { try? handle.close() }
        let chunk = Data(repeating: 0xAB, count: value.bytes / 40)
        // With SLUICE_FIXTURE_HOLD_WRITE=PATH the write stops after its first chunk until PATH exists, so a test
        // kills the process mid-write however loaded the machine is.
        let hold = ProcessInfo.processInfo.environment["SLUICE_FIXTURE_HOLD_WRITE"]
        for index in 0..<40 {
            handle.write(chunk)
            if index == 0, let hold {
                FileHandle.standardError.write(Data("fixture: holding the write\n".utf8))
                while !FileManager.default.fileExists(atPath: hold) { usleep(10_000) }
            }
            usleep(25_000)
        }
    }

    func read(from url: URL) throws -> SlowBlob {
        SlowBlob(bytes: Int((try FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int) ?? 0))
    }
}

/// Waits until a file exists, so a test controls when the step may finish.
struct WaitForGate: Step {
    struct Parameters: Codable, Sendable {
        var gate = ""
    }
    static let name = "wait"
    static let version = 1
    var parameters = Parameters()

    func run(_ values: [Int], context: StepContext) async throws -> Int {
        var polls = 0
        while !parameters.gate.isEmpty && !FileManager.default.fileExists(atPath: parameters.gate) {
            try await Task.sleep(for: .milliseconds(20))
            polls += 1
            context.reportProgress(completed: polls, total: nil, unit: "polls")
        }
        return values.reduce(0, +)
    }
}

let crashy = Pipeline("crashy") { p in
    let numbers = p.step("numbers", version: 1) { _ in Array(1...100) }
    let total = p.add(WaitForGate(), numbers)
    let blob = p.step("blob", version: 1, total) { total, _ in SlowBlob(bytes: 4_000_000 + total) }
    p.step("finish", version: 1, blob) { blob, _ in "blob of \(blob.bytes) bytes" }
}

let failing = Pipeline("failing") { p in
    let fine = p.step("fine", version: 1) { _ in 1 }
    p.step("broken", version: 1, fine) { _, context -> Int in
        context.logger.error("about to fail")
        throw FixtureError()
    }
}

/// A failure on one branch: its dependent is skipped while the independent branch finishes.
let branches = Pipeline("branches") { p in
    let source = p.step("source", version: 1) { _ in 21 }
    let broken = p.step("broken", version: 1, source) { _, _ -> Int in throw FixtureError() }
    p.step("after_broken", version: 1, broken) { value, _ in value + 1 }
    let doubled = p.step("doubled", version: 1, source) { value, _ in value * 2 }
    p.step("report", version: 1, doubled) { value, _ in "the answer is \(value)" }
}

/// Deterministic unless `SLUICE_FIXTURE_NOISE` is set, which changes what `scaled` computes without changing its
/// code, parameters or inputs: a step made non-deterministic on purpose, for reproduction tests.
let noisy = Pipeline("noisy") { p in
    let base = p.step("base", version: 1) { _ in Array(1...10) }
    let scaled = p.step("scaled", version: 1, base) { values, _ in
        values.map { $0 * (ProcessInfo.processInfo.environment["SLUICE_FIXTURE_NOISE"] == nil ? 2 : 3) }
    }
    p.step("total", version: 1, scaled) { values, _ in values.reduce(0, +) }
}

/// Many small steps, for processes that share one project.
let wide = Pipeline("wide") { p in
    let source = p.step("source", version: 1) { _ in Array(0..<200) }
    var sums: [Handle<Int>] = []
    for branch in 0..<8 {
        let scaled = p.step("scale\(branch)", version: 1, source) { values, _ in values.map { $0 * branch } }
        sums.append(p.step("sum\(branch)", version: 1, scaled) { values, _ in values.reduce(0, +) })
    }
    p.step("total", version: 1, sums[0], sums[1], sums[2], sums[3]) { a, b, c, d, _ in a + b + c + d }
}

struct FixtureError: Error, CustomStringConvertible {
    var description: String { "the fixture step failed on purpose" }
}

var materializers = MaterializerRegistry()
materializers.register(SlowBlobMaterializer())
await Sluice.main(pipelines: [crashy, failing, branches, noisy, wide], materializers: materializers)
