import Foundation

/// A step whose work splits over files: each shard (one file) is computed on its own and the partial results are
/// merged, in file order, into the step's output. The in-process and process orchestrators compute the shards in
/// parallel inside the step run; the `slurm` orchestrator computes them as a job array followed by a merge job.
/// Either way the output is the same bytes: the same partials merged in the same order.
///
/// The files come from the step's parameters (a step whose `Input` is `Void`: listed when the run resolves, so a
/// cluster sizes its job array at submission) or from its input (an upstream step's ``FileList``: listed once that
/// input exists; on Slurm a planning job lists them and submits the array).
public protocol ShardedStep: Step {
    /// What one shard computes: small and mergeable (statistics, counts, sketches), stored between processes as JSON.
    associatedtype Partial: Codable & Sendable

    /// The files the work splits over, in the order their partials are merged.
    func shardFiles(of input: Input) throws -> [String]

    /// Computes the partial result of one file; `files` are every shard's files, in merge order.
    func runShard(_ file: String, of files: [String], context: StepContext) async throws -> Partial

    /// Merges the partial results, in the order of `files`, into the step's output.
    func merge(_ partials: [Partial], files: [String], context: StepContext) async throws -> Output

    /// The part of the step's cache key that reads outside the pipeline, computed over `files` (the list
    /// ``shardFiles(of:)`` gave, which the shards then read), so the key covers exactly the files computed. `nil`
    /// (the default): the step's ``ExternalInputStep/externalFingerprint()``, if it has one. Only asked of a step
    /// whose files its parameters name; files an input names are covered by that input's content hash.
    func externalFingerprint(of files: [String]) throws -> String?

    /// Throws an error naming the problem and the fix when the parameters cannot work together; asked when a run
    /// binds the step, before any step runs. The default accepts any.
    func checkParameters() throws
}

extension ShardedStep {
    public func externalFingerprint(of files: [String]) throws -> String? { nil }
    public func checkParameters() throws {}
}

extension ShardedStep {
    /// Computes every shard, up to one per core at once, and merges them.
    public func run(_ input: Input, context: StepContext) async throws -> Output {
        let files = try shardFiles(of: input)
        let partials = try await computeShards(files, context: context)
        return try await merge(partials, files: files, context: context)
    }

    /// The partials of `files`, computed in parallel, in file order.
    func computeShards(_ files: [String], context: StepContext) async throws -> [Partial] {
        let width = max(1, ProcessInfo.processInfo.activeProcessorCount)
        return try await withThrowingTaskGroup(of: (Int, Partial).self) { group in
            var results = [Partial?](repeating: nil, count: files.count)
            var next = 0
            var done = 0
            while next < min(width, files.count) {
                let index = next
                group.addTask { (index, try await self.runShard(files[index], of: files, context: context)) }
                next += 1
            }
            while let (index, partial) = try await group.next() {
                results[index] = partial
                done += 1
                context.reportProgress(completed: done, total: files.count, unit: "files")
                if next < files.count {
                    let index = next
                    group.addTask { (index, try await self.runShard(files[index], of: files, context: context)) }
                    next += 1
                }
            }
            return results.map { $0! }
        }
    }
}

/// A bound sharded step's operations on erased values: what a shard job and a merge job call.
package struct ShardOperations: Sendable {
    /// The files, one shard each, listed once when the step is bound: for a step whose parameters name them. `nil`
    /// when its input names them (``list``).
    package var files: [String]?
    /// The step's external fingerprint over `files`, when it computes one from them.
    var fingerprint: String?
    /// Lists the files from the step's input values.
    var list: @Sendable ([any Sendable]) throws -> [String]
    /// Computes every shard of `files` in parallel and merges them: the step run when it is not split into jobs.
    var runAll: @Sendable ([String], StepContext) async throws -> any Sendable
    /// Computes shard `index` of `files` and encodes its partial.
    var compute: @Sendable (Int, [String], StepContext) async throws -> Data
    /// Decodes the partials (in the order of `files`) and merges them into the step's output.
    var merge: @Sendable ([Data], [String], StepContext) async throws -> any Sendable

    init<S: ShardedStep>(_ step: S, makeInput: @escaping @Sendable ([any Sendable]) -> S.Input) throws {
        try step.checkParameters()
        list = { values in try step.shardFiles(of: makeInput(values)) }
        if S.Input.self == Void.self {
            let files = try step.shardFiles(of: makeInput([]))
            self.files = files
            fingerprint = try step.externalFingerprint(of: files)
        }
        runAll = { files, context in
            try await step.merge(try await step.computeShards(files, context: context), files: files, context: context)
        }
        compute = { index, files, context in
            try Self.encoder.encode(try await step.runShard(files[index], of: files, context: context))
        }
        merge = { encoded, files, context in
            let decoder = JSONDecoder()
            decoder.nonConformingFloatDecodingStrategy = .convertFromString(
                positiveInfinity: "+Infinity", negativeInfinity: "-Infinity", nan: "NaN")
            let partials = try encoded.map { try decoder.decode(S.Partial.self, from: $0) }
            return try await step.merge(partials, files: files, context: context)
        }
    }

    /// The files of a run of the step that read `values`: listed at binding, or from the input.
    package func files(reading values: [any Sendable]) throws -> [String] {
        try files ?? list(values)
    }

    static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "+Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return encoder
    }
}

/// Opens a sharded step out of an existential (a generic function can call `ShardOperations.init`); `makeInput`
/// is the binder's, for the same step type.
func shardOperations<S: ShardedStep>(_ step: S, makeInput: Any) throws -> ShardOperations {
    try ShardOperations(step, makeInput: makeInput as! @Sendable ([any Sendable]) -> S.Input)
}
