import Synchronization

/// Request bytes being decoded and logged at once, across both receivers
/// (`--max-inflight-bytes`). Each request reserves its size before it is decoded (an
/// OTLP/HTTP body as received, gzip or not; a gRPC message as the method gets it, after
/// its `grpc-encoding` was undone) and gives it back once answered; past the limit it is refused with
/// a retryable status (HTTP 503 + Retry-After, gRPC UNAVAILABLE + RetryInfo), so clients
/// that outpace the pipeline hold their batches rather than the daemon holding them
/// decoded. One request alone is always admitted: a message under the size limit can
/// always pass.
public final class InflightBudget: Sendable {
    public let limit: Int64
    private let state = Mutex((bytes: Int64(0), refused: Int64(0)))

    public init(limit: Int = 64 << 20) { self.limit = Int64(limit) }

    /// What a refused request is told.
    public static let refusal = IngestRefusal(message: "too many request bytes in flight; retry later", retryAfterSeconds: 1)

    /// Reserves `bytes`; false (and counted) when the budget is spent.
    public func reserve(_ bytes: Int) -> Bool {
        state.withLock { s in
            if s.bytes > 0 && s.bytes + Int64(bytes) > limit {
                s.refused += 1
                return false
            }
            s.bytes += Int64(bytes)
            return true
        }
    }

    public func release(_ bytes: Int) { state.withLock { $0.bytes -= Int64(bytes) } }

    /// Bytes reserved now, and requests refused so far.
    public var snapshot: (bytes: Int64, refused: Int64) { state.withLock { $0 } }
}
