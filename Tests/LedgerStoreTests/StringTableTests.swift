import LedgerCore
import Testing
@testable import LedgerStore

/// The run-tree segment's string table finds repeated names by the String's bits first
/// (StringTable.swift): equal names kept in other storage, and names that share a cache
/// slot, must still get one index each and decode back exactly.
@Suite struct StringTableTests {
    @Test func equalNamesInOtherStorageShareOneIndex() {
        var b = StringTableBuilder()
        let long = String(repeating: "agent-step-", count: 4)
        let copy = String(decoding: Array(long.utf8), as: UTF8.self) // same text, its own storage
        let i = b.index(long)
        #expect(b.index(copy) == i)
        #expect(b.index("chat") == b.index(String("c") + "hat"))
        #expect(b.index("") == 0)
        #expect(b.strings == ["", long, "chat"])
    }

    @Test func manyNamesSharingSlotsRoundTrip() throws {
        // 300 distinct names over 64 slots: every slot is replaced many times.
        let names = (0..<300).map { "span-name-\($0)-" + String(repeating: "x", count: $0 % 20) }
        var traces: [TraceDetail] = []
        for t in 0..<50 {
            let spans = (0..<12).map { k in
                StoredSpan(spanID: SpanID(UInt64(t * 100 + k + 1)), parentSpanID: .none, name: names[(t * 37 + k * 11) % 300], kind: .llm,
                           model: names[(t + k) % 300], startOffsetNano: Int64(k), durationNano: 5, usage: TokenUsage(), costMicros: 0,
                           priced: false, error: false, retry: false, explicitCost: false, agent: k % 3 == 0 ? "" : names[(k * 7) % 300])
            }
            traces.append(TraceDetail(traceID: TraceID(high: 1, low: UInt64(t + 1)), spans: spans))
        }
        let bytes = TraceDetailCodec.encode(traces, createdUnixMs: 1)
        let back = try TraceDetailCodec.decode(bytes, path: "test")
        #expect(back == traces)
    }
}
