import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import HummingbirdTesting
import NIOCore
import SluiceComponents
import SluiceData
import SluiceGRPCSwiftPeer
import SwiftProtobuf
import Synchronization
import Testing

@testable import SluiceML
@testable import SluiceServer
@testable import SluiceServerGRPC

/// Runs `server`'s gRPC front end on a free loopback port and calls `body` with a client connected to it; both
/// are shut down afterwards.
func withGRPC<T: Sendable>(
    _ server: ModelServer, maxMessageBytes: Int = 4 << 20,
    _ body:
        @Sendable (
            Inference_GRPCInferenceService.Client<HTTP2ClientTransport.Posix>, GRPCClient<HTTP2ClientTransport.Posix>
        )
        async throws -> T
) async throws -> T {
    let (ports, portSink) = AsyncStream.makeStream(of: Int.self)
    let front = GRPCInferenceServer(server: server, port: 0, maxMessageBytes: maxMessageBytes) { port in
        portSink.yield(port)
    }
    return try await withThrowingTaskGroup { group in
        group.addTask {
            try await front.run()
            return nil as T?
        }
        var iterator = ports.makeAsyncIterator()
        let port = try #require(await iterator.next())
        let client = GRPCClient(
            transport: try .http2NIOPosix(target: .ipv4(host: "127.0.0.1", port: port), transportSecurity: .plaintext))
        group.addTask {
            try await client.runConnections()
            return nil as T?
        }
        defer {
            client.beginGracefulShutdown()
            group.cancelAll()
        }
        return try await body(Inference_GRPCInferenceService.Client(wrapping: client), client)
    }
}

/// The gentoo rows of the HTTP tests as a gRPC request: raw bytes (as Triton's client sends) or typed contents, in
/// several widths.
func gentooInfer(raw: Bool) -> Inference_ModelInferRequest {
    var request = Inference_ModelInferRequest()
    request.modelName = "penguins"
    request.id = "g1"
    request.parameters["trace"] = .with { $0.stringParam = "abc" }
    func add(
        _ name: String, _ datatype: String, raw bytes: [UInt8], typed: (inout Inference_InferTensorContents) -> Void
    ) {
        var input = Inference_ModelInferRequest.InferInputTensor()
        input.name = name
        input.datatype = datatype
        input.shape = [2]
        if raw { request.rawInputContents.append(Data(bytes)) } else { typed(&input.contents) }
        request.inputs.append(input)
    }
    func le<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
        values.flatMap { value in withUnsafeBytes(of: value.littleEndian) { Array($0) } }
    }
    func texts(_ values: [String]) -> [UInt8] {
        var bytes: [UInt8] = []
        BinaryTensors.appendBytes(values, to: &bytes)
        return bytes
    }
    add("island", "BYTES", raw: texts(["Biscoe", "Dream"])) {
        $0.bytesContents = [Data("Biscoe".utf8), Data("Dream".utf8)]
    }
    add("bill_length_mm", "FP32", raw: le([Float(47.5).bitPattern, Float(49.0).bitPattern])) {
        $0.fp32Contents = [47.5, 49.0]
    }
    add("bill_depth_mm", "FP64", raw: le([(14.2 as Double).bitPattern, (19.5 as Double).bitPattern])) {
        $0.fp64Contents = [14.2, 19.5]
    }
    add("flipper_length_mm", "INT32", raw: le([Int32(220), 196])) { $0.intContents = [220, 196] }
    add("body_mass_g", "INT64", raw: le([Int64(5200), 3800])) { $0.int64Contents = [5200, 3800] }
    add("sex", "BYTES", raw: texts(["male", "female"])) { $0.bytesContents = [Data("male".utf8), Data("female".utf8)] }
    add("year", "UINT16", raw: le([UInt16(2008), 2008])) { $0.uintContents = [2008, 2008] }
    return request
}

@Suite("KServe V2 over gRPC")
struct GRPCTests {
    @Test("health, server and model metadata and the repository index answer as over HTTP")
    func metadata() async throws {
        let (server, _) = try await server()
        try await withGRPC(server) { client, _ in
            #expect(try await client.serverLive(.init()).live)
            #expect(try await client.serverReady(.init()).ready)
            #expect(try await client.modelReady(.with { $0.name = "penguins" }).ready)
            #expect(
                try await client.modelReady(
                    .with {
                        $0.name = "penguins"
                        $0.version = "1"
                    }
                ).ready)
            #expect(
                try await !client.modelReady(
                    .with {
                        $0.name = "penguins"
                        $0.version = "7"
                    }
                ).ready)
            #expect(try await !client.modelReady(.with { $0.name = "walrus" }).ready)
            let about = try await client.serverMetadata(.init())
            #expect(about.name == "sluice")
            #expect(about.extensions == ["binary_tensor_data"])
            let model = try await client.modelMetadata(.with { $0.name = "penguins" })
            #expect(model.versions == ["1"])
            #expect(model.inputs.map(\.name) == Fixture.models.0.signature.inputs.map(\.name))
            #expect(model.inputs.first { $0.name == "island" }?.datatype == "BYTES")
            #expect(model.inputs.first { $0.name == "body_mass_g" }?.datatype == "INT64")
            #expect(model.outputs.map(\.name) == ["predictions", "probabilities"])
            #expect(model.outputs[1].shape == [-1, 3])
            let index = try await client.repositoryIndex(.init())
            #expect(index.models.map(\.name) == ["penguins"])
            #expect(index.models.map(\.state) == ["READY"])
            #expect(index.models.map(\.version) == ["1"])
            await #expect {
                _ = try await client.modelMetadata(.with { $0.name = "walrus" })
            } throws: { error in
                let rpc = error as? RPCError
                return rpc?.code == .notFound && rpc?.message.contains("no model 'walrus'") == true
            }
        }
    }

    @Test(
        "inference with raw and with typed contents gives the in-process predictions bit for bit",
        arguments: [true, false])
    func inference(raw: Bool) async throws {
        let (server, _) = try await server()
        let local = try Fixture.models.0.predict(rows: BinaryTensorTests.rows)
        let classes = ServedModel(bundle: Fixture.models.0, version: "x").classes
        try await withGRPC(server) { client, _ in
            let response = try await client.modelInfer(gentooInfer(raw: raw)) { response in
                #expect(response.metadata[stringValues: "x-model-version"].map { $0 } == ["penguins@1"])
                return try response.message
            }
            #expect(response.modelName == "penguins")
            #expect(response.modelVersion == "1")
            #expect(response.id == "g1")
            #expect(response.parameters["trace"]?.stringParam == "abc")
            #expect(response.outputs.map(\.name) == ["predictions", "probabilities"])
            #expect(response.outputs.map(\.datatype) == ["BYTES", "FP64"])
            #expect(response.outputs[1].shape == [2, 3])
            let labels: [String]
            let probabilities: [Double]
            if raw {
                // Answered as asked: raw outputs, no typed contents.
                #expect(response.rawOutputContents.count == 2)
                #expect(!response.outputs[0].hasContents)
                labels = BinaryResponse.texts(Array(response.rawOutputContents[0]))
                probabilities = BinaryResponse.doubles(Array(response.rawOutputContents[1]))
            } else {
                #expect(response.rawOutputContents.isEmpty)
                labels = response.outputs[0].contents.bytesContents.map { String(decoding: $0, as: UTF8.self) }
                probabilities = response.outputs[1].contents.fp64Contents
            }
            #expect(labels == local.predictedClasses.map { classes[Int($0)] })
            #expect(probabilities.map(\.bitPattern) == local.values.map(\.bitPattern))

            // Only the output asked for.
            var one = gentooInfer(raw: raw)
            one.outputs = [.with { $0.name = "predictions" }]
            let only = try await client.modelInfer(one)
            #expect(only.outputs.map(\.name) == ["predictions"])
        }
    }

    @Test("gRPC calls are counted in the server's metrics and answer the version the HTTP API answers")
    func sharedMetrics() async throws {
        let (server, source) = try await server()
        try await withGRPC(server) { client, _ in
            _ = try await client.modelInfer(gentooInfer(raw: true))
            _ = try? await client.modelInfer(.with { $0.modelName = "walrus" })
            source.current.withLock { $0 = "penguins@2" }
            #expect(try await server.refresh())
            #expect(try await client.modelInfer(gentooInfer(raw: true)).modelVersion == "2")
        }
        let text = server.metrics.render(models: [("penguins", server.currentVersion)])
        #expect(text.contains(#"route="grpc/ModelInfer",status="200"} 2"#), "\(text)")
        #expect(text.contains(#"route="grpc/ModelInfer",status="404"} 1"#))
        #expect(text.contains("sluice_predicted_rows_total 4"))
    }

    /// Requests the server refuses, each with the gRPC status and part of the reason it must give.
    static let refused: [(String, @Sendable () -> Inference_ModelInferRequest, RPCError.Code, String)] = [
        (
            "unknown model",
            {
                var r = gentooInfer(raw: true)
                r.modelName = "walrus"
                return r
            }, .notFound, "no model 'walrus'"
        ),
        (
            "unknown version",
            {
                var r = gentooInfer(raw: true)
                r.modelVersion = "9"
                return r
            }, .notFound, "version '9'"
        ),
        ("no inputs", { .with { $0.modelName = "penguins" } }, .invalidArgument, "no 'inputs'"),
        (
            "fewer raw contents than inputs",
            {
                var r = gentooInfer(raw: true)
                r.rawInputContents.removeLast()
                return r
            },
            .invalidArgument, "7 inputs but 6 raw_input_contents"
        ),
        (
            "raw and typed together",
            {
                var r = gentooInfer(raw: true)
                r.inputs[1].contents.fp32Contents = [1, 2]
                return r
            },
            .invalidArgument, "send every input one way"
        ),
        (
            "values in the wrong contents field",
            {
                var r = gentooInfer(raw: false)
                r.inputs[2].contents = .with { $0.int64Contents = [1, 2] }
                return r
            },
            .invalidArgument, "is FP64, but its values are in int64_contents"
        ),
        (
            "two contents fields",
            {
                var r = gentooInfer(raw: false)
                r.inputs[2].contents.int64Contents = [1, 2]
                return r
            },
            .invalidArgument, "fp64_contents and int64_contents"
        ),
        (
            "an input without values",
            {
                var r = gentooInfer(raw: false)
                r.inputs[2].clearContents()
                return r
            },
            .invalidArgument, "has no values"
        ),
        (
            "raw bytes of the wrong size",
            {
                var r = gentooInfer(raw: true)
                r.rawInputContents[2].removeLast()
                return r
            },
            .invalidArgument, "binary_data_size 15"
        ),
        (
            "a BYTES length past the end",
            {
                var r = gentooInfer(raw: true)
                r.rawInputContents[0][0] = 200
                return r
            },
            .invalidArgument, "says 200 bytes"
        ),
        (
            "a shape that disagrees with the values",
            {
                var r = gentooInfer(raw: false)
                r.inputs[3].shape = [3]
                return r
            },
            .invalidArgument, "has 2 values but its shape says 3 rows"
        ),
        (
            "a two-column shape",
            {
                var r = gentooInfer(raw: false)
                r.inputs[3].shape = [1, 2]
                return r
            },
            .invalidArgument, "one column per input"
        ),
        (
            "an unknown input",
            {
                var r = gentooInfer(raw: false)
                r.inputs[3].name = "beak"
                return r
            },
            .invalidArgument, "unknown input 'beak'"
        ),
        (
            "text for a number column that is not a number",
            {
                var r = gentooInfer(raw: false)
                r.inputs[4] = .with {
                    $0.name = "body_mass_g"
                    $0.datatype = "BYTES"
                    $0.shape = [2]
                    $0.contents.bytesContents = [Data("heavy".utf8), Data("5".utf8)]
                }
                return r
            },
            .invalidArgument, "\"heavy\" is not"
        ),
        (
            "an unknown output",
            {
                var r = gentooInfer(raw: true)
                r.outputs = [.with { $0.name = "logits" }]
                return r
            },
            .invalidArgument, "unknown output 'logits'"
        ),
    ]

    @Test(
        "malformed inference requests get INVALID_ARGUMENT or NOT_FOUND with the reason",
        arguments: GRPCTests.refused.map(\.0))
    func refusal(_ label: String) async throws {
        let (server, _) = try await server()
        let (_, make, code, reason) = try #require(Self.refused.first { $0.0 == label })
        try await withGRPC(server) { client, _ in
            await #expect {
                _ = try await client.modelInfer(make())
            } throws: { error in
                guard let rpc = error as? RPCError else { return false }
                #expect(rpc.code == code, "\(label): \(rpc)")
                #expect(rpc.message.contains(reason), "\(label): \(rpc.message)")
                return true
            }
            // The server still answers.
            let after = try await client.modelInfer(gentooInfer(raw: true))
            #expect(after.outputs.count == 2)
        }
    }

    @Test("a message over the size limit is refused before it is read and the server keeps answering")
    func oversized() async throws {
        let (server, _) = try await server()
        try await withGRPC(server, maxMessageBytes: 4_096) { client, _ in
            var big = gentooInfer(raw: true)
            big.id = String(repeating: "x", count: 10_000)
            // Refused from the message's length prefix, with the limit and the fix; the model never sees it.
            await #expect {
                _ = try await client.modelInfer(big)
            } throws: { error in
                guard let rpc = error as? RPCError else { return false }
                return rpc.code == .resourceExhausted && rpc.message.contains("limit of 4096")
                    && rpc.message.contains("--max-body-bytes")
            }
            #expect(server.metrics.render(models: []).contains("sluice_predicted_rows_total 0"))
            let after = try await client.modelInfer(gentooInfer(raw: true))
            #expect(after.outputs.count == 2)
        }
    }

    @Test("a batch over 64 KiB is answered off the event loop with the in-process predictions")
    func largeBatch() async throws {
        let (server, _) = try await server()
        // 1,500 copies of the two gentoo rows: about 120 KB of raw contents.
        let copies = 1_500
        var request = gentooInfer(raw: true)
        for index in request.inputs.indices {
            request.inputs[index].shape = [Int64(2 * copies)]
            request.rawInputContents[index] = Data(
                repeatElement(request.rawInputContents[index], count: copies).joined())
        }
        let size = (try request.serializedBytes() as [UInt8]).count
        #expect(size > 64 << 10)
        let batch = request
        let local = try Fixture.models.0.predict(
            rows: Array(repeatElement(BinaryTensorTests.rows, count: copies).joined()))
        try await withGRPC(server) { client, _ in
            let response = try await client.modelInfer(batch)
            #expect(response.outputs[1].shape == [Int64(2 * copies), 3])
            #expect(
                BinaryResponse.doubles(Array(response.rawOutputContents[1])).map(\.bitPattern)
                    == local.values.map(\.bitPattern))
        }
    }

    @Test("messages larger than the connection's window flow: three 3 MB calls on one connection")
    func connectionWindow() async throws {
        let (server, _) = try await server()
        try await withGRPC(server, maxMessageBytes: 4 << 20) { client, _ in
            for round in 0..<3 {
                var request = gentooInfer(raw: true)
                request.id = String(repeating: String(round), count: 3 << 20)
                let response = try await client.modelInfer(request)
                #expect(response.id == request.id)
                #expect(response.outputs.count == 2)
            }
        }
    }

    @Test("an unknown method is UNIMPLEMENTED, naming the methods the service has")
    func unknownMethod() async throws {
        let (server, _) = try await server()
        try await withGRPC(server) { _, grpc in
            let descriptor = MethodDescriptor(
                fullyQualifiedService: "inference.GRPCInferenceService", method: "Predict")
            await #expect {
                _ = try await grpc.unary(
                    request: ClientRequest(message: [UInt8]()), descriptor: descriptor, serializer: RawBytes(),
                    deserializer: RawBytes(), options: .defaults
                ) { try $0.message }
            } throws: { error in
                guard let rpc = error as? RPCError else { return false }
                return rpc.code == .unimplemented && rpc.message.contains("ModelInfer, ModelMetadata")
            }
        }
    }

    @Test("grpc.health.v1 Check answers SERVING for the server, the service and each model; NOT_FOUND otherwise")
    func healthCheck() async throws {
        let (server, _) = try await server()
        try await withGRPC(server) { _, grpc in
            let descriptor = MethodDescriptor(fullyQualifiedService: "grpc.health.v1.Health", method: "Check")
            func check(_ service: String) async throws -> [UInt8] {
                // HealthCheckRequest { string service = 1; }
                let request: [UInt8] = service.isEmpty ? [] : [0x0A, UInt8(service.utf8.count)] + Array(service.utf8)
                return try await grpc.unary(
                    request: ClientRequest(message: request), descriptor: descriptor, serializer: RawBytes(),
                    deserializer: RawBytes(), options: .defaults
                ) { try $0.message }
            }
            // HealthCheckResponse { ServingStatus status = 1; }, SERVING = 1.
            for service in ["", "inference.GRPCInferenceService", "penguins"] {
                let status = try await check(service)
                #expect(status == [0x08, 0x01], "\(service)")
            }
            await #expect {
                _ = try await check("walrus")
            } throws: { error in
                guard let rpc = error as? RPCError else { return false }
                return rpc.code == .notFound && rpc.message.contains("penguins")
            }
            await #expect {
                _ = try await grpc.unary(
                    request: ClientRequest(message: [0x0A, 0x09, 0x41]), descriptor: descriptor,
                    serializer: RawBytes(), deserializer: RawBytes(), options: .defaults
                ) { try $0.message }
            } throws: { ($0 as? RPCError)?.code == .invalidArgument }
        }
        #expect(server.metrics.render(models: []).contains(#"route="grpc/Health/Check",status="200"} 3"#))
    }

    @Test("a model not loaded yet is NOT_SERVING to the health check; its request is read field by field")
    func healthCheckNotServing() async throws {
        let source = SwitchableSource(["penguins@1": Fixture.models.0], current: "penguins@1")
        let unloaded = ModelServer(
            name: "penguins", source: source, configuration: ServerConfiguration(host: "127.0.0.1", port: 0))
        let methods = InferenceMethods(server: unloaded)
        for request: [UInt8] in [[], [0x0A, 0x08] + Array("penguins".utf8)] {
            guard case .answered(let response, _) = methods.healthCheck(request, requestID: nil) else {
                Issue.record("the health check was refused")
                continue
            }
            #expect(response == [0x08, 0x02])
        }
        try await unloaded.loadCurrent()
        guard case .answered(let response, _) = methods.healthCheck([], requestID: nil) else {
            Issue.record("the health check was refused")
            return
        }
        #expect(response == [0x08, 0x01])
        #expect(InferenceMethods.healthCheckService([]) == "")
        #expect(InferenceMethods.healthCheckService([0x0A, 0x02, 0x61, 0x62]) == "ab")
        // Unknown fields are skipped; a length past the end is not a message.
        #expect(InferenceMethods.healthCheckService([0x10, 0x05, 0x0A, 0x01, 0x78]) == "x")
        #expect(InferenceMethods.healthCheckService([0x0A, 0x05, 0x61]) == nil)
    }

    @Test("a compressed message is refused as UNIMPLEMENTED with what to send instead")
    func compressedMessage() async throws {
        let (server, _) = try await server()
        let (ports, sink) = AsyncStream.makeStream(of: Int.self)
        let front = GRPCInferenceServer(server: server, port: 0) { sink.yield($0) }
        try await withThrowingTaskGroup { group in
            group.addTask { try await front.run() }
            var iterator = ports.makeAsyncIterator()
            let port = try #require(await iterator.next())
            var config = HTTP2ClientTransport.Posix.Config.defaults
            config.compression = .init(algorithm: .none, enabledAlgorithms: .all)
            let grpc = GRPCClient(
                transport: try .http2NIOPosix(
                    target: .ipv4(host: "127.0.0.1", port: port), transportSecurity: .plaintext, config: config))
            group.addTask { try await grpc.runConnections() }
            let client = Inference_GRPCInferenceService.Client(wrapping: grpc)
            var options = CallOptions.defaults
            options.compression = .gzip
            await #expect {
                _ = try await client.modelInfer(gentooInfer(raw: true), options: options)
            } throws: { error in
                guard let rpc = error as? RPCError else { return false }
                return rpc.code == .unimplemented
                    && rpc.message.contains("compressed with 'gzip'; send it uncompressed")
            }
            // Uncompressed calls on the same connection are answered.
            #expect(try await client.modelInfer(gentooInfer(raw: true)).outputs.count == 2)
            grpc.beginGracefulShutdown()
            group.cancelAll()
        }
    }

    @Test("grpc-swift 2's GRPCServer (the benchmark's peer) answers through the same methods")
    func grpcSwiftEngine() async throws {
        let (server, _) = try await server()
        let (ports, sink) = AsyncStream.makeStream(of: Int.self)
        let front = GRPCSwiftInferenceServer(server: server, port: 0) { sink.yield($0) }
        try await withThrowingTaskGroup { group in
            group.addTask { try await front.run() }
            var iterator = ports.makeAsyncIterator()
            let port = try #require(await iterator.next())
            let grpc = GRPCClient(
                transport: try .http2NIOPosix(
                    target: .ipv4(host: "127.0.0.1", port: port), transportSecurity: .plaintext))
            group.addTask { try await grpc.runConnections() }
            let client = Inference_GRPCInferenceService.Client(wrapping: grpc)
            let response = try await client.modelInfer(gentooInfer(raw: false))
            let local = try Fixture.models.0.predict(rows: BinaryTensorTests.rows)
            #expect(response.outputs[1].contents.fp64Contents.map(\.bitPattern) == local.values.map(\.bitPattern))
            await #expect {
                _ = try await client.modelInfer(.with { $0.modelName = "walrus" })
            } throws: { ($0 as? RPCError)?.code == .notFound }
            grpc.beginGracefulShutdown()
            group.cancelAll()
        }
        let text = server.metrics.render(models: [])
        #expect(text.contains(#"route="grpc/ModelInfer",status="200"} 1"#), "\(text)")
        #expect(text.contains(#"route="grpc/ModelInfer",status="404"} 1"#), "\(text)")
    }

    @Test("a promotion under gRPC load switches versions without one failed call")
    func hotPromotion() async throws {
        let (server, source) = try await server()
        try await withGRPC(server) { client, _ in
            let seen = Tally()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        var afterSwitch = 0
                        var sent = 0
                        while afterSwitch < 15 && sent < 3_000 {
                            let switched = seen.switched
                            do {
                                let response = try await client.modelInfer(gentooInfer(raw: true))
                                seen.record(version: response.modelVersion, ok: response.outputs.count == 2)
                            } catch {
                                seen.record(version: "failed: \(error)", ok: false)
                            }
                            sent += 1
                            if switched { afterSwitch += 1 }
                        }
                    }
                }
                group.addTask {
                    while seen.versions.count < 40 { try await Task.sleep(for: .milliseconds(2)) }
                    source.current.withLock { $0 = "penguins@2" }
                    #expect(try await server.refresh())
                    seen.markSwitched()
                }
                try await group.waitForAll()
            }
            #expect(seen.failures == 0, "\(Set(seen.versions))")
            #expect(Set(seen.versions) == ["1", "2"])
            #expect(seen.versions.count >= 160)
            #expect(try await client.modelInfer(gentooInfer(raw: true)).modelVersion == "2")
        }
    }

    /// Passes bytes through unchanged, so a test can send any message body.
    struct RawBytes: MessageSerializer, MessageDeserializer {
        func serialize<Bytes: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Bytes { Bytes(message) }
        func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> [UInt8] {
            serializedMessageBytes.withUnsafeBytes { Array($0) }
        }
    }

    @Test("mangled and random ModelInfer messages are answered or refused, never crash the server")
    func fuzz() async throws {
        let (server, _) = try await server()
        let seeds = [
            try gentooInfer(raw: true).serializedBytes() as [UInt8],
            try gentooInfer(raw: false).serializedBytes() as [UInt8],
        ]
        try await withGRPC(server) { client, grpc in
            var generator = SplitMix64(seed: 0x5EED)  // deterministic, so a fuzz failure replays
            var outcomes: [RPCError.Code?: Int] = [:]
            for round in 0..<600 {
                var bytes = seeds[round % 2]
                switch round % 4 {
                case 0:  // flip a few bytes
                    for _ in 0..<1 + Int(generator.next() % 4) {
                        bytes[Int(generator.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: generator.next())
                    }
                case 1:  // cut it short
                    bytes = Array(bytes.prefix(Int(generator.next() % UInt64(bytes.count))))
                case 2:  // insert random bytes
                    let at = Int(generator.next() % UInt64(bytes.count))
                    bytes.insert(
                        contentsOf: (0..<1 + generator.next() % 12).map { _ in
                            UInt8(truncatingIfNeeded: generator.next())
                        },
                        at: at)
                default:  // random bytes
                    bytes = (0..<generator.next() % 200).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
                }
                let request = ClientRequest(message: bytes)
                do {
                    _ = try await grpc.unary(
                        request: request, descriptor: Inference_GRPCInferenceService.Method.ModelInfer.descriptor,
                        serializer: RawBytes(), deserializer: RawBytes(), options: .defaults
                    ) { try $0.message }
                    outcomes[nil, default: 0] += 1
                } catch let error as RPCError {
                    // Refused, with a reason: never an internal error from inside the server.
                    #expect(error.code != .internalError, "\(error)")
                    #expect(error.code != .unavailable, "\(error)")
                    outcomes[error.code, default: 0] += 1
                }
            }
            #expect(outcomes.values.reduce(0, +) == 600)
            #expect((outcomes[.invalidArgument] ?? 0) > 100, "\(outcomes)")
            // Still serving, and answering correctly.
            #expect(try await client.modelInfer(gentooInfer(raw: true)).outputs.count == 2)
        }
    }
}

/// A classifier of the penguins' `year` (an integer column): its labels must come back as integers.
enum YearFixture {
    static let bundle: ModelBundle = {
        let table = Fixture.models.2
        let graph = try! TransformGraph.fit(
            FitTransforms.defaultSpec(for: table, label: "year", exclude: ["species"]), on: table)
        let labels = try! LabelMapping(fitting: table["year"]!)
        var learner = GradientBoosting(objective: .softmax)
        learner.rounds = 5
        learner.maxDepth = 3
        let trees = try! learner.fit(
            try! graph.transform(table), labels: try! labels.encode(table["year"]!), classes: labels.classes.count)
        return ModelBundle(
            name: "years", transforms: graph,
            model: TrainedModel(task: .classification(classes: labels.classes), learner: .trees(trees)),
            label: "year", trainingStatistics: DatasetStatistics(table), evaluation: nil, trainingRun: nil,
            datasetVersion: nil, trainingFacts: [:])
    }()

    static func server() async throws -> ModelServer {
        let server = ModelServer(
            name: "years", source: FixedModelSource(bundle: bundle, version: "years@1"),
            configuration: ServerConfiguration(host: "127.0.0.1", port: 0))
        try await server.loadCurrent()
        return server
    }

    /// Two rows without the year.
    static let rows: [[String: RawValue]] = BinaryTensorTests.rows.map { $0.filter { $0.key != "year" } }
}

@Suite("Predictions keep the label's type")
struct LabelTypeTests {
    @Test("an integer label answers integers over V2 JSON, binary, /invocations and gRPC, typed and raw")
    func integerLabels() async throws {
        let server = try await YearFixture.server()
        let local = try YearFixture.bundle.predict(rows: YearFixture.rows)
        guard case .classification(let classes) = YearFixture.bundle.model.task else { return }
        let expected = local.predictedClasses.map { Int64(classes[Int($0)])! }
        #expect(Set(classes) == ["2007", "2008", "2009"])

        let json = #"""
            {"inputs":[
              {"name":"island","shape":[2],"datatype":"BYTES","data":["Biscoe","Dream"]},
              {"name":"bill_length_mm","shape":[2],"datatype":"FP64","data":[47.5,49.0]},
              {"name":"bill_depth_mm","shape":[2],"datatype":"FP64","data":[14.2,19.5]},
              {"name":"flipper_length_mm","shape":[2],"datatype":"INT64","data":[220,196]},
              {"name":"body_mass_g","shape":[2],"datatype":"INT64","data":[5200,3800]},
              {"name":"sex","shape":[2],"datatype":"BYTES","data":["male","female"]}]}
            """#
        try await server.application().test(.live) { client in
            try await client.execute(uri: "/v2/models/years", method: .get) { r in
                let outputs = object(r)["outputs"] as? [[String: Any]] ?? []
                #expect(outputs.first?["datatype"] as? String == "INT64")
            }
            try await client.execute(uri: "/v2/models/years/infer", method: .post, body: ByteBuffer(string: json)) {
                r in
                #expect(r.status == .ok, "\(String(buffer: r.body))")
                let outputs = object(r)["outputs"] as? [[String: Any]] ?? []
                #expect(outputs.first?["datatype"] as? String == "INT64")
                // Numbers in the JSON, not strings.
                #expect((outputs.first?["data"] as? [NSNumber])?.map(\.int64Value) == expected)
            }
            // Binary outputs: 8-byte little-endian integers.
            let binaryJSON = json.replacingOccurrences(
                of: #"{"inputs":"#, with: #"{"parameters":{"binary_data_output":true},"inputs":"#)
            try await client.execute(
                uri: "/v2/models/years/infer", method: .post, body: ByteBuffer(string: binaryJSON)
            ) { r in
                let response = try BinaryResponse(r)
                let bytes = try #require(response.outputs["predictions"])
                let values = stride(from: 0, to: bytes.count, by: 8).map { at in
                    Int64(bitPattern: bytes[at..<at + 8].reversed().reduce(0) { $0 << 8 | UInt64($1) })
                }
                #expect(values == expected)
            }
            let records =
                #"{"instances":[{"island":"Biscoe","bill_length_mm":47.5,"bill_depth_mm":14.2,"flipper_length_mm":220,"body_mass_g":5200,"sex":"male"},{"island":"Dream","bill_length_mm":49.0,"bill_depth_mm":19.5,"flipper_length_mm":196,"body_mass_g":3800,"sex":"female"}]}"#
            try await client.execute(uri: "/invocations", method: .post, body: ByteBuffer(string: records)) { r in
                #expect(
                    (object(r)["predictions"] as? [NSNumber])?.map(\.int64Value) == expected,
                    "\(String(buffer: r.body))")
                #expect(!String(buffer: r.body).contains(#""2008""#))
            }
        }
        try await withGRPC(server) { client, _ in
            for raw in [false, true] {
                var request = gentooInfer(raw: raw)
                request.modelName = "years"
                if raw { request.rawInputContents.removeLast() }
                request.inputs.removeLast()  // no year
                let response = try await client.modelInfer(request)
                #expect(response.outputs[0].datatype == "INT64")
                let values =
                    raw
                    ? Array(response.rawOutputContents[0]).withUnsafeBytes { bytes in
                        (0..<bytes.count / 8).map {
                            Int64(littleEndian: bytes.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self))
                        }
                    }
                    : response.outputs[0].contents.int64Contents
                #expect(values == expected)
            }
            let metadata = try await client.modelMetadata(.with { $0.name = "years" })
            #expect(metadata.outputs[0].datatype == "INT64")
        }
    }

    @Test("a text label answers text, and labels of a model without training statistics stay text")
    func textLabels() {
        #expect(LabelKind(classes: ["Adelie", "Gentoo"], trainedAs: .string) == .text)
        #expect(LabelKind(classes: ["1", "2"], trainedAs: nil) == .text)
        #expect(LabelKind(classes: ["1", "2"], trainedAs: .integer) == .integer([1, 2]))
        #expect(LabelKind(classes: ["false", "true"], trainedAs: .boolean) == .boolean([false, true]))
        #expect(ServedModel(bundle: Fixture.models.0, version: "p@1").labelDatatype == "BYTES")
    }
}
