import Logging
import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP2
import OTLPDecoding
import Testing
@testable import OTLPGRPCReceiver

/// The connection handler on its own, fed HTTP/2 frames as NIOHTTP2Handler delivers them:
/// what it writes back for calls it refuses before running a method, and its windows.
/// (Calls that run a method are covered end to end by the e2e conformance tests.)
private final class Harness {
    let channel = EmbeddedChannel()
    let refusals = RefusalLog()
    let windowBytes = 1 << 20

    init(maxMessageBytes: Int = 1_000, requestTimeout: TimeAmount = .seconds(30), maxBufferedBytes: Int = 1 << 30) throws {
        let routes = GRPCUnaryRoutes(["/p.S/Export": { _ in .success([]) }], refused: { [refusals] in refusals.add($0) })
        try channel.pipeline.syncOperations.addHandler(GRPCConnectionHandler(
            routes: routes, configuration: .init(maxMessageBytes: maxMessageBytes, windowBytes: windowBytes, requestTimeout: requestTimeout,
                                                 maxBufferedBytes: maxBufferedBytes),
            logger: Logger(label: "test")))
    }

    func send(_ stream: Int, _ payload: HTTP2Frame.FramePayload) throws {
        try channel.writeInbound(HTTP2Frame(streamID: HTTP2StreamID(stream), payload: payload))
    }

    func headers(_ stream: Int, path: String = "/p.S/Export", endStream: Bool = false) throws {
        try send(stream, .headers(.init(headers: [":method": "POST", ":path": path, "content-type": "application/grpc"], endStream: endStream)))
    }

    /// Frames written so far.
    func written() throws -> [HTTP2Frame] {
        var out: [HTTP2Frame] = []
        while let f = try channel.readOutbound(as: HTTP2Frame.self) { out.append(f) }
        return out
    }
}

final class RefusalLog: @unchecked Sendable {
    private var codes: [Int32] = []
    func add(_ s: GRPCStatus) { codes.append(s.code) }
    var all: [Int32] { codes }
}

private func grpcStatus(_ frames: [HTTP2Frame], stream: Int) -> (status: String?, message: String?, endStream: Bool)? {
    for f in frames where f.streamID == HTTP2StreamID(stream) {
        if case .headers(let h) = f.payload, let s = h.headers.first(name: "grpc-status") {
            return (s, h.headers.first(name: "grpc-message"), h.endStream)
        }
    }
    return nil
}

private func resets(_ frames: [HTTP2Frame], stream: Int) -> [HTTP2ErrorCode] {
    frames.compactMap { f in
        guard f.streamID == HTTP2StreamID(stream), case .rstStream(let code) = f.payload else { return nil }
        return code
    }
}

@Test func theFirstFrameOpensTheConnectionWindow() throws {
    let h = try Harness()
    try h.send(0, .settings(.settings([])))
    let frames = try h.written()
    guard case .windowUpdate(let increment)? = frames.first?.payload else { Issue.record("no WINDOW_UPDATE: \(frames)"); return }
    #expect(frames.first?.streamID == .rootStream && increment == h.windowBytes - 65_535)
}

@Test func aMessageOverTheLimitIsRefusedBeforeItArrivesAndTheStreamIsReset() throws {
    let h = try Harness(maxMessageBytes: 1_000)
    try h.headers(1)
    var prefix = ByteBuffer()
    prefix.writeInteger(UInt8(0))
    prefix.writeInteger(UInt32(5_000_000))
    try h.send(1, .data(.init(data: .byteBuffer(prefix))))
    let frames = try h.written()
    let answer = grpcStatus(frames, stream: 1)
    #expect(answer?.status == "8" && answer?.endStream == true, "\(frames)")
    #expect(answer?.message == "request message is 5000000 bytes; the limit is 1000")
    #expect(resets(frames, stream: 1) == [.noError])
    #expect(h.refusals.all == [RPCCode.resourceExhausted])
    // What the client still sends is dropped, and not answered again.
    var more = ByteBuffer(bytes: [UInt8](repeating: 7, count: 100))
    try h.send(1, .data(.init(data: .byteBuffer(more), endStream: true)))
    more.clear()
    #expect(try h.written().isEmpty)
}

@Test func unknownMethodsAreUnimplementedAndNotCountedAsRefusedExports() throws {
    let h = try Harness()
    try h.headers(3, path: "/p.S/Query", endStream: true)
    let frames = try h.written()
    #expect(grpcStatus(frames, stream: 3)?.status == "12")
    #expect(resets(frames, stream: 3).isEmpty)  // the client had finished
    #expect(h.refusals.all.isEmpty)
}

@Test func aCallWhoseRequestTricklesIsCutOff() throws {
    let h = try Harness(requestTimeout: .seconds(2))
    try h.headers(5)
    var part = ByteBuffer(bytes: [0, 0, 0, 0, 9, 1])
    try h.send(5, .data(.init(data: .byteBuffer(part))))
    part.clear()
    _ = try h.written()
    h.channel.embeddedEventLoop.advanceTime(by: .seconds(1))
    #expect(grpcStatus(try h.written(), stream: 5) == nil)
    h.channel.embeddedEventLoop.advanceTime(by: .seconds(2))
    let frames = try h.written()
    #expect(grpcStatus(frames, stream: 5)?.status == "4", "\(frames)")
    #expect(resets(frames, stream: 5) == [.noError])
}

@Test func windowsAreToppedUpOnlyWhileARequestIsRead() throws {
    let h = try Harness()
    try h.headers(7)
    _ = try h.written()
    h.channel.pipeline.fireUserInboundEventTriggered(NIOHTTP2WindowUpdatedEvent(streamID: .rootStream, inboundWindowSize: 100, outboundWindowSize: 0))
    h.channel.pipeline.fireUserInboundEventTriggered(NIOHTTP2WindowUpdatedEvent(streamID: 7, inboundWindowSize: 200, outboundWindowSize: 0))
    h.channel.pipeline.fireUserInboundEventTriggered(NIOHTTP2WindowUpdatedEvent(streamID: 9, inboundWindowSize: 200, outboundWindowSize: 0))  // no such call
    h.channel.pipeline.fireUserInboundEventTriggered(NIOHTTP2WindowUpdatedEvent(streamID: .rootStream, inboundWindowSize: h.windowBytes - 1, outboundWindowSize: 0))
    h.channel.flush()
    let updates: [(HTTP2StreamID, Int)] = try h.written().compactMap { f in
        guard case .windowUpdate(let increment) = f.payload else { return nil }
        return (f.streamID, increment)
    }
    #expect(updates.map(\.0) == [.rootStream, 7] && updates.map(\.1) == [h.windowBytes - 100, h.windowBytes - 200], "\(updates)")
}

@Test func aConnectionHoldingTooManyRequestBytesGetsNoMoreWindowUntilACallEnds() throws {
    let h = try Harness(maxMessageBytes: 10_000, maxBufferedBytes: 1_000)
    func rootUpdates() throws -> [Int] {
        try h.written().compactMap { f in
            guard f.streamID == .rootStream, case .windowUpdate(let increment) = f.payload else { return nil }
            return increment
        }
    }
    for stream in [1, 3] {
        try h.headers(stream)
        var part = ByteBuffer(bytes: [0, 0, 0, 0x13, 0x88] + [UInt8](repeating: 1, count: 600))  // 600 of 5,000 bytes
        try h.send(stream, .data(.init(data: .byteBuffer(part))))
        part.clear()
    }
    _ = try h.written()
    // 1,210 bytes buffered, over the 1,000 allowed: the connection's window stays as it is.
    h.channel.pipeline.fireUserInboundEventTriggered(NIOHTTP2WindowUpdatedEvent(streamID: .rootStream, inboundWindowSize: 300, outboundWindowSize: 0))
    h.channel.flush()
    #expect(try rootUpdates().isEmpty)
    // One call goes away (the client reset it): 605 bytes left, and the window is topped up.
    h.channel.pipeline.fireUserInboundEventTriggered(StreamClosedEvent(streamID: 1, reason: .cancel))
    #expect(try rootUpdates() == [h.windowBytes - 300])
}

@Test func aConnectionErrorClosesTheConnectionAndAStreamErrorDoesNot() throws {
    // NIOHTTP2Handler reports a connection error after sending GOAWAY, and leaves the
    // close to the pipeline: a connection left open kept a stopping daemon waiting.
    let h = try Harness()
    try h.channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 4317)).wait()
    h.channel.pipeline.fireErrorCaught(NIOHTTP2Errors.streamError(streamID: 3, baseError: NIOHTTP2Errors.createdStreamAfterGoaway()))
    #expect(h.channel.isActive)
    h.channel.pipeline.fireErrorCaught(NIOHTTP2Errors.ioOnClosedConnection())
    #expect(!h.channel.isActive)
}

@Test func aCallRefusedMidMessageGivesBackAWithheldConnectionWindow() throws {
    let h = try Harness(maxMessageBytes: 10_000, maxBufferedBytes: 1_000)
    for stream in [1, 3] {
        try h.headers(stream)
        var part = ByteBuffer(bytes: [0, 0, 0, 0x13, 0x88] + [UInt8](repeating: 1, count: 600))  // 600 of 5,000 bytes
        try h.send(stream, .data(.init(data: .byteBuffer(part))))
        part.clear()
    }
    h.channel.pipeline.fireUserInboundEventTriggered(NIOHTTP2WindowUpdatedEvent(streamID: .rootStream, inboundWindowSize: 300, outboundWindowSize: 0))
    h.channel.flush()
    _ = try h.written()
    // Stream 1 sends past its message's end: refused, and its 605 bytes no longer count.
    var tooMuch = ByteBuffer(bytes: [UInt8](repeating: 2, count: 4_500))
    try h.send(1, .data(.init(data: .byteBuffer(tooMuch))))
    tooMuch.clear()
    let frames = try h.written()
    #expect(grpcStatus(frames, stream: 1)?.status == "13", "\(frames)")
    let rootUpdates: [Int] = frames.compactMap { f in
        guard f.streamID == .rootStream, case .windowUpdate(let increment) = f.payload else { return nil }
        return increment
    }
    #expect(rootUpdates == [h.windowBytes - 300], "\(frames)")
}
