import Foundation

/// The limits and name rules a tracking call is checked against before anything is written, the same as MLflow's
/// server, so a call refused there is refused here with the same error code.
public enum TrackingValidation {
    /// At most this many metrics in one batch.
    public static let maxMetricsPerBatch = 1000
    /// At most this many params and tags together in one batch.
    public static let maxParamsAndTagsPerBatch = 100
    /// At most this many entries of any kind in one batch.
    public static let maxEntitiesPerBatch = 1000
    /// The longest key.
    public static let maxKeyLength = 250
    /// The longest param value.
    public static let maxParamValueLength = 6000
    /// The longest tag value.
    public static let maxTagValueLength = 8000
    /// The most runs one search page returns.
    public static let maxSearchResults = 50000

    /// Checks a batch's sizes, keys and values.
    /// - Throws: ``TrackingError`` `invalidParameterValue` naming the first problem.
    public static func batch(_ batch: RunLogBatch) throws {
        if batch.metrics.count > maxMetricsPerBatch {
            throw TrackingError(
                .invalidParameterValue,
                "A batch logging request can contain at most \(maxMetricsPerBatch) metrics. Got \(batch.metrics.count) metrics. Please split up metrics across multiple requests and try again.",
                hint: "send at most \(maxMetricsPerBatch) metrics per batch.")
        }
        if batch.params.count + batch.tags.count > maxParamsAndTagsPerBatch {
            throw TrackingError(
                .invalidParameterValue,
                "A batch logging request can contain at most \(maxParamsAndTagsPerBatch) params and tags. Got \(batch.params.count + batch.tags.count) params and tags. Please split up params and tags across multiple requests and try again."
            )
        }
        let total = batch.metrics.count + batch.params.count + batch.tags.count
        if total > maxEntitiesPerBatch {
            throw TrackingError(
                .invalidParameterValue,
                "A batch logging request can contain at most \(maxEntitiesPerBatch) metrics, params, and tags in total. Got \(total) total entities."
            )
        }
        for metric in batch.metrics { try name(metric.key, kind: "metric") }
        var seen: [String: String] = [:]
        for param in batch.params {
            try name(param.key, kind: "param")
            if param.value.count > maxParamValueLength {
                throw TrackingError(
                    .invalidParameterValue,
                    "Param value '\(param.value.prefix(100))...' had length \(param.value.count), which exceeded length limit of \(maxParamValueLength)"
                )
            }
            if let earlier = seen[param.key], earlier != param.value {
                throw TrackingError(
                    .invalidParameterValue,
                    "Duplicate parameter keys have been submitted: [\(param.key)]. Please ensure the request contains only one param value per param key."
                )
            }
            seen[param.key] = param.value
        }
        for t in batch.tags { try tag(t) }
    }

    /// Checks one tag's key and value.
    public static func tag(_ tag: KeyValue) throws {
        try name(tag.key, kind: "tag")
        if tag.value.count > maxTagValueLength {
            throw TrackingError(
                .invalidParameterValue,
                "Tag value '\(tag.value.prefix(100))...' had length \(tag.value.count), which exceeded length limit of \(maxTagValueLength)"
            )
        }
    }

    /// Checks a metric, param or tag key: letters, digits, `_ - . / :` and spaces, a normal path (no `//`, `.` or
    /// `..` parts, no leading or trailing `/`), at most ``maxKeyLength`` characters.
    public static func name(_ key: String, kind: String) throws {
        let allowed = key.unicodeScalars.allSatisfy {
            CharacterSet.alphanumerics.contains($0) || "_-. /:".unicodeScalars.contains($0)
        }
        // As a path it must be normal already: no empty, `.` or `..` parts, no leading or trailing slash.
        let pathParts = key.split(separator: "/", omittingEmptySubsequences: false)
        let normal = !pathParts.contains { $0.isEmpty || $0 == "." || $0 == ".." }
        guard !key.isEmpty, allowed, normal else {
            throw TrackingError(
                .invalidParameterValue,
                "Invalid \(kind) name: '\(key)'. Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), colon(:) and slashes (/).",
                hint: "rename the \(kind): letters, digits, _ - . / : and spaces only.")
        }
        if key.count > maxKeyLength {
            throw TrackingError(
                .invalidParameterValue,
                "\(kind.prefix(1).uppercased() + kind.dropFirst()) name '\(key.prefix(50))...' had length \(key.count), which exceeded length limit of \(maxKeyLength)"
            )
        }
    }

    /// Checks an experiment name.
    public static func experimentName(_ name: String) throws {
        guard !name.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw TrackingError(
                .invalidParameterValue, "Invalid experiment name: '\(name)'",
                hint: "give the experiment a name.")
        }
    }

    /// Checks a search's page size.
    public static func search(_ search: RunSearch) throws {
        guard search.maxResults > 0, search.maxResults <= maxSearchResults else {
            throw TrackingError(
                .invalidParameterValue,
                "Invalid value \(search.maxResults) for parameter 'max_results' supplied. It must be a positive integer at most \(maxSearchResults)."
            )
        }
    }

    /// A metric value as stored: infinities become the largest finite doubles (as MLflow stores them, so every
    /// reader gets a number); NaN stays NaN.
    public static func stored(_ value: Double) -> Double {
        value.isInfinite ? (value > 0 ? .greatestFiniteMagnitude : -.greatestFiniteMagnitude) : value
    }

    /// The error for logging a param again with another value.
    public static func changedParam(_ param: KeyValue, old: String, run: RunID) -> TrackingError {
        TrackingError(
            .invalidParameterValue,
            "Changing param values is not allowed. Param with key='\(param.key)' was already logged with value='\(old)' for run ID='\(run)'. Attempted logging new value '\(param.value)'.",
            hint: "log the new value under another key, or start a new run.")
    }
}

/// Names for runs nobody named: `adjective-animal-number`, as MLflow gives them.
public enum RunNames {
    static let adjectives = [
        "amber", "bold", "brave", "bright", "calm", "clever", "crisp", "eager", "fleet", "gentle", "glad", "keen",
        "lively", "lucid", "merry", "nimble", "proud", "quiet", "rapid", "silent", "steady", "sunny", "swift", "vivid",
        "wise", "witty",
    ]
    static let animals = [
        "badger", "bison", "crane", "dove", "eagle", "ferret", "finch", "fox", "gecko", "heron", "ibis", "jay",
        "koala", "lark", "lynx", "marten", "newt", "otter", "owl", "panda", "quail", "raven", "seal", "stoat", "swan",
        "trout", "wren", "yak",
    ]

    /// A fresh name like `brave-otter-417`.
    public static func generate() -> String {
        "\(adjectives.randomElement()!)-\(animals.randomElement()!)-\(Int.random(in: 100...999))"
    }
}

extension ProcessOwner {
    /// The owner of a run recorded over HTTP: no process Sluice can watch, so it is never judged crashed.
    public static let remote = ProcessOwner(host: "", bootID: "", pid: 0, startTicks: 0)
}

extension DatasetInput {
    /// The `mlflow.data.context` tag (`training`, `evaluation`), which searches filter on as `datasets.context`.
    public var context: String? { tags.last(where: { $0.key == "mlflow.data.context" })?.value }
}
