import Crypto
import Foundation

/// The identity of a step run's work: step name, code version, resolved parameters, input content hashes
/// and output materializer versions, hashed with SHA-256. Equal keys mean equal outputs.
public struct CacheKey: Codable, Sendable, Hashable, CustomStringConvertible {
    /// `sha256:` followed by 64 hex digits.
    public var rawValue: String

    /// Wraps a stored key.
    public init(rawValue: String) { self.rawValue = rawValue }

    /// Computes the key from its ingredients; the order of `inputs` is the wiring order.
    public init(ingredients: Ingredients) {
        var hasher = SHA256()
        func feed(_ label: String, _ value: String) {
            // Length-prefixed fields, so no two ingredient lists hash the same text.
            hasher.update(data: Data("\(label):\(value.utf8.count):\(value);".utf8))
        }
        feed("step", ingredients.stepName)
        feed("version", String(ingredients.codeVersion))
        feed("parameters", ingredients.parameters)
        // Only steps that draw from the run seed carry it, so keys of the others stay as they were.
        if let seed = ingredients.stepSeed { feed("seed", String(seed)) }
        for input in ingredients.inputs {
            feed("input", input.name)
            feed("hash", input.contentHash)
        }
        for output in ingredients.outputs {
            feed("output", output.name)
            feed("materializer", "\(output.materializer)@\(output.materializerVersion)")
        }
        rawValue = "sha256:" + hasher.finalize().hexString
    }

    public var description: String { rawValue }

    /// What goes into a cache key.
    public struct Ingredients: Sendable, Equatable {
        public var stepName: String
        public var codeVersion: Int
        /// Canonical JSON of the resolved parameters (sorted keys).
        public var parameters: String
        /// The step seed derived from the run's seed, for steps that draw from it (``Step/usesRunSeed``).
        public var stepSeed: UInt64?
        public var inputs: [(name: String, contentHash: String)]
        public var outputs: [(name: String, materializer: String, materializerVersion: Int)]

        /// Collects the ingredients.
        public init(
            stepName: String, codeVersion: Int, parameters: String, stepSeed: UInt64? = nil,
            inputs: [(name: String, contentHash: String)],
            outputs: [(name: String, materializer: String, materializerVersion: Int)]
        ) {
            self.stepName = stepName
            self.codeVersion = codeVersion
            self.parameters = parameters
            self.stepSeed = stepSeed
            self.inputs = inputs
            self.outputs = outputs
        }

        public static func == (a: Ingredients, b: Ingredients) -> Bool {
            a.stepName == b.stepName && a.codeVersion == b.codeVersion && a.parameters == b.parameters
                && a.stepSeed == b.stepSeed
                && a.inputs.elementsEqual(b.inputs, by: { $0 == $1 })
                && a.outputs.elementsEqual(b.outputs, by: { $0 == $1 })
        }
    }
}

extension Sequence where Element == UInt8 {
    /// Lowercase hex digits of these bytes.
    var hexString: String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in self {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
