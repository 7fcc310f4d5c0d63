import NIOCore

/// A task executor that runs a task's jobs on one NIO event loop, so that a request's
/// handling stays on the thread that read it. The request's task then needs no thread of
/// the concurrency pool to be woken for it, and its answer no wake-up of the loop: on a
/// two-core machine that saves two of the six thread hand-offs an ingest request made.
/// Default actors the task calls run on the loop as well (SE-0417). Work that blocks or
/// runs long does not belong here: it would stall the loop's other connections.
public final class EventLoopTaskExecutor: TaskExecutor {
    public let eventLoop: any EventLoop

    public init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        // From the loop itself this only queues the job; from another thread it wakes the loop.
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }

    /// Whether a batch this size is short enough work to decode on the loop: up to 512
    /// KiB, about 1,600 spans of protobuf (1-2 ms), a third of that in JSON; a compressed
    /// one counts eight times its size (OTLP deflates to a fifth or less). Bigger ones (up
    /// to 16 MiB by default: tens to hundreds of ms) go to the concurrency pool, so that
    /// one big batch does not hold up every other connection on its loop.
    public static func suits(messageBytes: Int, compressed: Bool) -> Bool {
        messageBytes * (compressed ? 8 : 1) <= largestMessage
    }

    public static let largestMessage = 512 << 10
}

extension EventLoop {
    /// Runs `body` at once when called on this loop (a task on its `EventLoopTaskExecutor`
    /// answering), else queues it there.
    public func runOrExecute(_ body: @escaping @Sendable () -> Void) {
        if inEventLoop { body() } else { execute(body) }
    }
}
