import LedgerCore
import ProtoWire
import Testing
@testable import LedgerPipeline

/// The write-ahead log's span records (SpanBatchCodec.swift): version 3 names spans
/// through a table and writes a trace ID and start relative to the span before; records
/// of versions 1 and 2, written by earlier releases, must still replay.
@Suite struct SpanBatchCodecTests {
    static func span(_ trace: UInt64, _ id: UInt64, start: Int64, name: String = "chat gpt-4o-mini", model: String = "gpt-4o-mini",
                     task: String? = nil, agent: String? = nil) -> SpanRecord {
        SpanRecord(traceID: TraceID(high: 7, low: trace), spanID: SpanID(id), parentSpanID: SpanID(id == 1 ? 0 : 1), name: name,
                   service: "agent-service", startUnixNano: start, endUnixNano: start + 2_500_000, category: .llm, model: model,
                   usage: TokenUsage(input: 1_200, cacheRead: 300, cacheWrite: 0, output: 240, reasoning: 0),
                   workflowNames: WorkflowNames(agent: agent), taskID: task)
    }

    /// Spans of interleaved traces (the trace ID written, left out, written again), starts
    /// that go back in time and to the ends of the range, names shared and not.
    @Test func interleavedTracesAndStartsRoundTrip() throws {
        let spans = [
            Self.span(1, 1, start: 1_733_400_000_000_000_000, task: "T-1"),
            Self.span(1, 2, start: 1_733_400_000_000_000_100, agent: "planner"),
            Self.span(2, 1, start: 1_733_399_999_000_000_000, name: "execute_tool search", model: ""),
            Self.span(1, 3, start: Int64.min + 5, agent: "planner"),
            Self.span(1, 4, start: Int64.max - 2_500_001, name: "ünïcode ✓", task: "T-1"),
            Self.span(3, 1, start: 0, name: "", model: ""),
        ]
        let bytes = SpanBatchCodec.encode(spans)
        #expect(bytes.first == 3)
        #expect(try SpanBatchCodec.decode(bytes[...]) == spans)
        // Decoded strings are the table's: one storage per distinct name.
        let decoded = try SpanBatchCodec.decode(bytes[...])
        #expect(StringBits(decoded[0].name) == StringBits(decoded[1].name))
    }

    /// What the log's bytes come to on the benchmark's kind of batch: agent runs of 8 spans,
    /// a few shared names. Version 2 took about 105 bytes a span.
    @Test func aBatchOfAgentRunsTakesUnderFiftyBytesASpan() throws {
        var spans: [SpanRecord] = []
        for run in UInt64(0)..<64 {
            let start = 1_733_400_000_000_000_000 + Int64(run) * 9_000_000
            spans.append(Self.span(run, 1, start: start, name: "answer_ticket", model: ""))
            spans.append(Self.span(run, 2, start: start + 1_000, name: "invoke_agent planner", model: "", agent: "planner"))
            for step in UInt64(0)..<4 { spans.append(Self.span(run, 10 + step, start: start + 2_000 + Int64(step) * 1_000_000)) }
            for tool in UInt64(0)..<2 {
                spans.append(Self.span(run, 20 + tool, start: start + 6_000_000 + Int64(tool) * 500_000, name: "execute_tool search", model: ""))
            }
        }
        let bytes = SpanBatchCodec.encode(spans)
        #expect(bytes.count < 50 * spans.count, "\(bytes.count / spans.count) bytes a span")
        #expect(try SpanBatchCodec.decode(bytes[...]) == spans)
    }

    /// A record written by a version 2 build (strings in place, each trace ID whole, flags
    /// after the IDs), laid out by hand from that version's description.
    @Test func versionTwoRecordsStillReplay() throws {
        var w = ProtoWriter()
        w.raw(2 as UInt8)
        w.varint(2)
        // Span 1: an LLM call with a verdict and a task.
        w.bigEndian64(7); w.bigEndian64(1) // trace
        w.bigEndian64(2); w.bigEndian64(1) // span, parent
        w.raw(1 | 1 << 4) // llm, verdict follows
        w.raw(2) // task follows
        w.lengthPrefixed("chat m"); w.lengthPrefixed("svc"); w.lengthPrefixed("m")
        w.varint(ProtoWriter.zigzag(1_000)); w.varint(ProtoWriter.zigzag(50))
        for n: Int64 in [10, 2, 0, 5, 0, 1] { w.varint(ProtoWriter.zigzag(n)) }
        w.raw(UInt8(Outcome.accepted.rawValue)); w.varint(ProtoWriter.zigzag(1_050))
        w.lengthPrefixed("T-2")
        // Span 2: the root, same trace, a workflow name.
        w.bigEndian64(7); w.bigEndian64(1)
        w.bigEndian64(1); w.bigEndian64(0)
        w.raw(3 | 1 << 5)
        w.raw(0)
        w.lengthPrefixed("root"); w.lengthPrefixed("svc"); w.lengthPrefixed("")
        w.varint(ProtoWriter.zigzag(900)); w.varint(ProtoWriter.zigzag(300))
        for _ in 0..<6 { w.varint(0) }
        w.lengthPrefixed("support")
        let expected = [
            SpanRecord(traceID: TraceID(high: 7, low: 1), spanID: SpanID(2), parentSpanID: SpanID(1), name: "chat m", service: "svc",
                       startUnixNano: 1_000, endUnixNano: 1_050, category: .llm, model: "m",
                       usage: TokenUsage(input: 10, cacheRead: 2, cacheWrite: 0, output: 5, reasoning: 0), resendCount: 1,
                       verdict: Verdict(outcome: .accepted, timeUnixNano: 1_050), taskID: "T-2"),
            SpanRecord(traceID: TraceID(high: 7, low: 1), spanID: SpanID(1), name: "root", service: "svc", startUnixNano: 900,
                       endUnixNano: 1_200, category: .workflow, workflowNames: WorkflowNames(genAIWorkflow: "support")),
        ]
        #expect(try SpanBatchCodec.decode(w.bytes[...]) == expected)
    }

    /// Damaged version 3 records are refused, not read as other spans.
    @Test func damagedRecordsAreRefused() {
        let bytes = SpanBatchCodec.encode([Self.span(1, 1, start: 10), Self.span(1, 2, start: 20)])
        for cut in [1, 3, 9, bytes.count - 1] {
            #expect(throws: ProtoDecodeError.self) { try SpanBatchCodec.decode(bytes[..<cut]) }
        }
        // A name index past the table (an empty one).
        var w = ProtoWriter()
        w.raw(3 as UInt8); w.varint(1); w.varint(0)
        w.raw(1); w.raw(0)
        w.bigEndian64(7); w.bigEndian64(1); w.bigEndian64(1); w.bigEndian64(0)
        w.varint(9)
        #expect(throws: ProtoDecodeError.self) { try SpanBatchCodec.decode(w.bytes[...]) }
        // A first span that claims the trace of a span before it.
        var first = ProtoWriter()
        first.raw(3 as UInt8); first.varint(1); first.varint(0)
        first.raw(1); first.raw(4)
        #expect(throws: ProtoDecodeError.self) { try SpanBatchCodec.decode(first.bytes[...]) }
        // An unknown version.
        #expect(throws: ProtoDecodeError.self) { try SpanBatchCodec.decode([4, 0][...]) }
    }
}
