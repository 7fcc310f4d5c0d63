import Foundation

/// Runs blocking work (socket reads, pipe I/O) on a thread of its own and resumes the
/// caller when it returns. The Swift concurrency pool has one thread per core (two on
/// the target machine); a blocking call made there takes a core away from every other
/// task until it returns, and two of them stall the process.
public enum BlockingThread {
    /// `idle`: the thread runs under Linux's SCHED_IDLE policy, on CPU time no other
    /// thread of the machine wants (work that may wait, so that requests do not wait
    /// behind it). An unprivileged thread cannot leave SCHED_IDLE again, so the caller
    /// decides per run whether the work can afford to wait.
    public static func run<T: Sendable>(name: String = "spanledger-blocking", idle: Bool = false, _ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, any Error>) in
            let t = Thread {
                if idle { enterIdlePolicy() }
                do { c.resume(returning: try body()) } catch { c.resume(throwing: error) }
            }
            t.name = name
            t.start()
        }
    }

    public static func run<T: Sendable>(name: String = "spanledger-blocking", _ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { (c: CheckedContinuation<T, Never>) in
            let t = Thread { c.resume(returning: body()) }
            t.name = name
            t.start()
        }
    }

    /// Moves the calling thread to SCHED_IDLE (Glibc does not export the constant, 5).
    /// Best effort: a refusal leaves it at normal priority.
    static func enterIdlePolicy() {
        #if os(Linux)
        var param = sched_param()
        _ = sched_setscheduler(0, 5, &param)
        #endif
    }
}
