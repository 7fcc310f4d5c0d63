import Foundation
import HTTPServing
import LoadGenerator
import Logging
import NIOCore
import NIOHTTP1
import Testing

/// A request body reaches the handler byte for byte however it arrives: in one read, in
/// pieces read apart, chunked, or next to another request in the same read; and one over
/// the limit is refused even when no piece of it is.

/// Answers with the body it was handed.
private struct Echo: HTTPHandler {
    let maxBodySize = 1 << 20
    func handle(_ request: HTTPRequest) async -> HTTPResponse {
        HTTPResponse(status: .ok, body: Array(request.body.readableBytesView))
    }
    func bodyTooLarge(_ head: HTTPRequestHead) -> HTTPResponse { .text(.payloadTooLarge, "too large") }
}

/// Bytes that differ from offset to offset (a misplaced piece changes them).
private func pattern(_ count: Int, seed: UInt64) -> [UInt8] {
    var x = seed
    return (0..<count).map { _ in
        x = x &* 6364136223846793005 &+ 1442695040888963407
        return UInt8(truncatingIfNeeded: x >> 56)
    }
}

/// Runs `client` against a fresh echo server. The client's blocking socket calls run on a
/// thread of their own: on the concurrency pool they could hold every thread the server's
/// handler tasks need.
private func withEchoServer(_ client: @escaping @Sendable (Int) throws -> [(status: Int, body: [UInt8])]) async throws
    -> [(status: Int, body: [UInt8])] {
    let bound = AsyncStream.makeStream(of: Int.self)
    let server = HTTPServer(name: "echo", configuration: HTTPServerConfiguration(host: "127.0.0.1", port: 0), handler: Echo(),
                            logger: Logger(label: "test"), onBound: { bound.continuation.yield($0.port ?? 0) })
    let running = Task { try await server.run() }
    defer { running.cancel() }
    var ports = bound.stream.makeAsyncIterator()
    let port = try #require(await ports.next())
    return try await withCheckedThrowingContinuation { done in
        Thread { done.resume(with: Result { try client(port) }) }.start()
    }
}

/// Whether `response` is a 200 carrying exactly `body` (no dump of a 200 KB array on failure).
private func echoed(_ response: (status: Int, body: [UInt8])?, _ body: [UInt8]) -> Bool {
    response?.status == 200 && response?.body == body
}

/// A loopback connection that sends pieces with pauses between them and reads responses
/// until the server closes.
private struct Connection {
    let client: LoopbackHTTPClient

    init(port: Int) throws {
        client = try LoopbackHTTPClient(host: "127.0.0.1", port: port)
    }

    func send(_ pieces: [[UInt8]], pause: useconds_t = 40_000) throws {
        for (i, piece) in pieces.enumerated() {
            if i > 0 { usleep(pause) }
            try client.send(piece)
        }
    }

    /// Every response until the server closes; bytes left that are not a whole response
    /// are an error.
    func responses() throws -> [(status: Int, body: [UInt8])] {
        var out: [(status: Int, body: [UInt8])] = []
        while true {
            do {
                out.append(try client.readResponse())
            } catch {
                guard client.buffered == 0 else { throw error }
                return out
            }
        }
    }
}

private func head(_ length: Int, close: Bool = true) -> [UInt8] {
    Array("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: \(length)\r\nConnection: \(close ? "close" : "keep-alive")\r\n\r\n".utf8)
}

@Test func aBodySentInOneWriteComesBackWhole() async throws {
    let body = pattern(200_000, seed: 1)
    let responses = try await withEchoServer { port in
        let c = try Connection(port: port)
        try c.send([head(body.count) + body])
        return try c.responses()
    }
    #expect(responses.count == 1)
    #expect(echoed(responses.first, body))
}

@Test func aBodySentInPiecesReadApartComesBackInOrder() async throws {
    let body = pattern(90_000, seed: 2)
    let responses = try await withEchoServer { port in
        let c = try Connection(port: port)
        // The head with the first bytes, then two more pieces, each read on its own.
        try c.send([head(body.count) + body[0..<10], Array(body[10..<50_000]), Array(body[50_000...])])
        return try c.responses()
    }
    #expect(responses.count == 1)
    #expect(echoed(responses.first, body))
}

@Test func aChunkedBodyComesBackWhole() async throws {
    let parts = [pattern(1_000, seed: 3), pattern(70_000, seed: 4), pattern(5, seed: 5)]
    let responses = try await withEchoServer { port in
        let c = try Connection(port: port)
        var pieces = [Array("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".utf8)]
        for p in parts { pieces.append(Array((String(p.count, radix: 16) + "\r\n").utf8) + p + Array("\r\n".utf8)) }
        pieces.append(Array("0\r\n\r\n".utf8))
        try c.send(pieces)
        return try c.responses()
    }
    #expect(responses.count == 1)
    #expect(echoed(responses.first, parts.flatMap { $0 }))
}

/// Two requests in one write: each handler gets its own body, answered in order.
@Test func twoRequestsInOneWriteKeepTheirOwnBodies() async throws {
    let first = pattern(30_000, seed: 6), second = pattern(40_000, seed: 7)
    let responses = try await withEchoServer { port in
        let c = try Connection(port: port)
        try c.send([head(first.count, close: false) + first + head(second.count) + second])
        return try c.responses()
    }
    #expect(responses.count == 2)
    #expect(echoed(responses.first, first))
    #expect(echoed(responses.last, second))
}

/// A body over the limit is refused even when no piece of it is over.
@Test func aBodyOverTheLimitInPiecesIsRefused() async throws {
    let responses = try await withEchoServer { port in
        let c = try Connection(port: port)
        // No Content-Length to refuse up front: chunks of 600 KB and 600 KB against 1 MiB.
        let chunk = pattern(600_000, seed: 8)
        let framed = Array((String(chunk.count, radix: 16) + "\r\n").utf8) + chunk + Array("\r\n".utf8)
        // The server may close before the second chunk is all sent; the answer is read anyway.
        try? c.send([Array("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".utf8) + framed, framed])
        return try c.responses()
    }
    #expect(responses.map(\.status) == [413])
}
