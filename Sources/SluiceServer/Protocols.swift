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
        case .integer, .timestamp: "INT64"
        case .boolean: "BOOL"
        }
    }

    // MARK: KServe V2

    /// The batch of a V2 inference request: one input tensor per raw column, all with the same batch size. Read
    /// straight from the body's bytes into columns (the request's shape is known, so no dictionaries are built).
    static func decodeInfer(_ body: UnsafeRawBufferPointer, signature: ModelSignature) throws -> (
        batch: RawBatch, id: String?
    ) {
        try JSONParser.parsing(body) { parser in
            guard parser.peek() == UInt8(ascii: "{") else {
                throw RequestError.badRequest("the body must be a JSON object")
            }
            var builder = BatchBuilder(signature: signature)
            var id: String?
            var batch: Int?
            var tensors = 0
            var first = true
            while let key = try parser.nextRawKey(&first) {
                if key.is("inputs"), parser.peek() == UInt8(ascii: "[") {
                    var firstInput = true
                    while try parser.nextElement(&firstInput) {
                        let tensor = try Tensor(&parser, index: tensors, signature: signature)
                        let values = try tensor.checked(against: builder, batch: batch)
                        try builder.setColumn(tensor.name, to: values)
                        batch = values.count
                        tensors += 1
                    }
                } else if key.is("id") {
                    if case .string(let text) = try parser.value(depth: 1) { id = text }
                } else {
                    _ = try parser.value(depth: 1)  // parameters, outputs: nothing to do with them
                }
            }
            guard tensors > 0, let batch else {
                throw RequestError.badRequest("the request has no 'inputs': send one tensor per column")
            }
            return (try builder.batch(rowCount: batch), id)
        }
    }

    /// One V2 input tensor as read: name, datatype, shape and its values flattened row-major.
    struct Tensor {
        let name: String
        var datatype: String?
        var shape: [JSONValue]?
        /// The values, nil when the tensor has no `data`.
        var data: [JSONValue]?

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
                } else {
                    _ = try parser.value(depth: 3)  // parameters, or a name or datatype that is not text
                }
            }
            guard let name else { throw RequestError.badRequest("inputs[\(index)] must be an object with a 'name'") }
            self.name = name
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
            let fits = expected == "BYTES" ? datatype == "BYTES" : Protocols.isNumeric(datatype)
            guard fits else {
                throw RequestError.badRequest(
                    "input '\(name)' is \(datatype), but the column is \(column.type): send it as \(expected)")
            }
            let dimensions = shape ?? []
            let sizes = dimensions.compactMap { value -> Int? in
                if case .number(let n) = value, n >= 0, n == n.rounded(), n < 1e15 { return Int(n) }
                return nil
            }
            guard !sizes.isEmpty, sizes.count <= 2, sizes.count == dimensions.count else {
                throw RequestError.badRequest("input '\(name)' needs a shape [rows] or [rows, 1]")
            }
            if sizes.count == 2, sizes[1] != 1 {
                throw RequestError.badRequest("input '\(name)' has shape \(sizes); one column per input: [rows, 1]")
            }
            guard let data else { throw RequestError.badRequest("input '\(name)' has no 'data'") }
            guard data.count == sizes[0] else {
                throw RequestError.badRequest(
                    "input '\(name)' has \(data.count) values but its shape says \(sizes[0]) rows")
            }
            if let batch, batch != sizes[0] {
                throw RequestError.badRequest("input '\(name)' has \(sizes[0]) rows but earlier inputs have \(batch)")
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

    /// A V2 inference response with `predictions` (and `probabilities` for classifiers).
    static func inferResponse(
        _ predictions: Predictions, model: ServedModel, name: String, id: String?
    ) -> String {
        let n = predictions.rowCount
        var out = #"{"model_name":"#
        out.reserveCapacity(160 + 24 * predictions.values.count)
        out += jsonString(name)
        out += #","model_version":"#
        out += model.quotedVersion
        if let id {
            out += #","id":"#
            out += jsonString(id)
        }
        if model.quotedClasses.isEmpty {
            out += #","outputs":[{"name":"predictions","shape":[\#(n)],"datatype":"FP64","data":["#
            appendNumbers(predictions.values, to: &out)
        } else {
            out += #","outputs":[{"name":"predictions","shape":[\#(n)],"datatype":"BYTES","data":["#
            appendLabels(predictions, of: model, to: &out)
            out +=
                #"]},{"name":"probabilities","shape":[\#(n),\#(model.quotedClasses.count)],"datatype":"FP64","data":["#
            appendNumbers(predictions.values, to: &out)
        }
        out += "]}]}"
        return out
    }

    /// The V2 model metadata response.
    static func metadata(_ model: ServedModel, name: String) -> String {
        let inputs = model.bundle.signature.inputs.map {
            #"{"name":\#(jsonString($0.name)),"datatype":"\#(datatype($0.type))","shape":[-1]}"#
        }
        var outputs: [String]
        switch model.bundle.model.task {
        case .classification(let classes):
            outputs = [
                #"{"name":"predictions","datatype":"BYTES","shape":[-1]}"#,
                #"{"name":"probabilities","datatype":"FP64","shape":[-1,\#(classes.count)]}"#,
            ]
        case .regression: outputs = [#"{"name":"predictions","datatype":"FP64","shape":[-1]}"#]
        }
        return
            #"{"name":\#(jsonString(name)),"versions":[\#(jsonString(model.version))],"platform":"sluice","inputs":[\#(inputs.joined(separator: ","))],"outputs":[\#(outputs.joined(separator: ","))]}"#
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
        } else if let records = object["dataframe_records"] ?? object["instances"] {
            guard let list = records.array else {
                throw RequestError.badRequest("dataframe_records and instances must be lists of objects")
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
                "the body needs one of 'dataframe_split', 'dataframe_records' or 'instances'")
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

    static func number(_ x: Double) -> String { x.isFinite ? "\(x)" : "null" }

    static func jsonString(_ text: String) -> String {
        if text.utf8.allSatisfy({ $0 >= 0x20 && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }) {
            return "\"" + text + "\""
        }
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    out += String(format: "\\u%04x", scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
