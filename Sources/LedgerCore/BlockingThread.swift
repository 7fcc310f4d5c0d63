import Foundation

/// Runs blocking work (socket reads, pipe I/O) on a thread of its own and resumes the
/// caller when it returns. The Swift concurrency pool has one thread per core (two on
/// the target machine); a blocking call made there takes a core away from every other
/// task until it returns, and two of them stall the process.
public enum BlockingThread {
    /// `niceness` above 0 lowers the thread's scheduling priority (Linux nice, per thread):
    /// background work such as a flush's compression then gives way to request handling
    /// on a busy machine instead of taking a core from it.
    public static func run<T: Sendable>(name: String = "spanledger-blocking", niceness: Int32 = 0,
                                        _ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, any Error>) in
            let t = Thread {
                if niceness != 0 { lowerPriority(by: niceness) }
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

    /// Sets the calling thread's nice value (best effort: a failure leaves it as it was).
    static func lowerPriority(by niceness: Int32) {
        #if os(Linux)
        // who = 0 is the calling thread on Linux, where the nice value is per thread.
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, niceness)
        #endif
    }
}
