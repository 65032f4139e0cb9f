// Over 400 lines: the V2 and /invocations request and response shapes, which the JSON and binary decoders share.
import Foundation
import SluiceData
import SluiceML

/// The KServe V2 (Open Inference Protocol) REST payloads and the MLflow-style `/invocations` formats, turned into
/// raw rows and back.
enum Protocols {
    /// Whether a V2 datatype carries numbers (or booleans).
    static func isNumeric(_ datatype: String) -> Bool { datatype != "BYTES" && datatypes.contains(datatype) }

    /// The V2 tensor datatypes this server reads: text, then numbers and booleans.
    static let datatypes = [
        "BYTES", "FP64", "FP32", "FP16", "INT64", "INT32", "INT16", "INT8", "UINT64", "UINT32", "UINT16", "UINT8",
        "BOOL",
    ]

    /// The tensor type a column travels as.
    static func datatype(_ type: ColumnType) -> String {
        switch type {
        case .string: "BYTES"
        case .float: "FP64"
        case .integer: "INT64"
        // A time as the training data had it (ISO 8601 text); microseconds since 1970 as INT64 are read too.
        case .timestamp: "BYTES"
        case .boolean: "BOOL"
        }
    }

    // MARK: KServe V2

    /// A V2 inference request as read: the batch, the client's ID, which outputs it wants and how, and its
    /// parameters to echo back.
    struct InferRequest {
        var batch: RawBatch
        var id: String?
        /// The outputs asked for by name (nil: all of them), each with whether it goes back as binary data.
        var outputs: [(name: String, binary: Bool?)]?
        /// `parameters.binary_data_output`: every output as binary data unless an output says otherwise.
        var binaryOutput = false
        /// The request's other parameters, as JSON text, returned in the response's `parameters`.
        var parameters: String?
    }

    /// Reads a V2 inference request: one input tensor per raw column, all with the same batch size, each with
    /// `data` or (binary tensor data extension) `parameters.binary_data_size` bytes of the body after the JSON
    /// header of `headerLength` bytes. Read straight from the body's bytes into columns.
    static func decodeInfer(_ body: UnsafeRawBufferPointer, headerLength: Int?, signature: ModelSignature) throws
        -> InferRequest
    {
        var json = body
        var binary: UnsafeRawBufferPointer?
        if let headerLength {
            guard headerLength >= 0, headerLength <= body.count else {
                throw RequestError.badRequest(
                    "\(BinaryTensors.headerName) is \(headerLength), but the body has \(body.count) bytes")
            }
            json = UnsafeRawBufferPointer(rebasing: body[..<headerLength])
            binary = UnsafeRawBufferPointer(rebasing: body[headerLength...])
        }
        return try JSONParser.parsing(json) { parser in
            guard parser.peek() == UInt8(ascii: "{") else {
                throw RequestError.badRequest("the body must be a JSON object")
            }
            var builder = BatchBuilder(signature: signature)
            var id: String?
            var batch: Int?
            var tensors = 0
            var offset = 0
            var outputs: [(name: String, binary: Bool?)]?
            var binaryOutput = false
            var parameters: String?
            var first = true
            while let key = try parser.nextRawKey(&first) {
                if key.is("inputs"), parser.peek() == UInt8(ascii: "[") {
                    var firstInput = true
                    while try parser.nextElement(&firstInput) {
                        var tensor = try Tensor(&parser, index: tensors, signature: signature)
                        if let size = tensor.binarySize {
                            try tensor.readBinary(size, from: binary, at: &offset)
                        }
                        let values = try tensor.checked(against: builder, batch: batch)
                        try builder.setColumn(tensor.name, to: values)
                        batch = values.count
                        tensors += 1
                    }
                } else if key.is("id") {
                    if case .string(let text) = try parser.value(depth: 1) { id = text }
                } else if key.is("parameters") {
                    guard parser.peek() == UInt8(ascii: "{") else {
                        throw RequestError.badRequest("'parameters' must be an object")
                    }
                    // Keys compared in the body's bytes; a dictionary only for parameters to echo back.
                    var others: [String: JSONValue] = [:]
                    var firstParameter = true
                    while let parameter = try parser.nextRawKey(&firstParameter) {
                        let value = try parser.value(depth: 2)
                        if parameter.is("binary_data_output") {
                            guard case .bool(let on) = value else {
                                throw RequestError.badRequest("parameters.binary_data_output must be true or false")
                            }
                            binaryOutput = on
                        } else {
                            others[try parameter.text()] = value
                        }
                    }
                    if !others.isEmpty { parameters = JSONValue.object(others).serialized }
                } else if key.is("outputs") {
                    outputs = try Self.requestedOutputs(try parser.value(depth: 1))
                } else {
                    _ = try parser.value(depth: 1)
                }
            }
            guard tensors > 0, let batch else {
                throw RequestError.badRequest("the request has no 'inputs': send one tensor per column")
            }
            if let binary, offset != binary.count {
                throw RequestError.badRequest(
                    "the body has \(binary.count) bytes after the JSON header, but the inputs' binary_data_size "
                        + "add up to \(offset)")
            }
            return InferRequest(
                batch: try builder.batch(rowCount: batch), id: id, outputs: outputs, binaryOutput: binaryOutput,
                parameters: parameters)
        }
    }

    /// The `outputs` of a request: names, each with `parameters.binary_data` when given (nil: the request's
    /// default).
    private static func requestedOutputs(_ value: JSONValue) throws -> [(name: String, binary: Bool?)] {
        guard let list = value.array else { throw RequestError.badRequest("'outputs' must be a list of objects") }
        return try list.enumerated().map { index, entry in
            guard let object = entry.object, let name = object["name"]?.string else {
                throw RequestError.badRequest("outputs[\(index)] must be an object with a 'name'")
            }
            var binary: Bool?
            if let parameters = object["parameters"]?.object {
                if let flag = parameters["binary_data"] {
                    guard case .bool(let on) = flag else {
                        throw RequestError.badRequest("outputs[\(index)].parameters.binary_data must be true or false")
                    }
                    binary = on
                }
                if parameters["classification"] != nil {
                    throw RequestError.badRequest(
                        "output '\(name)': the classification extension is not supported; ask for 'probabilities'")
                }
            }
            return (name, binary)
        }
    }

    /// One V2 input tensor as read: name, datatype, shape and its values flattened row-major.
    struct Tensor {
        let name: String
        var datatype: String?
        var shape: [JSONValue]?
        /// The values, nil when the tensor has no `data`.
        var data: [JSONValue]?
        /// `parameters.binary_data_size`: the tensor's bytes follow the JSON header.
        var binarySize: Int?

        /// A tensor whose values were read elsewhere (gRPC), `rows` long.
        init(name: String, datatype: String, rows: Int, data: [JSONValue]) {
            self.name = name
            self.datatype = datatype
            self.shape = [.number(Double(rows))]
            self.data = data
        }

        /// Reads the tensor object at the parser's position; names of the signature's columns and known
        /// datatypes are matched in the body's bytes (`index` for errors).
        init(_ parser: inout JSONParser, index: Int, signature: ModelSignature) throws {
            guard parser.peek() == UInt8(ascii: "{") else {
                throw RequestError.badRequest("inputs[\(index)] must be an object with a 'name'")
            }
            var name: String?
            var first = true
            while let key = try parser.nextRawKey(&first) {
                if key.is("name"), let text = try parser.nextRawText() {
                    name = try signature.inputs.first { text.is($0.name) }?.name ?? text.text()
                } else if key.is("datatype"), let text = try parser.nextRawText() {
                    datatype = try Protocols.datatypes.first { text.is($0) } ?? text.text()
                } else if key.is("shape") {
                    if case .array(let dimensions) = try parser.value(depth: 3) { shape = dimensions }
                } else if key.is("data") {
                    var values: [JSONValue] = []
                    try Self.leaves(&parser, into: &values, depth: 3)
                    data = values
                } else if key.is("parameters"), parser.peek() == UInt8(ascii: "{") {
                    // Keys compared in the body's bytes: no dictionary per input (binary requests carry one each).
                    var firstParameter = true
                    while let parameter = try parser.nextRawKey(&firstParameter) {
                        let value = try parser.value(depth: 4)
                        guard parameter.is("binary_data_size") else { continue }
                        guard case .number(let n) = value, n >= 0, n == n.rounded(), n < 1e15 else {
                            throw RequestError.badRequest(
                                "inputs[\(index)].parameters.binary_data_size must be a whole number of bytes")
                        }
                        binarySize = Int(n)
                    }
                } else {
                    _ = try parser.value(depth: 3)  // a name or datatype that is not text
                }
            }
            guard let name else { throw RequestError.badRequest("inputs[\(index)] must be an object with a 'name'") }
            self.name = name
        }

        /// Reads the tensor's `size` bytes at `offset` of the binary part (moving `offset` past them).
        mutating func readBinary(_ size: Int, from binary: UnsafeRawBufferPointer?, at offset: inout Int) throws {
            guard let binary else {
                throw RequestError.badRequest(
                    "input '\(name)' has binary_data_size but the request has no \(BinaryTensors.headerName) header "
                        + "saying where its JSON ends")
            }
            guard data == nil else {
                throw RequestError.badRequest("input '\(name)' has both 'data' and binary_data_size: send one")
            }
            guard let datatype else { throw RequestError.badRequest("input '\(name)' has no 'datatype'") }
            guard size <= binary.count - offset else {
                throw RequestError.badRequest(
                    "input '\(name)' has binary_data_size \(size), past the end of the body (\(binary.count - offset) "
                        + "bytes of binary data left)")
            }
            let rows = try self.rows()
            data = try BinaryTensors.decode(
                UnsafeRawBufferPointer(rebasing: binary[offset..<offset + size]), datatype: datatype, count: rows,
                input: name)
            offset += size
        }

        /// The number of rows the shape says: `[rows]` or `[rows, 1]`.
        func rows() throws -> Int {
            let dimensions = shape ?? []
            func size(_ value: JSONValue) -> Int? {
                if case .number(let n) = value, n >= 0, n == n.rounded(), n < 1e15 { return Int(n) }
                return nil
            }
            guard (1...2).contains(dimensions.count), let rows = size(dimensions[0]),
                dimensions.count == 1 || size(dimensions[1]) != nil
            else {
                throw RequestError.badRequest("input '\(name)' needs a shape [rows] or [rows, 1]")
            }
            if dimensions.count == 2, let columns = size(dimensions[1]), columns != 1 {
                throw RequestError.badRequest(
                    "input '\(name)' has shape [\(rows), \(columns)]; one column per input: [rows, 1]")
            }
            return rows
        }

        /// The values of nested lists, row-major; a lone value counts as one.
        private static func leaves(_ parser: inout JSONParser, into values: inout [JSONValue], depth: Int) throws {
            guard parser.peek() == UInt8(ascii: "["), depth < 64 else {
                values.append(try parser.value(depth: depth))
                return
            }
            var first = true
            while try parser.nextElement(&first) { try leaves(&parser, into: &values, depth: depth + 1) }
        }

        /// The tensor's values (one per row), after checking it against the signature and the batch size of
        /// earlier tensors.
        func checked(against builder: BatchBuilder, batch: Int?) throws -> [JSONValue] {
            guard let datatype else { throw RequestError.badRequest("input '\(name)' has no 'datatype'") }
            let column = try builder.input(name)
            let expected = Protocols.datatype(column.type)
            // Text columns take BYTES; the others take any numeric type, or BYTES holding text as CSV ingest read it.
            let fits =
                column.type == .string ? datatype == "BYTES" : Protocols.isNumeric(datatype) || datatype == "BYTES"
            guard fits else {
                throw RequestError.badRequest(
                    "input '\(name)' is \(datatype), but the column is \(column.type): send it as \(expected)")
            }
            let rows = try self.rows()
            guard let data else {
                throw RequestError.badRequest(
                    "input '\(name)' has no 'data' (nor parameters.binary_data_size with the binary tensor extension)")
            }
            guard data.count == rows else {
                throw RequestError.badRequest(
                    "input '\(name)' has \(data.count) values but its shape says \(rows) rows")
            }
            if let batch, batch != rows {
                throw RequestError.badRequest("input '\(name)' has \(rows) rows but earlier inputs have \(batch)")
            }
            if datatype == "BOOL" {
                for (row, value) in data.enumerated() {
                    switch value {
                    case .bool, .null: break
                    default:
                        throw RequestError.badRequest("input '\(name)' is BOOL but row \(row + 1) is \(value.kind)")
                    }
                }
            }
            return data
        }
    }

    /// A V2 inference response with `predictions` (and `probabilities` for classifiers), or the outputs the
    /// request names; outputs asked for as binary data follow the JSON part (`binary` non-nil, its length then
    /// goes in the `Inference-Header-Content-Length` header).
    static func inferResponse(
        _ predictions: Predictions, model: ServedModel, name: String, request: InferRequest
    ) throws -> (json: String, binary: [UInt8]?) {
        let n = predictions.rowCount
        let classes = model.quotedClasses.count
        let available = classes == 0 ? ["predictions"] : ["predictions", "probabilities"]
        let wanted =
            try request.outputs?.map { output -> (String, Bool) in
                guard available.contains(output.name) else {
                    throw RequestError.badRequest(
                        "unknown output '\(output.name)'; the model gives: \(available.joined(separator: ", "))")
                }
                return (output.name, output.binary ?? request.binaryOutput)
            } ?? available.map { ($0, request.binaryOutput) }
        var out = #"{"model_name":"#
        out.reserveCapacity(160 + 24 * predictions.values.count)
        out += jsonString(name)
        out += #","model_version":"#
        out += model.quotedV2Version
        if let id = request.id {
            out += #","id":"#
            out += jsonString(id)
        }
        if let parameters = request.parameters {
            out += #","parameters":"#
            out += parameters
        }
        out += #","outputs":["#
        var binary: [UInt8]?
        for (index, (output, asBinary)) in wanted.enumerated() {
            if index > 0 { out += "," }
            let isLabels = output == "predictions" && classes > 0
            let shape = output == "probabilities" ? "[\(n),\(classes)]" : "[\(n)]"
            out += #"{"name":"\#(output)","shape":\#(shape),"datatype":"\#(isLabels ? model.labelDatatype : "FP64")","#
            if asBinary {
                var bytes = binary ?? []
                binary = nil  // one owner, so appending does not copy
                let before = bytes.count
                if isLabels {
                    for label in predictions.predictedClasses {
                        bytes.append(contentsOf: model.binaryClasses[Int(label)])
                    }
                } else {
                    BinaryTensors.appendFP64(predictions.values, to: &bytes)
                }
                out += #""parameters":{"binary_data_size":\#(bytes.count - before)}}"#
                binary = bytes
            } else {
                out += #""data":["#
                if isLabels {
                    appendLabels(predictions, of: model, to: &out)
                } else {
                    appendNumbers(predictions.values, to: &out)
                }
                out += "]}"
            }
        }
        out += "]}"
        return (out, binary)
    }

    /// The V2 model metadata response.
    static func metadata(_ model: ServedModel, name: String) -> String {
        let inputs = model.requestSignature.inputs.map {
            #"{"name":\#(jsonString($0.name)),"datatype":"\#(datatype($0.type))","shape":[-1]}"#
        }
        var outputs: [String]
        switch model.bundle.model.task {
        case .classification(let classes):
            outputs = [
                #"{"name":"predictions","datatype":"\#(model.labelDatatype)","shape":[-1]}"#,
                #"{"name":"probabilities","datatype":"FP64","shape":[-1,\#(classes.count)]}"#,
            ]
        case .regression: outputs = [#"{"name":"predictions","datatype":"FP64","shape":[-1]}"#]
        }
        return
            #"{"name":\#(jsonString(name)),"versions":[\#(model.quotedV2Version)],"platform":"sluice","inputs":[\#(inputs.joined(separator: ","))],"outputs":[\#(outputs.joined(separator: ","))]}"#
    }

    // MARK: MLflow-style invocations

    /// The batch of `dataframe_split`, `dataframe_records` or `instances`.
    static func decodeInvocations(_ body: UnsafeRawBufferPointer, signature: ModelSignature) throws -> RawBatch {
        guard let object = try JSONParser.parse(body).object else {
            throw RequestError.badRequest("the body must be a JSON object")
        }
        var builder = BatchBuilder(signature: signature)
        var rows = 0
        if let split = object["dataframe_split"] {
            guard let frame = split.object, let columns = frame["columns"]?.array?.compactMap(\.string),
                let data = frame["data"]?.array
            else {
                throw RequestError.badRequest("dataframe_split needs 'columns' (names) and 'data' (rows of values)")
            }
            for (r, line) in data.enumerated() {
                guard let values = line.array, values.count == columns.count else {
                    throw RequestError.badRequest("dataframe_split row \(r + 1) must have \(columns.count) values")
                }
                for (column, value) in zip(columns, values) { try builder.set(column, row: r, to: value) }
            }
            rows = data.count
        } else if let inputs = object["inputs"]?.object {
            // MLflow's tensor form, one named tensor per column: {"inputs": {"column": [values…], …}}.
            var count: Int?
            for (column, values) in inputs.sorted(by: { $0.key < $1.key }) {
                let list = values.array ?? [values]
                if let count, count != list.count {
                    throw RequestError.badRequest(
                        "inputs '\(column)' has \(list.count) values but other inputs have \(count); one value per row")
                }
                count = list.count
                try builder.setColumn(column, to: list)
            }
            rows = count ?? 0
        } else if let records = object["dataframe_records"] ?? object["instances"] ?? object["inputs"] {
            guard let list = records.array else {
                throw RequestError.badRequest(
                    "dataframe_records and instances must be lists of objects; inputs an object of column: values")
            }
            for (r, record) in list.enumerated() {
                guard let fields = record.object else {
                    throw RequestError.badRequest("record \(r + 1) must be an object of column: value")
                }
                for (column, value) in fields { try builder.set(column, row: r, to: value) }
            }
            rows = list.count
        } else {
            throw RequestError.badRequest(
                "the body needs one of 'dataframe_split', 'dataframe_records', 'instances' or 'inputs'")
        }
        return try builder.batch(rowCount: rows)
    }

    /// `{"predictions": [...]}`: class labels for classifiers, numbers for regressors.
    static func invocationsResponse(_ predictions: Predictions, model: ServedModel) -> String {
        var out = #"{"predictions":["#
        out.reserveCapacity(64 + 24 * predictions.rowCount)
        if model.quotedClasses.isEmpty {
            appendNumbers(predictions.values, to: &out)
        } else {
            appendLabels(predictions, of: model, to: &out)
        }
        out += #"],"model_version":"#
        out += model.quotedVersion
        out += "}"
        return out
    }

    // MARK: JSON text

    /// The predicted class labels, quoted, comma-separated.
    private static func appendLabels(_ predictions: Predictions, of model: ServedModel, to out: inout String) {
        for (k, label) in predictions.predictedClasses.enumerated() {
            if k > 0 { out += "," }
            out += model.quotedClasses[Int(label)]
        }
    }

    /// Numbers, comma-separated (`null` for one that is not finite).
    private static func appendNumbers(_ values: [Double], to out: inout String) {
        for (k, value) in values.enumerated() {
            if k > 0 { out += "," }
            out += number(value)
        }
    }

    static func number(_ x: Double) -> String { JSONText.number(x) }

    static func jsonString(_ text: String) -> String { JSONText.quoted(text) }
}
