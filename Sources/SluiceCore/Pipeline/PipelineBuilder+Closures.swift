// Closure steps with up to five inputs. Steps written as types take any number of inputs (see `add`);
// closures spell out their arity because a closure cannot take a parameter pack as separate arguments.

extension PipelineBuilder {
    /// Adds a closure step with no inputs; its code version is yours to bump when the closure changes.
    @discardableResult
    public func step<Output: Sendable>(
        _ name: String, version: Int, cache: Bool = true,
        body: @escaping @Sendable (StepContext) async throws -> Output
    ) -> Handle<Output> {
        let step = FunctionStep<Void, Output, NoParameters>(name, version: version) { _, context in
            try await body(context)
        }
        return add(step, name: name, cache: cache)
    }

    /// Adds a closure step with no inputs and `Codable` parameters that configuration can override.
    @discardableResult
    public func step<Output: Sendable, Parameters: Codable & Sendable>(
        _ name: String, version: Int, parameters: Parameters, cache: Bool = true,
        body: @escaping @Sendable (Parameters, StepContext) async throws -> Output
    ) -> Handle<Output> {
        let step = FunctionStep<Void, Output, Parameters>(name, version: version, parameters: parameters) {
            _, parameters, context in
            try await body(parameters, context)
        }
        return add(step, name: name, cache: cache)
    }

    /// Adds a closure step with one input; its code version is yours to bump when the closure changes.
    @discardableResult
    public func step<Output: Sendable, A: Sendable>(
        _ name: String, version: Int, cache: Bool = true, _ a: Handle<A>,
        body: @escaping @Sendable (A, StepContext) async throws -> Output
    ) -> Handle<Output> {
        let step = FunctionStep<A, Output, NoParameters>(name, version: version) { input, context in
            try await body(input, context)
        }
        return add(step, name: name, cache: cache, a)
    }

    /// Adds a closure step with one input and `Codable` parameters that configuration can override.
    @discardableResult
    public func step<Output: Sendable, Parameters: Codable & Sendable, A: Sendable>(
        _ name: String, version: Int, parameters: Parameters, cache: Bool = true, _ a: Handle<A>,
        body: @escaping @Sendable (A, Parameters, StepContext) async throws -> Output
    ) -> Handle<Output> {
        let step = FunctionStep<A, Output, Parameters>(name, version: version, parameters: parameters) {
            input, parameters, context in
            try await body(input, parameters, context)
        }
        return add(step, name: name, cache: cache, a)
    }

    /// Adds a closure step with 2 inputs; its code version is yours to bump when the closure changes.
    @discardableResult
    public func step<Output: Sendable, A: Sendable, B: Sendable>(
        _ name: String, version: Int, cache: Bool = true, _ a: Handle<A>, _ b: Handle<B>,
        body: @escaping @Sendable (A, B, StepContext) async throws -> Output
    ) -> Handle<Output> {
        let step = FunctionStep<(A, B), Output, NoParameters>(name, version: version) { input, context in
            try await body(input.0, input.1, context)
        }
        return add(step, name: name, cache: cache, a, b)
    }

    /// Adds a closure step with 2 inputs and `Codable` parameters that configuration can override.
    @discardableResult
    public func step<Output: Sendable, Parameters: Codable & Sendable, A: Sendable, B: Sendable>(
        _ name: String, version: Int, parameters: Parameters, cache: Bool = true, _ a: Handle<A>, _ b: Handle<B>,
        body: @escaping @Sendable (A, B, Parameters, StepContext) async throws -> Output
    ) -> Handle<Output> {
        let step = FunctionStep<(A, B), Output, Parameters>(name, version: version, parameters: parameters) {
            input, parameters, context in
            try await body(input.0, input.1, parameters, context)
        }
        return add(step, name: name, cache: cache, a, b)
    }

    /// Adds a closure step with 3 inputs; its code version is yours to bump when the closure changes.
    @discardableResult
    public func step<Output: Sendable, A: Sendable, B: Sendable, C: Sendable>(
        _ name: String, version: Int, cache: Bool = true, _ a: Handle<A>, _ b: Handle<B>, _ c: Handle<C>,
        body: @escaping @Sendable (A, B, C, StepContext) async throws -> Output
    ) -> Handle<Output> {
        let step = FunctionStep<(A, B, C), Output, NoParameters>(name, version: version) { input, context in
            try await body(input.0, input.1, input.2, context)
        }
        return add(step, name: name, cache: cache, a, b, c)
    }

    /// Adds a closure step with 3 inputs and `Codable` parameters that configuration can override.
    @discardableResult
    public func step<Output: Sendable, Parameters: Codable & Sendable, A: Sendable, B: Sendable, C: Sendable>(
        _ name: String, version: Int, parameters: Parameters, cache: Bool = true, _ a: Handle<A>, _ b: Handle<B>,
        _ c: Handle<C>,
        body: @escaping @Sendable (A, B, C, Parameters, StepContext) async throws -> Output
    ) -> Handle<Output> {
        let step = FunctionStep<(A, B, C), Output, Parameters>(name, version: version, parameters: parameters) {
            input, parameters, context in
            try await body(input.0, input.1, input.2, parameters, context)
        }
        return add(step, name: name, cache: cache, a, b, c)
    }

    /// Adds a closure step with 4 inputs; its code version is yours to bump when the closure changes.
    @discardableResult
    public func step<Output: Sendable, A: Sendable, B: Sendable, C: Sendable, D: Sendable>(
        _ name: String, version: Int, cache: Bool = true, _ a: Handle<A>, _ b: Handle<B>, _ c: Handle<C>,
        _ d: Handle<D>,
        body: @escaping @Sendable (A, B, C, D, StepContext) async throws -> Output
    ) -> Handle<Output> {
        let step = FunctionStep<(A, B, C, D), Output, NoParameters>(name, version: version) { input, context in
            try await body(input.0, input.1, input.2, input.3, context)
        }
        return add(step, name: name, cache: cache, a, b, c, d)
    }

    /// Adds a closure step with 4 inputs and `Codable` parameters that configuration can override.
    @discardableResult
    public func step<
        Output: Sendable, Parameters: Codable & Sendable, A: Sendable, B: Sendable, C: Sendable, D: Sendable
    >(
        _ name: String, version: Int, parameters: Parameters, cache: Bool = true, _ a: Handle<A>, _ b: Handle<B>,
        _ c: Handle<C>, _ d: Handle<D>,
        body: @escaping @Sendable (A, B, C, D, Parameters, StepContext) async throws -> Output
    ) -> Handle<Output> {
        let step = FunctionStep<(A, B, C, D), Output, Parameters>(name, version: version, parameters: parameters) {
            input, parameters, context in
            try await body(input.0, input.1, input.2, input.3, parameters, context)
        }
        return add(step, name: name, cache: cache, a, b, c, d)
    }

    /// Adds a closure step with 5 inputs; its code version is yours to bump when the closure changes.
    @discardableResult
    public func step<Output: Sendable, A: Sendable, B: Sendable, C: Sendable, D: Sendable, E: Sendable>(
        _ name: String, version: Int, cache: Bool = true, _ a: Handle<A>, _ b: Handle<B>, _ c: Handle<C>,
        _ d: Handle<D>, _ e: Handle<E>,
        body: @escaping @Sendable (A, B, C, D, E, StepContext) async throws -> Output
    ) -> Handle<Output> {
        let step = FunctionStep<(A, B, C, D, E), Output, NoParameters>(name, version: version) { input, context in
            try await body(input.0, input.1, input.2, input.3, input.4, context)
        }
        return add(step, name: name, cache: cache, a, b, c, d, e)
    }

    /// Adds a closure step with 5 inputs and `Codable` parameters that configuration can override.
    @discardableResult
    public func step<
        Output: Sendable, Parameters: Codable & Sendable, A: Sendable, B: Sendable, C: Sendable, D: Sendable,
        E: Sendable
    >(
        _ name: String, version: Int, parameters: Parameters, cache: Bool = true, _ a: Handle<A>, _ b: Handle<B>,
        _ c: Handle<C>, _ d: Handle<D>, _ e: Handle<E>,
        body: @escaping @Sendable (A, B, C, D, E, Parameters, StepContext) async throws -> Output
    ) -> Handle<Output> {
        let step = FunctionStep<(A, B, C, D, E), Output, Parameters>(name, version: version, parameters: parameters) {
            input, parameters, context in
            try await body(input.0, input.1, input.2, input.3, input.4, parameters, context)
        }
        return add(step, name: name, cache: cache, a, b, c, d, e)
    }

}
