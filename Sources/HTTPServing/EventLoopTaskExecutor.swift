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
}
