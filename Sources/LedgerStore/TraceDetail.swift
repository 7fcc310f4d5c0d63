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

/// One run's tree in the form memory keeps it and a flush writes it: a TraceShape message
/// (the span count, per-span fields, parents as positions, the run's own names), then
/// the tree's stored part (trace ID, span IDs, times), which a segment keeps uncompressed.
/// A tree is packed once, when its run is prepared off the actor; unflushed and recent
/// trees hold these (about a third of the memory of their `StoredSpan`s), a flush copies
/// them into its segment as they are, and `trace` or late spans unpack the one they need.
public struct PackedTree: Sendable, Hashable {
    public let traceID: TraceID
    public let spanCount: Int
    public let bytes: [UInt8]
    /// Where the stored part begins in `bytes`.
    public let storedStart: Int

    public init(traceID: TraceID, spans: [StoredSpan]) {
        var packer = TreePacker(traceID: traceID, expectedSpans: spans.count)
        // By index through a buffer pointer: iterating the array would copy each span,
        // retaining and releasing its three strings.
        spans.withUnsafeBufferPointer { spans in
            for i in spans.indices { packer.add(spans[i]) }
        }
        self = packer.finish()
    }

    init(traceID: TraceID, spanCount: Int, bytes: [UInt8], storedStart: Int) {
        self.traceID = traceID
        self.spanCount = spanCount
        self.bytes = bytes
        self.storedStart = storedStart
    }

    public init(_ detail: TraceDetail) { self.init(traceID: detail.traceID, spans: detail.spans) }

    /// The TraceShape message.
    public var shape: ArraySlice<UInt8> { bytes[..<storedStart] }
    /// Trace ID, span IDs, times and outside parents.
    public var stored: ArraySlice<UInt8> { bytes[storedStart...] }

    /// The spans, as packed.
    public func unpack() -> [StoredSpan] {
        do {
            return try TraceDetailCodec.decodeTree(shape: shape, stored: stored, path: "packed tree", keeping: nil)?.spans ?? []
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
    private var lookup: [String: UInt32]?
    static let linearLimit = 16

    /// Room for `expected` names up front: grown from empty, the array was reallocated
    /// three times in a typical run.
    init(expected: Int = 0) {
        strings.reserveCapacity(min(expected, Self.linearLimit))
    }

    mutating func index(_ s: String) -> UInt32 {
        if s.isEmpty { return 0 }
        if let found = lookup?[s] { return found }
        if lookup == nil {
            // The strings' bits, read in place (no copy, so no retain): the same string
            // (mostly one of the decoder's shared ones) has the same bits.
            let b = StringBits(s)
            let found: Int? = strings.withUnsafeBytes { raw in
                for i in 0..<(raw.count / MemoryLayout<String>.stride) {
                    let bits = raw.load(fromByteOffset: i * MemoryLayout<String>.stride, as: (UInt64, UInt64).self)
                    if bits.0 == b.a && bits.1 == b.b { return i }
                }
                return nil
            }
            if let found { return UInt32(found + 1) }
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
        }
        return i
    }
}

/// Packs one run's tree (a TraceShape and its stored part, see `PackedTree`) span by
/// span from whatever holds the spans' fields: a prepared run's attributed spans, with no
/// `StoredSpan` array built in between, or stored spans. The strings are borrowed, not
/// retained: a run names its spans with a few strings (operation, model, agent) that
/// most of its spans share.
///
/// Fields are kept apart by how they compress: per-span kinds, flags, name indexes, token
/// counts and costs repeat from run to run and deflate to a fifth; span IDs are random
/// and times are nanoseconds, which deflate spent most of a flush's time on for nothing.
public struct TreePacker: ~Copyable {
    private let traceID: TraceID
    private var names = RunNames(expected: 8)
    /// Per span, `stride` words: ID, parent ID (0: none; its position after `finish`
    /// resolves it), start offset, duration, then the ten TraceShape.span_fields values.
    /// One buffer of plain words: arrays of them cost an allocation and a metadata
    /// lookup each, which was a tenth of preparing a run.
    private var words: UnsafeMutablePointer<UInt64>
    private var capacity: Int
    private var count = 0
    static let stride = 14
    static let fieldCount = 10
    /// Runs up to this size find parents by a linear search.
    static let linearParents = 64

    public init(traceID: TraceID, expectedSpans: Int) {
        self.traceID = traceID
        capacity = max(4, expectedSpans)
        words = .allocate(capacity: capacity * Self.stride)
    }

    deinit { words.deallocate() }

    public mutating func add(_ s: borrowing StoredSpan) {
        add(spanID: s.spanID, parentSpanID: s.parentSpanID, name: s.name, kind: s.kind, model: s.model, startOffsetNano: s.startOffsetNano,
            durationNano: s.durationNano, usage: s.usage, costMicros: s.costMicros, priced: s.priced, error: s.error, retry: s.retry,
            explicitCost: s.explicitCost, agent: s.agent)
    }

    public mutating func add(spanID: SpanID, parentSpanID: SpanID, name: String, kind: StoredSpan.Kind, model: String, startOffsetNano: Int64,
                             durationNano: Int64, usage: TokenUsage, costMicros: Int64, priced: Bool, error: Bool, retry: Bool,
                             explicitCost: Bool, agent: String) {
        if count == capacity {
            let grown = UnsafeMutablePointer<UInt64>.allocate(capacity: 2 * capacity * Self.stride)
            grown.initialize(from: words, count: count * Self.stride)
            words.deallocate()
            (words, capacity) = (grown, 2 * capacity)
        }
        let w = words + count * Self.stride
        count += 1
        w[0] = spanID.value
        w[1] = parentSpanID.value
        w[2] = UInt64(bitPattern: startOffsetNano)
        w[3] = UInt64(bitPattern: durationNano)
        w[4] = UInt64(kind.rawValue) | (priced ? 1 << 3 : 0) | (error ? 1 << 4 : 0) | (retry ? 1 << 5 : 0) | (explicitCost ? 1 << 6 : 0)
        w[5] = UInt64(names.index(name))
        w[6] = UInt64(names.index(model))
        w[7] = UInt64(names.index(agent))
        w[8] = ProtoWriter.zigzag(usage.input)
        w[9] = ProtoWriter.zigzag(usage.cacheRead)
        w[10] = ProtoWriter.zigzag(usage.cacheWrite)
        w[11] = ProtoWriter.zigzag(usage.output)
        w[12] = ProtoWriter.zigzag(usage.reasoning)
        w[13] = ProtoWriter.zigzag(costMicros)
    }

    /// The packed tree, exactly sized: memory keeps these.
    public consuming func finish() -> PackedTree {
        let n = count, stride = Self.stride, w = words
        // Parents as positions: 1...n a span of this tree, n+k the k-th parent outside it
        // (a span whose parent never arrived), 0 none.
        var outside: [UInt64] = []
        var byID: [UInt64: Int]?
        if n > Self.linearParents {
            var d: [UInt64: Int] = [:]
            d.reserveCapacity(n)
            for i in 0..<n { d[w[i * stride]] = i }
            byID = d
        }
        var parentsSize = 0
        for i in 0..<n {
            let parent = w[i * stride + 1]
            var ref = 0
            if parent != 0 {
                if let byID { ref = byID[parent].map { $0 + 1 } ?? 0 } else {
                    for j in 0..<n where w[j * stride] == parent { ref = j + 1; break }
                }
                if ref == 0 {
                    if let k = outside.firstIndex(of: parent) { ref = n + 1 + k } else {
                        ref = n + 1 + outside.count
                        outside.append(parent)
                    }
                }
            }
            w[i * stride + 1] = UInt64(ref)
            parentsSize += ProtoWriter.varintSize(UInt64(ref))
        }
        var fieldsSize = 0, timesSize = 0
        for i in 0..<n {
            let span = w + i * stride
            timesSize += ProtoWriter.varintSize(span[2]) + ProtoWriter.varintSize(span[3])
            for k in 4..<stride { fieldsSize += ProtoWriter.varintSize(span[k]) }
        }
        let nameBytes = names.strings.reduce(0) { $0 + $1.utf8.count + 12 }
        var out = ProtoWriter(capacity: 48 + fieldsSize + parentsSize + nameBytes + 16 + 8 * (n + outside.count) + timesSize)
        out.uint(1, UInt64(n))
        // Column by column: a run's flags, names or token counts next to each other
        // repeat from run to run, which deflate finds faster (and smaller) than rows.
        out.tag(2, 2)
        out.varint(UInt64(fieldsSize))
        for k in 4..<stride {
            for i in 0..<n { out.varint(w[i * stride + k]) }
        }
        out.tag(3, 2)
        out.varint(UInt64(parentsSize))
        for i in 0..<n { out.varint(w[i * stride + 1]) }
        for s in names.strings {
            out.tag(4, 2)
            out.lengthPrefixed(s)
        }
        out.uint(5, UInt64(outside.count))
        let storedStart = out.count
        out.bigEndian64(traceID.high)
        out.bigEndian64(traceID.low)
        for i in 0..<n { out.bigEndian64(w[i * stride]) }
        for i in 0..<n {
            out.varint(w[i * stride + 2])
            out.varint(w[i * stride + 3])
        }
        for id in outside { out.bigEndian64(id) }
        return PackedTree(traceID: traceID, spanCount: n, bytes: out.bytes, storedStart: storedStart)
    }
}

/// Encodes run trees as a spanledger.v1.TraceDetailSegment: each tree's shape (field 6)
/// and, paired with it by order, its stored part (field 7).
public enum TraceDetailCodec {
    /// `walSequenceMax`: the highest write-ahead-log record consumed before this flush
    /// (field 5), which lets replay find the flushes that may hold spans of a record.
    public static func encode(_ traces: [TraceDetail], createdUnixMs: Int64, walSequenceMax: UInt64 = 0) -> [UInt8] {
        encode(traces.map(PackedTree.init), createdUnixMs: createdUnixMs, walSequenceMax: walSequenceMax)
    }

    /// The segment message, uncompressed.
    public static func encode(_ trees: [PackedTree], createdUnixMs: Int64, walSequenceMax: UInt64 = 0) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(trees.reduce(32) { $0 + $1.bytes.count + 8 })
        write(trees, createdUnixMs: createdUnixMs, walSequenceMax: walSequenceMax) { bytes, _ in out.append(contentsOf: bytes) }
        return out
    }

    /// The segment file as a flush writes it: shapes deflated, stored parts stored.
    public static func segment(_ trees: [PackedTree], createdUnixMs: Int64, walSequenceMax: UInt64) throws -> [UInt8] {
        Array(try segmentParts(trees, createdUnixMs: createdUnixMs, walSequenceMax: walSequenceMax).joined())
    }

    /// The segment as the pieces `BlockedTrees.Writer.finish` gives, for writing in turn.
    public static func segmentParts(_ trees: [PackedTree], createdUnixMs: Int64, walSequenceMax: UInt64) throws -> [[UInt8]] {
        let writer = try BlockedTrees.Writer(createdUnixMs: createdUnixMs, walSequenceMax: walSequenceMax)
        try writer.add(trees)
        return try writer.finish()
    }

    /// The segment in pieces, to `sink` (bytes, whether they are worth compressing): the
    /// header, then the trees.
    public static func write(_ trees: [PackedTree], createdUnixMs: Int64, walSequenceMax: UInt64,
                             to sink: (UnsafeRawBufferPointer, Bool) throws -> Void) rethrows {
        try writeHeader(createdUnixMs: createdUnixMs, walSequenceMax: walSequenceMax, to: sink)
        try writeTrees(trees, to: sink)
    }

    /// The segment's header fields. They come first: replay reads field 5 without walking
    /// the traces.
    public static func writeHeader(createdUnixMs: Int64, walSequenceMax: UInt64, to sink: (UnsafeRawBufferPointer, Bool) throws -> Void) rethrows {
        var piece = ProtoWriter(capacity: 32)
        piece.uint(1, 2)
        piece.int(2, createdUnixMs)
        piece.uint(5, walSequenceMax)
        try piece.withUnsafeBytes { try sink($0, true) }
    }

    /// Trees after the header, in as many calls as the writer likes (a merge of several
    /// flushes' segments writes each one's trees in turn): every shape, then every stored
    /// part, so that a deflater switches between compressing and storing twice a call.
    public static func writeTrees(_ trees: [PackedTree], to sink: (UnsafeRawBufferPointer, Bool) throws -> Void) rethrows {
        var header = ProtoWriter(capacity: 16)
        for (field, compress) in [(6, true), (7, false)] {
            for t in trees {
                let range = field == 6 ? 0..<t.storedStart : t.storedStart..<t.bytes.count
                // The field's tag and length, then the part where it lies.
                header.removeAll()
                header.tag(field, 2)
                header.varint(UInt64(range.count))
                try header.withUnsafeBytes { try sink($0, compress) }
                try t.bytes.withUnsafeBytes { try sink(UnsafeRawBufferPointer(rebasing: $0[range]), compress) }
            }
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

    /// Decodes the segment; with `only`, keeps just that trace's records. Trees are shapes
    /// (field 6) paired by order with stored parts (field 7); segments written before
    /// 2026-12-06 hold TraceDetail messages instead (field 4), whose names are their own
    /// (field 3 of the TraceDetail) or, before trees were packed per run, the segment's
    /// table (field 3 of the segment).
    public static func decode(_ bytes: [UInt8], path: String, only: TraceID? = nil) throws(StoreError) -> [TraceDetail] {
        let wanted = only?.bytes
        return try decode(bytes, path: path, keeping: wanted.map { w in { $0.elementsEqual(w) } })
    }

    /// The trees of the traces in `ids` (each trace's records in segment order): one pass
    /// over the segment for many lookups, where `decode(only:)` makes one pass per trace.
    public static func decode(_ bytes: [UInt8], path: String, among ids: Set<TraceID>) throws(StoreError) -> [TraceDetail] {
        try decode(bytes, path: path) { id in id.withUnsafeBytes { TraceID(bytes: $0) }.map(ids.contains) ?? false }
    }

    /// `keeping`, given a record's trace ID bytes, says whether to decode it (nil: all).
    private static func decode(_ bytes: [UInt8], path: String, keeping keep: ((ArraySlice<UInt8>) -> Bool)?) throws(StoreError) -> [TraceDetail] {
        var strings = StringTable()
        var raw: [ArraySlice<UInt8>] = []
        var shapes: [ArraySlice<UInt8>] = [], stored: [ArraySlice<UInt8>] = []
        var out: [TraceDetail] = []
        try StoreError.decoding(path) {
            var r = ProtoReader(bytes)
            while let (field, value) = try r.next() {
                switch field {
                case 3: strings.strings.append(value.string)
                case 4: raw.append(value.slice)
                case 6: shapes.append(value.slice)
                case 7: stored.append(value.slice)
                default: break
                }
            }
            guard shapes.count == stored.count else {
                throw StoreError(path: path, message: "\(shapes.count) tree shapes but \(stored.count) stored parts")
            }
            for slice in raw {
                if let detail = try decodeTrace(slice, segmentStrings: strings, path: path, keeping: keep) { out.append(detail) }
            }
            for i in shapes.indices {
                if let detail = try decodeTree(shape: shapes[i], stored: stored[i], path: path, keeping: keep) { out.append(detail) }
            }
        }
        return out
    }

    /// One tree from its TraceShape and stored part; nil when `keep` is set and refuses
    /// its trace ID's bytes. Every count and position is checked against what
    /// the bytes hold: a damaged tree is an error, never a crash or a huge allocation.
    static func decodeTree(shape: ArraySlice<UInt8>, stored: ArraySlice<UInt8>, path: String,
                           keeping keep: ((ArraySlice<UInt8>) -> Bool)?) throws -> TraceDetail? {
        guard stored.count >= 16 else { throw StoreError(path: path, message: "stored part of a tree shorter than a trace ID") }
        if let keep, !keep(stored.prefix(16)) { return nil }
        var count: UInt64 = 0, outsideCount: UInt64 = 0
        var fields: ArraySlice<UInt8> = [], parentRefs: ArraySlice<UInt8> = []
        var names = StringTable(strings: [""])
        var r = ProtoReader(shape)
        while let (f, v) = try r.next() {
            switch f {
            case 1: count = v.uint64
            case 2: fields = v.slice
            case 3: parentRefs = v.slice
            case 4: names.strings.append(v.string)
            case 5: outsideCount = v.uint64
            default: break
            }
        }
        // Each span takes at least 10 stored bytes (ID and two varints), an outside parent 8.
        let room = UInt64(stored.count - 16)
        guard count <= room / 10, outsideCount <= room / 8 else { throw StoreError(path: path, message: "tree of \(count) spans in \(room) stored bytes") }
        let n = Int(count)
        var ids = ProtoReader(stored)
        let traceID = TraceID(high: try ids.nextBigEndian64(), low: try ids.nextBigEndian64())
        var spanIDs: [UInt64] = []
        spanIDs.reserveCapacity(n)
        for _ in 0..<n { spanIDs.append(try ids.nextBigEndian64()) }
        var times: [(Int64, Int64)] = []
        times.reserveCapacity(n)
        for _ in 0..<n { times.append((Int64(bitPattern: try ids.nextVarint()), Int64(bitPattern: try ids.nextVarint()))) }
        var outside: [UInt64] = []
        for _ in 0..<outsideCount { outside.append(try ids.nextBigEndian64()) }
        guard ids.isAtEnd else { throw StoreError(path: path, message: "stored part of a tree longer than its spans") }
        var detail = TraceDetail(traceID: traceID, spans: [])
        detail.spans.reserveCapacity(n)
        // Ten columns of n values each.
        var values: [UInt64] = []
        values.reserveCapacity(TreePacker.fieldCount * n)
        var f = ProtoReader(fields), p = ProtoReader(parentRefs)
        while !f.isAtEnd, values.count < TreePacker.fieldCount * n { values.append(try f.nextVarint()) }
        guard values.count == TreePacker.fieldCount * n, f.isAtEnd else {
            throw StoreError(path: path, message: "tree fields do not hold ten values for each of \(count) spans")
        }
        for i in 0..<n {
            let ref = try p.nextVarint()
            let parent: SpanID
            if ref == 0 {
                parent = .none
            } else if ref <= count {
                parent = SpanID(spanIDs[Int(ref) - 1])
            } else if ref - count <= outsideCount {
                parent = SpanID(outside[Int(ref - count) - 1])
            } else {
                throw StoreError(path: path, message: "parent position \(ref) in a tree of \(count) spans")
            }
            func column(_ k: Int) -> UInt64 { values[k * n + i] }
            let flags = column(0)
            let name = try names.string(column(1), path: path)
            let model = try names.string(column(2), path: path)
            let agent = try names.string(column(3), path: path)
            var usage = TokenUsage()
            usage.input = ProtoWriter.unzigzag(column(4))
            usage.cacheRead = ProtoWriter.unzigzag(column(5))
            usage.cacheWrite = ProtoWriter.unzigzag(column(6))
            usage.output = ProtoWriter.unzigzag(column(7))
            usage.reasoning = ProtoWriter.unzigzag(column(8))
            let cost = ProtoWriter.unzigzag(column(9))
            detail.spans.append(StoredSpan(spanID: SpanID(spanIDs[i]), parentSpanID: parent, name: name,
                                           kind: StoredSpan.Kind(rawValue: UInt8(flags & 7)) ?? .other, model: model,
                                           startOffsetNano: times[i].0, durationNano: times[i].1, usage: usage, costMicros: cost,
                                           priced: flags & 1 << 3 != 0, error: flags & 1 << 4 != 0, retry: flags & 1 << 5 != 0,
                                           explicitCost: flags & 1 << 6 != 0, agent: agent))
        }
        guard p.isAtEnd else { throw StoreError(path: path, message: "tree parents longer than its \(count) spans") }
        return detail
    }

    /// One TraceDetail message; nil when `keep` is set and refuses its trace ID's bytes.
    static func decodeTrace(_ slice: ArraySlice<UInt8>, segmentStrings: StringTable, path: String,
                            keeping keep: ((ArraySlice<UInt8>) -> Bool)?) throws -> TraceDetail? {
        var detail = TraceDetail(traceID: TraceID(high: 0, low: 0), spans: [])
        var spans: [ArraySlice<UInt8>] = []
        var own = StringTable(strings: [""])
        var r = ProtoReader(slice)
        while let (f, v) = try r.next() {
            switch f {
            case 1:
                if let keep, !keep(v.slice) { return nil }
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
