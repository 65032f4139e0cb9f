import Foundation
import SluiceData

@testable import SluiceML

/// Builds tables from Swift arrays for tests.
enum Tables {
    static func numbers(_ name: String, _ values: [Double?]) -> Column {
        Column(name: name, storage: .float(values.map { $0 ?? 0 }, valid: values.map { $0 != nil }))
    }

    static func integers(_ name: String, _ values: [Int64?]) -> Column {
        Column(name: name, storage: .integer(values.map { $0 ?? 0 }, valid: values.map { $0 != nil }))
    }

    static func texts(_ name: String, _ values: [String?]) -> Column {
        var dictionary: [String] = []
        var index: [String: Int32] = [:]
        let codes = values.map { value -> Int32 in
            guard let value else { return -1 }
            if let code = index[value] { return code }
            index[value] = Int32(dictionary.count)
            dictionary.append(value)
            return Int32(dictionary.count - 1)
        }
        return Column(name: name, storage: .string(codes: codes, dictionary: dictionary))
    }
}

/// The committed scikit-learn reference values.
struct Reference {
    let json: [String: Any]

    init() throws {
        let url = Bundle.module.url(forResource: "reference", withExtension: "json", subdirectory: "Fixtures")!
        json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
    }

    func section(_ name: String) -> [String: Any] { json[name] as! [String: Any] }
}

extension Dictionary where Key == String, Value == Any {
    func double(_ key: String) -> Double { (self[key] as! NSNumber).doubleValue }
    func doubles(_ key: String) -> [Double] { (self[key] as! [NSNumber]).map(\.doubleValue) }
    func labels(_ key: String) -> [Int32] { (self[key] as! [NSNumber]).map { Int32($0.intValue) } }
    func section(_ key: String) -> [String: Any] { self[key] as! [String: Any] }
}

/// A seeded generator for test data.
struct TestRandom {
    var state: SplitMix64
    init(_ seed: UInt64) { state = SplitMix64(seed: seed) }
    mutating func unit() -> Double { state.unit() }
    mutating func normal() -> Double {
        let u = max(state.unit(), 1e-300)
        let v = state.unit()
        return (-2 * Foundation.log(u)).squareRoot() * Foundation.cos(2 * .pi * v)
    }
}

/// Collects values from `@Sendable` callbacks.
final class Recorder<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [T] = []
    func append(_ value: T) { lock.withLock { stored.append(value) } }
    var values: [T] { lock.withLock { stored } }
}
