@testable import LedgerCore
import OTLPDecoding
import OTLPFixtures
import Testing

/// Names are interned per decoder in a bounded, direct-mapped table: whatever collides
/// or repeats, every span must still carry exactly its own names.
@Test func internedNamesStayExactAcrossCollisionsAndRepeats() throws {
    let decoder = OTLPProtobufDecoder()
    let trace = TraceID(high: 7, low: 7)
    // Far more distinct names than the table has slots, each seen twice in different
    // batches, plus lookalikes that differ only in length or the last byte.
    let names = (0..<3_000).map { "workflow-step-\($0)" } + ["a", "ab", "abc", "", "chat gpt-4o-mini", "chat gpt-4o-minj", String(repeating: "x", count: 200)]
    for round in 0..<2 {
        var spans: [FixtureSpan] = []
        for (i, name) in names.enumerated() {
            spans.append(FixtureSpan(traceID: trace, spanID: SpanID(UInt64(i + 1)), name: name, startUnixNano: 1, endUnixNano: 2,
                                     attributes: [("gen_ai.operation.name", .string("chat")), ("gen_ai.request.model", .string("model-\(i % 1500)")),
                                                  ("gen_ai.usage.input_tokens", .int(1))]))
        }
        let batch = try decoder.decode(OTLPFixtureEncoder.encode([("svc-\(round)", spans)]))
        #expect(batch.spans.map(\.name) == names)
        #expect(batch.spans.map(\.model) == names.indices.map { "model-\($0 % 1500)" })
        #expect(batch.spans.allSatisfy { $0.service == "svc-\(round)" })
    }
}

@Test func internedNamesRepairInvalidUTF8AsBefore() throws {
    // A span name with a lone continuation byte: repaired to U+FFFD, as String(cString:) does.
    let bytes: [UInt8] = [0x61, 0x80, 0x62]
    let spans = [FixtureSpan(traceID: TraceID(high: 1, low: 1), spanID: SpanID(1), name: "placeholder", startUnixNano: 1, endUnixNano: 2)]
    var request = OTLPFixtureEncoder.encode([("svc", spans)])
    let placeholder = Array("placeholder".utf8)
    let at = try #require(request.indices.first { request[$0..<min(request.count, $0 + placeholder.count)].elementsEqual(placeholder) })
    // Same length keeps every enclosing length prefix valid.
    request.replaceSubrange(at..<(at + placeholder.count), with: bytes + Array(repeating: 0x63, count: placeholder.count - bytes.count))
    let decoder = OTLPProtobufDecoder()
    for _ in 0..<2 {
        let name = try decoder.decode(request).spans.first?.name
        #expect(name == "a\u{FFFD}b" + String(repeating: "c", count: placeholder.count - bytes.count))
    }
}

/// Spans with the same name, service and model share one `SpanLabels` per decoder (the
/// memory a buffered span holds depends on it), in one batch and across batches, and
/// differing spans keep their own.
@Test func decodedSpansWithTheSameNamesShareLabels() throws {
    let decoder = OTLPProtobufDecoder()
    func batch(_ first: UInt64) throws -> [SpanRecord] {
        let spans = (first..<(first + 6)).map { i in
            FixtureSpan(traceID: TraceID(high: 3, low: i), spanID: SpanID(i), name: i % 3 == 0 ? "execute_tool search" : "chat gpt-4o-mini",
                        startUnixNano: 1, endUnixNano: 2,
                        attributes: i % 3 == 0 ? [("gen_ai.operation.name", .string("execute_tool"))]
                            : [("gen_ai.operation.name", .string("chat")), ("gen_ai.request.model", .string("gpt-4o-mini")), ("gen_ai.usage.input_tokens", .int(1))])
        }
        return try decoder.decode(OTLPFixtureEncoder.encode([("agent-service", spans)])).spans
    }
    let a = try batch(1), b = try batch(7)
    let chats = (a + b).filter { $0.category == .llm }, tools = (a + b).filter { $0.category == .tool }
    #expect(chats.count == 8 && tools.count == 4)
    #expect(chats.allSatisfy { $0.labels === chats[0].labels && $0.name == "chat gpt-4o-mini" && $0.model == "gpt-4o-mini" && $0.service == "agent-service" })
    #expect(tools.allSatisfy { $0.labels === tools[0].labels && $0.name == "execute_tool search" && $0.model.isEmpty })
    #expect(chats[0].labels !== tools[0].labels)
    let json = try OTLPJSONDecoder().decode(OTLPFixtureJSONEncoder.encode([("agent-service", [
        FixtureSpan(traceID: TraceID(high: 4, low: 1), spanID: SpanID(1), name: "step", startUnixNano: 1, endUnixNano: 2),
        FixtureSpan(traceID: TraceID(high: 4, low: 1), spanID: SpanID(2), name: "step", startUnixNano: 1, endUnixNano: 2),
    ])])).spans
    #expect(json.count == 2 && json[0].labels === json[1].labels)
}
