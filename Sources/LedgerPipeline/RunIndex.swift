import LedgerCore
import LedgerStore

/// Index entries by trace ID, stored densely: the hash table maps an ID to a position in
/// fixed-size chunks of entries, so growing it rehashes 24-byte slots rather than moving
/// whole entries (about 250 bytes each), and the entries themselves are never copied to
/// grow: a full chunk stays where it is and a new one is started.
struct RunIndex: Sendable {
    static let chunkShift = 12
    static let chunkSize = 1 << chunkShift
    private var positions: [TraceID: Int] = [:]
    private var chunks: [[TraceIndexEntry]] = []
    private(set) var count = 0

    init() {}

    init(_ entries: [TraceID: TraceIndexEntry]) {
        positions.reserveCapacity(entries.count)
        for (_, e) in entries { self[e.traceID] = e }
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
                return
            }
            if chunks.isEmpty || chunks[chunks.count - 1].count == Self.chunkSize {
                var chunk: [TraceIndexEntry] = []
                chunk.reserveCapacity(Self.chunkSize)
                chunks.append(chunk)
            }
            positions[id] = count
            chunks[chunks.count - 1].append(newValue)
            count += 1
        }
    }

    func contains(_ id: TraceID) -> Bool { positions[id] != nil }

    mutating func removeAll() {
        positions.removeAll(keepingCapacity: true)
        chunks = []
        count = 0
    }
}
