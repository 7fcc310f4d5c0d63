import LedgerCore
import OTLPDecoding
import OTLPFixtures
import Testing

let trace1 = TraceID(high: 0x0102030405060708, low: 0x090a0b0c0d0e0f10)
let root1 = SpanID(0x1111)
let child1 = SpanID(0x2222)

func decode(_ spans: [FixtureSpan], service: String = "svc") throws -> DecodedBatch {
    try OTLPProtobufDecoder().decode(OTLPFixtureEncoder.encode([(service, spans)]))
}

@Test func decodesIdentityTimingServiceAndStatus() throws {
    let batch = try decode([
        FixtureSpan(traceID: trace1, spanID: root1, name: "run", startUnixNano: 1_000, endUnixNano: 5_000),
        FixtureSpan(traceID: trace1, spanID: child1, parent: root1, name: "call", startUnixNano: 2_000, endUnixNano: 3_000, isError: true),
    ], service: "billing")
    #expect(batch.spans.count == 2)
    #expect(batch.rejectedSpans == 0)
    let root = batch.spans[0], child = batch.spans[1]
    #expect(root.traceID == trace1 && root.spanID == root1 && root.isRoot)
    #expect(child.parentSpanID == root1 && !child.isRoot && child.isError && !root.isError)
    #expect(root.service == "billing" && root.name == "run")
    #expect(child.startUnixNano == 2_000 && child.endUnixNano == 3_000)
}

@Test func readsEachTokenDialectAndPrefersCurrentNamesWhateverTheOrder() throws {
    let openInferenceFirst: [(String, FixtureValue)] = [
        ("llm.token_count.prompt", .int(999)), ("openinference.span.kind", .string("LLM")), ("llm.model_name", .string("oi-model")),
        ("gen_ai.usage.input_tokens", .int(100)), ("gen_ai.usage.output_tokens", .int(20)), ("gen_ai.request.model", .string("req")),
        ("gen_ai.response.model", .string("resp")),
    ]
    let deprecated: [(String, FixtureValue)] = [
        ("gen_ai.operation.name", .string("chat")), ("gen_ai.usage.prompt_tokens", .string("300")), ("gen_ai.usage.completion_tokens", .double(40)),
        ("gen_ai.request.model", .string("gpt-4o")),
    ]
    let openInference: [(String, FixtureValue)] = [
        ("openinference.span.kind", .string("LLM")), ("llm.model_name", .string("claude-sonnet-4")), ("llm.token_count.prompt", .int(50)),
        ("llm.token_count.completion", .int(5)), ("llm.token_count.prompt_details.cache_read", .int(30)),
        ("llm.token_count.completion_details.reasoning", .int(2)), ("llm.cost.total", .double(0.0123456)),
    ]
    let batch = try decode([
        FixtureSpan(traceID: trace1, spanID: SpanID(1), parent: root1, name: "a", startUnixNano: 1, endUnixNano: 2, attributes: openInferenceFirst),
        FixtureSpan(traceID: trace1, spanID: SpanID(2), parent: root1, name: "b", startUnixNano: 1, endUnixNano: 2, attributes: deprecated),
        FixtureSpan(traceID: trace1, spanID: SpanID(3), parent: root1, name: "c", startUnixNano: 1, endUnixNano: 2, attributes: openInference),
    ])
    let (a, b, c) = (batch.spans[0], batch.spans[1], batch.spans[2])
    #expect(a.category == .llm && a.model == "resp" && a.usage.input == 100 && a.usage.output == 20)
    #expect(b.category == .llm && b.model == "gpt-4o" && b.usage.input == 300 && b.usage.output == 40)
    #expect(c.category == .llm && c.model == "claude-sonnet-4" && c.usage == TokenUsage(input: 50, cacheRead: 30, output: 5, reasoning: 2))
    #expect(c.explicitCostMicros == 12346)
}

@Test func classifiesToolsWorkflowsAndReadsWorkflowNames() throws {
    let batch = try decode([
        FixtureSpan(traceID: trace1, spanID: root1, name: "root", startUnixNano: 1, endUnixNano: 2, attributes: [
            ("gen_ai.operation.name", .string("invoke_agent")), ("gen_ai.agent.name", .string("triage")),
            ("traceloop.workflow.name", .string("tl-flow")),
        ]),
        FixtureSpan(traceID: trace1, spanID: child1, parent: root1, name: "tool", startUnixNano: 1, endUnixNano: 2,
                    attributes: [("traceloop.span.kind", .string("tool"))]),
        FixtureSpan(traceID: trace1, spanID: SpanID(9), parent: root1, name: "plain", startUnixNano: 1, endUnixNano: 2,
                    attributes: [("unrelated.key", .string("x")), ("gen_ai.usage.input_tokens", .int(10))]),
    ])
    #expect(batch.spans[0].category == .workflow)
    #expect(batch.spans[0].workflowNames == WorkflowNames(traceloopWorkflow: "tl-flow", agent: "triage"))
    #expect(batch.spans[1].category == .tool)
    // Tokens without a model and without an LLM marker: not an LLM call, tokens ignored.
    #expect(batch.spans[2].category == .other && batch.spans[2].usage.isZero)
}

@Test func latestVerdictOfAttributesAndEvaluationEventsWins() throws {
    let batch = try decode([
        FixtureSpan(traceID: trace1, spanID: root1, name: "run", startUnixNano: 1, endUnixNano: 100, attributes: [("outcome.verdict", .string("rejected"))],
                    events: [
                        FixtureEvent(name: "gen_ai.evaluation.result", timeUnixNano: 200, attributes: [("gen_ai.evaluation.score.label", .string("pass"))]),
                        FixtureEvent(name: "gen_ai.evaluation.result", timeUnixNano: 150, attributes: [("gen_ai.evaluation.score.label", .string("fail"))]),
                        FixtureEvent(name: "other.event", timeUnixNano: 300, attributes: [("gen_ai.evaluation.score.label", .string("escalated"))]),
                    ]),
    ])
    #expect(batch.spans[0].verdict == Verdict(outcome: .accepted, timeUnixNano: 200))
}

@Test func spansWithBadIDsAreRejectedAloneAsPartialSuccess() throws {
    var bad = FixtureSpan(traceID: trace1, spanID: SpanID(5), name: "bad", startUnixNano: 1, endUnixNano: 2)
    bad.traceID = [1, 2, 3]
    var zeroSpan = FixtureSpan(traceID: trace1, spanID: SpanID(6), name: "zero", startUnixNano: 1, endUnixNano: 2)
    zeroSpan.spanID = [0, 0, 0, 0, 0, 0, 0, 0]
    let batch = try decode([bad, zeroSpan, FixtureSpan(traceID: trace1, spanID: root1, name: "ok", startUnixNano: 1, endUnixNano: 2)])
    #expect(batch.spans.count == 1)
    #expect(batch.rejectedSpans == 2)
    #expect(batch.rejectionMessage?.contains("trace_id") == true)
}

/// A span without a start or end time (both required by OTLP) would place its run, and
/// its cost, at 1970, outside every window: it is rejected alone, the reason named, in
/// both encodings.
@Test func spansWithoutStartOrEndTimeAreRejectedAloneAsPartialSuccess() throws {
    let batch = try decode([
        FixtureSpan(traceID: trace1, spanID: SpanID(5), name: "no start", startUnixNano: 0, endUnixNano: 2),
        FixtureSpan(traceID: trace1, spanID: SpanID(6), name: "no end", startUnixNano: 1, endUnixNano: 0),
        FixtureSpan(traceID: trace1, spanID: root1, name: "ok", startUnixNano: 1, endUnixNano: 2),
    ])
    #expect(batch.spans.map(\.name) == ["ok"] && batch.rejectedSpans == 2)
    #expect(batch.rejectionMessage == "span without start_time_unix_nano or end_time_unix_nano (both are required)")

    func span(_ id: String, _ times: String) -> String {
        #"{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"\#(id)","name":"s"\#(times)}"#
    }
    let json = try decodeJSON(request(spans: [
        span("00000000000000a1", #","endTimeUnixNano":"2""#), span("00000000000000a2", #","startTimeUnixNano":"1","endTimeUnixNano":0"#),
        span("00000000000000a3", #","startTimeUnixNano":"1","endTimeUnixNano":"2""#),
    ].joined(separator: ",")))
    #expect(json.spans.map(\.spanID) == [SpanID(0xa3)] && json.rejectedSpans == 2)
    #expect(json.rejectionMessage == "span without startTimeUnixNano or endTimeUnixNano (both are required)")
}

@Test func garbageIsADecodeError() {
    #expect(throws: OTLPDecodeError.self) { try OTLPProtobufDecoder().decode([0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01]) }
    #expect(throws: OTLPDecodeError.self) { try OTLPProtobufDecoder().decode(Array("hello, not protobuf".utf8)) }
}

@Test func emptyRequestDecodesToNothing() throws {
    #expect(try OTLPProtobufDecoder().decode([]).spans.isEmpty)
}

@Test func decoderIsReusableAcrossRequests() throws {
    let decoder = OTLPProtobufDecoder(blockSize: 4096)
    let body = OTLPFixtureEncoder.encode([("svc", (0..<200).map { i in
        FixtureSpan(traceID: trace1, spanID: SpanID(UInt64(i + 1)), name: "span-\(i)", startUnixNano: 1, endUnixNano: 2,
                    attributes: [("gen_ai.operation.name", .string("chat")), ("gen_ai.request.model", .string("m\(i)")), ("gen_ai.usage.input_tokens", .int(Int64(i)))])
    })])
    for _ in 0..<3 {
        let batch = try decoder.decode(body)
        #expect(batch.spans.count == 200)
        #expect(batch.spans[199].model == "m199" && batch.spans[199].usage.input == 199)
    }
}

// Every attribute is measured as it is read (a long name or key is no value).
@Test func valuesOverTheLimitDropTheirSpanAloneWhereverTheyAre() throws {
    let limit = DecodeLimits.default.maxAttributeValueBytes
    func span(_ id: UInt64, name: String = "call", attributes: [(String, FixtureValue)] = [], events: [FixtureEvent] = []) -> FixtureSpan {
        FixtureSpan(traceID: trace1, spanID: SpanID(id), parent: root1, name: name, startUnixNano: 1, endUnixNano: 2,
                    attributes: attributes, events: events)
    }
    let atLimit = String(repeating: "x", count: limit), overLimit = String(repeating: "x", count: limit + 1)
    // A long name is no attribute value: measured, and kept.
    let longName = try decode([span(1, name: overLimit + overLimit)])
    #expect(longName.spans.count == 1 && longName.rejectedSpans == 0)
    #expect(longName.spans[0].name.utf8.count == 2 * (limit + 1))
    // No field over the limit: nothing measured, nothing dropped.
    let fits = try decode([span(2, attributes: [("gen_ai.prompt", .string(atLimit))]), span(3)])
    #expect(fits.spans.count == 2 && fits.rejectedSpans == 0)
    // Over it on the span, or on an event: that span alone.
    let over = try decode([
        span(4, attributes: [("gen_ai.prompt", .string(overLimit))]), span(5),
        span(6, events: [FixtureEvent(name: "gen_ai.content.prompt", timeUnixNano: 1, attributes: [("gen_ai.prompt", .string(overLimit))])]),
    ])
    #expect(over.spans.map(\.spanID.value) == [5] && over.rejectedSpans == 2)
    #expect(over.rejectionMessage?.contains("over \(limit) bytes") == true)
    // A small limit.
    var small = DecodeLimits.default
    small.maxAttributeValueBytes = 8
    let smallLimit = try OTLPProtobufDecoder(limits: small).decode(OTLPFixtureEncoder.encode([("svc", [
        span(7, attributes: [("gen_ai.prompt", .string("123456789"))]), span(8, attributes: [("gen_ai.prompt", .string("12345678"))]),
    ])]))
    #expect(smallLimit.spans.map(\.spanID.value) == [8] && smallLimit.rejectedSpans == 1)
}
