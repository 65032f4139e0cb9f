import Foundation
import SluiceData
import SluiceErrors
import SluiceML

/// One input tensor as a front end other than HTTP (gRPC) hands it to the model server: its values either as the
/// V2 raw bytes (little-endian, BYTES elements length-prefixed) or already typed.
package struct InputTensor: Sendable {
    /// The tensor's values as they arrived.
    package enum Values: Sendable {
        /// The V2 raw form, as the binary extension and gRPC's `raw_input_contents` carry it.
        case raw(Data)
        case fp64([Double])
        case fp32([Float])
        case int64([Int64])
        /// INT8, INT16 and INT32.
        case int32([Int32])
        case uint64([UInt64])
        /// UINT8, UINT16 and UINT32.
        case uint32([UInt32])
        case bool([Bool])
        case bytes([Data])
    }

    package var name: String
    package var datatype: String
    package var shape: [Int64]
    package var values: Values

    /// Creates an input tensor.
    package init(name: String, datatype: String, shape: [Int64], values: Values) {
        self.name = name
        self.datatype = datatype
        self.shape = shape
        self.values = values
    }
}

/// One output tensor of an answered inference.
package struct OutputTensor: Sendable {
    /// The output's values.
    package enum Values: Sendable {
        case fp64([Double])
        /// Class labels as text.
        case bytes([String])
        /// Class labels of an integer label column.
        case int64([Int64])
        /// Class labels of a boolean label column.
        case bool([Bool])
    }

    package var name: String
    package var datatype: String
    package var shape: [Int64]
    package var values: Values

    /// The values in the V2 raw form (the binary extension's layout): little-endian FP64 or INT64, one byte per
    /// BOOL, BYTES elements with 4-byte length prefixes.
    package var rawBytes: [UInt8] {
        var bytes: [UInt8] = []
        switch values {
        case .fp64(let numbers): BinaryTensors.appendFP64(numbers, to: &bytes)
        case .bytes(let labels): BinaryTensors.appendBytes(labels, to: &bytes)
        case .int64(let labels):
            for label in labels { withUnsafeBytes(of: label.littleEndian) { bytes.append(contentsOf: $0) } }
        case .bool(let labels): bytes = labels.map { $0 ? 1 : 0 }
        }
        return bytes
    }
}

/// A refusal from the model server, for front ends that are not HTTP: the HTTP status the REST API would answer
/// with (400, 404, 413, 503, 500) and the reason.
package struct InferenceRefusal: HTTPRefusal, Sendable {
    package var status: Int
    package var message: String

    package var httpStatus: Int { status }
    package var httpMessage: String { message }

    /// Creates a refusal.
    package init(status: Int, message: String) {
        self.status = status
        self.message = message
    }
}

/// What a front end needs to log and count one call beside the HTTP requests.
package struct CallRecord: Sendable {
    package var id: String
    package var method: String
    package var route: String
    package var status: Int
    package var seconds: Double
    package var version: String?

    /// Creates a record.
    package init(id: String, method: String, route: String, status: Int, seconds: Double, version: String?) {
        self.id = id
        self.method = method
        self.route = route
        self.status = status
        self.seconds = seconds
        self.version = version
    }
}

/// A model's V2 metadata as plain values.
package struct ModelDescription: Sendable {
    package var name: String
    package var versions: [String]
    package var platform: String
    package var inputs: [(name: String, datatype: String, shape: [Int64])]
    package var outputs: [(name: String, datatype: String, shape: [Int64])]
}

/// One hosted model in the repository index.
package struct RepositoryEntry: Sendable {
    package var name: String
    package var version: String
    package var state: String
    package var reason: String
}

extension ModelServer {
    /// The server's name, version and protocol extensions (as `GET /v2` answers).
    package var serverDescription: (name: String, version: String, extensions: [String]) {
        ("sluice", sluiceServerVersion, ["binary_tensor_data"])
    }

    /// Whether every model has a version loaded.
    package var isReady: Bool { hosted.allSatisfy { $0.slot.model != nil } }

    /// Whether model `name` (at `version`, when given) is loaded and answering.
    package func isReady(model name: String, version: String) -> Bool {
        (try? model(Substring(name), version: version.isEmpty ? nil : Substring(version))) != nil
    }

    /// Model `name`'s metadata (as `GET /v2/models/{name}` answers).
    package func describe(model name: String, version: String) throws(InferenceRefusal) -> ModelDescription {
        let model = try refusing {
            try self.model(Substring(name), version: version.isEmpty ? nil : Substring(version))
        }
        let inputs = model.requestSignature.inputs.map { ($0.name, Protocols.datatype($0.type), [Int64(-1)]) }
        let outputs: [(String, String, [Int64])]
        switch model.bundle.model.task {
        case .classification(let classes):
            outputs = [
                ("predictions", model.labelDatatype, [-1]), ("probabilities", "FP64", [-1, Int64(classes.count)]),
            ]
        case .regression: outputs = [("predictions", "FP64", [-1])]
        }
        return ModelDescription(
            name: name, versions: [ServedModel.v2Version(of: model.version)], platform: "sluice", inputs: inputs,
            outputs: outputs)
    }

    /// Every hosted model with its version and state (as `POST /v2/repository/index` answers).
    package var repositoryIndex: [RepositoryEntry] {
        hosted.map { hosted in
            guard let model = hosted.slot.model else {
                return RepositoryEntry(name: hosted.name, version: "", state: "UNAVAILABLE", reason: "not loaded yet")
            }
            return RepositoryEntry(
                name: hosted.name, version: ServedModel.v2Version(of: model.version), state: "READY", reason: "")
        }
    }

    /// Answers a V2 inference: reads `inputs` against the signature of model `name` as loaded now (the same
    /// checks and the same reading of text as the REST API), predicts, and returns the outputs asked for (nil:
    /// all) with the version that answered (its full label and the V2 version string).
    package func infer(model name: String, version: String, inputs: [InputTensor], outputs: [String]?)
        throws(InferenceRefusal) -> (version: String, v2Version: String, outputs: [OutputTensor])
    {
        try refusing {
            let model = try self.model(Substring(name), version: version.isEmpty ? nil : Substring(version))
            if let service = model.bundle.signature.features {
                throw RequestError(
                    status: 400,
                    message: "model '\(name)' reads its features from the feature service '\(service.service)' by "
                        + "entity key, which this server's gRPC front end does not do yet; call "
                        + "POST /v2/models/\(name)/infer over HTTP")
            }
            var builder = BatchBuilder(signature: model.bundle.signature)
            var batch: Int?
            guard !inputs.isEmpty else {
                throw RequestError.badRequest("the request has no 'inputs': send one tensor per column")
            }
            for tensor in inputs {
                let rows = try Self.rows(of: tensor)
                let values = try Self.values(of: tensor, rows: rows)
                let read = Protocols.Tensor(name: tensor.name, datatype: tensor.datatype, rows: rows, data: values)
                let checked = try read.checked(against: builder, batch: batch)
                try builder.setColumn(read.name, to: checked)
                batch = checked.count
            }
            let predictions = try predict(try builder.batch(rowCount: batch ?? 0), with: model)
            let n = Int64(predictions.rowCount)
            let classes = model.classes.count
            let available = classes == 0 ? ["predictions"] : ["predictions", "probabilities"]
            let wanted = outputs ?? available
            let answer = try wanted.map { output -> OutputTensor in
                switch output {
                case "predictions" where classes > 0:
                    let predicted = predictions.predictedClasses.map { Int($0) }
                    let values: OutputTensor.Values
                    switch model.labels {
                    case .text: values = .bytes(predicted.map { model.classes[$0] })
                    case .integer(let labels): values = .int64(predicted.map { labels[$0] })
                    case .boolean(let labels): values = .bool(predicted.map { labels[$0] })
                    }
                    return OutputTensor(name: output, datatype: model.labelDatatype, shape: [n], values: values)
                case "predictions":
                    return OutputTensor(name: output, datatype: "FP64", shape: [n], values: .fp64(predictions.values))
                case "probabilities" where classes > 0:
                    return OutputTensor(
                        name: output, datatype: "FP64", shape: [n, Int64(classes)], values: .fp64(predictions.values))
                default:
                    throw RequestError.badRequest(
                        "unknown output '\(output)'; the model gives: \(available.joined(separator: ", "))")
                }
            }
            return (model.version, ServedModel.v2Version(of: model.version), answer)
        }
    }

    /// Counts and logs a call answered by another front end, beside the HTTP requests (same metrics, same access
    /// log).
    package func record(_ call: CallRecord) {
        metrics.finished(route: call.route, status: call.status, seconds: call.seconds)
        configuration.accessLog?.record(
            id: call.id, method: call.method, path: call.route, status: call.status, seconds: call.seconds,
            version: call.version)
    }

    /// Marks a call as started (requests in flight).
    package func callStarted() { metrics.started() }

    /// A request ID for a call that came without one.
    package func nextRequestID() -> String { RequestIDs.next() }

    /// The number of rows a tensor's shape says: `[rows]` or `[rows, 1]`.
    private static func rows(of tensor: InputTensor) throws -> Int {
        let shape = tensor.shape
        guard !shape.isEmpty, shape.count <= 2, shape.allSatisfy({ $0 >= 0 && $0 < 1 << 40 }) else {
            throw RequestError.badRequest("input '\(tensor.name)' needs a shape [rows] or [rows, 1], not \(shape)")
        }
        if shape.count == 2, shape[1] != 1 {
            throw RequestError.badRequest("input '\(tensor.name)' has shape \(shape); one column per input: [rows, 1]")
        }
        return Int(shape[0])
    }

    /// A tensor's values as the JSON form would have them, with the element type checked against the datatype.
    private static func values(of tensor: InputTensor, rows: Int) throws -> [JSONValue] {
        let name = tensor.name
        func typed<T>(_ values: [T], _ fits: Bool, _ field: String, _ map: (T) -> JSONValue) throws -> [JSONValue] {
            guard fits else {
                throw RequestError.badRequest(
                    "input '\(name)' is \(tensor.datatype), but its values are in \(field); put them in the "
                        + "contents field for \(tensor.datatype)")
            }
            return values.map(map)
        }
        let datatype = tensor.datatype
        switch tensor.values {
        case .raw(let data):
            return try data.withUnsafeBytes {
                try BinaryTensors.decode($0, datatype: datatype, count: rows, input: name)
            }
        case .fp64(let values): return try typed(values, datatype == "FP64", "fp64_contents") { .number($0) }
        case .fp32(let values): return try typed(values, datatype == "FP32", "fp32_contents") { .number(Double($0)) }
        case .int64(let values): return try typed(values, datatype == "INT64", "int64_contents") { .number(Double($0)) }
        case .int32(let values):
            return try typed(values, ["INT32", "INT16", "INT8"].contains(datatype), "int_contents") {
                .number(Double($0))
            }
        case .uint64(let values):
            return try typed(values, datatype == "UINT64", "uint64_contents") { .number(Double($0)) }
        case .uint32(let values):
            return try typed(values, ["UINT32", "UINT16", "UINT8"].contains(datatype), "uint_contents") {
                .number(Double($0))
            }
        case .bool(let values): return try typed(values, datatype == "BOOL", "bool_contents") { .bool($0) }
        case .bytes(let values):
            return try values.enumerated().map { index, data in
                guard datatype == "BYTES" else {
                    throw RequestError.badRequest(
                        "input '\(name)' is \(datatype), but its values are in bytes_contents; put them in the "
                            + "contents field for \(datatype)")
                }
                guard let text = String(data: data, encoding: .utf8) else {
                    throw RequestError.badRequest("input '\(name)': BYTES element \(index + 1) is not UTF-8 text")
                }
                return .string(text)
            }
        }
    }

    /// Runs `body`, turning a ``RequestError`` into an ``InferenceRefusal``.
    private func refusing<T>(_ body: () throws -> T) throws(InferenceRefusal) -> T {
        do {
            return try body()
        } catch let error as any HTTPRefusal {
            throw InferenceRefusal(status: error.httpStatus, message: error.httpMessage)
        } catch {
            let id = RequestIDs.next()
            logger.error("unexpected error answering an inference call: \(error)", metadata: ["request_id": "\(id)"])
            throw InferenceRefusal(status: 500, message: UnexpectedErrorAnswer.message(requestID: id))
        }
    }
}
