import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

/// A request as handlers see it: the whole body collected (within the handler's limit).
public struct HTTPRequest: Sendable {
    public var method: HTTPMethod
    public var uri: String
    public var headers: HTTPHeaders
    public var body: ByteBuffer

    public init(method: HTTPMethod, uri: String, headers: HTTPHeaders = [:], body: ByteBuffer = ByteBuffer()) {
        self.method = method
        self.uri = uri
        self.headers = headers
        self.body = body
    }

    public var path: String { String(uri.split(separator: "?", maxSplits: 1).first ?? "") }

    /// Query parameters, percent-decoded; the last value of a repeated name wins.
    public var queryItems: [String: String] {
        guard let q = uri.split(separator: "?", maxSplits: 1).dropFirst().first else { return [:] }
        var out: [String: String] = [:]
        for pair in q.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1)
            out[Self.percentDecode(kv[0])] = kv.count > 1 ? Self.percentDecode(kv[1]) : ""
        }
        return out
    }

    static func percentDecode(_ s: Substring) -> String {
        var bytes: [UInt8] = []
        var it = Array(s.utf8)[...]
        while let c = it.first {
            it = it.dropFirst()
            if c == UInt8(ascii: "+") { bytes.append(UInt8(ascii: " ")); continue }
            if c == UInt8(ascii: "%"), it.count >= 2, let h = hex(it[it.startIndex]), let l = hex(it[it.startIndex + 1]) {
                bytes.append(h << 4 | l)
                it = it.dropFirst(2)
                continue
            }
            bytes.append(c)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: c - 48
        case 65...70: c - 55
        case 97...102: c - 87
        default: nil
        }
    }
}

public struct HTTPResponse: Sendable {
    public var status: HTTPResponseStatus
    public var headers: HTTPHeaders
    public var body: [UInt8]
    /// Close the connection after this response.
    public var close: Bool

    public init(status: HTTPResponseStatus, headers: HTTPHeaders = [:], body: [UInt8] = [], close: Bool = false) {
        self.status = status
        self.headers = headers
        self.body = body
        self.close = close
    }

    public static func text(_ status: HTTPResponseStatus, _ text: String, contentType: String = "text/plain; charset=utf-8") -> HTTPResponse {
        HTTPResponse(status: status, headers: ["Content-Type": contentType], body: Array(text.utf8))
    }
}

/// What a server asks of the code behind it.
public protocol HTTPHandler: Sendable {
    /// Largest request body accepted; larger ones get `bodyTooLarge`.
    var maxBodySize: Int { get }
    func handle(_ request: HTTPRequest) async -> HTTPResponse
    /// The response for a body over `maxBodySize` (the connection is then closed).
    func bodyTooLarge(_ head: HTTPRequestHead) -> HTTPResponse
    /// Handle this request on the connection's event loop rather than the concurrency
    /// pool: for work that is short and never blocks (decoding and handing on a batch of
    /// spans), which the loop's other connections can afford to wait for.
    func handlesOnEventLoop(_ request: HTTPRequest) -> Bool
}

extension HTTPHandler {
    public func handlesOnEventLoop(_ request: HTTPRequest) -> Bool { false }
}

/// Timeouts against slow clients: a connection that sends nothing for `idleTimeout`
/// (between requests or in the middle of one) is closed.
public struct HTTPServerConfiguration: Sendable {
    public var host: String
    public var port: Int
    public var idleTimeout: TimeAmount = .seconds(30)
    /// A request (headers and body) must arrive within this, counted from its first byte:
    /// a client trickling bytes is cut off. (A silent connection is `idleTimeout`'s.)
    public var readTimeout: TimeAmount = .seconds(30)
    public var backlog: Int32 = 256

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `HOST:PORT` (`[::1]:4318` for IPv6).
    public init(address: String) throws {
        let (h, p) = try Self.split(address)
        self.init(host: h, port: p)
    }

    static func split(_ address: String) throws -> (String, Int) {
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]), (0...65535).contains(port) else {
            throw HTTPServerError("address '\(address)' is not HOST:PORT")
        }
        var host = String(address[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host.isEmpty ? "127.0.0.1" : host, port)
    }
}

public struct HTTPServerError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

/// An HTTP/1.1 server (keep-alive, pipelining) over SwiftNIO: each connection's requests
/// are collected on its event loop by `HTTPConnectionHandler`, each handled in a task;
/// graceful shutdown finishes responses in flight and closes idle connections.
public final class HTTPServer: Service, Sendable {
    public let name: String
    let configuration: HTTPServerConfiguration
    let handler: any HTTPHandler
    let logger: Logger
    let onBound: @Sendable (SocketAddress) async -> Void
    let connections = ConnectionTracker()

    public init(name: String, configuration: HTTPServerConfiguration, handler: any HTTPHandler, logger: Logger,
                onBound: @escaping @Sendable (SocketAddress) async -> Void = { _ in }) {
        self.name = name
        self.configuration = configuration
        self.handler = handler
        self.logger = logger
        self.onBound = onBound
    }

    public func run() async throws {
        let idle = configuration.idleTimeout
        let readTimeout = configuration.readTimeout
        let handler = self.handler
        let connections = self.connections
        let logger = self.logger
        let server = try await ServerBootstrap.spanLedgerListener(backlog: configuration.backlog)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    guard connections.opened(channel) else { throw ChannelError.ioOnClosedChannel }
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(IdleStateHandler(readTimeout: idle))
                    try sync.addHandler(CloseOnIdleHandler())
                    try sync.addHandler(RequestDeadlineHandler(timeout: readTimeout))
                    try sync.configureHTTPServerPipeline(withErrorHandling: true)
                    try sync.addHandler(HTTPConnectionHandler(handler: handler, connections: connections, logger: logger))
                }
            }
            .bind(host: configuration.host, port: configuration.port).get()
        if let address = server.localAddress {
            logger.info("\(name) listening", metadata: ["address": "\(address)"])
            await onBound(address)
        }
        await connections.serve(until: server) { shutdown in
            // Idle connections close now; busy ones after their response (`idle`).
            for (channel, busy) in shutdown where !busy { channel.close(promise: nil) }
        }
        logger.info("\(name) stopped")
    }
}

/// One connection's requests, one at a time (NIO's pipelining handler holds the next
/// until the response is written): the body is collected within the handler's limit on
/// the event loop, the request handled in a task, the response written back on the loop.
final class HTTPConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let handler: any HTTPHandler
    let connections: ConnectionTracker
    let logger: Logger
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()
    /// A response ending the connection was sent: what else arrives is dropped.
    private var closing = false
    /// The slow-loris deadline, disarmed when a request has arrived whole.
    private var deadline: RequestDeadlineHandler?
    /// Where requests are handled when the handler asks for its connection's loop.
    private var executor: EventLoopTaskExecutor?

    init(handler: any HTTPHandler, connections: ConnectionTracker, logger: Logger) {
        self.handler = handler
        self.connections = connections
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        deadline = try? context.pipeline.syncOperations.handler(type: RequestDeadlineHandler.self)
        executor = EventLoopTaskExecutor(context.eventLoop)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        let limit = handler.maxBodySize
        switch unwrapInboundIn(data) {
        case .head(let h):
            connections.busy(ObjectIdentifier(context.channel))
            head = h
            let length = h.headers.first(name: "content-length").flatMap(Int.init)
            if let length, length > limit {
                respond(context, handler.bodyTooLarge(h), head: h, keepAlive: false)
                return
            }
            // Room for the whole body at once: no regrowth (and copy) per chunk.
            body = context.channel.allocator.buffer(capacity: min(length ?? 0, limit))
        case .body(var chunk):
            guard let h = head else { return }
            if body.readableBytes + chunk.readableBytes > limit {
                respond(context, handler.bodyTooLarge(h), head: h, keepAlive: false)
                return
            }
            body.writeBuffer(&chunk)
        case .end:
            guard let h = head else { return }
            head = nil
            deadline?.disarm()
            let request = HTTPRequest(method: h.method, uri: h.uri, headers: h.headers, body: body)
            body = ByteBuffer()
            let job = HTTPRequestJob(handler: handler, request: request, head: h, connection: NIOLoopBound(self, eventLoop: context.eventLoop),
                                     context: NIOLoopBound(context, eventLoop: context.eventLoop))
            if let executor, handler.handlesOnEventLoop(request) {
                Task(executorPreference: executor) { await job.run() }
            } else {
                Task { await job.run() }
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("connection ended", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }

    fileprivate func respond(_ context: ChannelHandlerContext, _ response: HTTPResponse, head: HTTPRequestHead, keepAlive requested: Bool? = nil) {
        guard context.channel.isActive else { return }
        // Marking the connection idle also tells whether shutdown has begun (then it closes).
        let keepAlive = (requested ?? head.isKeepAlive) && !response.close && !connections.idle(ObjectIdentifier(context.channel))
        var headers = response.headers
        headers.replaceOrAdd(name: "Content-Length", value: String(response.body.count))
        headers.replaceOrAdd(name: "Connection", value: keepAlive ? "keep-alive" : "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: response.status, headers: headers))), promise: nil)
        if !response.body.isEmpty {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: response.body)))), promise: nil)
        }
        if keepAlive {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        } else {
            closing = true
            self.head = nil
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
        }
    }
}

/// One request handled off the event loop; the response goes back to the connection's loop.
private struct HTTPRequestJob: Sendable {
    let handler: any HTTPHandler
    let request: HTTPRequest
    let head: HTTPRequestHead
    let connection: NIOLoopBound<HTTPConnectionHandler>
    let context: NIOLoopBound<ChannelHandlerContext>

    func run() async {
        let response = await handler.handle(request)
        let connection = self.connection, context = self.context, head = self.head
        connection.eventLoop.runOrExecute { connection.value.respond(context.value, response, head: head) }
    }
}

/// Closes a connection on which nothing was read for the idle timeout (slow clients).
final class CloseOnIdleHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = NIOAny

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let e = event as? IdleStateHandler.IdleStateEvent, e == .read {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}

/// Closes a connection whose request does not arrive in full within `timeout` of its
/// first byte (slow-loris): armed by the first bytes read while no request is pending,
/// disarmed when the server has the whole request.
final class RequestDeadlineHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    let timeout: TimeAmount
    var deadline: Scheduled<Void>?

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if deadline == nil {
            let channel = context.channel
            deadline = context.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
        }
        context.fireChannelRead(data)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
    }

    func disarm() {
        deadline?.cancel()
        deadline = nil
    }
}
