import LedgerCore
import Synchronization

/// Backpressure from release to ingest. Under more load than attribution keeps up with,
/// traces past their wait window pile up in assembly: acknowledged, logged, not rolled
/// up, and holding memory that grows for as long as the overload lasts. The clock sets
/// how far release lags behind (how long the oldest due trace has been due) each time it
/// takes due traces; while that is over the limit, ingest waits here before admitting a
/// batch, so clients are slowed to the rate runs are rolled up at and the backlog, and
/// memory, stay bounded. A waiter goes on after `maxWait` whatever the lag (the clock
/// may have stopped), and `open()` lets everyone through for good (shutdown).
public final class ReleaseBacklog: Sendable {
    struct State {
        var lagNano: UInt64 = 0
        var opened = false
        var nextWaiter = 0
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        var waits: Int64 = 0
        var lastBatchNano: UInt64 = 0
    }

    /// Lag over which ingest waits (nanoseconds); 0 turns the gate off.
    public let limitNano: UInt64
    /// Longest one batch waits.
    public let maxWaitNano: UInt64
    private let state = Mutex(State())

    public init(limitNano: UInt64, maxWaitNano: UInt64 = 1_000_000_000) {
        self.limitNano = limitNano
        self.maxWaitNano = maxWaitNano
    }

    /// How far release lags now (nanoseconds since the oldest due trace became due).
    public var lagNano: UInt64 { state.withLock { $0.lagNano } }
    /// Batches that have waited so far.
    public var waits: Int64 { state.withLock { $0.waits } }

    private static func lagging(_ s: State, _ limit: UInt64) -> Bool {
        limit > 0 && !s.opened && s.lagNano > limit
    }

    /// Sets the lag; under the limit, waiting batches go on.
    public func update(lagNano: UInt64) {
        let resumed: [CheckedContinuation<Void, Never>] = state.withLock { s in
            s.lagNano = lagNano
            guard !Self.lagging(s, limitNano) else { return [] }
            defer { s.waiters.removeAll() }
            return Array(s.waiters.values)
        }
        for c in resumed { c.resume() }
    }

    /// Lets every waiter through now and from now on.
    public func open() {
        let resumed: [CheckedContinuation<Void, Never>] = state.withLock { s in
            s.opened = true
            defer { s.waiters.removeAll() }
            return Array(s.waiters.values)
        }
        for c in resumed { c.resume() }
    }

    /// How long ago the last batch came for admission (nanoseconds of the monotonic
    /// clock; the time since the clock's start when none has).
    public var sinceLastBatchNano: UInt64 {
        let now = WallClock.monotonicNano()
        return now - min(now, state.withLock { $0.lastBatchNano })
    }

    /// Returns at once unless release lags over the limit; then when it no longer does,
    /// or after `maxWait`. Every batch of ingest comes here first: the clock also learns
    /// from it whether requests are arriving.
    public func waitForRelease() async {
        let now = WallClock.monotonicNano()
        guard state.withLock({ s in
            s.lastBatchNano = now
            return Self.lagging(s, limitNano)
        }) else { return }
        let id = state.withLock { s in
            s.nextWaiter += 1
            s.waits += 1
            return s.nextWaiter
        }
        let timeout = Task { [maxWaitNano] in
            try? await Task.sleep(nanoseconds: maxWaitNano)
            self.resume(id)
        }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let goOn = state.withLock { s in
                if !Self.lagging(s, limitNano) { return true }
                s.waiters[id] = c
                return false
            }
            if goOn { c.resume() }
        }
        timeout.cancel()
    }

    private func resume(_ id: Int) {
        state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
    }
}
