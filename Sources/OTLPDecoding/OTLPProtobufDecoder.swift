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

    /// The partial-success error message for the response, when spans were rejected.
    public var rejectionSummary: String? {
        rejectedSpans > 0 ? "\(rejectedSpans) span(s) rejected: \(rejectionMessage ?? "invalid span")" : nil
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
        let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? UnsafePointer(bitPattern: 1)!
        // The lean descriptors (sl_lean.h): the request's structure is unpacked as usual and
        // each attribute is left as its serialized KeyValue, read (and checked) below.
        guard let unpacked = protobuf_c_message_unpack(sl_lean_export_trace_request_descriptor(), sl_arena_allocator(&arena), bytes.count, base) else {
            if arena.bytes_allocated + 4096 >= arenaLimit {
                throw OTLPDecodeError("request needs more than \(arenaLimit) bytes to decode")
            }
            throw OTLPDecodeError(Self.notOTLP)
        }
        let request = UnsafeMutableRawPointer(unpacked).assumingMemoryBound(to: Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest.self)
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
            let service = try serviceName(rs.pointee.resource)
            for j in 0..<rs.pointee.n_scope_spans {
                guard let ss = rs.pointee.scope_spans[j] else { continue }
                if let scope = ss.pointee.scope {
                    _ = try Self.readAttributes(scope.pointee.attributes, scope.pointee.n_attributes, limits) { _, _ in }
                }
                batch.spans.reserveCapacity(batch.spans.count + ss.pointee.n_spans)
                for k in 0..<ss.pointee.n_spans {
                    guard let span = ss.pointee.spans[k] else { continue }
                    if let record = try Self.record(span, service: service, reader: reader, limits: limits, batch: &batch) {
                        batch.spans.append(record)
                    }
                }
            }
        }
        return batch
    }

    static let notOTLP = "request body is not a valid OTLP ExportTraceServiceRequest protobuf message"

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

    func serviceName(_ resource: UnsafeMutablePointer<Opentelemetry__Proto__Resource__V1__Resource>?) throws(OTLPDecodeError) -> String {
        guard let resource else { return "" }
        var service: String?
        _ = try Self.readAttributes(resource.pointee.attributes, resource.pointee.n_attributes, limits) { key, value in
            if key == SL_KEY_SERVICE_NAME, service == nil { service = value.string(interning: reader.names) ?? "" }
        }
        return service ?? ""
    }

    /// Reads the attributes of an unpacked message, serialized KeyValues as the lean
    /// descriptors leave them: `body` gets each key SpanLedger interprets with its value.
    /// Every attribute is checked whole, so a malformed or too deeply nested one fails the
    /// request as a full unpack would have. Returns whether any string or bytes value, at
    /// any depth, is over the value limit.
    @inline(__always)
    static func readAttributes(_ field: UnsafeRawPointer?, _ count: Int, _ limits: DecodeLimits,
                               _ body: (sl_key, AttributeValue) -> Void) throws(OTLPDecodeError) -> Bool {
        guard count > 0, let attributes = sl_raw_attributes(field) else { return false }
        var long: Int32 = 0
        var a = sl_attribute()
        for i in 0..<count {
            switch sl_read_attribute(attributes[i].data, attributes[i].len, UInt32(limits.maxAnyValueDepth), limits.maxAttributeValueBytes, &a, &long) {
            case SL_ATTRIBUTE_OK:
                let key = sl_attribute_key_n(a.key, a.key_length)
                if key != SL_KEY_NONE { body(key, AttributeValue(a)) }
            case SL_ATTRIBUTE_TOO_DEEP:
                throw OTLPDecodeError("attribute values nest deeper than \(limits.maxAnyValueDepth) levels (arrays or key-value lists)")
            default:
                throw OTLPDecodeError(notOTLP + " (an attribute is not a valid KeyValue)")
            }
        }
        return long != 0
    }

    static func bytes(_ b: ProtobufCBinaryData) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: b.data, count: b.len)
    }

    /// One span as a record, nil when it is rejected alone (the reason noted on `batch`).
    /// Its attributes, and those of its events and links, are all read first: a malformed
    /// one fails the whole request, whatever else is wrong with the span.
    static func record(_ span: UnsafeMutablePointer<Opentelemetry__Proto__Trace__V1__Span>, service: String, reader builder: SpanConventionReader,
                       limits: DecodeLimits, batch: inout DecodedBatch) throws(OTLPDecodeError) -> SpanRecord? {
        let s = span.pointee
        builder.reset()
        var long = try readAttributes(s.attributes, s.n_attributes, limits) { key, value in builder.read(key, value) }
        for i in 0..<s.n_events {
            guard let ev = s.events[i] else { continue }
            let isEvaluation = ev.pointee.name.map { strcmpEquals($0, "gen_ai.evaluation.result") } ?? false
            let time = Int64(clamping: ev.pointee.time_unix_nano)
            long = try readAttributes(ev.pointee.attributes, ev.pointee.n_attributes, limits) { key, value in
                if isEvaluation, key == SL_KEY_EVALUATION_SCORE_LABEL, let label = value.string { builder.evaluation(label: label, timeUnixNano: time) }
            } || long
        }
        for i in 0..<s.n_links {
            guard let link = s.links[i] else { continue }
            long = try readAttributes(link.pointee.attributes, link.pointee.n_attributes, limits) { _, _ in } || long
        }
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
        // Both times are required (OTLP): a run is charged to the minute it started, and one
        // placed at 1970 would drop out of every window, its cost with it.
        guard s.start_time_unix_nano != 0, s.end_time_unix_nano != 0 else {
            batch.reject("span without start_time_unix_nano or end_time_unix_nano (both are required)")
            return nil
        }
        guard s.n_attributes <= limits.maxAttributesPerSpan else {
            batch.reject("span with \(s.n_attributes) attributes; the limit is \(limits.maxAttributesPerSpan)")
            return nil
        }
        if long {
            batch.reject("span with an attribute value (string or bytes, at any depth, on the span, its events or links) over \(limits.maxAttributeValueBytes) bytes")
            return nil
        }
        let isError = s.status?.pointee.code == OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR
        let record = builder.finish(
            traceID: traceID, spanID: spanID, parent: parent, name: s.name.map { builder.names.string($0) } ?? "", service: service,
            start: Int64(clamping: s.start_time_unix_nano), end: Int64(clamping: s.end_time_unix_nano), isError: isError)
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

/// An OTLP AnyValue's scalar, converted on demand: from a serialized attribute (its
/// string's bytes borrowed from the request) or from the JSON decoder.
struct AttributeValue {
    enum Kind { case utf8(UnsafeBufferPointer<UInt8>), text(String), int(Int64), double(Double), bool(Bool), other }
    let kind: Kind

    init(_ a: sl_attribute) {
        switch a.kind {
        case SL_VALUE_STRING: kind = .utf8(UnsafeBufferPointer(start: a.string, count: a.string_length))
        case SL_VALUE_INT: kind = .int(a.integer)
        case SL_VALUE_DOUBLE: kind = .double(a.real)
        case SL_VALUE_BOOL: kind = .bool(a.integer != 0)
        default: kind = .other
        }
    }

    init(kind: Kind) { self.kind = kind }

    var string: String? {
        switch kind {
        case .utf8(let b): String(decoding: b, as: UTF8.self)
        case .text(let t): t
        case .int(let i): String(i)
        case .double(let d): String(d)
        case .bool(let b): String(b)
        case .other: nil
        }
    }

    /// As `string`, with C strings looked up in (or added to) `names`.
    func string(interning names: StringInterner) -> String? {
        if case .utf8(let b) = kind { return names.string(b) }
        return string
    }

    var int: Int64? {
        switch kind {
        case .int(let i): i
        case .double(let d): d.isFinite && abs(d) < 9e18 ? Int64(d) : nil
        case .utf8, .text: string.flatMap { Int64($0.trimmingWhitespace()) ?? Double($0.trimmingWhitespace()).flatMap { $0.isFinite && abs($0) < 9e18 ? Int64($0) : nil } }
        case .bool, .other: nil
        }
    }

    var double: Double? {
        switch kind {
        case .int(let i): Double(i)
        case .double(let d): d.isFinite ? d : nil
        case .utf8, .text: string.flatMap { Double($0.trimmingWhitespace()) }
        case .bool, .other: nil
        }
    }
}
