import Foundation
import SluiceData
import SluiceML

/// The KServe V2 (Open Inference Protocol) REST payloads and the MLflow-style `/invocations` formats, turned into
/// raw rows and back.
enum Protocols {
    /// Whether a V2 datatype carries numbers (or booleans).
    static func isNumeric(_ datatype: String) -> Bool {
        switch datatype {
        case "FP64", "FP32", "FP16", "INT64", "INT32", "INT16", "INT8", "UINT64", "UINT32", "UINT16", "UINT8", "BOOL":
            true
        default: false
        }
    }

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

    /// Rows from a V2 inference request: one input tensor per raw column, all with the same batch size.
    static func rowsFromInfer(_ body: JSONValue, signature: ModelSignature) throws -> (
        rows: [[String: RawValue]], id: String?
    ) {
        guard let object = body.object else { throw RequestError.badRequest("the body must be a JSON object") }
        guard let inputs = object["inputs"]?.array, !inputs.isEmpty else {
            throw RequestError.badRequest("the request has no 'inputs': send one tensor per column")
        }
        let builder = RowBuilder(signature: signature)
        var rows: [[String: RawValue]] = []
        var batch: Int?
        for (k, input) in inputs.enumerated() {
            guard let tensor = input.object, let name = tensor["name"]?.string else {
                throw RequestError.badRequest("inputs[\(k)] must be an object with a 'name'")
            }
            guard let datatype = tensor["datatype"]?.string else {
                throw RequestError.badRequest("input '\(name)' has no 'datatype'")
            }
            guard let column = signature.inputs.first(where: { $0.name == name }) else {
                throw RequestError.badRequest(
                    "unknown input '\(name)'; the model reads: \(signature.inputs.map(\.name).joined(separator: ", "))")
            }
            let expected = Self.datatype(column.type)
            let fits = expected == "BYTES" ? datatype == "BYTES" : Self.isNumeric(datatype)
            guard fits else {
                throw RequestError.badRequest(
                    "input '\(name)' is \(datatype), but the column is \(column.type): send it as \(expected)")
            }
            let dimensions = tensor["shape"]?.array ?? []
            let shape = dimensions.compactMap { value -> Int? in
                if case .number(let n) = value, n >= 0, n == n.rounded() { return Int(n) }
                return nil
            }
            guard !shape.isEmpty, shape.count <= 2, shape.count == dimensions.count else {
                throw RequestError.badRequest("input '\(name)' needs a shape [rows] or [rows, 1]")
            }
            if shape.count == 2, shape[1] != 1 {
                throw RequestError.badRequest("input '\(name)' has shape \(shape); one column per input: [rows, 1]")
            }
            guard let data = tensor["data"] else { throw RequestError.badRequest("input '\(name)' has no 'data'") }
            let values = data.flattened()
            guard values.count == shape[0] else {
                throw RequestError.badRequest(
                    "input '\(name)' has \(values.count) values but its shape says \(shape[0]) rows")
            }
            if let batch, batch != shape[0] {
                throw RequestError.badRequest("input '\(name)' has \(shape[0]) rows but earlier inputs have \(batch)")
            }
            batch = shape[0]
            if rows.isEmpty { rows = Array(repeating: [:], count: shape[0]) }
            for (row, value) in values.enumerated() {
                if datatype == "BOOL" {
                    switch value {
                    case .bool, .null: break
                    default:
                        throw RequestError.badRequest("input '\(name)' is BOOL but row \(row + 1) is \(value.kind)")
                    }
                }
                rows[row][name] = try builder.value(value, column: name, row: row)
            }
        }
        try builder.requireColumns(rows)
        return (rows, object["id"]?.string)
    }

    /// A V2 inference response with `predictions` (and `probabilities` for classifiers).
    static func inferResponse(
        _ predictions: Predictions, model: ServedModel, name: String, id: String?
    ) -> String {
        let n = predictions.rowCount
        var outputs: [String] = []
        switch model.bundle.model.task {
        case .classification(let classes):
            let labels = predictions.predictedClasses.map { jsonString(classes[Int($0)]) }
            outputs.append(
                #"{"name":"predictions","shape":[\#(n)],"datatype":"BYTES","data":[\#(labels.joined(separator: ","))]}"#
            )
            outputs.append(
                #"{"name":"probabilities","shape":[\#(n),\#(classes.count)],"datatype":"FP64","data":[\#(predictions.values.map(number).joined(separator: ","))]}"#
            )
        case .regression:
            outputs.append(
                #"{"name":"predictions","shape":[\#(n)],"datatype":"FP64","data":[\#(predictions.values.map(number).joined(separator: ","))]}"#
            )
        }
        let idPart = id.map { #","id":\#(jsonString($0))"# } ?? ""
        return
            #"{"model_name":\#(jsonString(name)),"model_version":\#(jsonString(model.version))\#(idPart),"outputs":[\#(outputs.joined(separator: ","))]}"#
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

    /// Rows from `dataframe_split`, `dataframe_records` or `instances`.
    static func rowsFromInvocations(_ body: JSONValue, signature: ModelSignature) throws -> [[String: RawValue]] {
        guard let object = body.object else { throw RequestError.badRequest("the body must be a JSON object") }
        let builder = RowBuilder(signature: signature)
        var rows: [[String: RawValue]] = []
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
                var row: [String: RawValue] = [:]
                for (column, value) in zip(columns, values) {
                    row[column] = try builder.value(value, column: column, row: r)
                }
                rows.append(row)
            }
        } else if let records = object["dataframe_records"] ?? object["instances"] {
            guard let list = records.array else {
                throw RequestError.badRequest("dataframe_records and instances must be lists of objects")
            }
            for (r, record) in list.enumerated() {
                guard let fields = record.object else {
                    throw RequestError.badRequest("record \(r + 1) must be an object of column: value")
                }
                var row: [String: RawValue] = [:]
                for (column, value) in fields { row[column] = try builder.value(value, column: column, row: r) }
                rows.append(row)
            }
        } else {
            throw RequestError.badRequest(
                "the body needs one of 'dataframe_split', 'dataframe_records' or 'instances'")
        }
        try builder.requireColumns(rows)
        return rows
    }

    /// `{"predictions": [...]}`: class labels for classifiers, numbers for regressors.
    static func invocationsResponse(_ predictions: Predictions, model: ServedModel) -> String {
        let values: [String]
        switch model.bundle.model.task {
        case .classification(let classes):
            values = predictions.predictedClasses.map { jsonString(classes[Int($0)]) }
        case .regression: values = predictions.values.map(number)
        }
        return #"{"predictions":[\#(values.joined(separator: ","))],"model_version":\#(jsonString(model.version))}"#
    }

    // MARK: JSON text

    static func number(_ x: Double) -> String { x.isFinite ? "\(x)" : "null" }

    static func jsonString(_ text: String) -> String {
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
