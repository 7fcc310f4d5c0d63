import LedgerCore
import LedgerStore

/// Index entries by trace ID, stored densely: the hash table maps an ID to a position in
/// fixed-size chunks of entries, so growing it rehashes 24-byte slots rather than moving
/// whole entries (about 250 bytes each), and the entries themselves are never copied to
/// grow: a full chunk stays where it is and a new one is started.
///
/// It also tracks which entries were added or replaced since the last flush took them
/// (`takeChanges`), so a flush writes those without a second copy of every entry kept
/// beside the index: the flush gets the chunks themselves (copy-on-write, so only a chunk
/// written to while the flush runs is ever copied) and the positions to read.
struct RunIndex: Sendable {
    static let chunkShift = 12
    static let chunkSize = 1 << chunkShift
    private var positions: [TraceID: Int] = [:]
    private var chunks: [[TraceIndexEntry]] = []
    private(set) var count = 0
    /// Positions changed since the last `takeChanges`, each once (a bit per position says so).
    private var changed: [Int] = []
    private var changedBits: [UInt64] = []

    init() {}

    /// The entries loaded from disk: none of them counts as changed.
    init(_ entries: [TraceID: TraceIndexEntry]) {
        positions.reserveCapacity(entries.count)
        for (_, e) in entries { self[e.traceID] = e }
        changed = []
        changedBits = []
    }

    /// Entries added or replaced since the last flush took them, read from the chunks as
    /// they stood when taken.
    /// A collection of the changed entries in the order first changed, read in place (a
    /// flush encodes them without copying them out first).
    struct Changes: Sendable, RandomAccessCollection {
        fileprivate var chunks: [[TraceIndexEntry]] = []
        fileprivate var positions: [Int] = []

        var startIndex: Int { 0 }
        var endIndex: Int { positions.count }
        subscript(i: Int) -> TraceIndexEntry {
            let at = positions[i]
            return chunks[at >> RunIndex.chunkShift][at & (RunIndex.chunkSize - 1)]
        }

        /// The changed entries (a copy).
        var values: [TraceIndexEntry] { Array(self) }
    }

    var changeCount: Int { changed.count }

    /// Hands the changes over and starts counting afresh.
    mutating func takeChanges() -> Changes {
        let taken = Changes(chunks: chunks, positions: changed)
        for at in changed { changedBits[at >> 6] &= ~(1 << UInt64(at & 63)) }
        changed.removeAll(keepingCapacity: true)
        return taken
    }

    /// Counts changes taken by a flush that failed as changed again (the entries written
    /// next are the current ones, whatever replaced them since).
    mutating func restore(_ taken: Changes) {
        for at in taken.positions { markChanged(at) }
    }

    private mutating func markChanged(_ at: Int) {
        let word = at >> 6, bit: UInt64 = 1 << UInt64(at & 63)
        while changedBits.count <= word { changedBits.append(0) }
        if changedBits[word] & bit == 0 {
            changedBits[word] |= bit
            changed.append(at)
        }
    }

    var isEmpty: Bool { count == 0 }

    /// Every entry, in the order first added (a copy).
    var values: [TraceIndexEntry] {
        var out: [TraceIndexEntry] = []
        out.reserveCapacity(count)
        for c in chunks { out += c }
        return out
    }

    /// Calls `body` with every entry, in the order first added, without copying them.
    func forEach(_ body: (TraceIndexEntry) throws -> Void) rethrows {
        for c in chunks { for e in c { try body(e) } }
    }

    /// Entries can be added and replaced, not removed.
    subscript(id: TraceID) -> TraceIndexEntry? {
        get { positions[id].map { chunks[$0 >> Self.chunkShift][$0 & (Self.chunkSize - 1)] } }
        set {
            guard let newValue else { preconditionFailure("RunIndex entries are not removed") }
            if let at = positions[id] {
                chunks[at >> Self.chunkShift][at & (Self.chunkSize - 1)] = newValue
                markChanged(at)
                return
            }
            if chunks.isEmpty || chunks[chunks.count - 1].count == Self.chunkSize {
                var chunk: [TraceIndexEntry] = []
                chunk.reserveCapacity(Self.chunkSize)
                chunks.append(chunk)
            }
            positions[id] = count
            chunks[chunks.count - 1].append(newValue)
            markChanged(count)
            count += 1
        }
    }

    func contains(_ id: TraceID) -> Bool { positions[id] != nil }

    mutating func removeAll() {
        positions.removeAll(keepingCapacity: true)
        chunks = []
        count = 0
        changed = []
        changedBits = []
    }
}
