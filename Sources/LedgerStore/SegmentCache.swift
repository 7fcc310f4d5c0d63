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

    private struct Key: Hashable {
        var path: String
        var tag: String
    }

    private struct Kept {
        var value: any Sendable
        var bytes: Int
        var identity: FileIO.Identity
        var lastUseNano: UInt64
    }

    private struct State {
        var kept: [Key: Kept] = [:]
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
        try value(path: path, tag: "message", bytes: \.count, load: read)
    }

    /// What `load` makes of the file at `path` (`tag` names what it is: a message, an
    /// index lookup), kept the same way as messages and weighed by `bytes`.
    func value<T: Sendable>(path: String, tag: String, bytes: (T) -> Int, load: () throws(StoreError) -> T) throws(StoreError) -> T {
        let t = now()
        guard let identity = FileIO.identity(path) else { return try load() }
        let key = Key(path: path, tag: tag)
        let hit: T? = state.withLock { s in
            Self.dropIdle(&s, now: t, idleNano: idleNano)
            guard var k = s.kept[key], k.identity == identity, let v = k.value as? T else { return nil }
            k.lastUseNano = t
            s.kept[key] = k
            s.stats.hits += 1
            return v
        }
        if let hit { return hit }
        let loaded = try load()
        let size = bytes(loaded)
        state.withLock { s in
            s.stats.misses += 1
            if let old = s.kept.removeValue(forKey: key) { s.stats.bytes -= old.bytes }
            if size <= capacityBytes {
                while s.stats.bytes + size > capacityBytes, let oldest = s.kept.min(by: { $0.value.lastUseNano < $1.value.lastUseNano }) {
                    s.kept[oldest.key] = nil
                    s.stats.bytes -= oldest.value.bytes
                }
                s.kept[key] = Kept(value: loaded, bytes: size, identity: identity, lastUseNano: t)
                s.stats.bytes += size
            }
            s.stats.messages = s.kept.count
        }
        return loaded
    }

    /// Drops the messages unused for `idleNano` (the ledger calls it on its clock).
    public func expire() {
        let t = now()
        state.withLock { Self.dropIdle(&$0, now: t, idleNano: idleNano) }
    }

    private static func dropIdle(_ s: inout State, now: UInt64, idleNano: UInt64) {
        guard !s.kept.isEmpty else { return }
        for (key, k) in s.kept where now &- k.lastUseNano > idleNano {
            s.kept[key] = nil
            s.stats.bytes -= k.bytes
        }
        s.stats.messages = s.kept.count
    }
}
