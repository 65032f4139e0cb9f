import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOPosix
import SluiceServer

/// Asks a connection to stop taking calls: it sends GOAWAY and closes once its calls in flight are answered.
struct GRPCGoAway: Sendable {}

/// One HTTP/2 connection of the gRPC front end, on its event loop: reads the frames of every stream (no child
/// channel per stream), and answers each unary call of `inference.GRPCInferenceService` when its message is
/// complete, in the same pass (small messages) or on NIO's thread pool (large ones, so one big batch does not hold
/// up the loop's other connections). Speaks gRPC over HTTP/2 as the protocol's spec describes it: length-prefixed
/// messages, `grpc-status` and `grpc-message` in trailers, `grpc-timeout`, trailers-only refusals.
final class GRPCConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    /// Messages up to this size are answered on the event loop; larger ones on the thread pool.
    static let inlineBytes = 64 << 10
    /// The connection-level receive window this side keeps open.
    static let connectionWindow = 8 << 20

    /// A call whose request is still arriving.
    struct Call {
        /// The request's `:path`.
        var path: String
        /// The route it is counted under (`ModelInfer`, `Health/Check`).
        var method: String
        var requestID: String?
        var deadline: NIODeadline?
        var body: ByteBuffer
        /// The `grpc-encoding` the client named (its messages may still be sent uncompressed).
        var encoding: String? = nil
        /// Answered or refused already: later frames of the stream are dropped.
        var finished = false
    }

    let methods: InferenceMethods
    let maxMessageBytes: Int
    private var calls: [HTTP2StreamID: Call] = [:]
    /// Calls answered on the thread pool whose answers are not written yet.
    private var offloaded = 0
    /// Bytes read since the connection window was last topped up.
    private var unacknowledged = 0
    private var highestStream = HTTP2StreamID.rootStream
    private var goingAway = false

    init(methods: InferenceMethods, maxMessageBytes: Int) {
        self.methods = methods
        self.maxMessageBytes = maxMessageBytes
    }

    /// The settings this side announces: room for one whole message per stream, so a unary call never waits
    /// for a window update.
    static func settings(maxMessageBytes: Int) -> HTTP2Settings {
        [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: 256),
            HTTP2Setting(parameter: .maxHeaderListSize, value: HPACKDecoder.defaultMaxHeaderListSize),
            HTTP2Setting(parameter: .initialWindowSize, value: min(maxMessageBytes + 5 + 1024, Int(Int32.max))),
        ]
    }

    func channelActive(context: ChannelHandlerContext) {
        // The connection's window starts at 64 KiB whatever the settings say: open it up once.
        let increment = Self.connectionWindow - 65_535
        context.writeAndFlush(
            wrapOutboundOut(HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: increment))),
            promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.payload {
        case .headers(let headers):
            if calls[frame.streamID] != nil {
                // Trailers from the client: gRPC clients send none, but an end of stream here ends the request.
                if headers.endStream { requestEnded(frame.streamID, context: context) }
            } else {
                begin(frame.streamID, headers: headers.headers, endStream: headers.endStream, context: context)
                if headers.endStream { requestEnded(frame.streamID, context: context) }
            }
        case .data(let payload):
            unacknowledged += payload.data.readableBytes + (payload.paddingBytes.map { $0 + 1 } ?? 0)
            if unacknowledged >= Self.connectionWindow / 2 {
                context.write(
                    wrapOutboundOut(
                        HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: unacknowledged))),
                    promise: nil)
                unacknowledged = 0
            }
            guard var call = calls[frame.streamID], !call.finished else { return }
            guard case .byteBuffer(var bytes) = payload.data else { return }
            call.body.writeBuffer(&bytes)
            calls[frame.streamID] = call
            if let refusal = framingProblem(call, complete: false) {
                refuse(frame.streamID, refusal.0, refusal.1, requestComplete: payload.endStream, context: context)
            } else if payload.endStream {
                requestEnded(frame.streamID, context: context)
            }
        case .rstStream:
            calls[frame.streamID] = nil
            closeIfDone(context: context)
        default:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
        context.fireChannelReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case let closed as StreamClosedEvent:
            calls[closed.streamID] = nil
            closeIfDone(context: context)
        case is GRPCGoAway:
            guard !goingAway else { return }
            goingAway = true
            context.writeAndFlush(
                wrapOutboundOut(
                    HTTP2Frame(
                        streamID: .rootStream,
                        payload: .goAway(lastStreamID: highestStream, errorCode: .noError, opaqueData: nil))),
                promise: nil)
            closeIfDone(context: context)
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // HTTP/2 protocol errors: NIOHTTP2Handler has already told the peer (GOAWAY or RST_STREAM).
        if error is NIOHTTP2Errors.StreamError || error is NIOHTTP2Errors.StreamClosed { return }
        context.close(promise: nil)
    }

    // MARK: Requests

    private func begin(
        _ stream: HTTP2StreamID, headers: HPACKHeaders, endStream: Bool, context: ChannelHandlerContext
    ) {
        highestStream = max(highestStream, stream)
        guard headers.first(name: ":method") == "POST" else {
            plainRefusal(stream, status: "405", "gRPC calls are POST requests", endStream: endStream, context: context)
            return
        }
        // application/grpc, application/grpc+proto, application/grpc;…: not gRPC-Web, which wants its trailers in
        // the body.
        guard let contentType = headers.first(name: "content-type"),
            contentType == "application/grpc" || contentType.hasPrefix("application/grpc+")
                || contentType.hasPrefix("application/grpc;")
        else {
            plainRefusal(
                stream, status: "415",
                "this port answers gRPC (content-type application/grpc); the HTTP API is on the server's --port",
                endStream: endStream, context: context)
            return
        }
        let path = headers.first(name: ":path") ?? ""
        let requestID = headers.first(name: "x-request-id")
        let method = InferenceMethods.methodsByPath[path]
        calls[stream] = Call(
            path: path, method: method?.route ?? path, requestID: requestID, deadline: nil,
            body: context.channel.allocator.buffer(capacity: 0))
        guard method != nil else {
            let known = InferenceMethods.inferenceMethods.map(\.name).joined(separator: ", ")
            refuse(
                stream, .unimplemented,
                "no method '\(path)': this server answers inference.GRPCInferenceService (\(known)) and "
                    + "grpc.health.v1.Health/Check",
                requestComplete: endStream, context: context)
            return
        }
        calls[stream]?.encoding = headers.first(name: "grpc-encoding")
        if let timeout = headers.first(name: "grpc-timeout") {
            guard let amount = Self.timeout(timeout) else {
                refuse(
                    stream, .invalidArgument,
                    "grpc-timeout '\(timeout)' is not a timeout: up to 8 digits and a unit (H, M, S, m, u, n)",
                    requestComplete: endStream, context: context)
                return
            }
            calls[stream]?.deadline = .now() + amount
        }
    }

    /// The client's half of the stream ended: answer the call if its one message arrived whole.
    private func requestEnded(_ stream: HTTP2StreamID, context: ChannelHandlerContext) {
        guard var call = calls[stream], !call.finished else { return }
        if let (code, reason) = framingProblem(call, complete: true) {
            refuse(stream, code, reason, requestComplete: true, context: context)
            return
        }
        call.body.moveReaderIndex(forwardBy: 5)
        let bytes = call.body.readBytes(length: call.body.readableBytes) ?? []
        call.finished = true
        call.body = ByteBuffer()
        calls[stream] = call
        let methods = self.methods
        let (path, requestID, deadline) = (call.path, call.requestID, call.deadline)
        if bytes.count <= Self.inlineBytes {
            let answer = Self.run(methods, path: path, bytes: bytes, requestID: requestID, deadline: deadline)
            write(answer, stream: stream, context: context)
            closeIfDone(context: context)
        } else {
            offloaded += 1
            NIOThreadPool.singleton.runIfActive(eventLoop: context.eventLoop) {
                Self.run(methods, path: path, bytes: bytes, requestID: requestID, deadline: deadline)
            }.assumeIsolated().whenComplete { result in
                self.offloaded -= 1
                switch result {
                case .success(let answer): self.write(answer, stream: stream, context: context)
                case .failure(let error):
                    self.write(
                        .refused(.unavailable, "the server is stopping: \(error)", metadata: []), stream: stream,
                        context: context)
                }
                context.flush()
                self.closeIfDone(context: context)
            }
        }
    }

    /// Answers one complete call, unless its deadline has passed already.
    private static func run(
        _ methods: InferenceMethods, path: String, bytes: [UInt8], requestID: String?, deadline: NIODeadline?
    ) -> GRPCAnswer<[UInt8]> {
        guard let method = InferenceMethods.methodsByPath[path] else {
            return .refused(.unimplemented, "no method '\(path)'", metadata: [])
        }
        if let deadline, deadline < .now() {
            return methods.refuse(
                method.route, requestID: requestID, code: .deadlineExceeded,
                message: "the call's deadline (grpc-timeout) passed before it could be answered"
            ).map()
        }
        return method.call(methods, bytes, requestID)
    }

    /// What is wrong with a request body so far (`complete`: the client has finished sending): a flag other than
    /// uncompressed, a message over the limit, more than one message, or (once complete) a message cut short.
    private func framingProblem(_ call: Call, complete: Bool) -> (GRPCStatusCode, String)? {
        let body = call.body
        let available = body.readableBytes
        guard available >= 5,
            let flag = body.getInteger(at: body.readerIndex, as: UInt8.self),
            let declared = body.getInteger(at: body.readerIndex + 1, as: UInt32.self)
        else {
            guard complete else { return nil }
            return available == 0
                ? (.invalidArgument, "the call carries no request message; unary methods take exactly one")
                : (.invalidArgument, "the request ends inside a message's 5-byte prefix (\(available) bytes arrived)")
        }
        if flag == 1 {
            let encoding = call.encoding.map { " with '\($0)'" } ?? ""
            return (
                .unimplemented,
                "the message is compressed\(encoding); send it uncompressed (grpc-accept-encoding: identity)"
            )
        }
        guard flag == 0 else {
            return (.invalidArgument, "a message's first byte must be 0 or 1 (compressed), not \(flag)")
        }
        if declared > maxMessageBytes {
            return (
                .resourceExhausted,
                "the message is \(declared) bytes, over this server's limit of \(maxMessageBytes) "
                    + "(sluice serve --max-body-bytes); send fewer rows per call"
            )
        }
        if available > 5 + Int(declared) {
            return (.invalidArgument, "the call carries more than one message; unary methods take exactly one")
        }
        if complete, available < 5 + Int(declared) {
            return (
                .invalidArgument,
                "the message is cut short: its prefix says \(declared) bytes, \(available - 5) arrived"
            )
        }
        return nil
    }

    // MARK: Answers

    /// Refuses a call with a gRPC status (counted and logged like any call), and asks the client to stop sending
    /// when its request is still arriving.
    private func refuse(
        _ stream: HTTP2StreamID, _ code: GRPCStatusCode, _ reason: String, requestComplete: Bool,
        context: ChannelHandlerContext
    ) {
        let method = calls[stream]?.method ?? "?"
        let requestID = calls[stream]?.requestID
        calls[stream]?.finished = true
        calls[stream]?.body = ByteBuffer()
        write(
            methods.refuse(method, requestID: requestID, code: code, message: reason).map(), stream: stream,
            context: context)
        if !requestComplete {
            context.write(wrapOutboundOut(HTTP2Frame(streamID: stream, payload: .rstStream(.noError))), promise: nil)
        }
        closeIfDone(context: context)
    }

    /// A refusal in plain HTTP, for requests that are not gRPC calls at all.
    private func plainRefusal(
        _ stream: HTTP2StreamID, status: String, _ reason: String, endStream: Bool, context: ChannelHandlerContext
    ) {
        let headers: HPACKHeaders = [":status": status, "content-type": "text/plain; charset=utf-8"]
        context.write(
            wrapOutboundOut(HTTP2Frame(streamID: stream, payload: .headers(.init(headers: headers)))), promise: nil)
        var body = context.channel.allocator.buffer(capacity: reason.utf8.count + 1)
        body.writeString(reason + "\n")
        context.write(
            wrapOutboundOut(
                HTTP2Frame(streamID: stream, payload: .data(.init(data: .byteBuffer(body), endStream: true)))),
            promise: nil)
        if !endStream {
            context.write(wrapOutboundOut(HTTP2Frame(streamID: stream, payload: .rstStream(.noError))), promise: nil)
        }
    }

    private func write(_ answer: GRPCAnswer<[UInt8]>, stream: HTTP2StreamID, context: ChannelHandlerContext) {
        var headers: HPACKHeaders = [
            ":status": "200", "content-type": "application/grpc", "grpc-accept-encoding": "identity",
        ]
        switch answer {
        case .answered(let message, let metadata):
            for (name, value) in metadata { headers.add(name: name, value: value) }
            context.write(
                wrapOutboundOut(HTTP2Frame(streamID: stream, payload: .headers(.init(headers: headers)))), promise: nil)
            var body = context.channel.allocator.buffer(capacity: 5 + message.count)
            body.writeInteger(UInt8(0))
            body.writeInteger(UInt32(message.count))
            body.writeBytes(message)
            context.write(
                wrapOutboundOut(HTTP2Frame(streamID: stream, payload: .data(.init(data: .byteBuffer(body))))),
                promise: nil)
            context.write(
                wrapOutboundOut(
                    HTTP2Frame(
                        streamID: stream,
                        payload: .headers(
                            .init(headers: ["grpc-status": String(GRPCStatusCode.ok.rawValue)], endStream: true)))),
                promise: nil)
        case .refused(let code, let reason, let metadata):
            // Trailers only: the status and its reason in the one HEADERS frame.
            headers.add(name: "grpc-status", value: String(code.rawValue))
            headers.add(name: "grpc-message", value: Self.percentEncoded(reason))
            for (name, value) in metadata { headers.add(name: name, value: value) }
            context.write(
                wrapOutboundOut(
                    HTTP2Frame(streamID: stream, payload: .headers(.init(headers: headers, endStream: true)))),
                promise: nil)
        }
    }

    /// Once going away, closes the connection when no call is left to answer.
    private func closeIfDone(context: ChannelHandlerContext) {
        guard goingAway, offloaded == 0, calls.values.allSatisfy(\.finished) else { return }
        context.flush()
        context.close(promise: nil)
    }

    // MARK: Protocol details

    /// A `grpc-timeout` value: up to 8 digits and a unit (hours, minutes, seconds, milli-, micro-, nanoseconds).
    static func timeout(_ text: String) -> TimeAmount? {
        guard let unit = text.last, (2...9).contains(text.count), let value = Int64(text.dropLast()), value >= 0
        else { return nil }
        switch unit {
        case "H": return .hours(value)
        case "M": return .minutes(value)
        case "S": return .seconds(value)
        case "m": return .milliseconds(value)
        case "u": return .microseconds(value)
        case "n": return .nanoseconds(value)
        default: return nil
        }
    }

    /// `grpc-message` as the spec wants it: printable ASCII but `%` as is, every other byte as `%XX`.
    static func percentEncoded(_ text: String) -> String {
        var encoded = ""
        encoded.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            if byte >= 0x20, byte <= 0x7E, byte != UInt8(ascii: "%") {
                encoded.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                encoded +=
                    "%" + String(byte >> 4, radix: 16, uppercase: true) + String(byte & 0xF, radix: 16, uppercase: true)
            }
        }
        return encoded
    }
}
