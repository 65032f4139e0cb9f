import Foundation
import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP2
import SwiftProtobuf
import Testing

@testable import SluiceML
@testable import SluiceServer
@testable import SluiceServerGRPC

/// The gRPC connection handler fed HTTP/2 frames one by one, for what a well-behaved client never sends.
@Suite("gRPC over HTTP/2, frame by frame")
struct GRPCConnectionTests {
    /// A connection to a penguins server, with the window update it sends on connecting already read.
    static func connection(maxMessageBytes: Int = 1 << 20) async throws -> EmbeddedChannel {
        let (server, _) = try await server()
        let channel = EmbeddedChannel(
            handler: GRPCConnectionHandler(methods: InferenceMethods(server: server), maxMessageBytes: maxMessageBytes))
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).get()
        let opening = try #require(try channel.readOutbound(as: HTTP2Frame.self))
        #expect(opening.streamID == .rootStream)
        guard case .windowUpdate(let increment) = opening.payload else {
            Issue.record("expected a window update, got \(opening.payload)")
            return channel
        }
        #expect(increment == (8 << 20) - 65_535)
        return channel
    }

    static func headers(
        path: String = "/inference.GRPCInferenceService/ModelInfer", method: String = "POST",
        contentType: String = "application/grpc", extra: [(String, String)] = []
    ) -> HPACKHeaders {
        var headers: HPACKHeaders = [
            ":method": method, ":scheme": "http", ":path": path, ":authority": "localhost",
            "content-type": contentType, "te": "trailers",
        ]
        for (name, value) in extra { headers.add(name: name, value: value) }
        return headers
    }

    /// A length-prefixed message (the prefix's flag and length may lie).
    static func framed(_ bytes: [UInt8], flag: UInt8 = 0, declared: Int? = nil) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(flag)
        buffer.writeInteger(UInt32(declared ?? bytes.count))
        buffer.writeBytes(bytes)
        return buffer
    }

    /// Sends frames as one read.
    static func send(_ channel: EmbeddedChannel, _ frames: HTTP2Frame...) throws {
        for frame in frames { try channel.writeInbound(frame) }
        channel.pipeline.fireChannelReadComplete()
    }

    static func outbound(_ channel: EmbeddedChannel) throws -> [HTTP2Frame] {
        var frames: [HTTP2Frame] = []
        while let frame = try channel.readOutbound(as: HTTP2Frame.self) { frames.append(frame) }
        return frames
    }

    /// The status and message of a trailers-only refusal.
    static func refusal(_ frames: [HTTP2Frame]) -> (status: String?, message: String?, http: String?) {
        for frame in frames {
            if case .headers(let payload) = frame.payload, payload.endStream {
                let message = payload.headers.first(name: "grpc-message")?.removingPercentEncoding
                return (payload.headers.first(name: "grpc-status"), message, payload.headers.first(name: ":status"))
            }
        }
        return (nil, nil, nil)
    }

    static let stream = HTTP2StreamID(1)

    @Test("a request split over several DATA frames is answered once complete: headers, one message, trailers")
    func splitRequest() async throws {
        let channel = try await Self.connection()
        let bytes: [UInt8] = try gentooInfer(raw: true).serializedBytes()
        var body = Self.framed(bytes)
        let first = body.readSlice(length: 3)!
        let second = body.readSlice(length: 40)!
        try Self.send(
            channel,
            HTTP2Frame(
                streamID: Self.stream,
                payload: .headers(.init(headers: Self.headers(extra: [("x-request-id", "split-1")])))),
            HTTP2Frame(streamID: Self.stream, payload: .data(.init(data: .byteBuffer(first)))))
        try Self.send(channel, HTTP2Frame(streamID: Self.stream, payload: .data(.init(data: .byteBuffer(second)))))
        #expect(try Self.outbound(channel).isEmpty)
        try Self.send(
            channel, HTTP2Frame(streamID: Self.stream, payload: .data(.init(data: .byteBuffer(body), endStream: true))))
        let frames = try Self.outbound(channel)
        #expect(frames.count == 3)
        guard frames.count == 3, case .headers(let head) = frames[0].payload, case .data(let data) = frames[1].payload,
            case .headers(let trailers) = frames[2].payload, case .byteBuffer(var message) = data.data
        else {
            Issue.record("unexpected frames \(frames)")
            return
        }
        #expect(head.headers.first(name: ":status") == "200")
        #expect(head.headers.first(name: "content-type") == "application/grpc")
        #expect(head.headers.first(name: "x-request-id") == "split-1")
        #expect(head.headers.first(name: "x-model-version") == "penguins@1")
        #expect(!head.endStream && !data.endStream && trailers.endStream)
        #expect(trailers.headers.first(name: "grpc-status") == "0")
        #expect(message.readInteger(as: UInt8.self) == 0)
        let prefix = message.readInteger(as: UInt32.self)
        let length = try #require(prefix)
        #expect(Int(length) == message.readableBytes)
        let response = try Inference_ModelInferResponse(serializedBytes: message.readBytes(length: Int(length))!)
        #expect(response.outputs.map(\.name) == ["predictions", "probabilities"])
    }

    @Test(
        "malformed calls get a trailers-only refusal with the status and the reason",
        arguments: [
            ("compressed flag", [], 1, nil, "12", "the message is compressed"),
            ("declared over the limit", [], 0, 5_000_000, "8", "over this server's limit of 1048576"),
            ("cut short", [], 0, 900, "3", "cut short: its prefix says 900 bytes"),
            ("bad flag", [], 7, nil, "3", "must be 0 or 1"),
            ("unknown method", [(":path", "/inference.GRPCInferenceService/Nope")], 0, nil, "12", "no method"),
            (
                "other service", [(":path", "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo")], 0, nil, "12",
                "no method"
            ),
            ("gzip message", [("grpc-encoding", "gzip")], 1, nil, "12", "compressed with 'gzip'"),
            ("bad timeout", [("grpc-timeout", "soon")], 0, nil, "3", "grpc-timeout 'soon'"),
            ("deadline passed", [("grpc-timeout", "1n")], 0, nil, "4", "deadline"),
        ] as [(String, [(String, String)], UInt8, Int?, String, String)])
    func refusals(
        label: String, extra: [(String, String)], flag: UInt8, declared: Int?, status: String, reason: String
    ) async throws {
        let channel = try await Self.connection()
        var headers = Self.headers()
        for (name, value) in extra { headers.replaceOrAdd(name: name, value: value) }
        let bytes: [UInt8] = try gentooInfer(raw: true).serializedBytes()
        try Self.send(
            channel, HTTP2Frame(streamID: Self.stream, payload: .headers(.init(headers: headers))),
            HTTP2Frame(
                streamID: Self.stream,
                payload: .data(
                    .init(data: .byteBuffer(Self.framed(bytes, flag: flag, declared: declared)), endStream: true))))
        let refusal = Self.refusal(try Self.outbound(channel))
        #expect(refusal.http == "200", "\(label)")
        #expect(refusal.status == status, "\(label): \(refusal)")
        #expect(refusal.message?.contains(reason) == true, "\(label): \(refusal)")
        // The connection still answers.
        try Self.send(
            channel, HTTP2Frame(streamID: HTTP2StreamID(3), payload: .headers(.init(headers: Self.headers()))),
            HTTP2Frame(
                streamID: HTTP2StreamID(3),
                payload: .data(.init(data: .byteBuffer(Self.framed(bytes)), endStream: true))))
        #expect(Self.refusal(try Self.outbound(channel)).status == "0", "\(label)")
    }

    @Test("a message declared over the limit is refused at its prefix, and the client is asked to stop sending")
    func refusedBeforeRead() async throws {
        let channel = try await Self.connection(maxMessageBytes: 1_000)
        try Self.send(
            channel, HTTP2Frame(streamID: Self.stream, payload: .headers(.init(headers: Self.headers()))),
            HTTP2Frame(
                streamID: Self.stream,
                payload: .data(.init(data: .byteBuffer(Self.framed(Array(repeating: 0, count: 100), declared: 50_000))))
            ))
        let frames = try Self.outbound(channel)
        #expect(Self.refusal(frames).status == "8")
        #expect(frames.contains { if case .rstStream(.noError) = $0.payload { true } else { false } })
    }

    @Test("requests that are not gRPC get 405 or 415 in plain HTTP, with the reason")
    func notGRPC() async throws {
        for (headers, status, reason) in [
            (Self.headers(method: "GET"), "405", "POST"),
            (Self.headers(contentType: "application/json"), "415", "content-type application/grpc"),
            (Self.headers(contentType: "application/grpc-web+proto"), "415", "content-type application/grpc"),
        ] {
            let channel = try await Self.connection()
            try Self.send(
                channel, HTTP2Frame(streamID: Self.stream, payload: .headers(.init(headers: headers, endStream: true))))
            let frames = try Self.outbound(channel)
            guard frames.count == 2, case .headers(let head) = frames[0].payload,
                case .data(let body) = frames[1].payload,
                case .byteBuffer(let text) = body.data
            else {
                Issue.record("unexpected frames \(frames)")
                continue
            }
            #expect(head.headers.first(name: ":status") == status)
            #expect(String(buffer: text).contains(reason))
            #expect(body.endStream)
        }
    }

    @Test("going away: GOAWAY names the last stream, the call in flight is answered, then the connection closes")
    func goAway() async throws {
        let channel = try await Self.connection()
        let bytes: [UInt8] = try gentooInfer(raw: true).serializedBytes()
        var body = Self.framed(bytes)
        let head = body.readSlice(length: 10)!
        try Self.send(
            channel, HTTP2Frame(streamID: HTTP2StreamID(5), payload: .headers(.init(headers: Self.headers()))),
            HTTP2Frame(streamID: HTTP2StreamID(5), payload: .data(.init(data: .byteBuffer(head)))))
        channel.pipeline.fireUserInboundEventTriggered(GRPCGoAway())
        let frames = try Self.outbound(channel)
        guard frames.count == 1, case .goAway(let last, let code, _) = frames[0].payload else {
            Issue.record("expected GOAWAY, got \(frames)")
            return
        }
        #expect(last == HTTP2StreamID(5))
        #expect(code == .noError)
        #expect(channel.isActive)
        try Self.send(
            channel,
            HTTP2Frame(streamID: HTTP2StreamID(5), payload: .data(.init(data: .byteBuffer(body), endStream: true))))
        #expect(Self.refusal(try Self.outbound(channel)).status == "0")
        #expect(!channel.isActive)
    }

    @Test("the connection window is topped up as request bytes are read")
    func connectionWindowUpdates() async throws {
        let channel = try await Self.connection(maxMessageBytes: 8 << 20)
        try Self.send(channel, HTTP2Frame(streamID: Self.stream, payload: .headers(.init(headers: Self.headers()))))
        var sent = 0
        var updates: [Int] = []
        while sent < 5 << 20 {
            let chunk = ByteBuffer(repeating: 0, count: 16_384)
            try Self.send(channel, HTTP2Frame(streamID: Self.stream, payload: .data(.init(data: .byteBuffer(chunk)))))
            sent += chunk.readableBytes
            for frame in try Self.outbound(channel) {
                if case .windowUpdate(let increment) = frame.payload, frame.streamID == .rootStream {
                    updates.append(increment)
                }
            }
        }
        // Half of the 8 MiB window read: one update giving it all back.
        #expect(updates == [4 << 20])
    }

    @Test("random frames (paths, content types, timeouts, prefixes, bytes, resets) never crash the connection")
    func fuzzFrames() async throws {
        let channel = try await Self.connection(maxMessageBytes: 4_096)
        let seed: [UInt8] = try gentooInfer(raw: true).serializedBytes()
        var random = SplitMix64(seed: 0xF4A3E)  // deterministic, so a failure replays
        func pick<T>(_ options: [T]) -> T { options[Int(random.next() % UInt64(options.count))] }
        var stream = 1
        var answered = 0
        for _ in 0..<400 {
            let id = HTTP2StreamID(stream)
            stream += 2
            var headers = Self.headers(
                path: pick([
                    "/inference.GRPCInferenceService/ModelInfer", "/inference.GRPCInferenceService/ServerLive",
                    "/grpc.health.v1.Health/Check", "/nope", "",
                ]),
                method: pick(["POST", "POST", "GET"]),
                contentType: pick(["application/grpc", "application/grpc+proto", "text/plain"]))
            if random.next() % 4 == 0 {
                headers.add(name: "grpc-timeout", value: pick(["1S", "5m", "x", "99999999H"]))
            }
            if random.next() % 5 == 0 { headers.add(name: "grpc-encoding", value: pick(["gzip", "identity"])) }
            let endOnHeaders = random.next() % 10 == 0
            try Self.send(
                channel, HTTP2Frame(streamID: id, payload: .headers(.init(headers: headers, endStream: endOnHeaders))))
            if !endOnHeaders {
                var body: [UInt8]
                switch random.next() % 4 {
                case 0:  // a valid message with a few bytes flipped
                    var message = seed
                    for _ in 0..<1 + Int(random.next() % 3) {
                        message[Int(random.next() % UInt64(message.count))] = UInt8(truncatingIfNeeded: random.next())
                    }
                    body = [0] + withUnsafeBytes(of: UInt32(message.count).bigEndian, Array.init) + message
                case 1:  // a prefix that lies
                    body =
                        [UInt8(random.next() % 3)]
                        + withUnsafeBytes(of: UInt32(random.next() % 10_000).bigEndian, Array.init)
                        + seed.prefix(Int(random.next() % UInt64(seed.count)))
                case 2:  // random bytes
                    body = (0..<random.next() % 64).map { _ in UInt8(truncatingIfNeeded: random.next()) }
                default:  // the valid message
                    body = [0] + withUnsafeBytes(of: UInt32(seed.count).bigEndian, Array.init) + seed
                }
                // In one to three DATA frames, the last one ending the stream (or a reset instead).
                var cuts = (0..<Int(random.next() % 3)).map { _ in Int(random.next() % UInt64(body.count + 1)) }
                    .sorted()
                cuts.append(body.count)
                var start = 0
                for (index, cut) in cuts.enumerated() {
                    let last = index == cuts.count - 1
                    if last, random.next() % 8 == 0 {
                        try Self.send(channel, HTTP2Frame(streamID: id, payload: .rstStream(.cancel)))
                        break
                    }
                    let piece = ByteBuffer(bytes: body[start..<max(start, cut)])
                    start = max(start, cut)
                    try Self.send(
                        channel,
                        HTTP2Frame(streamID: id, payload: .data(.init(data: .byteBuffer(piece), endStream: last))))
                }
            }
            for frame in try Self.outbound(channel) {
                if case .headers(let payload) = frame.payload, payload.endStream {
                    answered += 1
                    // Every answer says how it ended: a gRPC status, or a plain HTTP refusal.
                    #expect(
                        payload.headers.first(name: "grpc-status") != nil
                            || payload.headers.first(name: ":status") != nil)
                    #expect(payload.headers.first(name: "grpc-status") != "13", "\(payload.headers)")
                }
                if case .data(let payload) = frame.payload, payload.endStream { answered += 1 }
            }
            #expect(channel.isActive)
        }
        #expect(answered > 250)
        // Still answering.
        let id = HTTP2StreamID(stream)
        try Self.send(
            channel, HTTP2Frame(streamID: id, payload: .headers(.init(headers: Self.headers()))),
            HTTP2Frame(streamID: id, payload: .data(.init(data: .byteBuffer(Self.framed(seed)), endStream: true))))
        #expect(Self.refusal(try Self.outbound(channel)).status == "0")
    }

    @Test("grpc-timeout values and grpc-message encoding follow the gRPC spec")
    func protocolDetails() {
        #expect(GRPCConnectionHandler.timeout("100m") == .milliseconds(100))
        #expect(GRPCConnectionHandler.timeout("2S") == .seconds(2))
        #expect(GRPCConnectionHandler.timeout("1H") == .hours(1))
        #expect(GRPCConnectionHandler.timeout("99999999u") == .microseconds(99_999_999))
        #expect(GRPCConnectionHandler.timeout("123456789n") == nil)  // more than 8 digits
        #expect(GRPCConnectionHandler.timeout("5") == nil)
        #expect(GRPCConnectionHandler.timeout("-5S") == nil)
        #expect(GRPCConnectionHandler.timeout("5x") == nil)
        #expect(GRPCConnectionHandler.percentEncoded("50% … done\n") == "50%25 %E2%80%A6 done%0A")
    }
}
