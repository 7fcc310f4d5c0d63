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
        var batch = DecodedBatch()
        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return batch }
        let root: JSONValue
        do {
            root = try JSONParser.parse(bytes, maxDepth: limits.jsonDepth)
        } catch {
            throw OTLPDecodeError(error.message.contains("nesting") ? "attribute values nest deeper than \(limits.maxAnyValueDepth) levels (\(error.message))" : error.message)
        }
        guard case .object = root else { throw OTLPDecodeError("request body must be a JSON object (ExportTraceServiceRequest)") }
        let resourceSpans = try array(root["resourceSpans"], "resourceSpans")
        var total = 0
        for rs in resourceSpans {
            for ss in try array(rs["scopeSpans"], "resourceSpans[].scopeSpans") { total += try array(ss["spans"], "scopeSpans[].spans").count }
        }
        guard total <= limits.maxSpansPerRequest else {
            throw OTLPDecodeError("request has \(total) spans; the limit is \(limits.maxSpansPerRequest) per request")
        }
        batch.spans.reserveCapacity(total)
        for rs in resourceSpans {
            try checkFields(rs, "resourceSpans[]", Self.resourceSpansFields)
            var service = ""
            if let resource = rs["resource"] {
                try checkFields(resource, "resource", Self.resourceFields)
                for kv in try array(resource["attributes"], "resource.attributes") {
                    var ignored = false
                    let (key, value) = try keyValue(kv, oversized: &ignored)
                    if key == "service.name" { service = value.string ?? "" }
                }
            }
            for ss in try array(rs["scopeSpans"], "resourceSpans[].scopeSpans") {
                try checkFields(ss, "scopeSpans[]", Self.scopeSpansFields)
                if let scope = ss["scope"] {
                    try checkFields(scope, "scope", Self.scopeFields)
                }
                for span in try array(ss["spans"], "scopeSpans[].spans") {
                    if let record = try record(span, service: service, batch: &batch) { batch.spans.append(record) }
                }
            }
        }
        return batch
    }

    func record(_ span: JSONValue, service: String, batch: inout DecodedBatch) throws(OTLPDecodeError) -> SpanRecord? {
        try checkFields(span, "span", Self.spanFields)
        guard let traceID = try hexID(span["traceId"], length: 32).flatMap({ TraceID(bytes: $0) }), !traceID.isZero else {
            batch.reject("span with an invalid traceId (must be 32 hex digits, not all zero; base64 is not accepted)")
            return nil
        }
        guard let spanID = try hexID(span["spanId"], length: 16).flatMap({ SpanID(bytes: $0) }), !spanID.isNone else {
            batch.reject("span with an invalid spanId (must be 16 hex digits, not all zero)")
            return nil
        }
        var parent = SpanID.none
        if let p = span["parentSpanId"], !isEmptyString(p) {
            guard let bytes = try hexID(p, length: 16), let id = SpanID(bytes: bytes) else {
                batch.reject("span with an invalid parentSpanId (must be empty or 16 hex digits)")
                return nil
            }
            parent = id
        }
        _ = try integer(span["kind"], "span.kind", enumField: true)
        let attributes = try array(span["attributes"], "span.attributes")
        guard attributes.count <= limits.maxAttributesPerSpan else {
            batch.reject("span with \(attributes.count) attributes; the limit is \(limits.maxAttributesPerSpan)")
            return nil
        }
        // Every attribute (span, events, links) is parsed once: types, depth and value
        // sizes checked; the span's own and the evaluation labels kept for the reader.
        var oversized = false
        var spanAttributes: [(String, AttributeValue)] = []
        spanAttributes.reserveCapacity(attributes.count)
        for kv in attributes { spanAttributes.append(try keyValue(kv, oversized: &oversized)) }
        var evaluations: [(label: String, time: Int64)] = []
        for ev in try array(span["events"], "span.events") {
            try checkFields(ev, "events[]", Self.eventFields)
            let isEvaluation = try string(ev["name"], "events[].name") == "gen_ai.evaluation.result"
            for kv in try array(ev["attributes"], "events[].attributes") {
                let (key, value) = try keyValue(kv, oversized: &oversized)
                if isEvaluation, key == "gen_ai.evaluation.score.label", let label = value.string {
                    evaluations.append((label, try integer(ev["timeUnixNano"], "events[].timeUnixNano") ?? 0))
                }
            }
        }
        var linked: [TraceID] = []
        for link in try array(span["links"], "span.links") {
            try checkFields(link, "links[]", Self.linkFields)
            for kv in try array(link["attributes"], "links[].attributes") { _ = try keyValue(kv, oversized: &oversized) }
            if let t = try hexID(link["traceId"], length: 32).flatMap({ TraceID(bytes: $0) }), !t.isZero, t != traceID, !linked.contains(t) {
                linked.append(t)
            }
        }
        if oversized {
            batch.reject("span with an attribute value (string or bytes, at any depth, on the span, its events or links) over \(limits.maxAttributeValueBytes) bytes")
            return nil
        }
        reader.reset()
        for (key, value) in spanAttributes {
            let id = key.withCString { sl_attribute_key($0) }
            if id != SL_KEY_NONE { reader.read(id, value) }
        }
        for e in evaluations { reader.evaluation(label: e.label, timeUnixNano: e.time) }
        var isError = false
        if let status = span["status"] {
            try checkFields(status, "status", Self.statusFields)
            isError = try integer(status["code"], "status.code", enumField: true) == 2
        }
        var record = reader.finish(
            traceID: traceID, spanID: spanID, parent: parent, name: try string(span["name"], "span.name") ?? "", service: service,
            start: try integer(span["startTimeUnixNano"], "span.startTimeUnixNano") ?? 0,
            end: try integer(span["endTimeUnixNano"], "span.endTimeUnixNano") ?? 0, isError: isError)
        // A feedback span: its verdict is about the traces it links to.
        if record.verdict != nil { record.feedbackFor = linked }
        return record
    }

    // MARK: JSON mapping helpers

    enum FieldKind { case string, integer, enumeration, array, object }

    /// The fields each message may carry and their JSON kinds (built once, not per span).
    static let resourceSpansFields: [(String, FieldKind)] = [("resource", .object), ("scopeSpans", .array), ("schemaUrl", .string)]
    static let resourceFields: [(String, FieldKind)] = [("attributes", .array), ("droppedAttributesCount", .integer), ("entityRefs", .array)]
    static let scopeSpansFields: [(String, FieldKind)] = [("scope", .object), ("spans", .array), ("schemaUrl", .string)]
    static let scopeFields: [(String, FieldKind)] = [("name", .string), ("version", .string), ("attributes", .array), ("droppedAttributesCount", .integer)]
    static let eventFields: [(String, FieldKind)] = [("timeUnixNano", .integer), ("name", .string), ("attributes", .array), ("droppedAttributesCount", .integer)]
    static let statusFields: [(String, FieldKind)] = [("message", .string), ("code", .enumeration)]
    static let keyValueFields: [(String, FieldKind)] = [("key", .string), ("value", .object)]
    static let spanFields: [(String, FieldKind)] = [
        ("traceId", .string), ("spanId", .string), ("parentSpanId", .string), ("traceState", .string), ("flags", .integer),
        ("name", .string), ("kind", .enumeration), ("startTimeUnixNano", .integer), ("endTimeUnixNano", .integer),
        ("attributes", .array), ("droppedAttributesCount", .integer), ("events", .array), ("droppedEventsCount", .integer),
        ("links", .array), ("droppedLinksCount", .integer), ("status", .object),
    ]
    static let linkFields: [(String, FieldKind)] = [("traceId", .string), ("spanId", .string), ("traceState", .string), ("attributes", .array),
                                                    ("droppedAttributesCount", .integer), ("flags", .integer)]

    /// Checks the JSON types of an object's known fields (absent or null is fine; unknown
    /// fields are ignored, as the OTLP JSON encoding requires).
    func checkFields(_ v: JSONValue, _ what: String, _ fields: [(String, FieldKind)]) throws(OTLPDecodeError) {
        guard case .object(let members) = v else { throw OTLPDecodeError("\(what) must be an object") }
        for (name, value) in members {
            guard let kind = fields.first(where: { $0.0 == name })?.1 else { continue }
            if case .null = value { continue }
            // The field's name goes into the message only when it is wrong: composing it for
            // every field of every span was a string allocation each.
            do {
                try check(kind, value, "")
            } catch {
                try check(kind, value, "\(what).\(name)")
            }
        }
    }

    func check(_ kind: FieldKind, _ value: JSONValue, _ what: String) throws(OTLPDecodeError) {
        switch kind {
        case .string: _ = try string(value, what)
        case .integer: _ = try integer(value, what)
        case .enumeration: _ = try integer(value, what, enumField: true)
        case .array: _ = try array(value, what)
        case .object: try object(value, what)
        }
    }

    func object(_ v: JSONValue, _ what: String) throws(OTLPDecodeError) {
        guard case .object = v else { throw OTLPDecodeError("\(what) must be an object") }
    }

    func array(_ v: JSONValue?, _ what: String) throws(OTLPDecodeError) -> [JSONValue] {
        switch v {
        case nil, .null?: return []
        case .array(let items)?: return items
        default: throw OTLPDecodeError("\(what) must be an array")
        }
    }

    func string(_ v: JSONValue?, _ what: String) throws(OTLPDecodeError) -> String? {
        switch v {
        case nil, .null?: return nil
        case .string(let s)?: return s
        default: throw OTLPDecodeError("\(what) must be a string")
        }
    }

    func isEmptyString(_ v: JSONValue) -> Bool {
        if case .string(let s) = v { return s.isEmpty }
        return false
    }

    /// A 64-bit integer as a JSON number or a decimal string. Enum fields must be integers
    /// (the OTLP JSON encoding): an enum name is an error.
    func integer(_ v: JSONValue?, _ what: String, enumField: Bool = false) throws(OTLPDecodeError) -> Int64? {
        switch v {
        case nil, .null?: return nil
        case .number(let text)?:
            if let i = Int64(Substring(text)) { return i }
            if let u = UInt64(Substring(text)) { return Int64(bitPattern: u) }
            if let d = Double(Substring(text)), d.isFinite, d == d.rounded(), abs(d) < 1.8e19 { return d < 9.2e18 ? Int64(d) : Int64(bitPattern: UInt64(d)) }
            throw OTLPDecodeError("\(what) must be an integer, got \(String(Substring(text)))")
        case .string(let s)?:
            if enumField { throw OTLPDecodeError("\(what) must be an integer enum value, not the name \"\(s)\"") }
            if let i = Int64(s) { return i }
            if let u = UInt64(s) { return Int64(bitPattern: u) }
            throw OTLPDecodeError("\(what) must be an integer (a number or a decimal string), got \"\(s)\"")
        default:
            throw OTLPDecodeError("\(what) must be an integer")
        }
    }

    /// Hex-encoded ID of `length` hex digits (either case); nil when not valid hex of that length.
    func hexID(_ v: JSONValue?, length: Int) throws(OTLPDecodeError) -> [UInt8]? {
        guard let v else { return nil }
        guard case .string(let s) = v else { throw OTLPDecodeError("trace and span IDs must be hex strings") }
        let u = Array(s.utf8)
        guard u.count == length else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(length / 2)
        var k = 0
        while k < u.count {
            guard let h = HexCodec.nibble(u[k]), let l = HexCodec.nibble(u[k + 1]) else { return nil }
            out.append(UInt8(h << 4 | l))
            k += 2
        }
        return out
    }

    static let anyValueKeys: Set<String> = ["stringValue", "boolValue", "intValue", "doubleValue", "arrayValue", "kvlistValue", "bytesValue"]

    /// One attribute: its key and value, with the value's depth and sizes checked.
    func keyValue(_ kv: JSONValue, oversized: inout Bool) throws(OTLPDecodeError) -> (String, AttributeValue) {
        try checkFields(kv, "attributes[]", Self.keyValueFields)
        return (try string(kv["key"], "attributes[].key") ?? "", try attributeValue(kv["value"], depth: 1, oversized: &oversized))
    }

    /// An AnyValue: stringValue, boolValue, intValue (number or string), doubleValue,
    /// arrayValue, kvlistValue or bytesValue. `depth` counts AnyValues nested in one
    /// another (a plain value is 1); nested values are validated, not kept.
    func attributeValue(_ v: JSONValue?, depth: Int, oversized: inout Bool) throws(OTLPDecodeError) -> AttributeValue {
        guard depth <= limits.maxAnyValueDepth else {
            throw OTLPDecodeError("attribute values nest deeper than \(limits.maxAnyValueDepth) levels (arrays or key-value lists)")
        }
        guard let v, case .object(let members) = v else {
            if v == nil { return AttributeValue(kind: .other) }
            if case .null? = v { return AttributeValue(kind: .other) }
            throw OTLPDecodeError("attribute value must be an object such as {\"stringValue\": …}")
        }
        guard let (key, inner) = members.first(where: { Self.anyValueKeys.contains($0.0) }) else { return AttributeValue(kind: .other) }
        switch key {
        case "stringValue":
            guard case .string(let s) = inner else { throw OTLPDecodeError("stringValue must be a string") }
            if s.utf8.count > limits.maxAttributeValueBytes { oversized = true }
            return AttributeValue(kind: .text(s))
        case "boolValue":
            guard case .bool(let b) = inner else { throw OTLPDecodeError("boolValue must be true or false") }
            return AttributeValue(kind: .bool(b))
        case "intValue":
            return AttributeValue(kind: .int(try integer(inner, "intValue") ?? 0))
        case "doubleValue":
            switch inner {
            case .number(let t): return AttributeValue(kind: .double(Double(Substring(t)) ?? 0))
            case .string(let s) where ["NaN", "Infinity", "-Infinity"].contains(s) || Double(s) != nil: return AttributeValue(kind: .double(Double(s) ?? .nan))
            default: throw OTLPDecodeError("doubleValue must be a number")
            }
        case "arrayValue":
            guard case .object = inner else { throw OTLPDecodeError("arrayValue must be an object with \"values\"") }
            for item in try array(inner["values"], "arrayValue.values") { _ = try attributeValue(item, depth: depth + 1, oversized: &oversized) }
            return AttributeValue(kind: .other)
        case "kvlistValue":
            guard case .object = inner else { throw OTLPDecodeError("kvlistValue must be an object with \"values\"") }
            for kv in try array(inner["values"], "kvlistValue.values") {
                try checkFields(kv, "kvlistValue.values[]", Self.keyValueFields)
                _ = try attributeValue(kv["value"], depth: depth + 1, oversized: &oversized)
            }
            return AttributeValue(kind: .other)
        case "bytesValue":
            guard case .string(let b64) = inner else { throw OTLPDecodeError("bytesValue must be a base64 string") }
            if b64.utf8.count / 4 * 3 > limits.maxAttributeValueBytes { oversized = true }
            return AttributeValue(kind: .other)
        default:
            return AttributeValue(kind: .other)
        }
    }
}
