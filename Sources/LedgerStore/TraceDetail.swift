import LedgerCore
import ProtoWire

/// One span of a stored run tree, as `spanledger trace` shows it.
public struct StoredSpan: Sendable, Hashable {
    public enum Kind: UInt8, Sendable {
        case other = 0, llm = 1, tool = 2, workflow = 3
        public var name: String {
            switch self {
            case .other: "other"
            case .llm: "llm"
            case .tool: "tool"
            case .workflow: "workflow"
            }
        }
    }

    public var spanID: SpanID
    public var parentSpanID: SpanID
    public var name: String
    public var kind: Kind
    public var model: String
    public var startOffsetNano: Int64
    public var durationNano: Int64
    public var usage: TokenUsage
    public var costMicros: Int64
    public var priced: Bool
    public var error: Bool
    public var retry: Bool
    public var explicitCost: Bool
    /// The agent of the span (nearest enclosing agent span, "" when none).
    public var agent: String = ""

    public init(spanID: SpanID, parentSpanID: SpanID, name: String, kind: Kind, model: String, startOffsetNano: Int64, durationNano: Int64,
                usage: TokenUsage, costMicros: Int64, priced: Bool, error: Bool, retry: Bool, explicitCost: Bool, agent: String = "") {
        self.agent = agent
        self.spanID = spanID
        self.parentSpanID = parentSpanID
        self.name = name
        self.kind = kind
        self.model = model
        self.startOffsetNano = startOffsetNano
        self.durationNano = durationNano
        self.usage = usage
        self.costMicros = costMicros
        self.priced = priced
        self.error = error
        self.retry = retry
        self.explicitCost = explicitCost
    }
}

public struct TraceDetail: Sendable, Hashable {
    public var traceID: TraceID
    public var spans: [StoredSpan]
    public init(traceID: TraceID, spans: [StoredSpan]) {
        self.traceID = traceID
        self.spans = spans
    }
}

/// One run's tree in the form memory keeps it and a flush writes it: the bytes of its
/// TraceDetail message, carrying the run's own names (field 3) so that it stands alone.
/// A tree is packed once, when its run is prepared off the actor; unflushed and recent
/// trees hold these (about a third of the memory of their `StoredSpan`s), a flush copies
/// them into its segment as they are, and `trace` or late spans unpack the one they need.
public struct PackedTree: Sendable, Hashable {
    public let traceID: TraceID
    public let spanCount: Int
    public let bytes: [UInt8]

    public init(traceID: TraceID, spans: [StoredSpan]) {
        var packer = TreePacker(traceID: traceID, expectedSpans: spans.count)
        // By index through a buffer pointer: iterating the array would copy each span,
        // retaining and releasing its three strings.
        spans.withUnsafeBufferPointer { spans in
            for i in spans.indices { packer.add(spans[i]) }
        }
        self = packer.finish()
    }

    init(traceID: TraceID, spanCount: Int, bytes: [UInt8]) {
        self.traceID = traceID
        self.spanCount = spanCount
        self.bytes = bytes
    }

    public init(_ detail: TraceDetail) { self.init(traceID: detail.traceID, spans: detail.spans) }

    /// The spans, as packed.
    public func unpack() -> [StoredSpan] {
        do {
            return try TraceDetailCodec.decodeTrace(bytes[...], segmentStrings: StringTable(), path: "packed tree", only: nil)?.spans ?? []
        } catch {
            // `init` wrote these bytes: they decode unless the codec itself is wrong.
            preconditionFailure("a packed run tree does not decode: \(error)")
        }
    }
}

/// The names of one run's tree, each stored once in its packed form; index 0 is "" and
/// is not stored. A run uses a handful of names, mostly the decoder's shared strings:
/// a comparison of the strings' bits finds most, text comparison the rest, and a run
/// with many distinct names switches to a dictionary.
struct RunNames {
    private(set) var strings: [String] = []
    private var bits: [StringBits] = []
    private var lookup: [String: UInt32]?
    static let linearLimit = 16

    /// Room for `expected` names up front: grown from empty, the two arrays were
    /// reallocated three times each in a typical run.
    init(expected: Int = 0) {
        let n = min(expected, Self.linearLimit)
        strings.reserveCapacity(n)
        bits.reserveCapacity(n)
    }

    mutating func index(_ s: String) -> UInt32 {
        if s.isEmpty { return 0 }
        if let found = lookup?[s] { return found }
        if lookup == nil {
            let b = StringBits(s)
            for i in bits.indices where bits[i] == b { return UInt32(i + 1) }
            // A new name mostly differs in length from those before it: compared by text only
            // when the lengths match (a native string's UTF-8 count is stored).
            let length = s.utf8.count
            for i in strings.indices where strings[i].utf8.count == length && strings[i] == s { return UInt32(i + 1) }
        }
        strings.append(s)
        let i = UInt32(strings.count)
        if lookup != nil {
            lookup![s] = i
        } else if strings.count > Self.linearLimit {
            var d: [String: UInt32] = [:]
            for (n, name) in strings.enumerated() { d[name] = UInt32(n + 1) }
            lookup = d
        } else {
            bits.append(StringBits(s))
        }
        return i
    }
}

/// Packs one run's tree (its TraceDetail message, names in its own table, field 3 from
/// index 1) span by span from whatever holds the spans' fields: a prepared run's
/// attributed spans, with no `StoredSpan` array built in between, or stored spans.
/// The strings are borrowed, not retained: a run names its spans with a few strings
/// (operation, model, agent) that most of its spans share.
public struct TreePacker: ~Copyable {
    private let traceID: TraceID
    private var names = RunNames(expected: 8)
    private var w: ProtoWriter
    private var count = 0

    public init(traceID: TraceID, expectedSpans: Int) {
        self.traceID = traceID
        w = ProtoWriter(capacity: 64 + 56 * expectedSpans)
        w.bigEndianWords(1, traceID.high, traceID.low)
    }

    public mutating func add(_ s: borrowing StoredSpan) {
        add(spanID: s.spanID, parentSpanID: s.parentSpanID, name: s.name, kind: s.kind, model: s.model, startOffsetNano: s.startOffsetNano,
            durationNano: s.durationNano, usage: s.usage, costMicros: s.costMicros, priced: s.priced, error: s.error, retry: s.retry,
            explicitCost: s.explicitCost, agent: s.agent)
    }

    public mutating func add(spanID: SpanID, parentSpanID: SpanID, name: String, kind: StoredSpan.Kind, model: String, startOffsetNano: Int64,
                             durationNano: Int64, usage: TokenUsage, costMicros: Int64, priced: Bool, error: Bool, retry: Bool,
                             explicitCost: Bool, agent: String) {
        count += 1
        let name = names.index(name), model = names.index(model), agent = names.index(agent)
        w.message(2) { w in
            w.bigEndianWords(1, spanID.value)
            if !parentSpanID.isNone { w.bigEndianWords(2, parentSpanID.value) }
            w.uint(3, UInt64(name))
            w.uint(4, UInt64(kind.rawValue))
            w.uint(5, UInt64(model))
            w.int(6, startOffsetNano)
            w.int(7, durationNano)
            w.sint(8, usage.input)
            w.sint(9, usage.cacheRead)
            w.sint(10, usage.cacheWrite)
            w.sint(11, usage.output)
            w.sint(12, usage.reasoning)
            w.sint(13, costMicros)
            w.bool(14, priced)
            w.bool(15, error)
            w.bool(16, retry)
            w.bool(17, explicitCost)
            if agent != 0 { w.uint(18, UInt64(agent)) }
        }
    }

    /// The packed tree: the spans, then the names they used. Exactly sized (the writer
    /// reserved for the worst case): memory keeps these.
    public consuming func finish() -> PackedTree {
        for s in names.strings {
            w.tag(3, 2)
            w.lengthPrefixed(s)
        }
        return PackedTree(traceID: traceID, spanCount: count, bytes: w.bytes)
    }
}

/// Encodes run trees as a spanledger.v1.TraceDetailSegment.
public enum TraceDetailCodec {
    /// `walSequenceMax`: the highest write-ahead-log record consumed before this flush
    /// (field 5), which lets replay find the flushes that may hold spans of a record.
    public static func encode(_ traces: [TraceDetail], createdUnixMs: Int64, walSequenceMax: UInt64 = 0) -> [UInt8] {
        encode(traces.map(PackedTree.init), createdUnixMs: createdUnixMs, walSequenceMax: walSequenceMax)
    }

    /// A segment of packed trees: each is copied in as its own TraceDetail (field 4).
    public static func encode(_ trees: [PackedTree], createdUnixMs: Int64, walSequenceMax: UInt64 = 0) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(trees.reduce(32) { $0 + $1.bytes.count + 4 })
        write(trees, createdUnixMs: createdUnixMs, walSequenceMax: walSequenceMax) { out += $0 }
        return out
    }

    /// The segment in pieces, to `sink` (a deflater): the header, then each tree's field
    /// header and its packed bytes as they are.
    public static func write<E: Error>(_ trees: [PackedTree], createdUnixMs: Int64, walSequenceMax: UInt64,
                                       to sink: ([UInt8]) throws(E) -> Void) throws(E) {
        try writeHeader(createdUnixMs: createdUnixMs, walSequenceMax: walSequenceMax, to: sink)
        try writeTrees(trees, to: sink)
    }

    /// The segment's header fields. They come first: replay reads field 5 without walking
    /// the traces.
    public static func writeHeader<E: Error>(createdUnixMs: Int64, walSequenceMax: UInt64, to sink: ([UInt8]) throws(E) -> Void) throws(E) {
        var piece = ProtoWriter(capacity: 32)
        piece.uint(1, 1)
        piece.int(2, createdUnixMs)
        piece.uint(5, walSequenceMax)
        try sink(piece.bytes)
    }

    /// Trees after the header, in as many calls as the writer likes (a merge of several
    /// flushes' segments writes each one's trees in turn).
    public static func writeTrees<E: Error>(_ trees: [PackedTree], to sink: ([UInt8]) throws(E) -> Void) throws(E) {
        var piece = ProtoWriter(capacity: 16)
        for t in trees {
            piece.removeAll()
            piece.tag(4, 2)
            piece.varint(UInt64(t.bytes.count))
            try sink(piece.bytes)
            try sink(t.bytes)
        }
    }

    /// The segment's `wal_sequence_max` (field 5).
    public static func walSequenceMax(_ bytes: [UInt8]) -> UInt64 {
        var r = ProtoReader(bytes)
        while let (field, value) = try? r.next() {
            if field == 5 { return value.uint64 }
        }
        return 0
    }

    /// Decodes the segment; with `only`, keeps just that trace's records. A trace's names
    /// are its own (field 3 of the TraceDetail) or, in segments written before trees were
    /// packed per run, the segment's table (field 3 of the segment).
    public static func decode(_ bytes: [UInt8], path: String, only: TraceID? = nil) throws(StoreError) -> [TraceDetail] {
        var strings = StringTable()
        var raw: [ArraySlice<UInt8>] = []
        var out: [TraceDetail] = []
        try StoreError.decoding(path) {
            var r = ProtoReader(bytes)
            while let (field, value) = try r.next() {
                if field == 3 { strings.strings.append(value.string) } else if field == 4 { raw.append(value.slice) }
            }
            let wanted = only?.bytes
            for slice in raw {
                if let detail = try decodeTrace(slice, segmentStrings: strings, path: path, only: wanted) { out.append(detail) }
            }
        }
        return out
    }

    /// One TraceDetail message; nil when `only` (a trace ID's bytes) is set and it is another trace's.
    static func decodeTrace(_ slice: ArraySlice<UInt8>, segmentStrings: StringTable, path: String, only: [UInt8]?) throws -> TraceDetail? {
        var detail = TraceDetail(traceID: TraceID(high: 0, low: 0), spans: [])
        var spans: [ArraySlice<UInt8>] = []
        var own = StringTable(strings: [""])
        var r = ProtoReader(slice)
        while let (f, v) = try r.next() {
            switch f {
            case 1:
                if let only, !v.slice.elementsEqual(only) { return nil }
                guard let id = TraceID(bytes: Array(v.slice)) else { throw StoreError(path: path, message: "bad trace ID length") }
                detail.traceID = id
            case 2: spans.append(v.slice)
            case 3: own.strings.append(v.string)
            default: break
            }
        }
        let strings = own.strings.count > 1 ? own : segmentStrings
        detail.spans.reserveCapacity(spans.count)
        for s in spans { detail.spans.append(try decodeSpan(s, strings: strings, path: path)) }
        return detail
    }

    static func decodeSpan(_ slice: ArraySlice<UInt8>, strings: StringTable, path: String) throws -> StoredSpan {
        var s = StoredSpan(spanID: .none, parentSpanID: .none, name: "", kind: .other, model: "", startOffsetNano: 0, durationNano: 0,
                           usage: TokenUsage(), costMicros: 0, priced: false, error: false, retry: false, explicitCost: false)
        var r = ProtoReader(slice)
        while let (f, v) = try r.next() {
            switch f {
            case 1: s.spanID = SpanID(bytes: Array(v.slice)) ?? .none
            case 2: s.parentSpanID = SpanID(bytes: Array(v.slice)) ?? .none
            case 3: s.name = try strings.string(v.uint64, path: path)
            case 4: s.kind = StoredSpan.Kind(rawValue: UInt8(truncatingIfNeeded: v.uint64)) ?? .other
            case 5: s.model = try strings.string(v.uint64, path: path)
            case 6: s.startOffsetNano = v.int64
            case 7: s.durationNano = v.int64
            case 8: s.usage.input = v.sint64
            case 9: s.usage.cacheRead = v.sint64
            case 10: s.usage.cacheWrite = v.sint64
            case 11: s.usage.output = v.sint64
            case 12: s.usage.reasoning = v.sint64
            case 13: s.costMicros = v.sint64
            case 14: s.priced = v.bool
            case 15: s.error = v.bool
            case 16: s.retry = v.bool
            case 17: s.explicitCost = v.bool
            case 18: s.agent = try strings.string(v.uint64, path: path)
            default: break
            }
        }
        return s
    }
}
