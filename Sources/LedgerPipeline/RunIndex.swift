import LedgerCore
import LedgerStore

/// Index entries by trace ID, stored densely: the hash table maps an ID to a position in
/// fixed-size chunks of entries, so growing it rehashes 24-byte slots rather than moving
/// whole entries (about 250 bytes each), and the entries themselves are never copied to
/// grow: a full chunk stays where it is and a new one is started.
///
/// It keeps at most a given number of entries in memory (`evictOldest`): whole chunks of
/// the oldest entries leave once they are on disk (not changed since the last flush), and
/// the ledger finds them there through its `TraceLocator`.
///
/// It also tracks which entries were added or replaced since the last flush took them
/// (`takeChanges`), so a flush writes those without a second copy of every entry kept
/// beside the index: the flush gets the chunks themselves (copy-on-write, so only a chunk
/// written to while the flush runs is ever copied) and the positions to read.
struct RunIndex: Sendable {
    let chunkShift: Int
    var chunkSize: Int { 1 << chunkShift }
    private var positions: [TraceID: Int] = [:]
    private var chunks: [[TraceIndexEntry]] = []
    /// Positions handed out (entries ever added), evicted or not.
    private(set) var count = 0
    /// Chunks before this one were evicted (emptied).
    private var firstResidentChunk = 0
    /// Entries held in memory.
    private(set) var residentCount = 0
    /// Entries evicted so far.
    private(set) var evictedCount = 0
    /// Positions changed since the last `takeChanges`, each once (a bit per position says so).
    private var changed: [Int] = []
    private var changedBits: [UInt64] = []

    /// `chunkShift`: entries per chunk as a power of two (4,096 by default; eviction takes
    /// whole chunks, so a small limit wants small chunks).
    init(chunkShift: Int = 12) {
        self.chunkShift = chunkShift
    }

    /// The chunk size for an index kept to `limit` entries: an eighth of it, between 16
    /// and 4,096 entries.
    static func chunkShift(forLimit limit: Int) -> Int {
        var shift = 4
        while shift < 12 && (1 << (shift + 1)) <= limit / 8 { shift += 1 }
        return shift
    }

    /// The entries loaded from disk: none of them counts as changed.
    init(_ entries: [TraceID: TraceIndexEntry], chunkShift: Int = 12) {
        self.init(chunkShift: chunkShift)
        positions.reserveCapacity(entries.count)
        for (_, e) in entries { load(e) }
    }

    /// Counts entries left on disk at start without ever being loaded (as if evicted).
    mutating func countOnDiskOnly(_ n: Int) {
        evictedCount += n
    }

    /// Adds or replaces an entry read from disk, without counting it as changed (before
    /// anything has changed: at start).
    mutating func load(_ entry: TraceIndexEntry) {
        self[entry.traceID] = entry
        let at = positions[entry.traceID]!
        changedBits[at >> 6] &= ~(1 << UInt64(at & 63))
        if changed.last == at { changed.removeLast() }
    }

    /// Drops the oldest whole chunks while more than `limit` entries are in memory, or
    /// while every run in the oldest chunk started before `startedBefore` (trace retention
    /// removed them from disk); never the chunk being filled nor one holding an entry
    /// changed since the last flush took the changes (it must reach the disk first).
    /// Returns how many entries left; `leaving` sees each of them.
    @discardableResult
    mutating func evictOldest(keeping limit: Int, startedBefore cutoff: Int64 = .min,
                              leaving: (borrowing TraceIndexEntry) -> Void = { _ in }) -> Int {
        var evicted = 0
        while firstResidentChunk < chunks.count - 1 {
            let base = firstResidentChunk << chunkShift
            let size = chunks[firstResidentChunk].count
            guard residentCount > limit || chunks[firstResidentChunk].allSatisfy({ $0.startUnixNano < cutoff }) else { break }
            if (base..<(base + size)).contains(where: isChanged) { break }
            for e in chunks[firstResidentChunk] {
                positions[e.traceID] = nil
                leaving(e)
            }
            chunks[firstResidentChunk] = []
            firstResidentChunk += 1
            residentCount -= size
            evictedCount += size
            evicted += size
        }
        return evicted
    }

    /// Entries added or replaced since the last flush took them, read from the chunks as
    /// they stood when taken.
    /// A collection of the changed entries in the order first changed, read in place (a
    /// flush encodes them without copying them out first).
    struct Changes: Sendable, RandomAccessCollection {
        fileprivate var chunks: [[TraceIndexEntry]] = []
        fileprivate var positions: [Int] = []
        fileprivate var chunkShift = 12

        var startIndex: Int { 0 }
        var endIndex: Int { positions.count }
        subscript(i: Int) -> TraceIndexEntry {
            let at = positions[i]
            return chunks[at >> chunkShift][at & ((1 << chunkShift) - 1)]
        }

        /// The changed entries (a copy).
        var values: [TraceIndexEntry] { Array(self) }
    }

    var changeCount: Int { changed.count }

    /// Hands the changes over and starts counting afresh.
    mutating func takeChanges() -> Changes {
        let taken = Changes(chunks: chunks, positions: changed, chunkShift: chunkShift)
        for at in changed { changedBits[at >> 6] &= ~(1 << UInt64(at & 63)) }
        changed.removeAll(keepingCapacity: true)
        return taken
    }

    /// Counts changes taken by a flush that failed as changed again (the entries written
    /// next are the current ones, whatever replaced them since).
    mutating func restore(_ taken: Changes) {
        for at in taken.positions { markChanged(at) }
    }

    private func isChanged(_ at: Int) -> Bool {
        at >> 6 < changedBits.count && changedBits[at >> 6] & (1 << UInt64(at & 63)) != 0
    }

    private mutating func markChanged(_ at: Int) {
        let word = at >> 6, bit: UInt64 = 1 << UInt64(at & 63)
        while changedBits.count <= word { changedBits.append(0) }
        if changedBits[word] & bit == 0 {
            changedBits[word] |= bit
            changed.append(at)
        }
    }

    var isEmpty: Bool { residentCount == 0 }

    /// Every entry in memory, in the order first added (a copy).
    var values: [TraceIndexEntry] {
        var out: [TraceIndexEntry] = []
        out.reserveCapacity(residentCount)
        for c in chunks { out += c }
        return out
    }

    /// Calls `body` with every entry in memory, in the order first added, without copying them.
    func forEach(_ body: (TraceIndexEntry) throws -> Void) rethrows {
        for c in chunks { for e in c { try body(e) } }
    }

    /// Entries can be added and replaced, not removed (only evicted, oldest first).
    /// An entry added again after its eviction is a new entry at the end.
    subscript(id: TraceID) -> TraceIndexEntry? {
        get { positions[id].map { chunks[$0 >> chunkShift][$0 & (chunkSize - 1)] } }
        set {
            guard let newValue else { preconditionFailure("RunIndex entries are not removed") }
            if let at = positions[id] {
                chunks[at >> chunkShift][at & (chunkSize - 1)] = newValue
                markChanged(at)
                return
            }
            if chunks.isEmpty || chunks[chunks.count - 1].count == chunkSize {
                var chunk: [TraceIndexEntry] = []
                chunk.reserveCapacity(chunkSize)
                chunks.append(chunk)
            }
            positions[id] = count
            chunks[chunks.count - 1].append(newValue)
            markChanged(count)
            count += 1
            residentCount += 1
        }
    }

    func contains(_ id: TraceID) -> Bool { positions[id] != nil }

    mutating func removeAll() {
        positions.removeAll(keepingCapacity: true)
        chunks = []
        count = 0
        firstResidentChunk = 0
        residentCount = 0
        evictedCount = 0
        changed = []
        changedBits = []
    }
}
