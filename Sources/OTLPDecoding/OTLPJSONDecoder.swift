internal import CDecodeSupport
import LedgerCore

/// Decodes OTLP/HTTP JSON trace requests (opentelemetry-proto docs/specification.md
/// "JSON Protobuf Encoding"): lowerCamelCase keys, trace and span IDs as hex (either
/// case; base64 is refused), enums as integers, 64-bit integers as strings or numbers,
/// unknown fields ignored. Produces the same spans as the protobuf decoder.
public final class OTLPJSONDecoder {
    public let limits: DecodeLimits
    private let reader = SpanConventionReader()

    public init(limits: DecodeLimits = .default) {
        self.limits = limits
    }

    public func decode(_ bytes: [UInt8]) throws(OTLPDecodeError) -> DecodedBatch {
        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return DecodedBatch() }
        return try bytes.withUnsafeBufferPointer { (b: UnsafeBufferPointer<UInt8>) throws(OTLPDecodeError) -> DecodedBatch in
            let tokens = try tape(b)
            return try tokens.withUnsafeBufferPointer { (t: UnsafeBufferPointer<JSONToken>) throws(OTLPDecodeError) -> DecodedBatch in
                try decode(JSONDocument(bytes: b, tokens: t))
            }
        }
    }

    func tape(_ b: UnsafeBufferPointer<UInt8>) throws(OTLPDecodeError) -> [JSONToken] {
        do {
            return try JSONTapeParser.parse(b, maxDepth: limits.jsonDepth)
        } catch {
            throw OTLPDecodeError(error.message.contains("nesting") ? "attribute values nest deeper than \(limits.maxAnyValueDepth) levels (\(error.message))" : error.message)
        }
    }

    func decode(_ d: JSONDocument) throws(OTLPDecodeError) -> DecodedBatch {
        var batch = DecodedBatch()
        let root = JSONDocument.root
        guard d.kind(root) == .object else { throw OTLPDecodeError("request body must be a JSON object (ExportTraceServiceRequest)") }
        let resourceSpans = try array(d, d.member(root, "resourceSpans"), "resourceSpans")
        var total = 0
        for rs in resourceSpans {
            try object(d, rs, "resourceSpans[]")
            for ss in try array(d, d.member(rs, "scopeSpans"), "resourceSpans[].scopeSpans") {
                try object(d, ss, "scopeSpans[]")
                total += try array(d, d.member(ss, "spans"), "scopeSpans[].spans").remaining
            }
        }
        guard total <= limits.maxSpansPerRequest else {
            throw OTLPDecodeError("request has \(total) spans; the limit is \(limits.maxSpansPerRequest) per request")
        }
        batch.spans.reserveCapacity(total)
        for rs in resourceSpans {
            try checkFields(d, rs, "resourceSpans[]", Self.resourceSpansFields)
            var service = ""
            if let resource = d.member(rs, "resource") {
                try checkFields(d, resource, "resource", Self.resourceFields)
                for kv in try array(d, d.member(resource, "attributes"), "resource.attributes") {
                    var ignored = false
                    let (isService, value) = try keyValue(d, kv, oversized: &ignored, keep: { d.equals($0, "service.name") })
                    if isService { service = value.string ?? "" }
                }
            }
            for ss in try array(d, d.member(rs, "scopeSpans"), "resourceSpans[].scopeSpans") {
                try checkFields(d, ss, "scopeSpans[]", Self.scopeSpansFields)
                if let scope = d.member(ss, "scope") {
                    try checkFields(d, scope, "scope", Self.scopeFields)
                }
                for span in try array(d, d.member(ss, "spans"), "scopeSpans[].spans") {
                    if let record = try record(d, span, service: service, batch: &batch) { batch.spans.append(record) }
                }
            }
        }
        return batch
    }

    /// The span attributes SpanLedger interprets, reused across spans.
    private var known: [(sl_key, AttributeValue)] = []

    func record(_ d: JSONDocument, _ span: Int, service: String, batch: inout DecodedBatch) throws(OTLPDecodeError) -> SpanRecord? {
        try checkFields(d, span, "span", Self.spanFields)
        guard let traceID = try readTraceID(d, d.member(span, "traceId")), !traceID.isZero else {
            batch.reject("span with an invalid traceId (must be 32 hex digits, not all zero; base64 is not accepted)")
            return nil
        }
        guard let spanID = try readSpanID(d, d.member(span, "spanId")), !spanID.isNone else {
            batch.reject("span with an invalid spanId (must be 16 hex digits, not all zero)")
            return nil
        }
        var parent = SpanID.none
        if let p = d.member(span, "parentSpanId"), !(d.isString(p) && d.utf8Count(p) == 0) {
            guard let id = try readSpanID(d, p) else {
                batch.reject("span with an invalid parentSpanId (must be empty or 16 hex digits)")
                return nil
            }
            parent = id
        }
        _ = try integer(d, d.member(span, "kind"), "span.kind", enumField: true)
        let attributes = try array(d, d.member(span, "attributes"), "span.attributes")
        guard attributes.remaining <= limits.maxAttributesPerSpan else {
            batch.reject("span with \(attributes.remaining) attributes; the limit is \(limits.maxAttributesPerSpan)")
            return nil
        }
        // Every attribute (span, events, links) is parsed once: types, depth and value
        // sizes checked; only the attributes SpanLedger interprets become Swift values.
        var oversized = false
        known.removeAll(keepingCapacity: true)
        for kv in attributes {
            var id = SL_KEY_NONE
            let (interpreted, value) = try keyValue(d, kv, oversized: &oversized, keep: { k in id = Self.keyID(d, k); return id != SL_KEY_NONE })
            if interpreted { known.append((id, value)) }
        }
        var evaluations: [(label: String, time: Int64)] = []
        for ev in try array(d, d.member(span, "events"), "span.events") {
            try checkFields(d, ev, "events[]", Self.eventFields)
            let isEvaluation = try string(d, d.member(ev, "name"), "events[].name").map { d.equals($0, "gen_ai.evaluation.result") } ?? false
            for kv in try array(d, d.member(ev, "attributes"), "events[].attributes") {
                let (isLabel, value) = try keyValue(d, kv, oversized: &oversized, keep: { isEvaluation && d.equals($0, "gen_ai.evaluation.score.label") })
                if isLabel, let label = value.string {
                    evaluations.append((label, try integer(d, d.member(ev, "timeUnixNano"), "events[].timeUnixNano") ?? 0))
                }
            }
        }
        var linked: [TraceID] = []
        for link in try array(d, d.member(span, "links"), "span.links") {
            try checkFields(d, link, "links[]", Self.linkFields)
            for kv in try array(d, d.member(link, "attributes"), "links[].attributes") {
                _ = try keyValue(d, kv, oversized: &oversized, keep: { _ in false })
            }
            if let t = try readTraceID(d, d.member(link, "traceId")), !t.isZero, t != traceID, !linked.contains(t) {
                linked.append(t)
            }
        }
        if oversized {
            batch.reject("span with an attribute value (string or bytes, at any depth, on the span, its events or links) over \(limits.maxAttributeValueBytes) bytes")
            return nil
        }
        reader.reset()
        for (id, value) in known { reader.read(id, value) }
        for e in evaluations { reader.evaluation(label: e.label, timeUnixNano: e.time) }
        var isError = false
        if let status = d.member(span, "status") {
            try checkFields(d, status, "status", Self.statusFields)
            isError = try integer(d, d.member(status, "code"), "status.code", enumField: true) == 2
        }
        let name = try string(d, d.member(span, "name"), "span.name").map { d.string($0) } ?? ""
        let start = try integer(d, d.member(span, "startTimeUnixNano"), "span.startTimeUnixNano") ?? 0
        let end = try integer(d, d.member(span, "endTimeUnixNano"), "span.endTimeUnixNano") ?? 0
        // Both times are required (OTLP), as in the protobuf decoder.
        guard start != 0, end != 0 else {
            batch.reject("span without startTimeUnixNano or endTimeUnixNano (both are required)")
            return nil
        }
        var record = reader.finish(traceID: traceID, spanID: spanID, parent: parent, name: name, service: service, start: start, end: end, isError: isError)
        // A feedback span: its verdict is about the traces it links to.
        if record.verdict != nil { record.feedbackFor = linked }
        return record
    }

    /// The convention id of an attribute key, read from its bytes (no String unless escaped).
    static func keyID(_ d: JSONDocument, _ key: Int) -> sl_key {
        if d.kind(key) == .escapedString { return d.string(key).withCString { sl_attribute_key($0) } }
        let r = d.raw(key)
        return r.withMemoryRebound(to: CChar.self) { sl_attribute_key_n($0.baseAddress, $0.count) }
    }

    // MARK: JSON mapping helpers

    enum FieldKind { case string, integer, enumeration, array, object }

    /// The fields each message may carry and their JSON kinds (built once, not per span).
    static let resourceSpansFields: [(StaticString, FieldKind)] = [("resource", .object), ("scopeSpans", .array), ("schemaUrl", .string)]
    static let resourceFields: [(StaticString, FieldKind)] = [("attributes", .array), ("droppedAttributesCount", .integer), ("entityRefs", .array)]
    static let scopeSpansFields: [(StaticString, FieldKind)] = [("scope", .object), ("spans", .array), ("schemaUrl", .string)]
    static let scopeFields: [(StaticString, FieldKind)] = [("name", .string), ("version", .string), ("attributes", .array), ("droppedAttributesCount", .integer)]
    static let eventFields: [(StaticString, FieldKind)] = [("timeUnixNano", .integer), ("name", .string), ("attributes", .array), ("droppedAttributesCount", .integer)]
    static let statusFields: [(StaticString, FieldKind)] = [("message", .string), ("code", .enumeration)]
    static let keyValueFields: [(StaticString, FieldKind)] = [("key", .string), ("value", .object)]
    static let spanFields: [(StaticString, FieldKind)] = [
        ("traceId", .string), ("spanId", .string), ("parentSpanId", .string), ("traceState", .string), ("flags", .integer),
        ("name", .string), ("kind", .enumeration), ("startTimeUnixNano", .integer), ("endTimeUnixNano", .integer),
        ("attributes", .array), ("droppedAttributesCount", .integer), ("events", .array), ("droppedEventsCount", .integer),
        ("links", .array), ("droppedLinksCount", .integer), ("status", .object),
    ]
    static let linkFields: [(StaticString, FieldKind)] = [("traceId", .string), ("spanId", .string), ("traceState", .string), ("attributes", .array),
                                                    ("droppedAttributesCount", .integer), ("flags", .integer)]

    /// Checks the JSON types of an object's known fields (absent or null is fine; unknown
    /// fields are ignored, as the OTLP JSON encoding requires).
    func checkFields(_ d: JSONDocument, _ v: Int, _ what: String, _ fields: [(StaticString, FieldKind)]) throws(OTLPDecodeError) {
        try object(d, v, what)
        for value in d.memberValues(v) {
            guard let (name, kind) = fields.first(where: { d.equals(value - 1, $0.0) }) else { continue }
            if d.kind(value) == .null { continue }
            // The field's name goes into the message only when it is wrong: composing it for
            // every field of every span was a string allocation each.
            do {
                try check(d, kind, value, "")
            } catch {
                try check(d, kind, value, "\(what).\(name)")
            }
        }
    }

    func check(_ d: JSONDocument, _ kind: FieldKind, _ value: Int, _ what: String) throws(OTLPDecodeError) {
        switch kind {
        case .string: _ = try string(d, value, what)
        case .integer: _ = try integer(d, value, what)
        case .enumeration: _ = try integer(d, value, what, enumField: true)
        case .array: _ = try array(d, value, what)
        case .object: try object(d, value, what)
        }
    }

    func object(_ d: JSONDocument, _ v: Int, _ what: String) throws(OTLPDecodeError) {
        guard d.kind(v) == .object else { throw OTLPDecodeError("\(what) must be an object") }
    }

    /// An array's items; absent or null is empty.
    func array(_ d: JSONDocument, _ v: Int?, _ what: String) throws(OTLPDecodeError) -> JSONDocument.Children {
        guard let v, d.kind(v) != .null else { return d.items(0).emptied }
        guard d.kind(v) == .array else { throw OTLPDecodeError("\(what) must be an array") }
        return d.items(v)
    }

    /// A string token (its index), nil when absent or null.
    func string(_ d: JSONDocument, _ v: Int?, _ what: String) throws(OTLPDecodeError) -> Int? {
        guard let v, d.kind(v) != .null else { return nil }
        guard d.isString(v) else { throw OTLPDecodeError("\(what) must be a string") }
        return v
    }

    /// A 64-bit integer as a JSON number or a decimal string. Enum fields must be integers
    /// (the OTLP JSON encoding): an enum name is an error.
    func integer(_ d: JSONDocument, _ v: Int?, _ what: String, enumField: Bool = false) throws(OTLPDecodeError) -> Int64? {
        guard let v else { return nil }
        switch d.kind(v) {
        case .null: return nil
        case .number:
            let r = d.raw(v)
            if let i = JSONDocument.plainInt64(r) { return i }
            let text = String(decoding: r, as: UTF8.self)
            if let i = Int64(text) { return i }
            if let u = UInt64(text) { return Int64(bitPattern: u) }
            if let x = Double(text), x.isFinite, x == x.rounded(), abs(x) < 1.8e19 { return x < 9.2e18 ? Int64(x) : Int64(bitPattern: UInt64(x)) }
            throw OTLPDecodeError("\(what) must be an integer, got \(text)")
        case .string, .escapedString:
            if !enumField, d.kind(v) == .string, let i = JSONDocument.plainInt64(d.raw(v)) { return i }
            let s = d.string(v)
            if enumField { throw OTLPDecodeError("\(what) must be an integer enum value, not the name \"\(s)\"") }
            if let i = Int64(s) { return i }
            if let u = UInt64(s) { return Int64(bitPattern: u) }
            throw OTLPDecodeError("\(what) must be an integer (a number or a decimal string), got \"\(s)\"")
        default:
            throw OTLPDecodeError("\(what) must be an integer")
        }
    }

    /// Hex IDs (either case) read straight from the string's bytes; nil when not valid hex of
    /// the ID's length.
    func readTraceID(_ d: JSONDocument, _ v: Int?) throws(OTLPDecodeError) -> TraceID? {
        guard let v = try hexString(d, v) else { return nil }
        if d.kind(v) == .escapedString { return TraceID(hex: d.string(v)) }
        return JSONDocument.hexWords(d.raw(v), words: 2).map { TraceID(high: $0.0, low: $0.1) }
    }

    func readSpanID(_ d: JSONDocument, _ v: Int?) throws(OTLPDecodeError) -> SpanID? {
        guard let v = try hexString(d, v) else { return nil }
        if d.kind(v) == .escapedString { return SpanID(hex: d.string(v)) }
        return JSONDocument.hexWords(d.raw(v), words: 1).map { SpanID($0.0) }
    }

    func hexString(_ d: JSONDocument, _ v: Int?) throws(OTLPDecodeError) -> Int? {
        guard let v else { return nil }
        guard d.isString(v) else { throw OTLPDecodeError("trace and span IDs must be hex strings") }
        return v
    }

    static let anyValueKeys: [StaticString] = ["stringValue", "boolValue", "intValue", "doubleValue", "arrayValue", "kvlistValue", "bytesValue"]

    /// One attribute, with its value's depth and sizes checked. The value becomes a Swift
    /// value only when `keep` says its key (a string token) is wanted; `wanted` reports that.
    func keyValue(_ d: JSONDocument, _ kv: Int, oversized: inout Bool, keep: (Int) -> Bool) throws(OTLPDecodeError) -> (wanted: Bool, value: AttributeValue) {
        try checkFields(d, kv, "attributes[]", Self.keyValueFields)
        let wanted = try string(d, d.member(kv, "key"), "attributes[].key").map(keep) ?? false
        return (wanted, try attributeValue(d, d.member(kv, "value"), depth: 1, oversized: &oversized, keep: wanted))
    }

    /// An AnyValue: stringValue, boolValue, intValue (number or string), doubleValue,
    /// arrayValue, kvlistValue or bytesValue. `depth` counts AnyValues nested in one
    /// another (a plain value is 1); nested values are validated, not kept.
    func attributeValue(_ d: JSONDocument, _ v: Int?, depth: Int, oversized: inout Bool, keep: Bool) throws(OTLPDecodeError) -> AttributeValue {
        guard depth <= limits.maxAnyValueDepth else {
            throw OTLPDecodeError("attribute values nest deeper than \(limits.maxAnyValueDepth) levels (arrays or key-value lists)")
        }
        guard let v, d.kind(v) != .null else { return AttributeValue(kind: .other) }
        guard d.kind(v) == .object else {
            throw OTLPDecodeError("attribute value must be an object such as {\"stringValue\": …}")
        }
        var found: (Int, Int)?
        for inner in d.memberValues(v) {
            if let k = Self.anyValueKeys.firstIndex(where: { d.equals(inner - 1, $0) }) { found = (k, inner); break }
        }
        guard let (which, inner) = found else { return AttributeValue(kind: .other) }
        switch which {
        case 0:  // stringValue
            guard d.isString(inner) else { throw OTLPDecodeError("stringValue must be a string") }
            if d.utf8Count(inner) > limits.maxAttributeValueBytes { oversized = true }
            return keep ? AttributeValue(kind: .text(d.string(inner))) : AttributeValue(kind: .other)
        case 1:  // boolValue
            switch d.kind(inner) {
            case .true: return AttributeValue(kind: .bool(true))
            case .false: return AttributeValue(kind: .bool(false))
            default: throw OTLPDecodeError("boolValue must be true or false")
            }
        case 2:  // intValue
            return AttributeValue(kind: .int(try integer(d, inner, "intValue") ?? 0))
        case 3:  // doubleValue
            switch d.kind(inner) {
            case .number: return AttributeValue(kind: .double(Double(String(decoding: d.raw(inner), as: UTF8.self)) ?? 0))
            case .string, .escapedString:
                let s = d.string(inner)
                guard ["NaN", "Infinity", "-Infinity"].contains(s) || Double(s) != nil else { throw OTLPDecodeError("doubleValue must be a number") }
                return AttributeValue(kind: .double(Double(s) ?? .nan))
            default: throw OTLPDecodeError("doubleValue must be a number")
            }
        case 4:  // arrayValue
            guard d.kind(inner) == .object else { throw OTLPDecodeError("arrayValue must be an object with \"values\"") }
            for item in try array(d, d.member(inner, "values"), "arrayValue.values") {
                _ = try attributeValue(d, item, depth: depth + 1, oversized: &oversized, keep: false)
            }
            return AttributeValue(kind: .other)
        case 5:  // kvlistValue
            guard d.kind(inner) == .object else { throw OTLPDecodeError("kvlistValue must be an object with \"values\"") }
            for kv in try array(d, d.member(inner, "values"), "kvlistValue.values") {
                try checkFields(d, kv, "kvlistValue.values[]", Self.keyValueFields)
                _ = try attributeValue(d, d.member(kv, "value"), depth: depth + 1, oversized: &oversized, keep: false)
            }
            return AttributeValue(kind: .other)
        default:  // bytesValue
            guard d.isString(inner) else { throw OTLPDecodeError("bytesValue must be a base64 string") }
            if d.utf8Count(inner) / 4 * 3 > limits.maxAttributeValueBytes { oversized = true }
            return AttributeValue(kind: .other)
        }
    }
}
