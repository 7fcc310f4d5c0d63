import DurableFiles
import LedgerCore
import Synchronization

/// Segment messages recently read and inflated for point lookups (a late verdict's run
/// entry, a task's runs; the tree of a run in a run-tree file written before blocks),
/// kept so the next lookups in the same flush skip the read, the CRC and the inflate: an
/// index file is about 2 MB inflated for a flush of 27,000 runs, and every verdict for a
/// run no longer in memory needs its entry. (Blocked run-tree files are read a block at
/// a time and not kept: `BlockedTrees`.)
///
/// Bounded in bytes (the least recently used go first; a message larger than the bound is
/// not kept) and by idleness: a message unused for `idleNano` is dropped at the next
/// access or `expire`, so the memory of a burst of lookups goes back once it is over.
/// Keyed by path and checked against the file's identity (inode, size, change time), so
/// a file replaced since (a merge of flushes) is read again, never served stale.
public final class SegmentCache: Sendable {
    public struct Stats: Sendable, Equatable {
        public var hits: Int64 = 0
        public var misses: Int64 = 0
        public var bytes = 0
        public var messages = 0
    }

    private struct Kept {
        var message: [UInt8]
        var identity: FileIO.Identity
        var lastUseNano: UInt64
    }

    private struct State {
        var kept: [String: Kept] = [:]
        var stats = Stats()
    }

    public let capacityBytes: Int
    public let idleNano: UInt64
    private let now: @Sendable () -> UInt64
    private let state = Mutex(State())

    public init(capacityBytes: Int, idleNano: UInt64 = 30_000_000_000, now: @escaping @Sendable () -> UInt64 = WallClock.monotonicNano) {
        self.capacityBytes = capacityBytes
        self.idleNano = idleNano
        self.now = now
    }

    public var stats: Stats { state.withLock { $0.stats } }

    /// The message of the segment at `path`, from memory when the file is the one it was
    /// read from, else from `read` (then kept, if it fits).
    func message(path: String, read: () throws(StoreError) -> [UInt8]) throws(StoreError) -> [UInt8] {
        let t = now()
        guard let identity = FileIO.identity(path) else { return try read() }
        let hit: [UInt8]? = state.withLock { s in
            Self.dropIdle(&s, now: t, idleNano: idleNano)
            guard var k = s.kept[path], k.identity == identity else { return nil }
            k.lastUseNano = t
            s.kept[path] = k
            s.stats.hits += 1
            return k.message
        }
        if let hit { return hit }
        let message = try read()
        state.withLock { s in
            s.stats.misses += 1
            if let old = s.kept.removeValue(forKey: path) { s.stats.bytes -= old.message.count }
            guard message.count <= capacityBytes else { return }
            while s.stats.bytes + message.count > capacityBytes, let oldest = s.kept.min(by: { $0.value.lastUseNano < $1.value.lastUseNano }) {
                s.kept[oldest.key] = nil
                s.stats.bytes -= oldest.value.message.count
            }
            s.kept[path] = Kept(message: message, identity: identity, lastUseNano: t)
            s.stats.bytes += message.count
            s.stats.messages = s.kept.count
        }
        return message
    }

    /// Drops the messages unused for `idleNano` (the ledger calls it on its clock).
    public func expire() {
        let t = now()
        state.withLock { Self.dropIdle(&$0, now: t, idleNano: idleNano) }
    }

    private static func dropIdle(_ s: inout State, now: UInt64, idleNano: UInt64) {
        guard !s.kept.isEmpty else { return }
        for (path, k) in s.kept where now &- k.lastUseNano > idleNano {
            s.kept[path] = nil
            s.stats.bytes -= k.message.count
        }
        s.stats.messages = s.kept.count
    }
}
