import Foundation
import Histogram
import Logging
import SluiceML

/// Measures a bundle: size, load time, memory, latency percentiles in process and over HTTP, batch throughput.
public enum ModelProfiler {
    /// Profiles the bundle serialized in `data`.
    public static func profile(
        bundle data: Data, model: String, version: String, samples: Int = 2_000, http: Bool = true
    ) async throws -> ModelProfile {
        var loads: [Double] = []
        let before = residentBytes()
        var bundle = try ModelBundle.load(data)
        let after = residentBytes()
        for _ in 0..<5 {
            let start = ContinuousClock.now
            bundle = try ModelBundle.load(data)
            loads.append((ContinuousClock.now - start) / .milliseconds(1))
        }
        let row = bundle.transforms.typicalRow()
        for _ in 0..<100 { _ = try bundle.predict(rows: [row]) }  // warm up
        var local = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
        for _ in 0..<samples {
            let start = ContinuousClock.now
            _ = try bundle.predict(rows: [row])
            local.record(UInt64(max(1, (ContinuousClock.now - start) / .nanoseconds(1))))
        }
        var throughput: [String: Double] = [:]
        for size in [1, 32, 1024] {
            let rows = Array(repeating: row, count: size)
            var predicted = 0
            let start = ContinuousClock.now
            while ContinuousClock.now - start < .milliseconds(300) {
                _ = try bundle.predict(rows: rows)
                predicted += size
            }
            throughput[String(size)] = Double(predicted) / ((ContinuousClock.now - start) / .seconds(1))
        }
        var overHTTP: LatencySummary?
        if http {
            overHTTP = try await httpLatency(
                bundle: bundle, model: model, version: version, row: row, samples: samples / 4)
        }
        return ModelProfile(
            model: model, version: version, bundleBytes: data.count, loadMilliseconds: loads.sorted()[2],
            residentBytes: max(0, after - before), inProcess: summary(local), http: overHTTP,
            rowsPerSecond: throughput, cores: ProcessInfo.processInfo.activeProcessorCount, measuredAt: Date())
    }

    static func summary(_ histogram: Histogram<UInt64>) -> LatencySummary {
        func micros(_ p: Double) -> Double { Double(histogram.valueAtPercentile(p)) / 1_000 }
        return LatencySummary(
            samples: Int(histogram.totalCount), p50: micros(50), p90: micros(90), p99: micros(99), p999: micros(99.9))
    }

    static func httpLatency(bundle: ModelBundle, model: String, version: String, row: [String: RawValue], samples: Int)
        async throws -> LatencySummary
    {
        let server = ModelServer(
            name: model, source: FixedModelSource(bundle: bundle, version: version),
            configuration: {
                var configuration = ServerConfiguration(host: "127.0.0.1", port: 0)
                configuration.accessLog = nil
                return configuration
            }(),
            logger: {
                var logger = Logger(label: "sluice.profile")
                logger.logLevel = .critical
                return logger
            }())
        try await server.loadCurrent()
        let port = PortBox()
        let task = Task { try await server.application { port.set($0) }.runService() }
        defer { task.cancel() }
        while port.value == nil { try await Task.sleep(for: .milliseconds(10)) }
        let body = inferBody(row, signature: bundle.signature)
        var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
        for k in 0..<(samples + 50) {
            let start = ContinuousClock.now
            let status = try LoopbackClient.request(
                port: port.value!, method: "POST", path: "/v2/models/\(model)/infer", body: body
            ).status
            guard status == 200 else {
                throw RequestError(status: status, message: "the profiling request was refused (\(status))")
            }
            if k >= 50 { histogram.record(UInt64(max(1, (ContinuousClock.now - start) / .nanoseconds(1)))) }
        }
        return summary(histogram)
    }

    static func inferBody(_ row: [String: RawValue], signature: ModelSignature) -> String {
        let inputs = signature.inputs.map { input -> String in
            let value: String
            switch row[input.name] ?? .missing {
            case .text(let text): value = Protocols.jsonString(text)
            case .number(let x): value = input.type == .float ? "\(x)" : "\(Int64(x.rounded()))"
            case .missing: value = "null"
            }
            return
                #"{"name":\#(Protocols.jsonString(input.name)),"shape":[1],"datatype":"\#(Protocols.datatype(input.type))","data":[\#(value)]}"#
        }
        return #"{"inputs":[\#(inputs.joined(separator: ","))]}"#
    }

    /// Resident memory of this process, in bytes.
    static func residentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}

private final class PortBox: @unchecked Sendable {
    private let lock = NSLock()
    private var port: Int?
    var value: Int? { lock.withLock { port } }
    func set(_ value: Int) { lock.withLock { port = value } }
}
