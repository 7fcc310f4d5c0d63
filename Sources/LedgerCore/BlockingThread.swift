import Foundation

/// Runs blocking work (socket reads, pipe I/O) on a thread of its own and resumes the
/// caller when it returns. The Swift concurrency pool has one thread per core (two on
/// the target machine); a blocking call made there takes a core away from every other
/// task until it returns, and two of them stall the process.
public enum BlockingThread {
    public static func run<T: Sendable>(name: String = "spanledger-blocking", _ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, any Error>) in
            let t = Thread {
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
}
