import Foundation

/// Latency percentiles of single-row predictions, in microseconds (recorded in an HdrHistogram).
public struct LatencySummary: Codable, Sendable, Equatable {
    /// Requests measured.
    public var samples: Int
    /// Percentiles 50, 90, 99 and 99.9.
    public var p50: Double
    public var p90: Double
    public var p99: Double
    public var p999: Double

    /// Creates a summary.
    public init(samples: Int, p50: Double, p90: Double, p99: Double, p999: Double) {
        self.samples = samples
        self.p50 = p50
        self.p90 = p90
        self.p99 = p99
        self.p999 = p999
    }
}

/// A model's size, load time, memory and speed, measured on this machine.
public struct ModelProfile: Codable, Sendable, Equatable {
    /// The model profiled.
    public var model: String
    /// Its version, `MODEL@N`.
    public var version: String
    /// The bundle's size in bytes.
    public var bundleBytes: Int
    /// Median time to load (decode) the bundle, in milliseconds.
    public var loadMilliseconds: Double
    /// Resident memory the loaded bundle added, in bytes.
    public var residentBytes: Int
    /// Single-row latency in the process (transforms and model).
    public var inProcess: LatencySummary
    /// Single-row latency over HTTP on loopback (a new connection per request, KServe V2 infer).
    public var http: LatencySummary?
    /// Rows predicted per second for batches of 1, 32 and 1024 rows.
    public var rowsPerSecond: [String: Double]
    /// Cores of the machine that measured it.
    public var cores: Int
    /// When.
    public var measuredAt: Date

    /// Creates a profile.
    public init(
        model: String, version: String, bundleBytes: Int, loadMilliseconds: Double, residentBytes: Int,
        inProcess: LatencySummary, http: LatencySummary?, rowsPerSecond: [String: Double], cores: Int,
        measuredAt: Date
    ) {
        self.model = model
        self.version = version
        self.bundleBytes = bundleBytes
        self.loadMilliseconds = loadMilliseconds
        self.residentBytes = residentBytes
        self.inProcess = inProcess
        self.http = http
        self.rowsPerSecond = rowsPerSecond
        self.cores = cores
        self.measuredAt = measuredAt
    }
}

extension ModelProfile {
    /// The profile as stored with a model version: sorted, indented JSON with ISO 8601 dates.
    public func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        encoder.dateEncodingStrategy = .iso8601
        return try encoder.encode(self)
    }

    /// Reads a profile stored by ``json()``.
    public init(json: Data) throws {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        self = try decoder.decode(ModelProfile.self, from: json)
    }
}

extension ModelProfile {
    /// The profile as `sluice profile` and `sluice models show` print it.
    public var summary: String {
        let p = self
        func latency(_ l: LatencySummary) -> String {
            String(
                format: "p50 %.1f µs, p90 %.1f µs, p99 %.1f µs, p99.9 %.1f µs (%d requests)", l.p50, l.p90, l.p99,
                l.p999, l.samples)
        }
        var lines = [
            "Profile of \(p.version) on \(p.cores) cores, \(p.measuredAt.formatted(.iso8601))",
            String(
                format: "  bundle %.1f KB, loads in %.2f ms, %.1f MB resident after load",
                Double(p.bundleBytes) / 1_000, p.loadMilliseconds, Double(p.residentBytes) / 1_000_000),
            "  single row in process: " + latency(p.inProcess),
        ]
        if let http = p.http { lines.append("  single row over HTTP:   " + latency(http)) }
        lines.append(
            "  throughput: "
                + ["1", "32", "1024"].compactMap { size in
                    p.rowsPerSecond[size].map { "batch \(size) → " + String(format: "%.0f rows/s", $0) }
                }.joined(separator: ", "))
        return lines.joined(separator: "\n")
    }
}
