import Foundation
import NIOCore
import NIOHPACK
import OTLPDecoding
import Testing
@testable import OTLPGRPCReceiver

private func prefixed(_ payload: [UInt8], compressed: Bool = false, declared: Int? = nil) -> ByteBuffer {
    var b = ByteBuffer()
    b.writeInteger(UInt8(compressed ? 1 : 0))
    b.writeInteger(UInt32(declared ?? payload.count))
    b.writeBytes(payload)
    return b
}

@Test func aMessageSplitAcrossFramesIsJoined() throws {
    var whole = prefixed(Array(0..<200))
    var message = GRPCRequestMessage(maxMessageBytes: 1_000, compression: .identity)
    var first = whole.readSlice(length: 3)!   // inside the prefix
    var second = whole.readSlice(length: 100)!
    try message.append(&first, reserveLimit: 1 << 20)
    try message.append(&second, reserveLimit: 1 << 20)
    try message.append(&whole, reserveLimit: 1 << 20)
    let body = try message.finish()
    #expect(Array(body.readableBytesView) == Array(0..<200))
    #expect(!message.compressed)
}

@Test func aMessageOverTheLimitIsRefusedFromItsPrefix() {
    var message = GRPCRequestMessage(maxMessageBytes: 1_000, compression: .identity)
    var prefixOnly = prefixed([], declared: 1_001)
    #expect(throws: GRPCStatus(code: RPCCode.resourceExhausted, message: "request message is 1001 bytes; the limit is 1000")) {
        try message.append(&prefixOnly, reserveLimit: 1 << 20)
    }
    var gzip = GRPCRequestMessage(maxMessageBytes: 1_000, compression: .gzip)
    var compressed = prefixed([], compressed: true, declared: 5_000)
    do {
        try gzip.append(&compressed, reserveLimit: 1 << 20)
        Issue.record("a compressed message longer than the limit was accepted")
    } catch {
        #expect(error.code == RPCCode.resourceExhausted && error.message.contains("compressed"), "\(error)")
    }
}

@Test func malformedStreamsAreRefusedWithTheReason() throws {
    // A second message on a unary call.
    var two = prefixed([1, 2, 3])
    var again = prefixed([4])
    two.writeBuffer(&again)
    var message = GRPCRequestMessage(maxMessageBytes: 1_000, compression: .identity)
    #expect(throws: GRPCStatus.self) { try message.append(&two, reserveLimit: 1 << 20) }

    // The compressed flag without a grpc-encoding.
    var flagged = prefixed([1], compressed: true)
    var plain = GRPCRequestMessage(maxMessageBytes: 1_000, compression: .identity)
    do {
        try plain.append(&flagged, reserveLimit: 1 << 20)
        Issue.record("a compressed message without grpc-encoding was accepted")
    } catch {
        #expect(error.code == RPCCode.internal && error.message.contains("grpc-encoding"))
    }

    // The stream ends inside the message, or without one.
    var short = prefixed([1, 2], declared: 10)
    var truncated = GRPCRequestMessage(maxMessageBytes: 1_000, compression: .identity)
    try truncated.append(&short, reserveLimit: 1 << 20)
    #expect(throws: GRPCStatus(code: RPCCode.internal, message: "request message truncated: the stream ended after 2 bytes of 10")) {
        try truncated.finish()
    }
    let empty = GRPCRequestMessage(maxMessageBytes: 1_000, compression: .identity)
    do {
        _ = try empty.finish()
        Issue.record("a call without a message was accepted")
    } catch {
        #expect(error.code == RPCCode.invalidArgument)
    }
}

@Test func anEmptyMessageIsAMessage() throws {
    var message = GRPCRequestMessage(maxMessageBytes: 1_000, compression: .identity)
    var zero = prefixed([])
    try message.append(&zero, reserveLimit: 1 << 20)
    #expect(try message.finish().readableBytes == 0)
}

@Test func requestHeadersAreChecked() {
    let served: Set<String> = ["/p.S/Export"]
    func head(_ extra: [(String, String)], method: String = "POST", path: String = "/p.S/Export", contentType: String = "application/grpc") -> HPACKHeaders {
        HPACKHeaders([(":method", method), (":path", path), ("content-type", contentType)] + extra)
    }
    #expect(GRPCRequestHead.parse(head([]), servedPaths: served) == .success(GRPCRequestHead(path: "/p.S/Export", compression: .identity)))
    #expect(GRPCRequestHead.parse(head([("grpc-encoding", "gzip")], contentType: "application/grpc+proto"), servedPaths: served)
            == .success(GRPCRequestHead(path: "/p.S/Export", compression: .gzip)))

    guard case .failure(let get) = GRPCRequestHead.parse(head([], method: "GET"), servedPaths: served) else { Issue.record("GET accepted"); return }
    #expect(get.httpStatus == 405)
    guard case .failure(let json) = GRPCRequestHead.parse(head([], contentType: "application/json"), servedPaths: served) else { Issue.record("JSON accepted"); return }
    #expect(json.httpStatus == 415 && json.status.message.contains("application/json"))
    guard case .failure(let other) = GRPCRequestHead.parse(head([], path: "/p.S/Query"), servedPaths: served) else { Issue.record("unknown method accepted"); return }
    #expect(other.httpStatus == 200 && other.status.code == RPCCode.unimplemented && other.status.message.contains("/p.S/Query"))
    guard case .failure(let snappy) = GRPCRequestHead.parse(head([("grpc-encoding", "snappy")]), servedPaths: served) else { Issue.record("snappy accepted"); return }
    #expect(snappy.status.code == RPCCode.unimplemented && snappy.acceptEncoding)
}

@Test func statusDetailsAreEncodedForHeaders() {
    #expect(GRPCHeaders.percentEncoded("50% done\nnaïve") == "50%25 done%0Ana%C3%AFve")
    for n in 0..<10 {
        let bytes = (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 97 &+ 13) }
        #expect(GRPCHeaders.base64(bytes) == Data(bytes).base64EncodedString())
    }
    let trailers = GRPCHeaders.trailersOnly(GRPCStatus(code: 14, message: "busy", binaryMetadata: [("x-bin", [0xFF, 0x00])]))
    #expect(trailers.first(name: ":status") == "200" && trailers.first(name: "grpc-status") == "14")
    #expect(trailers.first(name: "grpc-message") == "busy" && trailers.first(name: "x-bin") == "/wA=")
}
