import Foundation
import NIOCore
import NIOPosix

/// A Redis reply (RESP2).
enum RESPValue: Sendable, Equatable {
    case simple(String)
    case error(String)
    case integer(Int64)
    /// A bulk string; nil is RESP's null.
    case bulk([UInt8]?)
    /// An array; nil is RESP's null array (an aborted transaction).
    case array([RESPValue]?)

    /// The value as text, when it is a string.
    var text: String? {
        switch self {
        case .simple(let text): text
        case .bulk(let bytes?): String(decoding: bytes, as: UTF8.self)
        default: nil
        }
    }
}

/// One connection to a Redis server speaking RESP over SwiftNIO: commands from any task are pipelined on it and
/// answered in order (Redis answers a connection's commands in the order they arrive).
final class RESPConnection: Sendable {
    private let channel: any Channel
    private let handler: RESPHandler

    private init(channel: any Channel, handler: RESPHandler) {
        self.channel = channel
        self.handler = handler
    }

    /// Connects to `host:port`.
    static func connect(host: String, port: Int) async throws -> RESPConnection {
        let handler = RESPHandler()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(5))
            .channelInitializer { channel in channel.pipeline.addHandler(handler) }
            .connect(host: host, port: port).get()
        return RESPConnection(channel: channel, handler: handler)
    }

    /// Sends `commands` (each an array of arguments) in one write and returns their replies, in order.
    func send(_ commands: [[RESPArgument]]) async throws -> [RESPValue] {
        guard !commands.isEmpty else { return [] }
        var buffer = channel.allocator.buffer(capacity: 64 * commands.count)
        for command in commands {
            buffer.writeString("*\(command.count)\r\n")
            for argument in command {
                switch argument {
                case .text(let text):
                    buffer.writeString("$\(text.utf8.count)\r\n")
                    buffer.writeString(text)
                case .bytes(let bytes):
                    buffer.writeString("$\(bytes.count)\r\n")
                    buffer.writeBytes(bytes)
                }
                buffer.writeString("\r\n")
            }
        }
        let promise = channel.eventLoop.makePromise(of: [RESPValue].self)
        let handler = self.handler
        let channel = self.channel
        let count = commands.count
        let write = buffer
        channel.eventLoop.execute {
            handler.expect(count, promise)
            channel.writeAndFlush(write).whenFailure { handler.failAll($0) }
        }
        return try await promise.futureResult.get()
    }

    /// Sends one command.
    func send(_ command: [RESPArgument]) async throws -> RESPValue { try await send([command])[0] }

    /// Closes the connection.
    func close() async { try? await channel.close() }
}

/// An argument of a command.
enum RESPArgument: Sendable, ExpressibleByStringLiteral {
    case text(String)
    case bytes([UInt8])

    init(stringLiteral value: String) { self = .text(value) }
}

/// Parses replies and hands them to the commands waiting, in order. Used on its channel's event loop only.
final class RESPHandler: ChannelInboundHandler, @unchecked Sendable {
    // @unchecked: every property is touched on the channel's event loop only.
    typealias InboundIn = ByteBuffer

    private var buffer = ByteBuffer()
    private var waiting: [(count: Int, replies: [RESPValue], promise: EventLoopPromise<[RESPValue]>)] = []
    private var head = 0

    func expect(_ count: Int, _ promise: EventLoopPromise<[RESPValue]>) {
        waiting.append((count, [], promise))
    }

    func failAll(_ error: any Error) {
        for index in head..<waiting.count { waiting[index].promise.fail(error) }
        waiting.removeAll()
        head = 0
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        buffer.writeBuffer(&incoming)
        while head < waiting.count, let value = Self.parse(&buffer) {
            waiting[head].replies.append(value)
            if waiting[head].replies.count == waiting[head].count {
                waiting[head].promise.succeed(waiting[head].replies)
                head += 1
            }
        }
        if head == waiting.count {
            waiting.removeAll(keepingCapacity: true)
            head = 0
        }
        buffer.discardReadBytes()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(ChannelError.ioOnClosedChannel)
    }

    /// One complete reply from the front of `buffer` (consumed), or nil when it has not all arrived.
    static func parse(_ buffer: inout ByteBuffer) -> RESPValue? {
        var copy = buffer
        guard let value = parseValue(&copy) else { return nil }
        buffer = copy
        return value
    }

    private static func line(_ buffer: inout ByteBuffer) -> String? {
        guard let view = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\r")),
            view + 1 < buffer.writerIndex
        else { return nil }
        let length = view - buffer.readerIndex
        let text = buffer.readString(length: length)
        buffer.moveReaderIndex(forwardBy: 2)
        return text
    }

    private static func parseValue(_ buffer: inout ByteBuffer) -> RESPValue? {
        guard let type = buffer.readInteger(as: UInt8.self), let text = line(&buffer) else { return nil }
        switch type {
        case UInt8(ascii: "+"): return .simple(text)
        case UInt8(ascii: "-"): return .error(text)
        case UInt8(ascii: ":"): return .integer(Int64(text) ?? 0)
        case UInt8(ascii: "$"):
            let length = Int(text) ?? -1
            guard length >= 0 else { return .bulk(nil) }
            guard buffer.readableBytes >= length + 2, let bytes = buffer.readBytes(length: length) else { return nil }
            buffer.moveReaderIndex(forwardBy: 2)
            return .bulk(bytes)
        case UInt8(ascii: "*"):
            let count = Int(text) ?? -1
            guard count >= 0 else { return .array(nil) }
            var items: [RESPValue] = []
            items.reserveCapacity(count)
            for _ in 0..<count {
                guard let item = parseValue(&buffer) else { return nil }
                items.append(item)
            }
            return .array(items)
        default: return .error("unreadable reply (type byte \(type))")
        }
    }
}
