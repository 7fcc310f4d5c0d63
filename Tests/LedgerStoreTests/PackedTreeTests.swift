import LedgerCore
import ProtoWire
import Testing
@testable import LedgerStore

/// Run trees are packed once per run with their own names (TraceDetail.swift): memory
/// keeps the packed bytes, flushes copy them into segments, and segments written before
/// packing (one string table per segment) must still read back.
@Suite struct PackedTreeTests {
    static func span(_ n: Int, name: String, model: String = "", agent: String = "", kind: StoredSpan.Kind = .llm) -> StoredSpan {
        StoredSpan(spanID: SpanID(UInt64(n + 1)), parentSpanID: n == 0 ? .none : SpanID(1), name: name, kind: kind, model: model,
                   startOffsetNano: Int64(n) * 1_500_000, durationNano: 900_000 + Int64(n),
                   usage: TokenUsage(input: Int64(n * 100), cacheRead: Int64(n), cacheWrite: 0, output: Int64(n * 10), reasoning: Int64(n % 3)),
                   costMicros: Int64(n * 7), priced: n % 2 == 0, error: n % 5 == 4, retry: n % 7 == 6, explicitCost: n == 3, agent: agent)
    }

    @Test func aRunsNamesAreStoredOnceAndComeBack() throws {
        let model = String(decoding: Array("claude-sonnet-4".utf8), as: UTF8.self)
        let sameModelElsewhere = String(decoding: Array("claude-sonnet-4".utf8), as: UTF8.self) // equal text, its own storage
        let spans = (0..<8).map { n in
            Self.span(n, name: n == 0 ? "invoke_agent planner" : "chat", model: n == 0 ? "" : (n % 2 == 0 ? model : sameModelElsewhere),
                      agent: n == 0 ? "" : "planner", kind: n == 0 ? .workflow : .llm)
        }
        let packed = PackedTree(traceID: TraceID(high: 7, low: 8), spans: spans)
        #expect(packed.spanCount == 8)
        #expect(packed.unpack() == spans)
        let text = packed.bytes
        func occurrences(_ s: String) -> Int {
            let needle = Array(s.utf8)
            return (0...(text.count - needle.count)).filter { Array(text[$0..<($0 + needle.count)]) == needle }.count
        }
        #expect(occurrences("claude-sonnet-4") == 1)
        #expect(occurrences("planner") == 2) // "planner" and inside "invoke_agent planner"
        #expect(occurrences("chat") == 1)
        // In a segment, next to other runs, each keeps its own names.
        let other = PackedTree(traceID: TraceID(high: 9, low: 9), spans: [Self.span(0, name: "tool call", kind: .tool)])
        let segment = TraceDetailCodec.encode([packed, other], createdUnixMs: 5, walSequenceMax: 3)
        #expect(try TraceDetailCodec.decode(segment, path: "x") == [TraceDetail(traceID: packed.traceID, spans: spans),
                                                                   TraceDetail(traceID: other.traceID, spans: other.unpack())])
        #expect(try TraceDetailCodec.decode(segment, path: "x", only: other.traceID).map(\.spans) == [other.unpack()])
        #expect(TraceDetailCodec.walSequenceMax(segment) == 3)
    }

    @Test func aRunWithManyDistinctNamesSwitchesToALookupAndKeepsEveryName() {
        // More names than the linear search covers (16): indexes before and after the
        // switch must stay the ones already written.
        let spans = (0..<200).map { n in Self.span(n, name: "step-\(n % 45)", model: "model-\(n % 9)", agent: n % 4 == 0 ? "" : "agent-\(n % 13)") }
        let packed = PackedTree(traceID: TraceID(high: 1, low: 2), spans: spans)
        #expect(packed.unpack() == spans)
        var names = RunNames()
        let first = (0..<45).map { names.index("step-\($0)") }
        #expect(first == (1...45).map(UInt32.init))
        #expect((0..<45).map { names.index("step-\($0)") } == first)
        #expect(names.index("") == 0)
        #expect(names.strings.count == 45)
    }

    @Test func aPackedAgentRunIsAFractionOfItsSpans() {
        // A typical agent run: a workflow span, LLM calls and tools, three names and a model.
        let spans = (0..<8).map { n in
            Self.span(n, name: n == 0 ? "invoke_agent support" : (n % 3 == 0 ? "execute_tool search" : "chat"),
                      model: n % 3 == 0 || n == 0 ? "" : "gpt-4o-mini", agent: n == 0 ? "" : "support",
                      kind: n == 0 ? .workflow : (n % 3 == 0 ? .tool : .llm))
        }
        let packed = PackedTree(traceID: TraceID(high: 3, low: 4), spans: spans)
        let unpackedBytes = spans.count * MemoryLayout<StoredSpan>.stride
        #expect(packed.bytes.count * 2 < unpackedBytes, "packed \(packed.bytes.count) B, spans \(unpackedBytes) B")
        #expect(packed.bytes.capacity == packed.bytes.count || packed.bytes.capacity < packed.bytes.count + 32)
    }

    @Test func segmentsWrittenWithOneStringTableStillDecode() throws {
        // The layout flushes wrote before trees were packed per run: the names in the
        // segment's table (field 3, index 0 is ""), the traces referring to it.
        var w = ProtoWriter()
        w.uint(1, 1)
        w.int(2, 99)
        w.uint(5, 12)
        let trace = TraceID(high: 0xAB, low: 0xCD)
        w.message(4) { d in
            d.bigEndianWords(1, trace.high, trace.low)
            d.message(2) { s in
                s.bigEndianWords(1, 11)
                s.uint(3, 1) // "chat"
                s.uint(4, 1)
                s.uint(5, 2) // "gpt-4o"
                s.int(7, 5_000)
                s.sint(8, 120)
                s.sint(11, 30)
                s.sint(13, 42)
                s.bool(14, true)
                s.uint(18, 3) // "planner"
            }
            d.message(2) { s in
                s.bigEndianWords(1, 12)
                s.bigEndianWords(2, 11)
                s.uint(3, 3)
                s.uint(4, 3)
            }
        }
        for name in ["", "chat", "gpt-4o", "planner"] { w.string(3, name, always: true) }
        let decoded = try TraceDetailCodec.decode(w.bytes, path: "old")
        #expect(decoded == [TraceDetail(traceID: trace, spans: [
            StoredSpan(spanID: SpanID(11), parentSpanID: .none, name: "chat", kind: .llm, model: "gpt-4o", startOffsetNano: 0, durationNano: 5_000,
                       usage: TokenUsage(input: 120, output: 30), costMicros: 42, priced: true, error: false, retry: false, explicitCost: false,
                       agent: "planner"),
            StoredSpan(spanID: SpanID(12), parentSpanID: SpanID(11), name: "planner", kind: .workflow, model: "", startOffsetNano: 0, durationNano: 0,
                       usage: TokenUsage(), costMicros: 0, priced: false, error: false, retry: false, explicitCost: false),
        ])])
        #expect(TraceDetailCodec.walSequenceMax(w.bytes) == 12)
    }
}
