import LedgerCore

/// Encodes the same fixture spans in the OTLP JSON encoding (hex IDs, int64 as strings,
/// enums as integers), for JSON tests and the JSON load scenario.
public enum OTLPFixtureJSONEncoder {
    public static func encode(_ resources: [(service: String, spans: [FixtureSpan])]) -> [UInt8] {
        var out = "{\"resourceSpans\":["
        for (r, (service, spans)) in resources.enumerated() {
            if r > 0 { out += "," }
            out += "{\"resource\":{\"attributes\":[" + keyValue("service.name", .string(service)) + "]},\"scopeSpans\":[{\"scope\":{\"name\":\"spanledger-fixtures\"},\"spans\":["
            for (i, s) in spans.enumerated() {
                if i > 0 { out += "," }
                out += "{\"traceId\":\"\(HexCodec.encode(s.traceID))\",\"spanId\":\"\(HexCodec.encode(s.spanID))\""
                if !s.parentSpanID.isEmpty { out += ",\"parentSpanId\":\"\(HexCodec.encode(s.parentSpanID))\"" }
                out += ",\"name\":\(JSONText.quote(s.name)),\"kind\":1,\"startTimeUnixNano\":\"\(s.startUnixNano)\",\"endTimeUnixNano\":\"\(s.endUnixNano)\""
                out += ",\"attributes\":[" + s.attributes.map { keyValue($0.0, $0.1) }.joined(separator: ",") + "]"
                if !s.events.isEmpty {
                    out += ",\"events\":[" + s.events.map { e in
                        "{\"timeUnixNano\":\"\(e.timeUnixNano)\",\"name\":\(JSONText.quote(e.name)),\"attributes\":[" + e.attributes.map { keyValue($0.0, $0.1) }.joined(separator: ",") + "]}"
                    }.joined(separator: ",") + "]"
                }
                out += ",\"status\":{\"code\":\(s.isError ? 2 : 0)}}"
            }
            out += "]}]}"
        }
        return Array((out + "]}").utf8)
    }

    static func keyValue(_ key: String, _ value: FixtureValue) -> String {
        "{\"key\":\(JSONText.quote(key)),\"value\":\(anyValue(value))}"
    }

    static func anyValue(_ v: FixtureValue) -> String {
        switch v {
        case .string(let s): "{\"stringValue\":\(JSONText.quote(s))}"
        case .int(let i): "{\"intValue\":\"\(i)\"}"
        case .double(let d): "{\"doubleValue\":\(d)}"
        case .bool(let b): "{\"boolValue\":\(b)}"
        case .array(let items): "{\"arrayValue\":{\"values\":[" + items.map(anyValue).joined(separator: ",") + "]}}"
        case .kvlist(let kvs): "{\"kvlistValue\":{\"values\":[" + kvs.map { keyValue($0.0, $0.1) }.joined(separator: ",") + "]}}"
        }
    }

}
