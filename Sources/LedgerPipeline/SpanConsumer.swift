import LedgerCore

/// The consumer protocol between stages (as the OpenTelemetry Collector's consumers):
/// a receiver hands decoded spans downstream; a thrown `IngestRefusal` travels back to
/// the receiver, which answers the client with a retryable status.
public protocol SpanConsumer: Sendable {
    /// `spans` is consumed: the pipeline moves the records on rather than copy them.
    func consume(_ spans: consuming [SpanRecord]) async throws(IngestRefusal)
}

/// Why the pipeline refused a batch. Receivers map it to HTTP 503/429 + Retry-After
/// (gRPC UNAVAILABLE + RetryInfo).
public struct IngestRefusal: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var retryAfterSeconds: Int
    public init(message: String, retryAfterSeconds: Int = 1) {
        self.message = message
        self.retryAfterSeconds = retryAfterSeconds
    }
    public var description: String { message }
}
