import LedgerCore
import OTLPDecoding
import Testing

/// The JSON decoder reads keys, IDs and numbers straight from the request's bytes; these
/// cover the paths where that shortcut must give way: escaped text, integers beyond the
/// fast parse, and malformed escapes.
func decodeJSON(_ text: String) throws(OTLPDecodeError) -> DecodedBatch {
    try OTLPJSONDecoder().decode(Array(text.utf8))
}

func request(spans: String, service: String = "svc") -> String {
    """
    {"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"\(service)"}}]},
     "scopeSpans":[{"scope":{"name":"s"},"spans":[\(spans)]}]}]}
    """
}

@Test func escapedKeysIDsAndNamesDecodeLikePlainOnes() throws {
    // "gen_ai.usage.input_tokens" with '_' written as \u005f, a trace ID with an escaped
    // digit, a span name with a surrogate pair and an escaped quote.
    let span = #"""
    {"traceId":"\u0030102030405060708090000000000000a","spanId":"00000000000000b1","name":"say \"hi\" \ud83d\ude00",
     "startTimeUnixNano":"1000","endTimeUnixNano":2000,
     "attributes":[{"key":"gen_ai.operation.name","value":{"stringValue":"chat"}},
                   {"key":"gen_ai.usage.input\u005ftokens","value":{"intValue":"120"}},
                   {"key":"gen_ai.request.model","value":{"stringValue":"gpt\u002d4o"}}]}
    """#
    let batch = try decodeJSON(request(spans: span, service: #"bill\u0069ng"#))
    #expect(batch.rejectedSpans == 0)
    let s = try #require(batch.spans.first)
    #expect(s.traceID == TraceID(high: 0x0102030405060708, low: 0x090000000000000a))
    #expect(s.spanID == SpanID(0xb1))
    #expect(s.name == "say \"hi\" 😀")
    #expect(s.service == "billing")
    #expect(s.usage.input == 120)
    #expect(s.model == "gpt-4o")
    #expect(s.startUnixNano == 1000 && s.endUnixNano == 2000)
}

@Test func integersBeyondTheFastPathKeepEveryBit() throws {
    // 19-20 digit values, a negative, an exponent form and uint64 wrap-around, as the OTLP
    // JSON encoding allows 64-bit integers as numbers or strings.
    let span = """
    {"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"00000000000000b1","name":"n",
     "startTimeUnixNano":"9223372036854775807","endTimeUnixNano":18446744073709551615,
     "attributes":[{"key":"gen_ai.operation.name","value":{"stringValue":"chat"}},
                   {"key":"gen_ai.usage.input_tokens","value":{"intValue":1e3}},
                   {"key":"gen_ai.usage.output_tokens","value":{"intValue":"-7"}}]}
    """
    let s = try #require(try decodeJSON(request(spans: span)).spans.first)
    #expect(s.startUnixNano == Int64.max)
    #expect(s.endUnixNano == -1)  // the bit pattern of UInt64.max
    #expect(s.usage.input == 1000)
}

@Test func malformedEscapesAndDeepNestingAreErrorsThatSayWhere() throws {
    let cases: [(String, String)] = [
        (#"{"resourceSpans":[{"x":"\ude00"}]}"#, "invalid unicode escape"),
        (#"{"resourceSpans":[{"x":"\ud83d"}]}"#, "lone surrogate"),
        (#"{"resourceSpans":[{"x":"\q"}]}"#, "invalid escape"),
        (#"{"resourceSpans":[{"x":"\u12g4"}]}"#, "bad hex digit"),
        ("{\"resourceSpans\":[{\"x\":\"a\u{01}\"}]}", "control character"),
        (#"{"resourceSpans":[1,]}"#, "unexpected character"),
        (#"{"resourceSpans":[] } x"#, "unexpected data after the JSON value"),
        ("{\"a\":" + String(repeating: "[", count: 500) + String(repeating: "]", count: 500) + "}", "nest deeper"),
    ]
    for (text, message) in cases {
        do {
            _ = try decodeJSON(text)
            Issue.record("accepted \(text.prefix(60))")
        } catch {
            #expect(error.message.contains(message), "\(text.prefix(60)): \(error.message)")
        }
    }
}

@Test func wrongTypesNameTheField() throws {
    let span = """
    {"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"00000000000000b1","name":"n","kind":"SPAN_KIND_SERVER"}
    """
    do {
        _ = try decodeJSON(request(spans: span))
        Issue.record("an enum name was accepted")
    } catch {
        #expect(error.message.contains("span.kind") && error.message.contains("SPAN_KIND_SERVER"), "\(error.message)")
    }
}
