internal import CDecodeSupport
internal import CProtobufC
internal import OTLPProtoC
import LedgerCore
#if canImport(Glibc)
import Glibc
#endif

/// The result of decoding one ExportTraceServiceRequest: the spans kept, and the spans
/// rejected alone (bad IDs) for the OTLP partial-success response.
public struct DecodedBatch: Sendable {
    public var spans: [SpanRecord] = []
    public var rejectedSpans: Int64 = 0
    public var rejectionMessage: String?

    public init() {}

    /// The spans, leaving none: handed on as the only reference to their array, so
    /// grouping can move them out rather than copy them.
    public mutating func takeSpans() -> [SpanRecord] {
        let taken = spans
        spans = []
        return taken
    }

    mutating func reject(_ reason: String) {
        rejectedSpans += 1
        if rejectionMessage == nil { rejectionMessage = reason }
    }
}

public struct OTLPDecodeError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Decodes OTLP/protobuf trace requests with libprotobuf-c through a per-decoder arena
/// (one bump allocation region reset per request). Not thread-safe: use one per
/// connection or task. OTLP spec: opentelemetry-proto docs/specification.md.
public final class OTLPProtobufDecoder {
    private var arena = sl_arena()
    private let arenaLimit: Int
    private let reader = SpanConventionReader()
    public let limits: DecodeLimits

    /// `arenaLimit` bounds the memory one decode may take (default 256 MiB).
    public init(blockSize: Int = 1 << 20, arenaLimit: Int = 256 << 20, limits: DecodeLimits = .default) {
        self.arenaLimit = arenaLimit
        self.limits = limits
        sl_arena_init(&arena, blockSize, arenaLimit)
    }

    deinit {
        sl_arena_destroy(&arena)
    }

    public func decode(_ bytes: UnsafeRawBufferPointer) throws(OTLPDecodeError) -> DecodedBatch {
        sl_arena_reset(&arena)
        defer { sl_arena_reset(&arena) }
        let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self)
        // The pre-scan also notes whether any string or bytes field is over the value limit:
        // when none is (nearly every request), no span needs its values measured. It sees
        // every such field only when the limit is longer than the messages it steps over.
        var longField: Int32 = 0
        let everyLongFieldSeen = limits.maxAttributeValueBytes >= 2 * (max(Int(limits.protobufMessageDepth), limits.maxAnyValueDepth) + 1)
        if let base, sl_nesting_exceeds(sl_export_trace_request_descriptor(), base, bytes.count, limits.protobufMessageDepth,
                                        sl_any_value_descriptor(), UInt32(limits.maxAnyValueDepth), limits.maxAttributeValueBytes, &longField) != 0 {
            throw OTLPDecodeError("attribute values nest deeper than \(limits.maxAnyValueDepth) levels (arrays or key-value lists)")
        }
        let measureValues = longField != 0 || !everyLongFieldSeen
        guard let request = opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
            sl_arena_allocator(&arena), bytes.count, base ?? UnsafePointer(bitPattern: 1)) else {
            if arena.bytes_allocated + 4096 >= arenaLimit {
                throw OTLPDecodeError("request needs more than \(arenaLimit) bytes to decode")
            }
            throw OTLPDecodeError("request body is not a valid OTLP ExportTraceServiceRequest protobuf message")
        }
        var batch = DecodedBatch()
        let r = request.pointee
        var total = 0
        for i in 0..<r.n_resource_spans {
            guard let rs = r.resource_spans[i] else { continue }
            for j in 0..<rs.pointee.n_scope_spans { total += rs.pointee.scope_spans[j]?.pointee.n_spans ?? 0 }
        }
        guard total <= limits.maxSpansPerRequest else {
            throw OTLPDecodeError("request has \(total) spans; the limit is \(limits.maxSpansPerRequest) per request")
        }
        for i in 0..<r.n_resource_spans {
            guard let rs = r.resource_spans[i] else { continue }
            let service = Self.serviceName(rs.pointee.resource, names: reader.names)
            for j in 0..<rs.pointee.n_scope_spans {
                guard let ss = rs.pointee.scope_spans[j] else { continue }
                batch.spans.reserveCapacity(batch.spans.count + ss.pointee.n_spans)
                for k in 0..<ss.pointee.n_spans {
                    guard let span = ss.pointee.spans[k] else { continue }
                    if let record = Self.record(span, service: service, reader: reader, limits: limits, measureValues: measureValues, batch: &batch) {
                        batch.spans.append(record)
                    }
                }
            }
        }
        return batch
    }

    /// Unpacks and frees without extracting spans: the libprotobuf-c decode ceiling.
    /// `arena: false` uses malloc/free per field (protobuf-c's default allocator), the
    /// baseline the arena is measured against. Returns the number of spans.
    public func unpackOnly(_ bytes: UnsafeRawBufferPointer, arena useArena: Bool = true) -> Int? {
        let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? UnsafePointer(bitPattern: 1)!
        sl_arena_reset(&arena)
        defer { sl_arena_reset(&arena) }
        guard let request = opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
            useArena ? sl_arena_allocator(&arena) : nil, bytes.count, base) else { return nil }
        var spans = 0
        for i in 0..<request.pointee.n_resource_spans {
            guard let rs = request.pointee.resource_spans[i] else { continue }
            for j in 0..<rs.pointee.n_scope_spans { spans += rs.pointee.scope_spans[j]?.pointee.n_spans ?? 0 }
        }
        if !useArena { opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(request, nil) }
        return spans
    }

    public func decode(_ bytes: [UInt8]) throws(OTLPDecodeError) -> DecodedBatch {
        do {
            return try bytes.withUnsafeBytes { try decode($0) }
        } catch let e as OTLPDecodeError {
            throw e
        } catch {
            throw OTLPDecodeError("\(error)")
        }
    }

    static func serviceName(_ resource: UnsafeMutablePointer<Opentelemetry__Proto__Resource__V1__Resource>?, names: StringInterner) -> String {
        guard let resource else { return "" }
        for i in 0..<resource.pointee.n_attributes {
            guard let kv = resource.pointee.attributes[i], sl_attribute_key(kv.pointee.key) == SL_KEY_SERVICE_NAME else { continue }
            return AttributeValue(kv.pointee.value).string(interning: names) ?? ""
        }
        return ""
    }

    /// Whether any attribute value of the span, its events or its links is over `limit`.
    static func oversized(_ s: Opentelemetry__Proto__Trace__V1__Span, _ limit: Int) -> Bool {
        if oversized(s.attributes, s.n_attributes, limit) { return true }
        for i in 0..<s.n_events {
            if let ev = s.events[i], oversized(ev.pointee.attributes, ev.pointee.n_attributes, limit) { return true }
        }
        for i in 0..<s.n_links {
            if let link = s.links[i], oversized(link.pointee.attributes, link.pointee.n_attributes, limit) { return true }
        }
        return false
    }

    /// Whether any string or bytes value among `attributes` (nested ones included; depth is
    /// already bounded by the pre-scan) is longer than `limit`.
    static func oversized(_ attributes: UnsafeMutablePointer<UnsafeMutablePointer<Opentelemetry__Proto__Common__V1__KeyValue>?>?, _ count: Int,
                          _ limit: Int) -> Bool {
        guard let attributes else { return false }
        for i in 0..<count where oversized(attributes[i]?.pointee.value, limit) { return true }
        return false
    }

    static func oversized(_ value: UnsafeMutablePointer<Opentelemetry__Proto__Common__V1__AnyValue>?, _ limit: Int) -> Bool {
        guard let v = value?.pointee else { return false }
        switch v.value_case {
        case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
            guard let p = v.string_value else { return false }
            return strnlen(p, limit + 1) > limit
        case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
            return v.bytes_value.len > limit
        case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE:
            guard let a = v.array_value?.pointee, let values = a.values else { return false }
            for i in 0..<a.n_values where oversized(values[i], limit) { return true }
            return false
        case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE:
            guard let l = v.kvlist_value?.pointee else { return false }
            return oversized(l.values, l.n_values, limit)
        default:
            return false
        }
    }

    static func bytes(_ b: ProtobufCBinaryData) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: b.data, count: b.len)
    }

    /// `measureValues`: whether any value may be over the limit (the pre-scan found a long
    /// string or bytes field, or could not rule one out).
    static func record(_ span: UnsafeMutablePointer<Opentelemetry__Proto__Trace__V1__Span>, service: String, reader builder: SpanConventionReader,
                       limits: DecodeLimits, measureValues: Bool = true, batch: inout DecodedBatch) -> SpanRecord? {
        let s = span.pointee
        guard let traceID = TraceID(bytes: bytes(s.trace_id)), !traceID.isZero else {
            batch.reject("span with an invalid trace_id (must be 16 bytes, not all zero)")
            return nil
        }
        guard let spanID = SpanID(bytes: bytes(s.span_id)), !spanID.isNone else {
            batch.reject("span with an invalid span_id (must be 8 bytes, not all zero)")
            return nil
        }
        let parent: SpanID
        if s.parent_span_id.len == 0 {
            parent = .none
        } else if let p = SpanID(bytes: bytes(s.parent_span_id)) {
            parent = p
        } else {
            batch.reject("span with an invalid parent_span_id (must be empty or 8 bytes)")
            return nil
        }
        guard s.n_attributes <= limits.maxAttributesPerSpan else {
            batch.reject("span with \(s.n_attributes) attributes; the limit is \(limits.maxAttributesPerSpan)")
            return nil
        }
        if measureValues && Self.oversized(s, limits.maxAttributeValueBytes) {
            batch.reject("span with an attribute value (string or bytes, at any depth, on the span, its events or links) over \(limits.maxAttributeValueBytes) bytes")
            return nil
        }
        builder.reset()
        for i in 0..<s.n_attributes {
            guard let kv = s.attributes[i] else { continue }
            let key = sl_attribute_key(kv.pointee.key)
            if key != SL_KEY_NONE { builder.read(key, AttributeValue(kv.pointee.value)) }
        }
        let end = Int64(clamping: s.end_time_unix_nano)
        for i in 0..<s.n_events {
            guard let ev = s.events[i], let name = ev.pointee.name, strcmpEquals(name, "gen_ai.evaluation.result") else { continue }
            for a in 0..<ev.pointee.n_attributes {
                guard let kv = ev.pointee.attributes[a], sl_attribute_key(kv.pointee.key) == SL_KEY_EVALUATION_SCORE_LABEL,
                      let label = AttributeValue(kv.pointee.value).string else { continue }
                builder.evaluation(label: label, timeUnixNano: Int64(clamping: ev.pointee.time_unix_nano))
            }
        }
        let isError = s.status?.pointee.code == OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR
        let record = builder.finish(
            traceID: traceID, spanID: spanID, parent: parent, name: s.name.map { builder.names.string($0) } ?? "", service: service,
            start: Int64(clamping: s.start_time_unix_nano), end: end, isError: isError)
        // Returned as made (a record kept in a `var` for the rare change below was copied
        // out, every string retained and released again).
        guard s.n_links > 0, record.hasRareFields, record.verdict != nil else { return record }
        // A feedback span: its verdict is about the traces it links to.
        var linked: [TraceID] = []
        for i in 0..<s.n_links {
            if let link = s.links[i], let t = TraceID(bytes: bytes(link.pointee.trace_id)), !t.isZero, t != traceID, !linked.contains(t) { linked.append(t) }
        }
        var feedback = record
        feedback.feedbackFor = linked
        return feedback
    }
}

@inline(__always)
func strcmpEquals(_ a: UnsafePointer<CChar>, _ b: StaticString) -> Bool {
    let n = b.utf8CodeUnitCount
    let p = b.utf8Start
    for i in 0..<n where UInt8(bitPattern: a[i]) != p[i] { return false }
    return a[n] == 0
}

/// An OTLP AnyValue read through protobuf-c, converted on demand.
struct AttributeValue {
    enum Kind { case string(UnsafePointer<CChar>), text(String), int(Int64), double(Double), bool(Bool), other }
    let kind: Kind

    init(_ value: UnsafeMutablePointer<Opentelemetry__Proto__Common__V1__AnyValue>?) {
        guard let v = value?.pointee else { kind = .other; return }
        switch v.value_case {
        case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
            kind = v.string_value.map { .string(UnsafePointer($0)) } ?? .other
        case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE: kind = .int(v.int_value)
        case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE: kind = .double(v.double_value)
        case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE: kind = .bool(v.bool_value != 0)
        default: kind = .other
        }
    }

    init(kind: Kind) { self.kind = kind }

    var string: String? {
        switch kind {
        case .string(let p): String(cString: p)
        case .text(let t): t
        case .int(let i): String(i)
        case .double(let d): String(d)
        case .bool(let b): String(b)
        case .other: nil
        }
    }

    /// As `string`, with C strings looked up in (or added to) `names`.
    func string(interning names: StringInterner) -> String? {
        if case .string(let p) = kind { return names.string(p) }
        return string
    }

    var int: Int64? {
        switch kind {
        case .int(let i): i
        case .double(let d): d.isFinite && abs(d) < 9e18 ? Int64(d) : nil
        case .string, .text: string.flatMap { Int64($0.trimmingWhitespace()) ?? Double($0.trimmingWhitespace()).flatMap { $0.isFinite && abs($0) < 9e18 ? Int64($0) : nil } }
        case .bool, .other: nil
        }
    }

    var double: Double? {
        switch kind {
        case .int(let i): Double(i)
        case .double(let d): d.isFinite ? d : nil
        case .string, .text: string.flatMap { Double($0.trimmingWhitespace()) }
        case .bool, .other: nil
        }
    }
}
