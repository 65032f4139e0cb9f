import Foundation

/// A run's step parameters as flat `step.parameter` → value pairs, and conditions on them: what `runs list
/// --param`, `runs compare` and the dashboard's run filter and comparison share.
public enum RunParameters {
    /// Every step parameter of a run, flattened: `train.rounds` → `50` (keys in snake_case).
    package static func values(of run: RunID, in store: any MetadataStore) async throws -> [String: String] {
        values(of: try await store.stepRuns(ofRun: run))
    }

    /// The flattened parameters of these step runs.
    package static func values(of stepRuns: [StepRun]) -> [String: String] {
        var values: [String: String] = [:]
        for stepRun in stepRuns {
            guard let object = try? JSONSerialization.jsonObject(with: Data(stepRun.parameters.utf8)) else { continue }
            flatten(object, prefix: stepRun.stepName, into: &values)
        }
        return values
    }

    /// One step's parameters (its canonical JSON), flattened under the step's name: what a pipeline run's tracked
    /// params are.
    public static func values(ofStep step: String, parameters: String) -> [String: String] {
        var values: [String: String] = [:]
        // A step without parameters (most of them) costs no parse: this is on every step run's write.
        guard parameters != "{}",
            let object = try? JSONSerialization.jsonObject(with: Data(parameters.utf8))
        else { return values }
        flatten(object, prefix: step, into: &values)
        return values
    }

    /// The last value of every metric of a run's steps, as `step.metric` (a cached step's are its original's).
    package static func metrics(of run: RunID, in store: any MetadataStore) async throws -> [String: Double] {
        var metrics: [String: Double] = [:]
        for stepRun in try await store.stepRuns(ofRun: run) {
            for metric in try await store.metrics(ofStepRun: stepRun.cachedFrom ?? stepRun.id) {
                metrics["\(stepRun.stepName).\(metric.name)"] = metric.value  // the last of a series
            }
        }
        return metrics
    }

    private static func flatten(_ value: Any, prefix: String, into values: inout [String: String]) {
        if let object = value as? [String: Any] {
            for (key, child) in object { flatten(child, prefix: "\(prefix).\(snakeCase(key))", into: &values) }
        } else if let number = value as? NSNumber {
            let type = String(cString: number.objCType)
            values[prefix] = type == "c" ? (number.boolValue ? "true" : "false") : "\(number)"
        } else if let text = value as? String {
            values[prefix] = text
        } else if let data = try? JSONSerialization.data(
            withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed])
        {
            values[prefix] = String(decoding: data, as: UTF8.self)
        }
    }

    /// `trainingRounds` → `training_rounds`.
    package static func snakeCase(_ key: String) -> String {
        var out = ""
        for character in key {
            if character.isUppercase {
                out += "_" + character.lowercased()
            } else {
                out.append(character)
            }
        }
        return out
    }

    /// `step.parameter=value`: a run matches when that parameter has that value (numbers compared as numbers).
    package struct Condition: Sendable, Equatable {
        package var key: String
        package var value: String

        /// Reads `STEP.PARAMETER=VALUE`; nil when the text is not of that form.
        package init?(_ text: String) {
            guard let equals = text.firstIndex(of: "="), text[..<equals].contains(".") else { return nil }
            key = RunParameters.snakeCase(String(text[..<equals]))
            value = String(text[text.index(after: equals)...])
        }

        /// Whether flattened parameter values satisfy the condition.
        package func matches(_ values: [String: String]) -> Bool {
            guard let actual = values[key] else { return false }
            if let a = Double(actual), let b = Double(value) { return a == b }
            return actual == value
        }
    }
}
