/// A named unit of work with typed inputs, typed outputs, `Codable` parameters and a code version.
///
/// A step's ``Input`` is the tuple of the values it reads, in the order they are wired:
/// `Void` for a source, one type for a single input, `(A, B)` for two. Its ``Output`` is one value
/// (stored as one artifact named `output`), `Void`, or a type conforming to ``MultipleOutputs`` whose
/// fields become separately stored, separately wired artifacts.
///
/// ```swift
/// struct Scale: Step {
///     struct Parameters: Codable, Hashable, Sendable { var factor = 2.0 }
///     static let name = "scale"
///     static let version = 1
///     var parameters = Parameters()
///     func run(_ values: [Double], context: StepContext) async throws -> [Double] {
///         values.map { $0 * parameters.factor }
///     }
/// }
/// ```
public protocol Step: Sendable {
    /// The values this step reads: `Void`, one type, or a tuple of types in wiring order.
    associatedtype Input: Sendable = Void
    /// The value this step produces.
    associatedtype Output: Sendable
    /// The settings that change what the step computes, and so its cache key.
    associatedtype Parameters: Codable & Sendable = NoParameters

    /// The default name of an invocation of this step in a pipeline.
    static var name: String { get }
    /// The code version; bump it when the same inputs and parameters would now give a different output.
    static var version: Int { get }
    /// Whether the step draws from the run's seed (``StepContext/random()``), so that the step seed derived from
    /// it joins the cache key. `true` unless a step declares otherwise; a step that declares `false` and then
    /// calls `context.random()` fails, since its cache key would not change with the seed.
    static var usesRunSeed: Bool { get }
    /// Parameter keys renamed since an earlier release: configs that still write the old key keep working for a
    /// release, with a warning naming the new form (``RenamedParameter``).
    static var renamedParameters: [RenamedParameter] { get }
    /// The parameters this invocation runs with; configuration may override them before a run.
    var parameters: Parameters { get set }

    /// Computes the output from the input.
    func run(_ input: Input, context: StepContext) async throws -> Output
}

extension Step {
    /// Steps draw from the run seed unless they say they do not: a key with a seed it did not need only costs a
    /// re-run when the seed changes, a key without one it needed reuses wrong results.
    public static var usesRunSeed: Bool { true }

    /// No parameter of the step was renamed.
    public static var renamedParameters: [RenamedParameter] { [] }
}

extension Step where Parameters == NoParameters {
    /// Steps without settings have the empty parameter set.
    public var parameters: NoParameters {
        get { NoParameters() }
        set {}
    }
}

/// A step that reads something from outside the pipeline (files, a table in a database): its fingerprint joins
/// its cache key, so a change outside invalidates the cache even when parameters and code are the same.
///
/// The engine asks for the fingerprint once, when a run resolves its steps; make it cheap (the CSV ingest
/// component uses the dataset's content version, which skips re-hashing files whose size and times are unchanged).
public protocol ExternalInputStep: Step {
    /// A text that changes whenever what the step reads from outside changes.
    func externalFingerprint() throws -> String
}

/// The parameter set of a step that has no settings.
public struct NoParameters: Codable, Hashable, Sendable {
    /// Creates the empty parameter set.
    public init() {}
}

/// A step written as a closure rather than a type: give it a name, a code version and optional parameters.
///
/// ```swift
/// let double = FunctionStep<Int, Int, NoParameters>("double", version: 1) { x, _, _ in x * 2 }
/// ```
/// Most code uses ``PipelineBuilder/step(_:version:parameters:_:body:)`` instead, which infers the types.
public struct FunctionStep<Input: Sendable, Output: Sendable, Parameters: Codable & Sendable>: Step {
    /// The body of the step.
    public typealias Body = @Sendable (Input, Parameters, StepContext) async throws -> Output

    /// Function steps name themselves per instance; the static name is only the fallback.
    public static var name: String { "function" }
    /// Function steps carry their version per instance; see ``codeVersion``.
    public static var version: Int { 0 }

    /// The name of this step in a pipeline.
    public let stepName: String
    /// The code version of the closure; bump it when its behaviour changes.
    public let codeVersion: Int
    /// The parameters the closure receives.
    public var parameters: Parameters
    let body: Body

    /// Creates a step from a closure.
    public init(_ name: String, version: Int, parameters: Parameters, body: @escaping Body) {
        self.stepName = name
        self.codeVersion = version
        self.parameters = parameters
        self.body = body
    }

    /// Runs the closure.
    public func run(_ input: Input, context: StepContext) async throws -> Output {
        try await body(input, parameters, context)
    }
}

extension FunctionStep where Parameters == NoParameters {
    /// Creates a step without parameters from a closure.
    public init(
        _ name: String, version: Int, body: @escaping @Sendable (Input, StepContext) async throws -> Output
    ) {
        self.init(name, version: version, parameters: NoParameters()) { input, _, context in
            try await body(input, context)
        }
    }
}

/// Lets the engine read a step's name and version from an instance, so function steps can carry their own.
protocol InstanceIdentifiedStep {
    var stepName: String { get }
    var codeVersion: Int { get }
}

extension FunctionStep: InstanceIdentifiedStep {}
