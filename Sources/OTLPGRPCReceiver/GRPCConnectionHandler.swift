import HTTPServing
import Logging
import NIOCore
import NIOHPACK
import NIOHTTP2
import OTLPDecoding
import ZlibCodec

/// A unary call's request message as the method gets it: the received bytes where they
/// are, or the decompressed copy.
public struct GRPCRequestBytes: Sendable {
    enum Storage: Sendable {
        case received(ByteBuffer)
        case decompressed([UInt8])
    }
    let storage: Storage

    /// The message's size (decompressed).
    public var count: Int {
        switch storage {
        case .received(let b): b.readableBytes
        case .decompressed(let a): a.count
        }
    }

    public func withUnsafeBytes<T>(_ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T {
        switch storage {
        case .received(let b): try b.withUnsafeReadableBytes(body)
        case .decompressed(let a): try a.withUnsafeBytes(body)
        }
    }
}

/// The unary methods a listener serves, by `/package.Service/Method` path. A method
/// answers the response message's bytes, or a status.
public struct GRPCUnaryRoutes: Sendable {
    public typealias Method = @Sendable (GRPCRequestBytes) async -> Result<[UInt8], GRPCStatus>
    let methods: [String: Method]
    /// The served paths, for checking each call's `:path` without building the set per call.
    let paths: Set<String>
    /// Told of every call on a served path that is not answered OK (for /metrics).
    let refused: @Sendable (GRPCStatus) -> Void

    public init(_ methods: [String: Method], refused: @escaping @Sendable (GRPCStatus) -> Void = { _ in }) {
        self.methods = methods
        self.paths = Set(methods.keys)
        self.refused = refused
    }
}

/// Serves unary gRPC calls on one HTTP/2 connection, directly on the connection's frames
/// (no stream channels): it collects each stream's request message, runs the method in a
/// task, and writes the response's headers, message and trailers. It keeps the inbound
/// flow-control windows (connection and streams) near `windowBytes`, stops reading a call
/// as soon as it can be refused, and cuts off calls whose request does not arrive in time.
final class GRPCConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    struct Configuration: Sendable {
        var maxMessageBytes: Int
        /// Inbound window kept open for the connection and for each stream being read.
        var windowBytes: Int
        /// A call's request must arrive whole within this of its headers.
        var requestTimeout: TimeAmount
        /// Request bytes buffered on one connection (calls still being read) past which
        /// its window is not topped up: a client cannot make it hold more than this plus
        /// one window, however many streams it opens.
        var maxBufferedBytes: Int
    }

    enum Phase {
        case reading(GRPCRequestMessage)
        /// The method is running.
        case answering
        /// The response went out (or the call was refused); later frames are dropped.
        case answered
    }

    struct Call {
        var phase: Phase
        var method: GRPCUnaryRoutes.Method?
        let started: NIODeadline
    }

    let routes: GRPCUnaryRoutes
    let configuration: Configuration
    let logger: Logger
    private var calls: [HTTP2StreamID: Call] = [:]
    private var context: ChannelHandlerContext?
    private var connectionWindowOpened = false
    /// Bytes held by calls being read, and the connection window left unreplenished
    /// while that was over `maxBufferedBytes`.
    private var bufferedBytes = 0
    private var withheldConnectionWindow: Int?
    private var sweep: RepeatedTask?
    /// Calls run on the connection's loop while their message is small enough
    /// (`EventLoopTaskExecutor.suits`): decoding and handing on spans is short and never
    /// blocks, and the loop then needs no wake-up for the answer.
    private var executor: EventLoopTaskExecutor?

    init(routes: GRPCUnaryRoutes, configuration: Configuration, logger: Logger) {
        self.routes = routes
        self.configuration = configuration
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        executor = EventLoopTaskExecutor(context.eventLoop)
        let interval = TimeAmount.nanoseconds(max(configuration.requestTimeout.nanoseconds / 4, 1_000_000))
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        sweep = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in handler.value.cutOffSlowCalls() }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        sweep?.cancel()
        sweep = nil
        self.context = nil
        calls.removeAll()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        if !connectionWindowOpened {
            // The connection's window starts at the protocol's 64 KiB; open it to ours.
            connectionWindowOpened = true
            let increment = configuration.windowBytes - 65_535
            if increment > 0 { context.write(wrapOutboundOut(HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: increment))), promise: nil) }
        }
        let id = frame.streamID
        switch frame.payload {
        case .headers(let headers):
            if calls[id] == nil {
                open(id, headers.headers, endStream: headers.endStream)
            } else if headers.endStream {
                complete(id)  // the client's trailers end its side
            }
        case .data(let payload):
            guard case .reading(var message)? = calls[id]?.phase, case .byteBuffer(var bytes) = payload.data else { return }
            calls[id]!.phase = .answering  // so the message's buffer is not shared while it grows
            let before = message.bytes.readableBytes
            do {
                try message.append(&bytes, reserveLimit: configuration.windowBytes)
            } catch {
                released(before)
                refuse(id, error, clientDone: payload.endStream)
                return
            }
            bufferedBytes += message.bytes.readableBytes - before
            calls[id]!.phase = .reading(message)
            if payload.endStream { complete(id) }
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
        case let window as NIOHTTP2WindowUpdatedEvent:
            keepWindowOpen(window)
        case let closed as StreamClosedEvent:
            if let call = calls.removeValue(forKey: closed.streamID), case .reading(let message) = call.phase {
                released(message.bytes.readableBytes)
            }
        default:
            break
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// NIOHTTP2Handler has already answered the error (RST_STREAM for a stream's, GOAWAY
    /// for the connection's) but leaves closing the connection to the pipeline: this
    /// handler, at its end, closes it on a connection error.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let stream = error as? NIOHTTP2Errors.StreamError {
            logger.debug("OTLP/gRPC stream error", metadata: ["stream": "\(stream.streamID)", "error": "\(stream.baseError)"])
        } else {
            logger.debug("OTLP/gRPC connection error", metadata: ["error": "\(error)"])
            context.close(promise: nil)
        }
    }

    // MARK: Calls

    /// The event loop's clock (virtual on a test loop).
    private var now: NIODeadline { context?.eventLoop.now ?? .now() }

    private func open(_ id: HTTP2StreamID, _ headers: HPACKHeaders, endStream: Bool) {
        switch GRPCRequestHead.parse(headers, servedPaths: routes.paths) {
        case .failure(let refusal):
            // Recorded before the answer: the stream's close (which forgets the call) may
            // be reported while the answer is written.
            calls[id] = Call(phase: .answered, method: nil, started: now)
            if routes.methods[headers.first(name: ":path") ?? ""] != nil { routes.refused(refusal.status) }
            write(id, GRPCHeaders.trailersOnly(refusal.status, httpStatus: refusal.httpStatus, acceptEncoding: refusal.acceptEncoding), endStream: true)
            if !endStream { write(id, .rstStream(.noError)) }
        case .success(let head):
            calls[id] = Call(phase: .reading(GRPCRequestMessage(maxMessageBytes: configuration.maxMessageBytes, compression: head.compression)),
                             method: routes.methods[head.path]!, started: now)
            if endStream { complete(id) }
        }
    }

    /// The client's side has ended: run the method on the message.
    private func complete(_ id: HTTP2StreamID) {
        guard let call = calls[id], let method = call.method, let eventLoop = context?.eventLoop,
              case .reading(let message) = call.phase else { return }
        let body: ByteBuffer
        do {
            body = try message.finish()
        } catch {
            released(message.bytes.readableBytes)
            refuse(id, error, clientDone: true)
            return
        }
        calls[id]!.phase = .answering
        released(message.bytes.readableBytes)
        start(id, method, body, message.compressed ? message.compression : .identity, on: eventLoop)
    }

    private func start(_ id: HTTP2StreamID, _ method: @escaping GRPCUnaryRoutes.Method, _ body: ByteBuffer, _ compression: GRPCCompression,
                       on eventLoop: any EventLoop) {
        let job = UnaryJob(id: id, method: method, body: body, compression: compression, limit: configuration.maxMessageBytes,
                           handler: NIOLoopBound(self, eventLoop: eventLoop))
        if let executor, EventLoopTaskExecutor.suits(messageBytes: body.readableBytes, compressed: compression != .identity) {
            Task(executorPreference: executor) { await job.run() }
        } else {
            Task { await job.run() }
        }
    }

    fileprivate func answer(_ id: HTTP2StreamID, _ result: Result<[UInt8], GRPCStatus>) {
        guard let call = calls[id], case .answering = call.phase, let context else { return }  // the client reset the stream
        calls[id]!.phase = .answered
        switch result {
        case .success(let response):
            write(id, GRPCHeaders.response(), endStream: false)
            write(id, .data(.init(data: .byteBuffer(GRPCHeaders.message(response, allocator: context.channel.allocator)))))
            write(id, GRPCHeaders.trailers(GRPCStatus(code: RPCCode.ok, message: "")), endStream: true)
        case .failure(let status):
            routes.refused(status)
            write(id, GRPCHeaders.trailersOnly(status), endStream: true)
        }
        context.flush()
    }

    /// Answers a call before its request was read whole: trailers now, and (when the
    /// client is still sending) RST_STREAM NO_ERROR so it stops (PROTOCOL-HTTP2.md).
    private func refuse(_ id: HTTP2StreamID, _ status: GRPCStatus, clientDone: Bool) {
        calls[id]?.phase = .answered
        routes.refused(status)
        write(id, GRPCHeaders.trailersOnly(status), endStream: true)
        if !clientDone { write(id, .rstStream(.noError)) }
        context?.flush()
    }

    fileprivate func cutOffSlowCalls() {
        let now = self.now
        let timeout = configuration.requestTimeout
        for (id, call) in calls {
            guard case .reading(let message) = call.phase, call.started + timeout < now else { continue }
            released(message.bytes.readableBytes)
            refuse(id, GRPCStatus(code: RPCCode.deadlineExceeded,
                                  message: "the request message did not arrive within \(timeout.nanoseconds / 1_000_000_000) s of the call's headers"),
                   clientDone: false)
        }
    }

    static func decompress(_ body: ByteBuffer, _ compression: GRPCCompression, limit: Int) -> Result<GRPCRequestBytes, GRPCStatus> {
        let format: Zlib.Format
        switch compression {
        case .identity: return .success(GRPCRequestBytes(storage: .received(body)))
        case .gzip: format = .gzip
        case .deflate: format = .zlib
        }
        do {
            let bytes = try body.withUnsafeReadableBytes { raw throws(ZlibError) in try Zlib.decompress(raw, format: format, limit: limit) }
            return .success(GRPCRequestBytes(storage: .decompressed(bytes)))
        } catch where error.code == .outputLimitExceeded {
            return .failure(GRPCStatus(code: RPCCode.resourceExhausted, message: "request message decompresses to more than the limit of \(limit) bytes"))
        } catch {
            return .failure(GRPCStatus(code: RPCCode.invalidArgument, message: "\(compression) request message cannot be decompressed: \(error.message)"))
        }
    }

    // MARK: Frames

    private func write(_ id: HTTP2StreamID, _ headers: HPACKHeaders, endStream: Bool) {
        write(id, .headers(.init(headers: headers, endStream: endStream)))
    }

    private func write(_ id: HTTP2StreamID, _ payload: HTTP2Frame.FramePayload) {
        context?.write(wrapOutboundOut(HTTP2Frame(streamID: id, payload: payload)), promise: nil)
    }

    /// Tops a window back up to `windowBytes` once half of it is used: the connection's
    /// always, a stream's while its request is being read.
    private func keepWindowOpen(_ event: NIOHTTP2WindowUpdatedEvent) {
        guard let inbound = event.inboundWindowSize, inbound <= configuration.windowBytes / 2 else { return }
        if event.streamID != .rootStream {
            guard case .reading? = calls[event.streamID]?.phase else { return }
        } else if bufferedBytes > configuration.maxBufferedBytes {
            withheldConnectionWindow = inbound
            return
        }
        write(event.streamID, .windowUpdate(windowSizeIncrement: configuration.windowBytes - inbound))
    }

    /// A call stopped being read: its bytes no longer count, and a withheld connection
    /// window is topped up once the connection is back under its limit.
    private func released(_ bytes: Int) {
        bufferedBytes -= bytes
        guard let inbound = withheldConnectionWindow, bufferedBytes <= configuration.maxBufferedBytes else { return }
        withheldConnectionWindow = nil
        write(.rootStream, .windowUpdate(windowSizeIncrement: configuration.windowBytes - inbound))
        context?.flush()
    }
}

/// One call's method run off the event loop; the answer goes back to the connection's loop.
private struct UnaryJob: Sendable {
    let id: HTTP2StreamID
    let method: GRPCUnaryRoutes.Method
    let body: ByteBuffer
    let compression: GRPCCompression
    let limit: Int
    let handler: NIOLoopBound<GRPCConnectionHandler>

    func run() async {
        let result: Result<[UInt8], GRPCStatus>
        switch GRPCConnectionHandler.decompress(body, compression, limit: limit) {
        case .success(let request): result = await method(request)
        case .failure(let status): result = .failure(status)
        }
        let handler = self.handler
        let id = self.id
        handler.eventLoop.runOrExecute { handler.value.answer(id, result) }
    }
}
