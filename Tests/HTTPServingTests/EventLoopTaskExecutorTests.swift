import Foundation
import HTTPServing
import LoadGenerator
import NIOCore
import NIOPosix
import Logging
import NIOHTTP1
import Testing

private actor Notes {
    var onLoop: [Bool] = []
    func note(_ loop: any EventLoop) { onLoop.append(loop.inEventLoop) }
}

/// What the receivers rely on: a request's task stays on its connection's loop, also after
/// the write-ahead log's writer thread resumes it and in the default actors it calls.
@Test func aTaskPreferringTheExecutorRunsOnItsLoopAcrossSuspensionsAndActors() async throws {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let loop = group.next()
    let notes = Notes()
    let seen = await Task(executorPreference: EventLoopTaskExecutor(loop)) { () async -> [Bool] in
        var seen = [loop.inEventLoop]
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            Thread { usleep(2_000); c.resume() }.start()
        }
        seen.append(loop.inEventLoop)
        await notes.note(loop)
        seen.append(loop.inEventLoop)
        return seen
    }.value
    #expect(seen == [true, true, true])
    #expect(await notes.onLoop == [true])
    // Without the preference the same work runs on the concurrency pool.
    #expect(await Task { loop.inEventLoop }.value == false)
    try await group.shutdownGracefully()
}

/// Answers where it handled the request: on an event loop or on the concurrency pool.
private struct WhereHandled: HTTPHandler {
    let maxBodySize = 1 << 20
    func handle(_ request: HTTPRequest) async -> HTTPResponse {
        .text(.ok, MultiThreadedEventLoopGroup.currentEventLoop == nil ? "pool" : "loop")
    }
    func bodyTooLarge(_ head: HTTPRequestHead) -> HTTPResponse { .text(.payloadTooLarge, "too large") }
    func handlesOnEventLoop(_ request: HTTPRequest) -> Bool { request.body.readableBytes <= 16 }
}

/// One request on a fresh loopback connection; the response's body.
private func post(port: Int, body: String) throws -> String {
    let client = try LoopbackHTTPClient(host: "127.0.0.1", port: port)
    let response = try client.roundTrip(LoopbackHTTPClient.postRequest(path: "/x", contentType: "text/plain", body: Array(body.utf8)))
    return String(decoding: response.body, as: UTF8.self)
}

/// The server asks its handler per request: a small body is handled on the connection's
/// loop, a big one (which the OTLP receivers send to the pool) on the concurrency pool.
@Test func theServerHandlesARequestOnTheLoopOnlyWhenTheHandlerAsks() async throws {
    let bound = AsyncStream.makeStream(of: Int.self)
    let server = HTTPServer(name: "test", configuration: HTTPServerConfiguration(host: "127.0.0.1", port: 0), handler: WhereHandled(),
                            logger: Logger(label: "test"), onBound: { bound.continuation.yield($0.port ?? 0) })
    let running = Task { try await server.run() }
    var ports = bound.stream.makeAsyncIterator()
    let port = try #require(await ports.next())
    #expect(try post(port: port, body: "small") == "loop")
    #expect(try post(port: port, body: String(repeating: "x", count: 4096)) == "pool")
    running.cancel()
    _ = try? await running.value
}
