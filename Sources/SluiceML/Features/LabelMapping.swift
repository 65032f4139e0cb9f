import SluiceData

/// The classes of a classification label, in a fixed order: numbers in numeric order when every value is a
/// number (so `0` and `1` stay classes 0 and 1), otherwise text in lexicographic order. For binary labels the
/// second class is the positive one.
public struct LabelMapping: Codable, Sendable, Equatable {
    /// Class names by index.
    public var classes: [String]

    /// Creates a mapping from class names in index order.
    public init(classes: [String]) { self.classes = classes }

    /// Learns the classes present in a label column.
    /// - Throws: ``TrainingError`` when the column has fewer than two classes.
    public init(fitting column: Column) throws {
        var seen = Set<String>()
        for row in 0..<column.count {
            if let token = Self.token(column, row) { seen.insert(token) }
        }
        guard seen.count >= 2 else {
            throw TrainingError(
                problem:
                    "label column '\(column.name)' has \(seen.count) distinct value(s); classification needs two or more",
                fix: "check the label column (or use a regression learner).")
        }
        let numbers = seen.compactMap(Double.init)
        classes =
            numbers.count == seen.count
            ? seen.sorted { Double($0)! < Double($1)! } : seen.sorted()
    }

    /// The class index of every row.
    /// - Throws: ``TrainingError`` for a missing label or a class not in the mapping.
    public func encode(_ column: Column) throws -> [Int32] {
        let index = Dictionary(uniqueKeysWithValues: classes.enumerated().map { ($0.element, Int32($0.offset)) })
        return try (0..<column.count).map { row in
            guard let token = Self.token(column, row) else {
                throw TrainingError(
                    problem: "row \(row + 1) has no value in label column '\(column.name)'",
                    fix: "drop rows without a label before training or evaluating.")
            }
            guard let k = index[token] else {
                throw TrainingError(
                    problem: "row \(row + 1) has label '\(token)', which is not one of \(classes)",
                    fix: "evaluate on data with the training classes, or retrain.")
            }
            return k
        }
    }

    /// The value of a label cell as a class name (`1.0` and `1` are the same class).
    static func token(_ column: Column, _ row: Int) -> String? {
        if column.type == .string || column.type == .boolean { return column.string(row) }
        guard let x = column.double(row) else { return nil }
        return FittedStep.token(.number(x))
    }

    /// Targets of a regression label column.
    /// - Throws: ``TrainingError`` for a non-numeric column or a missing value.
    public static func targets(_ column: Column) throws -> [Double] {
        guard column.type.isNumeric || column.type == .boolean else {
            throw TrainingError(
                problem: "label column '\(column.name)' is \(column.type); regression needs numbers",
                fix: "use a numeric label, or a classifier.")
        }
        return try (0..<column.count).map { row in
            guard let x = column.double(row) else {
                throw TrainingError(
                    problem: "row \(row + 1) has no value in label column '\(column.name)'",
                    fix: "drop rows without a label before training or evaluating.")
            }
            return x
        }
    }
}
