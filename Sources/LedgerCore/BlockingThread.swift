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
                let result = Result { try body() }
                idle?.leave() // before the caller resumes: it may ask whether this still runs
                c.resume(with: result)
            }
            t.name = name
            t.start()
        }
    }

    /// Runs `steps` one after another on a thread of its own, idle under `idle` when one is
    /// given. Should the starter then ask for normal priority where the process may not
    /// raise the thread's (`IdlePriority.promote` answers `.atNextStep`), the steps not yet
    /// begun go on at normal priority on a new thread: an unprivileged process cannot bring
    /// an idle thread back, but it may start a normal one. Steps never overlap; the first
    /// error ends the run and is thrown.
    public static func runSteps(name: String = "spanledger-blocking", idle: IdlePriority?,
                                _ steps: [@Sendable () throws -> Void]) async throws {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
            @Sendable func start(at first: Int, idle: IdlePriority?) {
                let t = Thread {
                    idle?.enter(stepped: true)
                    var outcome: Result<Void, any Error> = .success(())
                    var k = first
                    while k < steps.count {
                        if k > first, let idle, idle.takeHandOff() {
                            idle.leave() // before the rest can finish: the run is not idle now
                            // Started from the concurrency pool: a thread inherits its
                            // creator's policy, and this one's is SCHED_IDLE.
                            Task.detached { start(at: k, idle: nil) }
                            return
                        }
                        do { try steps[k]() } catch {
                            outcome = .failure(error)
                            break
                        }
                        k += 1
                    }
                    idle?.leave()
                    c.resume(with: outcome)
                }
                t.name = name
                t.start()
            }
            start(at: 0, idle: idle)
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
/// allows normal priority; without either, work run in steps (`BlockingThread.runSteps`)
/// moves to a new normal-priority thread at its next step, and other work stays idle
/// (`promote` says which).
public final class IdlePriority: Sendable {
    private struct State {
        /// The thread while it runs its work.
        var thread: pthread_t?
        var promoted = false
        /// The work is a `BlockingThread.runSteps` run: it can move to a new thread.
        var stepped = false
        /// Normal priority was asked for and refused: the next step moves.
        var handOff = false
    }

    private let state = Mutex(State())
    /// Moves a running thread to normal priority (tests put a refusal in its place).
    private let raise: @Sendable (pthread_t) -> Bool

    public init() {
        raise = { thread in
            #if os(Linux)
            var param = sched_param()
            return pthread_setschedparam(thread, 0, &param) == 0 // 0: SCHED_OTHER
            #else
            return false
            #endif
        }
    }

    /// `raise` in place of `pthread_setschedparam` (false: not permitted), for tests.
    public init(raise: @escaping @Sendable (pthread_t) -> Bool) {
        self.raise = raise
    }

    /// What `promote` did.
    public enum Promotion: Sendable, Equatable {
        /// The work was not running: not started yet (it then starts at normal priority) or
        /// finished.
        case notRunning
        /// The running thread now has normal priority.
        case promoted
        /// The process may not raise the thread's priority, but the work comes in steps:
        /// the steps not yet begun go on at normal priority on a new thread.
        case atNextStep
        /// The running thread stays idle: the process may not raise its priority.
        case notPermitted
    }

    /// On the thread, before its work: SCHED_IDLE unless promoted already.
    func enter(stepped: Bool = false) {
        state.withLock { s in
            s.thread = pthread_self()
            s.stepped = stepped
            if !s.promoted { BlockingThread.enterIdlePolicy() }
        }
    }

    /// On the thread, after its work.
    func leave() { state.withLock { $0.thread = nil } }

    /// Whether the steps left should move to a new thread now (asked once).
    func takeHandOff() -> Bool {
        state.withLock { s in
            defer { s.handOff = false }
            return s.handOff
        }
    }

    public var isRunning: Bool { state.withLock { $0.thread != nil } }

    @discardableResult
    public func promote() -> Promotion {
        state.withLock { s in
            s.promoted = true
            guard let thread = s.thread else { return .notRunning }
            if raise(thread) { return .promoted }
            guard s.stepped else { return .notPermitted }
            s.handOff = true
            return .atNextStep
        }
    }
}
