import LedgerCore
import ProtoWire

/// One run in the per-trace index (trace ID → workflow, start, cost, outcome, …).
public struct TraceIndexEntry: Sendable, Hashable {
    public var traceID: TraceID
    public var workflow: String
    public var service: String
    public var startUnixNano: Int64
    public var durationNano: Int64
    public var outcome: Outcome
    public var costMicros: Int64
    public var llmCalls: Int64
    public var inputTokens: Int64
    public var outputTokens: Int64
    public var unpricedTokens: Int64
    public var spanCount: Int64
    public var incomplete: Bool
    /// Models the run called, in first-call order ("" for a run with no LLM call).
    public var models: [String]
    public var toolCalls: Int64
    public var retries: Int64
    public var errors: Int64
    /// The verdict that decided `outcome`: its time (0 while pending), where it came
    /// from, who gave it, and how many times a later verdict changed the outcome.
    public var verdictTimeUnixNano: Int64 = 0
    public var verdictSource: VerdictSource = .none
    public var reviewer = ""
    public var reviewerKind: ReviewerKind = .unknown
    public var corrections: Int64 = 0
    /// The task the run works on ("" when none) and whether it is rework (conventions.md "Rework").
    public var taskID = ""
    public var rework = false
    /// Agents whose spans made LLM or tool calls, in first-call order.
    public var agents: [String] = []

    public init(traceID: TraceID, workflow: String, service: String, startUnixNano: Int64, durationNano: Int64, outcome: Outcome,
                costMicros: Int64, llmCalls: Int64, inputTokens: Int64, outputTokens: Int64, unpricedTokens: Int64, spanCount: Int64,
                incomplete: Bool, models: [String], toolCalls: Int64, retries: Int64, errors: Int64) {
        self.traceID = traceID
        self.workflow = workflow
        self.service = service
        self.startUnixNano = startUnixNano
        self.durationNano = durationNano
        self.outcome = outcome
        self.costMicros = costMicros
        self.llmCalls = llmCalls
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.unpricedTokens = unpricedTokens
        self.spanCount = spanCount
        self.incomplete = incomplete
        self.models = models
        self.toolCalls = toolCalls
        self.retries = retries
        self.errors = errors
    }
}

/// What start-up needs of an index entry it does not keep in memory: the trace (for the
/// trace locator), when the run started (trace retention), its task and its outcome
/// (rework: whether an earlier run of the task was rejected or edited).
public struct TraceIndexSummary: Sendable, Equatable {
    public var traceID: TraceID
    public var startUnixNano: Int64
    public var taskID: String
    public var outcome: Outcome

    public init(traceID: TraceID, startUnixNano: Int64, taskID: String, outcome: Outcome = .pending) {
        self.traceID = traceID
        self.startUnixNano = startUnixNano
        self.taskID = taskID
        self.outcome = outcome
    }
}

/// Encodes index entries as a spanledger.v1.TraceIndexSegment. On load, the last entry
/// for a trace ID wins (later segments carry updated entries for late spans).
///
/// Each entry's trace ID, start and duration go in the segment's stored part (field 6),
/// by position, not in the entry: random IDs and nanosecond times do not compress, and
/// deflate spent a quarter of a flush's time on them. Segments written before 2026-12-06
/// carry them in the entries (fields 1, 4, 5), and still read.
public enum TraceIndexCodec {
    /// The segment message, uncompressed.
    public static func encode(_ entries: some Collection<TraceIndexEntry>, createdUnixMs: Int64) -> [UInt8] {
        var out: [UInt8] = []
        write(entries, createdUnixMs: createdUnixMs) { bytes, _ in out.append(contentsOf: bytes) }
        return out
    }

    /// The segment file as a flush writes it: entries and names deflated, the stored part stored.
    public static func segment(_ entries: some Collection<TraceIndexEntry>, createdUnixMs: Int64) throws -> [UInt8] {
        try SegmentFrame.encode(kind: .traceIndex) { deflater in
            try write(entries, createdUnixMs: createdUnixMs) { try deflater.write($0, compressing: $1) }
        }
    }

    /// The message to `sink` (bytes, whether they are worth compressing): header, entries
    /// and string table, then the stored part.
    public static func write(_ entries: some Collection<TraceIndexEntry>, createdUnixMs: Int64,
                             to sink: (UnsafeRawBufferPointer, Bool) throws -> Void) rethrows {
        var strings = StringTableBuilder()
        var body = ProtoWriter(capacity: entries.count * 40)
        var stored = ProtoWriter(capacity: 16 + entries.count * 32)
        body.uint(1, 2)
        body.int(2, createdUnixMs)
        var previousStart: Int64 = 0
        for e in entries {
            stored.bigEndian64(e.traceID.high)
            stored.bigEndian64(e.traceID.low)
            // Entries come in release order: a start is near the one before.
            stored.varint(ProtoWriter.zigzag(e.startUnixNano &- previousStart))
            stored.varint(UInt64(bitPattern: e.durationNano))
            previousStart = e.startUnixNano
            let w = strings.index(e.workflow), s = strings.index(e.service)
            body.message(4) { r in
                r.uint(2, UInt64(w))
                r.uint(3, UInt64(s))
                r.uint(6, UInt64(e.outcome.rawValue))
                r.sint(7, e.costMicros)
                r.sint(8, e.llmCalls)
                r.sint(9, e.inputTokens)
                r.sint(10, e.outputTokens)
                r.sint(11, e.unpricedTokens)
                r.uint(12, UInt64(e.spanCount))
                r.bool(13, e.incomplete)
                r.message(14, always: false) { packed in
                    for m in e.models { packed.varint(UInt64(strings.index(m))) }
                }
                r.sint(15, e.toolCalls)
                r.sint(16, e.retries)
                r.sint(17, e.errors)
                r.int(18, e.verdictTimeUnixNano)
                r.uint(19, UInt64(e.verdictSource.rawValue))
                if !e.reviewer.isEmpty { r.uint(20, UInt64(strings.index(e.reviewer))) }
                r.uint(21, UInt64(e.reviewerKind.rawValue))
                r.sint(22, e.corrections)
                if !e.taskID.isEmpty { r.uint(23, UInt64(strings.index(e.taskID))) }
                r.bool(24, e.rework)
                r.message(25, always: false) { packed in
                    for a in e.agents { packed.varint(UInt64(strings.index(a))) }
                }
            }
        }
        for s in strings.strings { body.string(3, s, always: true) }
        body.tag(6, 2)
        body.varint(UInt64(stored.count))
        try body.withUnsafeBytes { try sink($0, true) }
        try stored.withUnsafeBytes { try sink($0, false) }
    }

    /// Reads the stored part (field 6) alongside the entries: each entry's trace ID, start
    /// and duration by position. Over a `ProtoReader` (a decode that keeps slices) or, for
    /// start-up summaries read in place, a `RawFieldScanner`.
    struct StoredCursor<Reader: PlainSequenceReader> {
        private var reader: Reader
        private var previousStart: Int64 = 0

        init(_ reader: Reader) { self.reader = reader }

        mutating func next() throws(ProtoDecodeError) -> (TraceID, start: Int64, duration: Int64) {
            let id = TraceID(high: try reader.nextBigEndian64(), low: try reader.nextBigEndian64())
            previousStart = previousStart &+ ProtoWriter.unzigzag(try reader.nextVarint())
            return (id, previousStart, Int64(bitPattern: try reader.nextVarint()))
        }

        /// Every entry read: the stored part must be used up.
        func finish(path: String) throws(StoreError) {
            guard reader.isAtEnd else { throw StoreError(path: path, message: "index stored part longer than its entries") }
        }
    }

    /// A segment message's string table (field 3), entries (field 4) and, in segments
    /// from 2026-12-06, a cursor on its stored part (field 6).
    private static func parts(_ bytes: [UInt8]) throws(ProtoDecodeError) -> (StringTable, [ArraySlice<UInt8>], StoredCursor<ProtoReader>?) {
        var strings = StringTable()
        var entries: [ArraySlice<UInt8>] = []
        var stored: ArraySlice<UInt8>?
        var r = ProtoReader(bytes)
        while let (field, value) = try r.next() {
            switch field {
            case 3: strings.strings.append(value.string)
            case 4: entries.append(value.slice)
            case 6: stored = value.slice
            default: break
            }
        }
        return (strings, entries, stored.map { StoredCursor(ProtoReader($0)) })
    }

    /// The segment's entries as summaries: no names, lists or counts are built, so a start
    /// reads the segments whose runs stay on disk several times faster. Read in place
    /// (`RawFieldScanner`): through `ProtoReader`, which makes a slice and a value of every
    /// field, this was 42% of a start on 3 million runs.
    public static func decodeSummaries(_ bytes: [UInt8], path: String) throws(StoreError) -> [TraceIndexSummary] {
        try StoreError.decoding(path) {
            try bytes.withUnsafeBytes { buffer in
                var strings = StringTable()
                var rows: [Range<Int>] = []
                var stored: UnsafeRawBufferPointer?
                var r = RawFieldScanner(buffer)
                while let field = try r.nextField() {
                    switch field {
                    case 3: strings.strings.append(String(decoding: try r.bytes(), as: UTF8.self))
                    case 4:
                        let row = try r.bytes()
                        let start = row.baseAddress.map { $0 - buffer.baseAddress! } ?? 0
                        rows.append(start..<(start + row.count))
                    case 6: stored = try r.bytes()
                    default: try r.skip()
                    }
                }
                var out: [TraceIndexSummary] = []
                out.reserveCapacity(rows.count)
                var cursor = stored.map { StoredCursor(RawFieldScanner($0)) }
                for range in rows {
                    var s = TraceIndexSummary(traceID: TraceID(high: 0, low: 0), startUnixNano: 0, taskID: "")
                    if cursor != nil { (s.traceID, s.startUnixNano, _) = try cursor!.next() }
                    var row = RawFieldScanner(UnsafeRawBufferPointer(rebasing: buffer[range]))
                    while let f = try row.nextField() {
                        switch (f, row.wireType) {
                        case (1, 2):
                            guard let id = TraceID(bytes: try row.bytes()) else { throw StoreError(path: path, message: "bad trace ID length") }
                            s.traceID = id
                        case (4, 0): s.startUnixNano = Int64(bitPattern: try row.varint())
                        case (6, 0): s.outcome = Outcome(rawValue: Int(truncatingIfNeeded: try row.varint())) ?? .pending
                        case (23, 0): s.taskID = try strings.string(try row.varint(), path: path)
                        default: try row.skip()
                        }
                    }
                    out.append(s)
                }
                try cursor?.finish(path: path)
                return out
            }
        }
    }

    /// Decodes the segment; with `only`, just that trace's entry (the others are skipped
    /// at their first field, the trace ID).
    public static func decode(_ bytes: [UInt8], path: String, only: TraceID? = nil) throws(StoreError) -> [TraceIndexEntry] {
        let wanted = only?.bytes
        var out: [TraceIndexEntry] = []
        try StoreError.decoding(path) {
            let (strings, raw, cursor) = try parts(bytes)
            var stored = cursor
            for slice in raw {
                var known: (TraceID, start: Int64, duration: Int64)?
                if stored != nil {
                    known = try stored!.next()
                    if let only, known!.0 != only { continue }
                }
                if let e = try entry(slice, stored: known, strings: strings, path: path, wanted: wanted) { out.append(e) }
            }
            try stored?.finish(path: path)
        }
        return out
    }

    /// One entry from its row (field 4) and, in segments with a stored part, its trace ID,
    /// start and duration from there; nil when `wanted` (a trace ID's bytes) is set and the
    /// row is another trace's.
    static func entry(_ slice: ArraySlice<UInt8>, stored known: (TraceID, start: Int64, duration: Int64)?, strings: StringTable, path: String,
                      wanted: [UInt8]?) throws -> TraceIndexEntry? {
        var e = TraceIndexEntry(traceID: TraceID(high: 0, low: 0), workflow: "", service: "", startUnixNano: 0, durationNano: 0,
                                outcome: .pending, costMicros: 0, llmCalls: 0, inputTokens: 0, outputTokens: 0, unpricedTokens: 0,
                                spanCount: 0, incomplete: false, models: [], toolCalls: 0, retries: 0, errors: 0)
        if let known { (e.traceID, e.startUnixNano, e.durationNano) = known }
        var rr = ProtoReader(slice)
        var skip = false
        while let (f, v) = try rr.next() {
            switch f {
            case 1:
                if let wanted, !v.slice.elementsEqual(wanted) { skip = true; break }
                guard let id = TraceID(bytes: Array(v.slice)) else { throw StoreError(path: path, message: "bad trace ID length") }
                e.traceID = id
            case 2: e.workflow = try strings.string(v.uint64, path: path)
            case 3: e.service = try strings.string(v.uint64, path: path)
            case 4: e.startUnixNano = v.int64
            case 5: e.durationNano = v.int64
            case 6: e.outcome = Outcome(rawValue: Int(v.uint64)) ?? .pending
            case 7: e.costMicros = v.sint64
            case 8: e.llmCalls = v.sint64
            case 9: e.inputTokens = v.sint64
            case 10: e.outputTokens = v.sint64
            case 11: e.unpricedTokens = v.sint64
            case 12: e.spanCount = v.int64
            case 13: e.incomplete = v.bool
            case 14: e.models = try ProtoReader.packedVarints(v.slice).map { m throws(StoreError) in try strings.string(m, path: path) }
            case 15: e.toolCalls = v.sint64
            case 16: e.retries = v.sint64
            case 17: e.errors = v.sint64
            case 18: e.verdictTimeUnixNano = v.int64
            case 19: e.verdictSource = VerdictSource(rawValue: UInt8(truncatingIfNeeded: v.uint64)) ?? .none
            case 20: e.reviewer = try strings.string(v.uint64, path: path)
            case 21: e.reviewerKind = ReviewerKind(rawValue: UInt8(truncatingIfNeeded: v.uint64)) ?? .unknown
            case 22: e.corrections = v.sint64
            case 23: e.taskID = try strings.string(v.uint64, path: path)
            case 24: e.rework = v.bool
            case 25: e.agents = try ProtoReader.packedVarints(v.slice).map { m throws(StoreError) in try strings.string(m, path: path) }
            default: break
            }
            if skip { break }
        }
        return skip ? nil : e
    }

    /// A segment's entries found by trace ID without walking them: its string table and
    /// rows parsed once, and its stored part (trace ID, start, duration per row) read and
    /// its rows sorted by trace ID. Kept with the segment in the lookup cache, so a
    /// verdict for a run on disk decodes one row where it walked the whole segment (about
    /// 4 ms for 27,000 rows, twice a verdict). Segments without a stored part (written
    /// before 2026-12-06) are walked as before.
    public final class Lookup: Sendable {
        let bytes: [UInt8]
        let strings: StringTable
        let rows: [ArraySlice<UInt8>]
        let stored: [(TraceID, start: Int64, duration: Int64)]
        /// (trace ID, row) for every row, sorted: one array, where a dictionary of row lists
        /// allocated a list per trace.
        let order: [(id: TraceID, row: Int32)]
        let hasStored: Bool

        public init(_ bytes: [UInt8], path: String) throws(StoreError) {
            var parsed: (StringTable, [ArraySlice<UInt8>], [(TraceID, start: Int64, duration: Int64)], Bool)?
            try StoreError.decoding(path) {
                let (strings, rows, cursor) = try parts(bytes)
                var stored: [(TraceID, start: Int64, duration: Int64)] = []
                if var c = cursor {
                    stored.reserveCapacity(rows.count)
                    for _ in rows { stored.append(try c.next()) }
                    try c.finish(path: path)
                }
                parsed = (strings, rows, stored, cursor != nil)
            }
            let (strings, rows, stored, hasStored) = parsed!
            var order = stored.enumerated().map { (id: $1.0, row: Int32($0)) }
            order.sort { ($0.id.high, $0.id.low, $0.row) < ($1.id.high, $1.id.low, $1.row) }
            (self.bytes, self.strings, self.rows, self.stored, self.order, self.hasStored) = (bytes, strings, rows, stored, order, hasStored)
        }

        /// Bytes it holds, about: the message, the rows' slices, the stored part and the map.
        public var byteCount: Int { bytes.count + rows.count * 16 + stored.count * 32 + order.count * 24 }

        /// The entries of one trace, in segment order (the last is the latest).
        public func entries(of id: TraceID, path: String) throws(StoreError) -> [TraceIndexEntry] {
            guard hasStored else { return try TraceIndexCodec.decode(bytes, path: path, only: id) }
            var out: [TraceIndexEntry] = []
            try StoreError.decoding(path) {
                var lo = 0, hi = order.count
                while lo < hi {
                    let mid = (lo + hi) / 2
                    if (order[mid].id.high, order[mid].id.low) < (id.high, id.low) { lo = mid + 1 } else { hi = mid }
                }
                // Rows of the trace in segment order (sorted by row within the ID).
                while lo < order.count && order[lo].id == id {
                    let r = Int(order[lo].row)
                    if let e = try TraceIndexCodec.entry(rows[r], stored: stored[r], strings: strings, path: path, wanted: nil) { out.append(e) }
                    lo += 1
                }
            }
            return out
        }
    }
}
