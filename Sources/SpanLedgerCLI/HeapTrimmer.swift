import CAllocator
import LoadGenerator
import Logging
import ServiceLifecycle
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Gives free heap back to the kernel when the daemon holds much more memory than its live
/// data needs.
///
/// The allocator (tcmalloc, `CAllocator`) keeps freed pages in its page heap for reuse and
/// returns them to the kernel only slowly. Under sustained ingest, pending traces, packed run
/// trees and index chunks are freed in a different order from the one they were allocated
/// in, so after a flush tens of MB of free pages stay resident while live data is far less.
/// `MallocExtension_ReleaseFreeMemory` gives those pages back (madvise).
///
/// Every second the trimmer compares resident memory with live heap. When the gap grows
/// past what the daemon held idle (code, stacks) by more than `slack`, it trims. The slack
/// keeps some free heap for reuse: every page given back is faulted in and zeroed again
/// when it is reused. A slack of 0 turns trimming off.
final class HeapTrimmer: Service, Sendable {
    struct Counts: Sendable {
        var trims: Int64 = 0
        var releasedBytes: Int64 = 0
    }

    let slack: Int
    let interval: Duration
    let logger: Logger
    private let heap: @Sendable () -> sl_heap_stats
    private let counts = Mutex(Counts())
    /// Resident memory not in the heap (code, stacks, thread caches), read at start.
    private let baseline: Int

    var snapshot: Counts { counts.withLock { $0 } }

    /// `heap` reads malloc's figures (shared with /metrics, which caches them for a second).
    init(slack: Int = 32 << 20, interval: Duration = .seconds(1), logger: Logger, heap: @escaping @Sendable () -> sl_heap_stats) {
        self.slack = slack
        self.interval = interval
        self.logger = logger
        self.heap = heap
        let h = sl_heap_read()
        let rss = ProcessMetrics.currentRSS(pid: getpid()) ?? 0
        baseline = h.available != 0 ? max(0, rss - Int(h.in_use)) : 0
    }

    /// Trims when resident memory runs past live heap and the idle baseline by more than
    /// the slack (when malloc reports its figures); returns the resident bytes released.
    @discardableResult
    func trimIfWorthIt() -> Int {
        guard slack > 0 else { return 0 }
        let h = heap()
        guard h.available != 0, let before = ProcessMetrics.currentRSS(pid: getpid()) else { return 0 }
        let excess = before - Int(h.in_use) - baseline
        guard excess > slack else { return 0 }
        _ = sl_heap_trim()
        let after = ProcessMetrics.currentRSS(pid: getpid()) ?? before
        let released = max(0, before - after)
        counts.withLock {
            $0.trims += 1
            $0.releasedBytes += Int64(released)
        }
        logger.debug("heap trimmed", metadata: ["released_bytes": "\(released)", "excess_bytes": "\(excess)"])
        return released
    }

    /// Stops at once on graceful shutdown (services stop in reverse order, and this one,
    /// last in the list, would otherwise hold the others' shutdown for up to a second).
    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: self.interval)
                if Task.isCancelled { break }
                self.trimIfWorthIt()
            }
        }
    }
}
