import Foundation

/// The JSON form of records for scripts (`--json`, the dashboard's API): sorted keys, timestamps as ISO 8601 with
/// milliseconds (runs and steps that start within the same second still order), non-finite numbers as strings.
package enum RecordJSON {
    /// `2026-12-03T16:45:00.002Z`: UTC, milliseconds.
    package static let dateFormat = Date.ISO8601FormatStyle(includingFractionalSeconds: true)

    /// An encoder with those settings; `pretty` indents.
    package static func encoder(pretty: Bool = false) -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting =
            pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(date.formatted(Self.dateFormat))
        }
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "+Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return encoder
    }
}
