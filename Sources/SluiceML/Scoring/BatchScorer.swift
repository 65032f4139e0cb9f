import Foundation
import SluiceData

/// Scores tables with a model bundle, through the bundle's own transforms: each input table (a CSV window, an
/// Arrow record batch) becomes an output table of the kept input columns, `prediction` (in the label's type:
/// text, integer or boolean classes, or a number for a regressor), one `probability_CLASS` per class for a
/// classifier, and `model_version`. Stateless and `Sendable`, so many threads score windows at once.
public struct BatchScorer: Sendable {
    /// The model.
    public let bundle: ModelBundle
    /// The version label written in every row's `model_version` (`churn@3`).
    public let version: String
    /// Input columns copied to the output, in order.
    public let keep: [String]
    /// Output column names, in order.
    public let outputNames: [String]

    /// A scorer of `bundle` as `version`, keeping the input columns `keep`.
    /// - Throws: ``ScoringError`` when a kept column would clash with an output column.
    public init(bundle: ModelBundle, version: String, keep: [String] = []) throws {
        self.bundle = bundle
        self.version = version
        self.keep = keep
        var names = keep
        names.append("prediction")
        if case .classification(let classes) = bundle.model.task {
            names += classes.map { "probability_\($0)" }
        }
        names.append("model_version")
        if let clash = keep.first(where: { names.dropFirst(keep.count).contains($0) }) {
            throw ScoringError(
                problem: "the kept column '\(clash)' has the name of an output column",
                fix: "keep other columns, or rename '\(clash)' in the input.")
        }
        outputNames = names
    }

    /// The types to read the model's input columns as (the signature's); kept columns that are not inputs are
    /// read as text, so every window of a file has the same output columns.
    public var readingSchema: [String: ColumnType] {
        var schema: [String: ColumnType] = [:]
        for name in keep { schema[name] = .string }
        for input in bundle.signature.inputs { schema[input.name] = input.type }
        return schema
    }

    /// Output column types when kept columns are read with ``readingSchema``.
    public var outputTypes: [ColumnType] {
        var types = keep.map { readingSchema[$0] ?? .string }
        switch bundle.model.task {
        case .classification(let classes):
            types.append(bundle.signature.labelKind.columnType)
            types += classes.map { _ in .float }
        case .regression: types.append(.float)
        }
        types.append(.string)
        return types
    }

    /// Checks that `columns` (of the input `source`) hold every column the model reads and every kept one.
    /// - Throws: ``ScoringError`` naming the missing columns and what the model reads.
    public func check(columns: [String], source: String) throws {
        let missing = bundle.signature.inputs.map(\.name).filter { !columns.contains($0) }
        if !missing.isEmpty {
            throw ScoringError(
                problem:
                    "\(source) has no column \(missing.map { "'\($0)'" }.joined(separator: ", ")); the model reads "
                    + bundle.signature.inputs.map(\.name).joined(separator: ", "),
                fix: "score data with the columns the model was trained on.")
        }
        let missingKept = keep.filter { !columns.contains($0) }
        if !missingKept.isEmpty {
            throw ScoringError(
                problem: "\(source) has no column \(missingKept.map { "'\($0)'" }.joined(separator: ", ")) to keep",
                fix: "keep columns the input has: \(columns.joined(separator: ", ")).")
        }
    }

    /// The scored rows of `table`.
    /// - Throws: when the transforms cannot read the table.
    public func score(_ table: Table) throws -> Table {
        let predictions = try bundle.predict(table)
        let rows = table.rowCount
        var columns: [Column] = keep.map { table[$0]! }
        let present = [Bool](repeating: true, count: rows)
        switch bundle.model.task {
        case .classification(let classes):
            let predicted = predictions.predictedClasses
            let storage: Column.Storage
            switch bundle.signature.labelKind {
            case .integer(let labels): storage = .integer(predicted.map { labels[Int($0)] }, valid: present)
            case .boolean(let labels): storage = .boolean(predicted.map { labels[Int($0)] }, valid: present)
            case .text: storage = .string(codes: predicted, dictionary: classes)
            }
            columns.append(Column(name: "prediction", storage: storage))
            for (c, name) in classes.enumerated() {
                let values = (0..<rows).map { predictions.values[$0 * classes.count + c] }
                columns.append(Column(name: "probability_\(name)", storage: .float(values, valid: present)))
            }
        case .regression:
            columns.append(Column(name: "prediction", storage: .float(predictions.values, valid: present)))
        }
        columns.append(
            Column(
                name: "model_version",
                storage: .string(codes: [Int32](repeating: 0, count: rows), dictionary: [version])))
        return Table(columns: columns)
    }
}

/// Input a batch scoring job cannot use: a column the model reads is missing, or a kept column clashes.
public struct ScoringError: Error, Sendable, Equatable, CustomStringConvertible, SluiceError {
    /// What is wrong.
    public var problem: String
    /// What to do.
    public var fix: String
    public var exitStatus: ExitStatus { .unusableInput }
}
