import LedgerCore
import OTLPDecoding
import OTLPFixtures
import Testing

/// Attribute keys are matched among the interpreted keys of the same length: a key one
/// byte off, of the same length, or longer than any interpreted key, is not interpreted.
@Test func onlyExactInterpretedKeysAreRead() throws {
    let lookalikes: [(String, FixtureValue)] = [
        ("gen_ai.request.modex", .string("wrong-model")),          // same length as gen_ai.request.model
        ("gen_ai.usage.input_tokenz", .int(999)),                   // same length as gen_ai.usage.input_tokens
        ("Gen_ai.usage.output_tokens", .int(999)),                  // first letter differs
        ("gen_ai.usage.output_tokens" + String(repeating: "x", count: 60), .int(999)),  // too long to be any key
        ("gen_ai.usage.output_token", .int(999)),                   // one byte short
    ]
    let real: [(String, FixtureValue)] = [
        ("gen_ai.operation.name", .string("chat")), ("gen_ai.request.model", .string("right-model")),
        ("gen_ai.usage.input_tokens", .int(10)), ("gen_ai.usage.output_tokens", .int(5)),
    ]
    for attributes in [lookalikes + real, real + lookalikes] {
        let span = FixtureSpan(traceID: TraceID(high: 3, low: 3), spanID: SpanID(1), name: "chat", startUnixNano: 1, endUnixNano: 2, attributes: attributes)
        let record = try #require(try OTLPProtobufDecoder().decode(OTLPFixtureEncoder.encode([("svc", [span])])).spans.first)
        #expect(record.category == .llm)
        #expect(record.model == "right-model")
        #expect(record.usage.input == 10 && record.usage.output == 5)
    }
}
