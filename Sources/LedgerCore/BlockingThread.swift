import Foundation
import Synchronization

/// Runs blocking work (socket reads, pipe I/O) on a thread of its own and resumes the
/// caller when it returns. The Swift concurrency pool has one thread per core (two on
/// the target machine); a blocking call made there takes a core away from every other
/// task until it returns, and two of them stall the process.
public enum BlockingThread {
    /// `idle`: the thread runs under Linux's SCHED_IDLE policy, on CPU time no other
    /// thread of the machine wants (work that may wait, so that requests do not wait
    /// behind it). An unprivileged thread cannot leave SCHED_IDLE again, so the caller
    /// decides per run whether the work can afford to wait; handed an `IdlePriority`
    /// instead, it can move the thread back to normal priority where the process is
    /// permitted to.
    public static func run<T: Sendable>(name: String = "spanledger-blocking", idle: Bool = false,
                                        _ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await run(name: name, idle: idle ? IdlePriority() : nil, body)
    }

    /// `run`, idle under `idle` when one is given (nil: normal priority).
    public static func run<T: Sendable>(name: String = "spanledger-blocking", idle: IdlePriority?,
                                        _ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, any Error>) in
            let t = Thread {
                idle?.enter()
                defer { idle?.leave() }
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

/// The idle scheduling of one `BlockingThread` run, which its starter can end: `promote`
/// moves the thread to normal priority (or keeps it from leaving it, if it has not started).
/// Linux lets a thread leave SCHED_IDLE only with CAP_SYS_NICE or an RLIMIT_NICE that
/// allows normal priority; without either `promote` reports that it could not.
public final class IdlePriority: Sendable {
    /// The thread while it runs its work, and whether it was promoted.
    private let state = Mutex<(thread: pthread_t?, promoted: Bool)>((nil, false))

    public init() {}

    /// What `promote` did.
    public enum Promotion: Sendable, Equatable {
        /// The work was not running: not started yet (it then starts at normal priority) or
        /// finished.
        case notRunning
        /// The running thread now has normal priority.
        case promoted
        /// The running thread stays idle: the process may not raise its priority.
        case notPermitted
    }

    /// On the thread, before its work: SCHED_IDLE unless promoted already.
    func enter() {
        state.withLock { s in
            s.thread = pthread_self()
            if !s.promoted { BlockingThread.enterIdlePolicy() }
        }
    }

    /// On the thread, after its work.
    func leave() { state.withLock { $0.thread = nil } }

    public var isRunning: Bool { state.withLock { $0.thread != nil } }

    @discardableResult
    public func promote() -> Promotion {
        state.withLock { s in
            s.promoted = true
            guard let thread = s.thread else { return .notRunning }
            #if os(Linux)
            var param = sched_param()
            return pthread_setschedparam(thread, 0, &param) == 0 ? .promoted : .notPermitted // 0: SCHED_OTHER
            #else
            return .notPermitted
            #endif
        }
    }
}
