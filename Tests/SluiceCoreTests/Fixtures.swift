import Foundation
import SluiceCore
import Synchronization

/// Records when each step started and ended, to check overlap and ordering.
final class Timeline: Sendable {
    private let entries = Mutex<[String: (start: Date, end: Date)]>([:])
    private let active = Mutex<(now: Int, peak: Int)>((0, 0))

    func record(_ name: String, sleep: Duration) async throws {
        let start = Date()
        active.withLock {
            $0.now += 1
            $0.peak = max($0.peak, $0.now)
        }
        defer { active.withLock { $0.now -= 1 } }
        try await Task.sleep(for: sleep)
        let end = Date()
        entries.withLock { $0[name] = (start, end) }
    }

    subscript(name: String) -> (start: Date, end: Date)? { entries.withLock { $0[name] } }
    var peakConcurrency: Int { active.withLock { $0.peak } }

    func overlap(_ a: String, _ b: String) -> Bool {
        guard let x = self[a], let y = self[b] else { return false }
        return x.start < y.end && y.start < x.end
    }
}

/// Counts how often each step body ran.
final class Counter: Sendable {
    private let counts = Mutex<[String: Int]>([:])
    func hit(_ name: String) { counts.withLock { $0[name, default: 0] += 1 } }
    subscript(name: String) -> Int { counts.withLock { $0[name, default: 0] } }
}

/// A source step with a parameter, for caching and config tests.
struct Numbers: Step {
    struct Parameters: Codable, Sendable, Equatable {
        var count = 5
        var start = 0
        var label: String?
    }
    static let name = "numbers"
    static let version = 1
    var parameters = Parameters()
    var counter: Counter?

    func run(_ input: Void, context: StepContext) async throws -> [Int] {
        counter?.hit("numbers")
        return Array(parameters.start..<(parameters.start + parameters.count))
    }
}

/// Scales values: one input, one parameter.
struct Scale: Step {
    struct Parameters: Codable, Sendable {
        var factor = 2
    }
    static let name = "scale"
    static let version = 1
    var parameters = Parameters()
    var counter: Counter?

    func run(_ values: [Int], context: StepContext) async throws -> [Int] {
        counter?.hit("scale")
        return values.map { $0 * parameters.factor }
    }
}

/// Adds two inputs of different types: wiring order and types are checked by the compiler.
struct Combine: Step {
    static let name = "combine"
    static let version = 1
    func run(_ input: ([Int], String), context: StepContext) async throws -> String {
        "\(input.1): \(input.0.reduce(0, +))"
    }
}

/// Two named outputs.
struct EvenOdd: MultipleOutputs {
    var even: [Int]
    var odd: [Int]
    static let outputs: [NamedOutput<EvenOdd>] = [.init("even", \.even), .init("odd", \.odd)]
}

struct Partition: Step {
    static let name = "partition"
    static let version = 1
    func run(_ values: [Int], context: StepContext) async throws -> EvenOdd {
        EvenOdd(even: values.filter { $0 % 2 == 0 }, odd: values.filter { $0 % 2 != 0 })
    }
}

struct Boom: Error, CustomStringConvertible {
    var description: String { "boom: the step gave up" }
}

/// Records every state change, for tests of what observers see.
final class RecordingObserver: RunObserver {
    private let events = Mutex<[(String, StepState)]>([])
    func stepChanged(_ step: String, to state: StepState) { events.withLock { $0.append((step, state)) } }
    func states(of step: String) -> [StepState] { events.withLock { $0.filter { $0.0 == step }.map(\.1) } }
}
