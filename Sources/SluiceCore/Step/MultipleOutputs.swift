/// An output type whose fields are separate named artifacts, wired one by one.
///
/// ```swift
/// struct TrainEval: MultipleOutputs {
///     var train: [Row]
///     var eval: [Row]
///     static let outputs: [NamedOutput<TrainEval>] = [.init("train", \.train), .init("eval", \.eval)]
/// }
/// let sets = p.add(Split(), rows)   // StepOutputs<TrainEval>
/// p.add(Train(), sets.train)        // Handle<[Row]>
/// ```
public protocol MultipleOutputs: Sendable {
    /// Each named output: its name and the key path that reads it.
    static var outputs: [NamedOutput<Self>] { get }
}

/// One named output of a ``MultipleOutputs`` type.
public struct NamedOutput<Root>: @unchecked Sendable {
    // @unchecked: key paths are immutable values; the closure only reads through one.
    /// The output's name, as used for its artifact, in lineage and in YAML wiring.
    public let name: String
    let keyPath: AnyKeyPath
    let valueType: Any.Type
    let read: @Sendable (Root) -> any Sendable

    /// Declares that `keyPath` is the output called `name`.
    public init<Value: Sendable>(_ name: String, _ keyPath: KeyPath<Root, Value>) {
        self.name = name
        self.keyPath = keyPath
        self.valueType = Value.self
        nonisolated(unsafe) let path = keyPath
        self.read = { root in root[keyPath: path] }
    }
}
