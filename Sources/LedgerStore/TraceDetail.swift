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

/// Encodes run trees as a spanledger.v1.TraceDetailSegment.
public enum TraceDetailCodec {
    /// `walSequenceMax`: the highest write-ahead-log record consumed before this flush
    /// (field 5), which lets replay find the flushes that may hold spans of a record.
    public static func encode(_ traces: [TraceDetail], createdUnixMs: Int64, walSequenceMax: UInt64 = 0) -> [UInt8] {
        var strings = StringTableBuilder()
        var body = ProtoWriter(capacity: traces.count * 256)
        // Header fields first (replay reads field 5 without walking the traces); the string
        // table last, once known: fields may come in any order, and this way the segment is
        // built in one buffer instead of a header and a body joined by a copy.
        body.uint(1, 1)
        body.int(2, createdUnixMs)
        body.uint(5, walSequenceMax)
        for t in traces {
            body.message(4) { d in
                d.bigEndianWords(1, t.traceID.high, t.traceID.low)
                for s in t.spans {
                    let name = strings.index(s.name), model = strings.index(s.model), agent = s.agent.isEmpty ? 0 : strings.index(s.agent)
                    d.message(2) { w in
                        w.bigEndianWords(1, s.spanID.value)
                        if !s.parentSpanID.isNone { w.bigEndianWords(2, s.parentSpanID.value) }
                        w.uint(3, UInt64(name))
                        w.uint(4, UInt64(s.kind.rawValue))
                        w.uint(5, UInt64(model))
                        w.int(6, s.startOffsetNano)
                        w.int(7, s.durationNano)
                        w.sint(8, s.usage.input)
                        w.sint(9, s.usage.cacheRead)
                        w.sint(10, s.usage.cacheWrite)
                        w.sint(11, s.usage.output)
                        w.sint(12, s.usage.reasoning)
                        w.sint(13, s.costMicros)
                        w.bool(14, s.priced)
                        w.bool(15, s.error)
                        w.bool(16, s.retry)
                        w.bool(17, s.explicitCost)
                        if agent != 0 { w.uint(18, UInt64(agent)) }
                    }
                }
            }
        }
        for s in strings.strings { body.string(3, s, always: true) }
        return body.bytes
    }

    /// The segment's `wal_sequence_max` (field 5).
    public static func walSequenceMax(_ bytes: [UInt8]) -> UInt64 {
        var r = ProtoReader(bytes)
        while let (field, value) = try? r.next() {
            if field == 5 { return value.uint64 }
        }
        return 0
    }

    /// Decodes the segment; with `only`, keeps just that trace's records.
    public static func decode(_ bytes: [UInt8], path: String, only: TraceID? = nil) throws(StoreError) -> [TraceDetail] {
        var strings = StringTable()
        var raw: [ArraySlice<UInt8>] = []
        var out: [TraceDetail] = []
        let wanted = only?.bytes
        do {
            var r = ProtoReader(bytes)
            while let (field, value) = try r.next() {
                if field == 3 { strings.strings.append(value.string) } else if field == 4 { raw.append(value.slice) }
            }
            for slice in raw {
                var detail = TraceDetail(traceID: TraceID(high: 0, low: 0), spans: [])
                var rr = ProtoReader(slice)
                var skip = false
                while let (f, v) = try rr.next() {
                    if f == 1 {
                        if let wanted, !v.slice.elementsEqual(wanted) { skip = true; break }
                        guard let id = TraceID(bytes: Array(v.slice)) else { throw StoreError(path: path, message: "bad trace ID length") }
                        detail.traceID = id
                    } else if f == 2 {
                        detail.spans.append(try decodeSpan(v.slice, strings: strings, path: path))
                    }
                }
                if !skip { out.append(detail) }
            }
        } catch let e as ProtoDecodeError {
            throw StoreError(path: path, message: e.message)
        } catch let e as StoreError {
            throw e
        } catch {
            throw StoreError(path: path, message: "\(error)")
        }
        return out
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
