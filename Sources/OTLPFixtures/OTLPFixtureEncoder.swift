import LedgerCore
import ProtoWire

/// An attribute value for fixture spans (OTLP AnyValue).
public indirect enum FixtureValue: Sendable {
    case string(String)
    case int(Int64)
    case double(Double)
    case bool(Bool)
    case array([FixtureValue])
    case kvlist([(String, FixtureValue)])
}

public struct FixtureEvent: Sendable {
    public var name: String
    public var timeUnixNano: Int64
    public var attributes: [(String, FixtureValue)]

    public init(name: String, timeUnixNano: Int64, attributes: [(String, FixtureValue)] = []) {
        self.name = name
        self.timeUnixNano = timeUnixNano
        self.attributes = attributes
    }
}

/// A span to encode as OTLP protobuf, for tests and the load generator. IDs are raw bytes
/// so tests can also send malformed ones.
public struct FixtureSpan: Sendable {
    public var traceID: [UInt8]
    public var spanID: [UInt8]
    public var parentSpanID: [UInt8]
    public var name: String
    public var startUnixNano: Int64
    public var endUnixNano: Int64
    public var isError: Bool
    public var attributes: [(String, FixtureValue)]
    public var events: [FixtureEvent]

    public init(traceID: TraceID, spanID: SpanID, parent: SpanID = .none, name: String, startUnixNano: Int64, endUnixNano: Int64,
                isError: Bool = false, attributes: [(String, FixtureValue)] = [], events: [FixtureEvent] = []) {
        self.traceID = traceID.bytes
        self.spanID = spanID.bytes
        self.parentSpanID = parent.isNone ? [] : parent.bytes
        self.name = name
        self.startUnixNano = startUnixNano
        self.endUnixNano = endUnixNano
        self.isError = isError
        self.attributes = attributes
        self.events = events
    }
}

/// Encodes ExportTraceServiceRequest messages (field numbers per opentelemetry-proto).
public enum OTLPFixtureEncoder {
    /// One ResourceSpans per (service, spans) pair.
    public static func encode(_ resources: [(service: String, spans: [FixtureSpan])]) -> [UInt8] {
        var w = ProtoWriter(capacity: 4096)
        for (service, spans) in resources {
            w.message(1) { rs in
                rs.message(1) { res in
                    res.message(1) { kv in writeKeyValue(&kv, "service.name", .string(service)) }
                }
                rs.message(2) { ss in
                    ss.message(1) { scope in scope.string(1, "spanledger-fixtures") }
                    for s in spans { ss.message(2) { writeSpan(&$0, s) } }
                }
            }
        }
        return w.bytes
    }

    static func writeSpan(_ w: inout ProtoWriter, _ s: FixtureSpan) {
        w.bytesField(1, s.traceID, always: true)
        w.bytesField(2, s.spanID, always: true)
        w.bytesField(4, s.parentSpanID)
        w.string(5, s.name)
        w.uint(6, 1)
        w.fixed64(7, UInt64(bitPattern: s.startUnixNano))
        w.fixed64(8, UInt64(bitPattern: s.endUnixNano))
        for (k, v) in s.attributes { w.message(9) { writeKeyValue(&$0, k, v) } }
        for e in s.events {
            w.message(11) { ev in
                ev.fixed64(1, UInt64(bitPattern: e.timeUnixNano))
                ev.string(2, e.name)
                for (k, v) in e.attributes { ev.message(3) { writeKeyValue(&$0, k, v) } }
            }
        }
        w.message(15) { st in st.uint(3, s.isError ? 2 : 0) }
    }

    static func writeKeyValue(_ w: inout ProtoWriter, _ key: String, _ value: FixtureValue) {
        w.string(1, key)
        w.message(2) { writeAnyValue(&$0, value) }
    }

    static func writeAnyValue(_ w: inout ProtoWriter, _ value: FixtureValue) {
        switch value {
        case .string(let s): w.string(1, s, always: true)
        case .bool(let b): w.tag(2, 0); w.varint(b ? 1 : 0)
        case .int(let i): w.tag(3, 0); w.varint(UInt64(bitPattern: i))
        case .double(let d): w.tag(4, 1); w.rawFixed64(d.bitPattern)
        case .array(let items): w.message(5) { arr in for i in items { arr.message(1) { writeAnyValue(&$0, i) } } }
        case .kvlist(let kvs): w.message(6) { l in for (k, v) in kvs { l.message(1) { writeKeyValue(&$0, k, v) } } }
        }
    }

    /// An AnyValue nested `depth` arrays deep (hostile-input tests).
    public static func nested(depth: Int) -> FixtureValue {
        var v = FixtureValue.string("bottom")
        for _ in 0..<depth { v = .array([v]) }
        return v
    }
}
