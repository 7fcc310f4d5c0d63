import Foundation
import HTTPServing
import NIOCore
import NIOPosix
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
