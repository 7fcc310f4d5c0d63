import LedgerCore
import ProtoWire

/// Encodes the OTLP responses and google.rpc.Status error bodies
/// (opentelemetry-proto docs/specification.md "OTLP/HTTP Response").
public enum OTLPResponses {
    /// ExportTraceServiceResponse; with rejected spans, its partial_success (field 1:
    /// rejected_spans = 1, error_message = 2).
    public static func exportResponse(rejectedSpans: Int64 = 0, errorMessage: String? = nil) -> [UInt8] {
        guard rejectedSpans > 0 || errorMessage != nil else { return [] }
        var w = ProtoWriter()
        w.message(1) { p in
            p.int(1, rejectedSpans)
            p.string(2, errorMessage ?? "")
        }
        return w.bytes
    }

    /// google.rpc.RetryInfo {retry_delay = 1: Duration {seconds = 1}}.
    public static func retryInfo(seconds: Int64) -> [UInt8] {
        var w = ProtoWriter()
        w.message(1) { d in d.int(1, seconds) }
        return w.bytes
    }

    /// google.rpc.Status {code = 1, message = 2, details = 3 (Any)}; with `retryAfterSeconds`,
    /// a google.rpc.RetryInfo detail.
    public static func status(code: Int32, message: String, retryAfterSeconds: Int64? = nil) -> [UInt8] {
        var w = ProtoWriter()
        w.int(1, Int64(code))
        w.string(2, message)
        if let retryAfterSeconds {
            w.message(3) { any in
                any.string(1, "type.googleapis.com/google.rpc.RetryInfo")
                any.bytesField(2, retryInfo(seconds: retryAfterSeconds), always: true)
            }
        }
        return w.bytes
    }
}

/// The same responses in the OTLP JSON encoding (int64 as strings, lowerCamelCase).
public enum OTLPJSONResponses {
    public static func exportResponse(rejectedSpans: Int64 = 0, errorMessage: String? = nil) -> [UInt8] {
        guard rejectedSpans > 0 || errorMessage != nil else { return Array("{}".utf8) }
        return Array("{\"partialSuccess\":{\"rejectedSpans\":\"\(rejectedSpans)\",\"errorMessage\":\(JSONText.quote(errorMessage ?? ""))}}".utf8)
    }

    public static func status(code: Int32, message: String, retryAfterSeconds: Int64? = nil) -> [UInt8] {
        var text = "{\"code\":\(code),\"message\":\(JSONText.quote(message))"
        if let retryAfterSeconds {
            text += ",\"details\":[{\"@type\":\"type.googleapis.com/google.rpc.RetryInfo\",\"retryDelay\":\"\(retryAfterSeconds)s\"}]"
        }
        return Array((text + "}").utf8)
    }

}

/// gRPC status codes (grpc/grpc doc/statuscodes.md) used in google.rpc.Status bodies and gRPC trailers.
public enum RPCCode {
    public static let ok: Int32 = 0
    public static let cancelled: Int32 = 1
    public static let invalidArgument: Int32 = 3
    public static let deadlineExceeded: Int32 = 4
    public static let notFound: Int32 = 5
    public static let resourceExhausted: Int32 = 8
    public static let unimplemented: Int32 = 12
    public static let `internal`: Int32 = 13
    public static let unavailable: Int32 = 14
}
