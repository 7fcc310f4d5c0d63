import LedgerPipeline
import Synchronization

/// Collects what the ledger releases until the alert engine drains it. The ledger calls
/// `observe` on its own executor, so this only takes a lock and appends; past `capacity`
/// pending entries further ones are counted as dropped rather than held.
public final class ActivityInbox: RunActivityObserver {
    struct State {
        var pending: [RunActivity] = []
        var dropped: Int64 = 0
    }

    private let state = Mutex(State())
    let capacity: Int

    public init(capacity: Int = 1_000_000) {
        self.capacity = capacity
    }

    public func observe(_ activity: RunActivity) {
        append(CollectionOfOne(activity))
    }

    public func observe(contentsOf activities: [RunActivity]) {
        append(activities)
    }

    private func append(_ activities: some Collection<RunActivity>) {
        state.withLock { s in
            let room = max(0, capacity - s.pending.count)
            s.pending.append(contentsOf: activities.prefix(room))
            s.dropped += Int64(max(0, activities.count - room))
        }
    }

    func drain() -> (activities: [RunActivity], dropped: Int64) {
        state.withLock { s in
            defer { s.pending = []; s.dropped = 0 }
            return (s.pending, s.dropped)
        }
    }
}

/// Per-second sums of two counters over a sliding window (retries and calls; unpriced
/// calls and tokens), bounded by the window's length in seconds.
struct WindowCounter: Codable, Sendable, Equatable {
    var seconds: [Int64] = []
    var a: [Int64] = []
    var b: [Int64] = []

    mutating func add(second: Int64, _ x: Int64, _ y: Int64) {
        if let last = seconds.last, last >= second {
            if let i = seconds.lastIndex(where: { $0 == second }) {
                a[i] += x
                b[i] += y
                return
            }
            // Out of order (an older second): fold into the newest bucket, still inside the window.
            a[a.count - 1] += x
            b[b.count - 1] += y
            return
        }
        seconds.append(second)
        a.append(x)
        b.append(y)
    }

    mutating func prune(before second: Int64) {
        let keep = seconds.firstIndex { $0 >= second } ?? seconds.count
        guard keep > 0 else { return }
        seconds.removeFirst(keep)
        a.removeFirst(keep)
        b.removeFirst(keep)
    }

    func sums(since second: Int64) -> (a: Int64, b: Int64) {
        var x: Int64 = 0, y: Int64 = 0
        for i in seconds.indices.reversed() {
            if seconds[i] < second { break }
            x += a[i]
            y += b[i]
        }
        return (x, y)
    }

    var isEmpty: Bool { seconds.isEmpty }
    var lastSecond: Int64? { seconds.last }
}
