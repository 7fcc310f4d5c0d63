import LedgerCore

/// A Bloom filter over trace IDs: "maybe" or a certain "no", in a few bits per ID.
/// Trace IDs are meant to be random (W3C Trace Context), but tests and some SDKs count
/// them up, so both words are mixed before the bits are chosen (double hashing).
public struct TraceIDFilter: Sendable {
    private var words: [UInt64]
    private let bitCount: UInt64
    private let probes: Int
    public private(set) var count = 0

    /// Sized for `capacity` IDs at `bitsPerID` bits each (20 bits: about 1 false "maybe"
    /// in 15,000 at capacity; 10 bits: about 1 in 100).
    public init(capacity: Int, bitsPerID: Int) {
        let bits = max(64, capacity * bitsPerID)
        words = [UInt64](repeating: 0, count: (bits + 63) / 64)
        bitCount = UInt64(words.count * 64)
        probes = max(1, Int((Double(bitsPerID) * 0.693).rounded()))
    }

    @inline(__always)
    static func mix(_ x: UInt64) -> UInt64 {
        // splitmix64's finaliser
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The two hashes the probe positions are stepped from.
    @inline(__always)
    private static func hashes(_ id: TraceID) -> (UInt64, UInt64) {
        (mix(id.high ^ mix(id.low)), mix(id.low &+ 0x632B_E59B_D9B4_E019) | 1)
    }

    /// A probe's bit: the hash scaled onto the bits (the high word of hash × bits), which
    /// is as even as `hash % bits` without a 64-bit division per probe (a start inserting
    /// 3 million IDs into two filters each spent most of its 0.8 s of filter time dividing).
    @inline(__always)
    private static func bit(_ h: UInt64, of bitCount: UInt64) -> UInt64 { h.multipliedFullWidth(by: bitCount).high }

    public mutating func insert(_ id: TraceID) {
        count += 1
        var (h, step) = Self.hashes(id)
        let (bits, probes) = (bitCount, probes)
        words.withUnsafeMutableBufferPointer { w in
            for _ in 0..<probes {
                let b = Self.bit(h, of: bits)
                w[Int(b >> 6)] |= 1 << (b & 63)
                h = h &+ step
            }
        }
    }

    public func mayContain(_ id: TraceID) -> Bool {
        var (h, step) = Self.hashes(id)
        return words.withUnsafeBufferPointer { w in
            for _ in 0..<probes {
                let b = Self.bit(h, of: bitCount)
                if w[Int(b >> 6)] & (1 << (b & 63)) == 0 { return false }
                h = h &+ step
            }
            return true
        }
    }

    public var byteCount: Int { words.count * 8 }
}

/// Which flushes may hold a trace's index entries and run-tree records, so a run no longer
/// kept in memory is found on disk by decoding one or two segments instead of all of them
/// (README "Data directory"). Two levels of Bloom filters: one per generation of about a
/// million runs, probed for every trace the ledger has not got in memory (20 bits an ID,
/// so a new trace rarely costs a disk read), and one per flush inside a generation, probed
/// only to find the segment (10 bits an ID). Together about 3.75 bytes a run, where the
/// index entry itself is about 250.
///
/// The filters also hold the task key (`taskKey`) of every run with a task ID, so the
/// flushes holding a task's runs are found the same way (rework, Schemas/conventions.md).
public struct TraceLocator: Sendable {
    struct Segment: Sendable {
        var sequence: UInt64
        var filter: TraceIDFilter
        /// Traces the flush holds (the filter holds their task keys too).
        var runs: Int
        /// The latest start of a run the flush wrote (trace retention expires it by this).
        var newestStartUnixNano: Int64
    }

    struct Generation: Sendable {
        var filter: TraceIDFilter
        var segments: [Segment] = []
    }

    private var generations: [Generation] = []
    public let generationCapacity: Int
    /// Counts every change (a flush added, flushes merged or removed): files read while it
    /// stays the same are the files lookups would read now.
    public private(set) var changes: UInt64 = 0

    public init(generationCapacity: Int = 1_000_000) {
        self.generationCapacity = max(1, generationCapacity)
    }

    /// The key a task ID is located by: 128 bits of two FNV-1a hashes of its UTF-8 bytes
    /// (different offset bases), mixed. Another task or a trace with the same key only
    /// costs a segment read: the reader compares the task IDs it finds.
    public static func taskKey(_ task: String) -> TraceID {
        var a: UInt64 = 0xCBF2_9CE4_8422_2325, b: UInt64 = 0x84222325_CBF29CE4
        for byte in task.utf8 {
            a = (a ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
            b = (b ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
        }
        return TraceID(high: TraceIDFilter.mix(a ^ 0x7461_736B), low: TraceIDFilter.mix(b &+ UInt64(task.utf8.count)))
    }

    /// A flush's filter, holding `ids` and `taskKeys`, whose keys also go into generation `g`'s.
    private mutating func segment(_ sequence: UInt64, ids: [TraceID], taskKeys: [TraceID],
                                  newestStartUnixNano: Int64, generation g: Int) -> Segment {
        var segment = Segment(sequence: sequence, filter: TraceIDFilter(capacity: max(1, ids.count + taskKeys.count), bitsPerID: 10),
                              runs: ids.count, newestStartUnixNano: newestStartUnixNano)
        for id in ids {
            segment.filter.insert(id)
            generations[g].filter.insert(id)
        }
        for key in taskKeys {
            segment.filter.insert(key)
            generations[g].filter.insert(key)
        }
        return segment
    }

    /// Adds one flush's segments (`sequence`) holding entries or records of `ids`, runs
    /// that started at `newestStartUnixNano` at the latest, and of runs with the tasks
    /// `taskKeys`. Flushes are added in sequence order.
    public mutating func add(sequence: UInt64, ids: [TraceID], taskKeys: [TraceID] = [],
                             newestStartUnixNano: Int64) {
        guard !ids.isEmpty else { return }
        changes += 1
        if generations.isEmpty || generations[generations.count - 1].filter.count >= generationCapacity {
            generations.append(Generation(filter: TraceIDFilter(capacity: generationCapacity, bitsPerID: 20)))
        }
        let g = generations.count - 1
        let added = segment(sequence, ids: ids, taskKeys: taskKeys, newestStartUnixNano: newestStartUnixNano, generation: g)
        generations[g].segments.append(added)
    }

    /// Whether some flush may hold the trace (false: certainly none does).
    public func mayContain(_ id: TraceID) -> Bool {
        generations.contains { $0.filter.mayContain(id) }
    }

    /// Flushes that may hold the trace (or a run of the task whose key it is), newest first.
    public func candidates(_ id: TraceID) -> [UInt64] {
        var out: [UInt64] = []
        for g in generations.reversed() where g.filter.mayContain(id) {
            for s in g.segments.reversed() where s.filter.mayContain(id) { out.append(s.sequence) }
        }
        return out.sorted(by: >) // flushes that overlapped may have been added out of order
    }

    /// Flushes all of whose runs started before `cutoffUnixNano`, ascending.
    public func sequences(allStartedBefore cutoffUnixNano: Int64) -> [UInt64] {
        generations.flatMap { $0.segments.filter { $0.newestStartUnixNano < cutoffUnixNano }.map(\.sequence) }.sorted()
    }

    public func contains(sequence: UInt64) -> Bool {
        generations.contains { $0.segments.contains { $0.sequence == sequence } }
    }

    /// Forgets flushes whose files were removed; a generation left with none goes too.
    /// (A generation's filter still says "maybe" for their traces: the lookup then finds
    /// no flush to read.)
    public mutating func remove(sequences: Set<UInt64>) {
        changes += 1
        for g in generations.indices { generations[g].segments.removeAll { sequences.contains($0.sequence) } }
        let last = generations.count - 1
        generations = generations.enumerated().filter { $0.offset == last || !$0.element.segments.isEmpty }.map(\.element)
    }

    /// Every flush with runs, ascending: its sequence, how many traces it holds, and the
    /// latest start among them (what a merge plan needs).
    public var segments: [RunSegmentMergePlan.Segment] {
        generations.flatMap { $0.segments.map { RunSegmentMergePlan.Segment(sequence: $0.sequence, runs: $0.runs, newestStartUnixNano: $0.newestStartUnixNano) } }
            .sorted { $0.sequence < $1.sequence }
    }

    /// Flushes `sequences` were merged into the files of the last of them, holding `ids`
    /// and runs of the tasks `taskKeys`: one filter stands for them, in the generation of
    /// that last flush (whose filter gets every key, in case the merged flushes spanned
    /// two generations).
    public mutating func merge(sequences: [UInt64], ids: [TraceID], taskKeys: [TraceID] = [],
                               newestStartUnixNano: Int64) {
        guard let key = sequences.last else { return }
        let target = generations.lastIndex { $0.segments.contains { $0.sequence == key } } ?? generations.count - 1
        guard target >= 0 else { return }
        changes += 1
        let gone = Set(sequences)
        for g in generations.indices { generations[g].segments.removeAll { gone.contains($0.sequence) } }
        let merged = segment(key, ids: ids, taskKeys: taskKeys, newestStartUnixNano: newestStartUnixNano, generation: target)
        let at = generations[target].segments.firstIndex { $0.sequence > key } ?? generations[target].segments.count
        generations[target].segments.insert(merged, at: at)
        let last = generations.count - 1
        generations = generations.enumerated().filter { $0.offset == last || !$0.element.segments.isEmpty }.map(\.element)
    }

    public var segmentCount: Int { generations.reduce(0) { $0 + $1.segments.count } }
    public var byteCount: Int { generations.reduce(0) { $0 + $1.filter.byteCount + $1.segments.reduce(0) { $0 + $1.filter.byteCount } } }
}
