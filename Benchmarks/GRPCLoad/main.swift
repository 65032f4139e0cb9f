// A gRPC load generator for `sluice serve --grpc-port`: N concurrent streams of unary ModelInfer calls (one
// single-row penguins request each, as serve_load.sh's HTTP cases send), spread over C HTTP/2 connections, for a
// fixed time after a warm-up. Prints one tab-separated line: requests, requests/s, p50 ms, p99 ms, errors.
//
// With --dump-body FILE it only writes the request as a gRPC message on the wire (prefix and protobuf bytes) and
// exits: serve_load.sh has h2load send that file, which costs the shared cores far less than this client.
//
// With --serve-bundle FILE it is the benchmark's peer server instead: the bundle (`sluice models export`) served
// under --model on an HTTP port (for /metrics) and the same V2 gRPC methods on grpc-swift 2's GRPCServer, printing
// the lines `sluice serve` prints, until SIGTERM.
//
// Usage: GRPCLoad --port P [--host 127.0.0.1] [--model penguins] [--streams 16] [--connections 2]
//                 [--seconds 10] [--warmup 2] [--form raw|typed]
//        GRPCLoad --dump-body FILE [--model penguins] [--form raw|typed]
//        GRPCLoad --serve-bundle FILE [--model penguins] [--port 0] [--grpc-port 0]
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import SluiceGRPCSwiftPeer
import SluiceML
import SluiceServer
import SluiceServerGRPC
import Synchronization

struct Options {
    var host = "127.0.0.1"
    var port = 8081
    var model = "penguins"
    var streams = 16
    var connections = 2
    var seconds = 10.0
    var warmup = 2.0
    var raw = true
    var dumpBody: String?
    var serveBundle: String?
    var grpcPort = 0

    init(_ arguments: [String]) throws {
        var rest = arguments[...]
        while let flag = rest.popFirst() {
            guard let value = rest.popFirst() else { throw UsageError("\(flag) needs a value") }
            switch flag {
            case "--host": host = value
            case "--port": port = try Self.number(flag, value)
            case "--model": model = value
            case "--streams": streams = try Self.number(flag, value)
            case "--connections": connections = try Self.number(flag, value)
            case "--seconds": seconds = Double(try Self.number(flag, value))
            case "--warmup": warmup = Double(try Self.number(flag, value))
            case "--dump-body": dumpBody = value
            case "--serve-bundle": serveBundle = value
            case "--grpc-port": grpcPort = try Self.number(flag, value)
            case "--form":
                guard value == "raw" || value == "typed" else { throw UsageError("--form is raw or typed") }
                raw = value == "raw"
            default: throw UsageError("unknown option \(flag)")
            }
        }
    }

    static func number(_ flag: String, _ value: String) throws -> Int {
        guard let n = Int(value), n >= 0 else { throw UsageError("\(flag) needs a whole number, not '\(value)'") }
        return n
    }
}

struct UsageError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The single-row request: a penguin's measurements, raw bytes or typed contents.
func request(model: String, raw: Bool) -> Inference_ModelInferRequest {
    var message = Inference_ModelInferRequest()
    message.modelName = model
    func tensor(_ name: String, _ datatype: String) -> Inference_ModelInferRequest.InferInputTensor {
        var tensor = Inference_ModelInferRequest.InferInputTensor()
        tensor.name = name
        tensor.datatype = datatype
        tensor.shape = [1]
        return tensor
    }
    let texts: [(String, String)] = [("island", "Biscoe"), ("sex", "male")]
    let doubles: [(String, Double)] = [("bill_length_mm", 47.5), ("bill_depth_mm", 14.2)]
    let integers: [(String, Int64)] = [("flipper_length_mm", 220), ("body_mass_g", 5200), ("year", 2008)]
    for (name, value) in texts {
        var input = tensor(name, "BYTES")
        if raw {
            var bytes = Data()
            withUnsafeBytes(of: UInt32(value.utf8.count).littleEndian) { bytes.append(contentsOf: $0) }
            bytes.append(contentsOf: value.utf8)
            message.rawInputContents.append(bytes)
        } else {
            input.contents.bytesContents = [Data(value.utf8)]
        }
        message.inputs.append(input)
    }
    for (name, value) in doubles {
        var input = tensor(name, "FP64")
        if raw {
            message.rawInputContents.append(withUnsafeBytes(of: value.bitPattern.littleEndian) { Data($0) })
        } else {
            input.contents.fp64Contents = [value]
        }
        message.inputs.append(input)
    }
    for (name, value) in integers {
        var input = tensor(name, "INT64")
        if raw {
            message.rawInputContents.append(withUnsafeBytes(of: value.littleEndian) { Data($0) })
        } else {
            input.contents.int64Contents = [value]
        }
        message.inputs.append(input)
    }
    return message
}

/// Latencies in microseconds and the error count, shared by the streams.
final class Tally: Sendable {
    private let state = Mutex<(latencies: [Int], errors: Int)>(([], 0))

    func add(_ latencies: [Int], errors: Int) {
        state.withLock {
            $0.latencies.append(contentsOf: latencies)
            $0.errors += errors
        }
    }

    var snapshot: (latencies: [Int], errors: Int) { state.withLock { $0 } }
}

func percentile(_ sorted: [Int], _ p: Double) -> Double {
    guard !sorted.isEmpty else { return 0 }
    return Double(sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]) / 1000
}

let options: Options
do {
    options = try Options(Array(CommandLine.arguments.dropFirst()))
} catch {
    FileHandle.standardError.write(Data("GRPCLoad: \(error)\n".utf8))
    exit(2)
}
let message = request(model: options.model, raw: options.raw)
if let path = options.dumpBody {
    // The request as a gRPC message on the wire (uncompressed flag, 4-byte big-endian length, the protobuf bytes),
    // for HTTP/2 load generators such as h2load that send a fixed body.
    let bytes: [UInt8] = try message.serializedBytes()
    var body = Data([0])
    withUnsafeBytes(of: UInt32(bytes.count).bigEndian) { body.append(contentsOf: $0) }
    body.append(contentsOf: bytes)
    try body.write(to: URL(fileURLWithPath: path))
    exit(0)
}
if let path = options.serveBundle {
    let bundle = try ModelBundle.load(try Data(contentsOf: URL(fileURLWithPath: path)))
    var configuration = ServerConfiguration(host: options.host, port: options.port)
    configuration.accessLog = nil
    let server = ModelServer(
        models: [(options.model, FixedModelSource(bundle: bundle, version: "\(options.model)@1"))],
        configuration: configuration)
    let host = options.host
    let peer = GRPCSwiftInferenceServer(server: server, host: host, port: options.grpcPort) { bound in
        FileHandle.standardError.write(Data("gRPC (grpc-swift 2's GRPCServer) on \(host):\(bound)\n".utf8))
    }
    try await server.run(alongside: [peer]) { port in
        FileHandle.standardError.write(Data("serving \(options.model) on http://\(host):\(port)\n".utf8))
    }
    exit(0)
}
let tally = Tally()
let clients = try (0..<max(1, options.connections)).map { _ in
    GRPCClient(
        transport: try .http2NIOPosix(
            target: .ipv4(host: options.host, port: options.port), transportSecurity: .plaintext))
}
try await withThrowingTaskGroup { group in
    for client in clients { group.addTask { try await client.runConnections() } }
    let clock = ContinuousClock()
    let measureFrom = clock.now + .milliseconds(Int(options.warmup * 1000))
    let end = measureFrom + .milliseconds(Int(options.seconds * 1000))
    try await withThrowingTaskGroup { streams in
        for stream in 0..<options.streams {
            let inference = Inference_GRPCInferenceService.Client(wrapping: clients[stream % clients.count])
            streams.addTask {
                var latencies: [Int] = []
                latencies.reserveCapacity(Int(options.seconds) * 4_000)
                var errors = 0
                while true {
                    let start = clock.now
                    guard start < end else { break }
                    do {
                        let response = try await inference.modelInfer(message)
                        if response.outputs.isEmpty { errors += 1 }
                    } catch {
                        errors += 1
                        if errors == 1 { FileHandle.standardError.write(Data("GRPCLoad: \(error)\n".utf8)) }
                    }
                    if start >= measureFrom {
                        latencies.append(Int((clock.now - start) / .microseconds(1)))
                    }
                }
                tally.add(latencies, errors: errors)
            }
        }
        try await streams.waitForAll()
    }
    for client in clients { client.beginGracefulShutdown() }
    try await group.waitForAll()
}
let (latencies, errors) = tally.snapshot
let sorted = latencies.sorted()
print(
    "\(sorted.count)\t\(Int(Double(sorted.count) / options.seconds))\t\(percentile(sorted, 0.5))\t"
        + "\(percentile(sorted, 0.99))\t\(errors)")
