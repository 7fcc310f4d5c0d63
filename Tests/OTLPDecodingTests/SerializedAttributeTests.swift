import LedgerCore
import OTLPDecoding
import ProtoWire
import Testing

// The protobuf decoder leaves each attribute as its serialized KeyValue and reads it with
// its own reader (CDecodeSupport/sl_attributes.c): a fast path for the common shape (a
// key, a value with one scalar, one-byte lengths) and a walk for everything else. These
// requests are written field by field, to reach shapes an SDK's encoder never produces.

/// Protobuf wire-format pieces, each field written even when empty or zero (the shapes
/// here are the point), through `ProtoWriter`.
enum Wire {
    static func written(_ build: (inout ProtoWriter) -> Void) -> [UInt8] {
        var w = ProtoWriter()
        build(&w)
        return w.bytes
    }

    static func tag(_ field: Int, _ wire: Int) -> [UInt8] { written { $0.tag(field, wire) } }
    static func len(_ field: Int, _ body: [UInt8]) -> [UInt8] { written { $0.bytesField(field, body, always: true) } }
    static func len(_ field: Int, _ text: String) -> [UInt8] { written { $0.string(field, text, always: true) } }
    static func uint(_ field: Int, _ v: UInt64) -> [UInt8] { written { $0.tag(field, 0); $0.varint(v) } }
    static func fixed64(_ field: Int, _ v: UInt64) -> [UInt8] { written { $0.tag(field, 1); $0.rawFixed64(v) } }

    // AnyValue and KeyValue (opentelemetry/proto/common/v1/common.proto).
    static func string(_ s: String) -> [UInt8] { len(1, s) }
    static func int(_ i: Int64) -> [UInt8] { uint(3, UInt64(bitPattern: i)) }
    static func double(_ d: Double) -> [UInt8] { fixed64(4, d.bitPattern) }
    static func array(_ values: [[UInt8]]) -> [UInt8] { len(5, values.flatMap { len(1, $0) }) }
    static func kvlist(_ kvs: [[UInt8]]) -> [UInt8] { len(6, kvs.flatMap { len(1, $0) }) }
    static func keyValue(_ key: String, _ value: [UInt8]) -> [UInt8] { len(1, key) + len(2, value) }

    /// A request of one resource, one scope and two spans of one trace (a root and an LLM
    /// call, `attributes` on the call), with extra attributes where asked.
    static func request(call attributes: [[UInt8]], resource: [[UInt8]] = [], scope: [[UInt8]] = [], event: [[UInt8]]? = nil,
                        link: [[UInt8]]? = nil) -> [UInt8] {
        let traceID = (1...16).map { UInt8($0) }
        func span(_ id: UInt8, parent: UInt8?, name: String, attributes: [[UInt8]], extra: [UInt8] = []) -> [UInt8] {
            var s = len(1, traceID) + len(2, [0, 0, 0, 0, 0, 0, 0, id])
            if let parent { s += len(4, [0, 0, 0, 0, 0, 0, 0, parent]) }
            s += len(5, name) + fixed64(7, 1_000) + fixed64(8, 2_000)
            for a in attributes { s += len(9, a) }
            return s + extra
        }
        var extra: [UInt8] = []
        if let event { extra += len(11, fixed64(1, 1_500) + len(2, "note") + event.flatMap { len(3, $0) }) }
        if let link { extra += len(13, len(1, (17...32).map { UInt8($0) }) + len(2, [0, 0, 0, 0, 0, 0, 0, 9]) + link.flatMap { len(4, $0) }) }
        let root = span(1, parent: nil, name: "run", attributes: [keyValue("gen_ai.operation.name", string("invoke_workflow"))])
        let call = span(2, parent: 1, name: "chat", attributes: attributes, extra: extra)
        let scopeMessage = len(1, "scope") + scope.flatMap { len(3, $0) }
        let scopeSpans = len(1, scopeMessage) + len(2, root) + len(2, call)
        let resourceMessage = ([keyValue("service.name", string("svc"))] + resource).flatMap { len(1, $0) }
        return len(1, len(1, resourceMessage) + len(2, scopeSpans))
    }

    /// A chat call's usual attributes, then `more`.
    static func chat(_ more: [[UInt8]] = []) -> [[UInt8]] {
        [keyValue("gen_ai.operation.name", string("chat")), keyValue("gen_ai.request.model", string("m")),
         keyValue("gen_ai.usage.input_tokens", int(10)), keyValue("gen_ai.usage.output_tokens", int(20))] + more
    }

    /// AnyValues nested `depth` deep (a plain value is depth 1).
    static func nested(_ depth: Int, kvlist: Bool) -> [UInt8] {
        var v = string("leaf")
        for _ in 1..<depth { v = kvlist ? Wire.kvlist([keyValue("k", v)]) : array([v]) }
        return v
    }
}

func decodeCall(_ body: [UInt8], limits: DecodeLimits = .default) throws(OTLPDecodeError) -> DecodedBatch {
    try OTLPProtobufDecoder(limits: limits).decode(body)
}

func theCall(_ batch: DecodedBatch) -> SpanRecord? { batch.spans.first { $0.spanID == SpanID(2) } }

@Test func scalarsOfEveryKindAreReadOnBothPaths() throws {
    let long = String(repeating: "m", count: 300) // a two-byte length: the walk, not the fast path
    for model in ["gpt-4o", long] {
        let batch = try decodeCall(Wire.request(call: [
            Wire.keyValue("gen_ai.operation.name", Wire.string("chat")), Wire.keyValue("gen_ai.request.model", Wire.string(model)),
            Wire.keyValue("gen_ai.usage.input_tokens", Wire.int(1_234_567)), Wire.keyValue("gen_ai.usage.output_tokens", Wire.string(" 42 ")),
            Wire.keyValue("gen_ai.usage.cost", Wire.double(0.25)), Wire.keyValue("http.request.resend_count", Wire.int(2)),
            Wire.keyValue("flag", Wire.uint(2, 1)),
        ]))
        let call = try #require(theCall(batch))
        #expect(batch.spans.count == 2 && batch.rejectedSpans == 0)
        #expect(call.category == .llm && call.model == model)
        #expect(call.usage.input == 1_234_567 && call.usage.output == 42)
        #expect(call.explicitCostMicros == 250_000 && call.resendCount == 2)
        #expect(batch.spans.allSatisfy { $0.service == "svc" })
    }
}

@Test func unusualButValidShapesReadAsAFullUnpackWould() throws {
    let shapes: [[UInt8]] = [
        // An unknown field before the key, and key_strindex after the value.
        Wire.uint(9, 5) + Wire.keyValue("gen_ai.usage.input_tokens", Wire.int(7)) + Wire.uint(3, 1),
        // The value field twice: the messages merge, the last scalar wins.
        Wire.len(1, "gen_ai.usage.output_tokens") + Wire.len(2, Wire.string("5")) + Wire.len(2, Wire.int(8)),
        // Two scalars in one value: the last wins.
        Wire.keyValue("gen_ai.usage.cache_read.input_tokens", Wire.int(1) + Wire.int(3)),
        // The key after the value.
        Wire.len(2, Wire.string("claude")) + Wire.len(1, "gen_ai.response.model"),
        // An embedded NUL is part of the string.
        Wire.keyValue("gen_ai.agent.name", Wire.string("a\u{0}b")),
        // An array value is no scalar: ignored, not an error.
        Wire.keyValue("gen_ai.usage.reasoning.output_tokens", Wire.array([Wire.int(1)])),
        // No value at all.
        Wire.len(1, "gen_ai.workflow.name"),
    ]
    let call = try #require(theCall(try decodeCall(Wire.request(call: [Wire.keyValue("gen_ai.operation.name", Wire.string("chat"))] + shapes))))
    #expect(call.usage.input == 7 && call.usage.output == 8 && call.usage.cacheRead == 3 && call.usage.reasoning == 0)
    #expect(call.model == "claude")
    #expect(call.workflowNames.agent == "a\u{0}b")
    #expect(call.workflowNames.genAIWorkflow == nil)
}

@Test func aMalformedAttributeAnywhereFailsTheRequest() throws {
    let bad: [(String, [UInt8])] = [
        ("key longer than the attribute", [0x0a, 0x32, 0x61, 0x62]),
        ("key sent as a varint", Wire.uint(1, 7) + Wire.len(2, Wire.int(1))),
        ("value sent as a varint", Wire.len(1, "k") + Wire.uint(2, 1)),
        ("string value sent as a fixed64", Wire.len(1, "k") + Wire.len(2, Wire.fixed64(1, 1))),
        ("a group", Wire.len(1, "k") + Wire.tag(5, 3)),
        ("wire type 7", Wire.len(1, "k") + Wire.tag(5, 7)),
        ("field number 0", [0x02, 0x00]),
        ("an eleven-byte varint", Wire.len(1, "k") + Wire.len(2, [0x18] + [UInt8](repeating: 0xff, count: 10) + [0x01])),
        ("a truncated double", Wire.len(1, "k") + Wire.len(2, [0x21, 1, 2, 3])),
        ("malformed deep in an array", Wire.keyValue("k", Wire.array([Wire.string("ok"), [0x0a, 0x09, 0x61]]))),
        ("malformed deep in a list", Wire.keyValue("k", Wire.kvlist([Wire.uint(1, 3)]))),
    ]
    for (what, attribute) in bad {
        let placements: [(String, [UInt8])] = [
            ("span", Wire.request(call: Wire.chat([attribute]))),
            ("resource", Wire.request(call: Wire.chat(), resource: [attribute])),
            ("scope", Wire.request(call: Wire.chat(), scope: [attribute])),
            ("event", Wire.request(call: Wire.chat(), event: [attribute])),
            ("link", Wire.request(call: Wire.chat(), link: [attribute])),
        ]
        for (place, body) in placements {
            do {
                _ = try decodeCall(body)
                Issue.record("\(what) on the \(place) was accepted")
            } catch {
                #expect(error.message.contains("not a valid OTLP"), "\(what) on the \(place): \(error.message)")
            }
        }
    }
    // The same requests with the attribute well formed decode.
    #expect(try decodeCall(Wire.request(call: Wire.chat(), resource: [Wire.keyValue("k", Wire.int(1))], scope: [Wire.keyValue("k", Wire.int(1))],
                                        event: [Wire.keyValue("k", Wire.int(1))], link: [Wire.keyValue("k", Wire.int(1))])).spans.count == 2)
}

@Test func nestingIsCountedInAnyValuesUpToTheLimit() throws {
    var limits = DecodeLimits.default
    limits.maxAnyValueDepth = 4
    for kvlist in [false, true] {
        let fits = Wire.request(call: Wire.chat([Wire.keyValue("deep", Wire.nested(4, kvlist: kvlist))]))
        #expect(try decodeCall(fits, limits: limits).spans.count == 2)
        for body in [Wire.request(call: Wire.chat([Wire.keyValue("deep", Wire.nested(5, kvlist: kvlist))])),
                     Wire.request(call: Wire.chat(), resource: [Wire.keyValue("deep", Wire.nested(5, kvlist: kvlist))]),
                     Wire.request(call: Wire.chat(), event: [Wire.keyValue("deep", Wire.nested(5, kvlist: kvlist))])] {
            #expect { try decodeCall(body, limits: limits) } throws: { ($0 as? OTLPDecodeError)?.message.contains("nest deeper than 4") == true }
        }
    }
    // A limit past the reader's stack on hand (it grows one) and a hostile depth.
    limits.maxAnyValueDepth = 200
    #expect(try decodeCall(Wire.request(call: Wire.chat([Wire.keyValue("deep", Wire.nested(200, kvlist: true))])), limits: limits).spans.count == 2)
    #expect(throws: OTLPDecodeError.self) { try decodeCall(Wire.request(call: Wire.chat([Wire.keyValue("deep", Wire.nested(5_000, kvlist: false))]))) }
}

@Test func longValuesAtAnyDepthDropTheirSpanAlone() throws {
    var limits = DecodeLimits.default
    limits.maxAttributeValueBytes = 16
    let long = String(repeating: "x", count: 17), fits = String(repeating: "x", count: 16)
    let bytesValue = Wire.len(7, [UInt8](repeating: 1, count: 17))
    for value in [Wire.string(long), bytesValue, Wire.array([Wire.int(1), Wire.string(long)]), Wire.kvlist([Wire.keyValue("k", Wire.string(long))])] {
        let batch = try decodeCall(Wire.request(call: Wire.chat([Wire.keyValue("note", value)])), limits: limits)
        #expect(batch.spans.map(\.spanID) == [SpanID(1)] && batch.rejectedSpans == 1)
        #expect(batch.rejectionMessage?.contains("over 16 bytes") == true)
    }
    // At the limit, a long key, or a long value on the resource: kept.
    let kept = try decodeCall(Wire.request(call: Wire.chat([Wire.keyValue(long + long, Wire.string(fits))]),
                                           resource: [Wire.keyValue("r", Wire.string(long))]), limits: limits)
    #expect(kept.spans.count == 2 && kept.rejectedSpans == 0)
    // On an event or a link of the span: the span goes.
    for body in [Wire.request(call: Wire.chat(), event: [Wire.keyValue("e", Wire.string(long))]),
                 Wire.request(call: Wire.chat(), link: [Wire.keyValue("l", Wire.string(long))])] {
        let batch = try decodeCall(body, limits: limits)
        #expect(batch.spans.map(\.spanID) == [SpanID(1)] && batch.rejectedSpans == 1)
    }
}
