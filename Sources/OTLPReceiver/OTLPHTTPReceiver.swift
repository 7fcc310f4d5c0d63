import HTTPServing
import LedgerCore
import LedgerPipeline
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import OTLPDecoding
import ZlibCodec

/// OTLP/HTTP trace receiver: `POST /v1/traces` with `application/x-protobuf`
/// (opentelemetry-proto docs/specification.md "OTLP/HTTP"). Success answers an
/// ExportTraceServiceResponse (with partial_success when spans were rejected); every
/// error answers a google.rpc.Status body.
public struct OTLPHTTPReceiver: HTTPHandler {
    public let maxBodySize: Int
    let consumer: any SpanConsumer
    let decoders: DecoderPool
    let counters: ReceiverCounters
    let budget: InflightBudget
    let outcomes: OutcomesEndpoint?

    public init(consumer: any SpanConsumer, outcomes: (any OutcomeConsumer)? = nil, maxBodySize: Int = 16 << 20,
                counters: ReceiverCounters = ReceiverCounters(), budget: InflightBudget = InflightBudget(), limits: DecodeLimits = .default) {
        self.consumer = consumer
        self.budget = budget
        self.outcomes = outcomes.map(OutcomesEndpoint.init(consumer:))
        self.decoders = DecoderPool(limits: limits)
        self.maxBodySize = maxBodySize
        self.counters = counters
    }

    public static let tracesPath = "/v1/traces"

    /// Decoding and handing on a batch is short CPU work, and the write-ahead log's wait
    /// suspends: requests stay on the loop that read them, unless the body is too big for
    /// that (`EventLoopTaskExecutor.suits`).
    public func handlesOnEventLoop(_ request: HTTPRequest) -> Bool {
        EventLoopTaskExecutor.suits(messageBytes: request.body.readableBytes, compressed: Self.contentEncoding(request) != "identity")
    }

    /// The request's Content-Encoding, lowercased: "identity" when there is none or it is
    /// empty, so that one comparison tells an uncompressed body.
    static func contentEncoding(_ request: HTTPRequest) -> String {
        let value = request.headers.first(name: "content-encoding")?.lowercased().trimmingWhitespace() ?? ""
        return value.isEmpty ? "identity" : value
    }

    /// The two OTLP/HTTP encodings; a response uses the request's.
    enum Encoding {
        case protobuf, json
        var contentType: String { self == .json ? "application/json" : "application/x-protobuf" }
    }

    public func handle(_ request: HTTPRequest) async -> HTTPResponse {
        let mediaType = request.headers.first(name: "content-type").map(Self.mediaType) ?? ""
        let encoding: Encoding = mediaType == "application/json" ? .json : .protobuf
        if request.path == OutcomesEndpoint.path, let outcomes { return await outcomes.handle(request) }
        guard request.path == Self.tracesPath else {
            return error(.notFound, RPCCode.notFound, "no such path \(request.path); OTLP traces are received at POST \(Self.tracesPath)", encoding)
        }
        guard request.method == .POST else {
            var r = error(.methodNotAllowed, RPCCode.unimplemented, "method \(request.method) not allowed on \(Self.tracesPath); use POST", encoding)
            r.headers.add(name: "Allow", value: "POST")
            return r
        }
        guard mediaType == "application/x-protobuf" || mediaType == "application/json" else {
            return error(.unsupportedMediaType, RPCCode.invalidArgument,
                         "unsupported Content-Type '\(mediaType)'; this endpoint accepts application/x-protobuf and application/json", encoding)
        }
        var body = request.body
        guard budget.reserve(body.readableBytes) else {
            counters.add(refused: 1)
            return refusal(InflightBudget.refusal, encoding)
        }
        defer { budget.release(request.body.readableBytes) }
        let contentEncoding = Self.contentEncoding(request)
        if encoding == .protobuf && contentEncoding == "identity" {
            // The common case decodes the request buffer where it is, without copying it out.
            let batch: DecodedBatch
            do {
                batch = try body.withUnsafeReadableBytes { raw in try decoders.withDecoder { try $0.decode(raw) } }
            } catch {
                counters.add(refused: 1)
                return self.error(.badRequest, RPCCode.invalidArgument, "\(error)", encoding)
            }
            return await accept(consume batch, encoding)
        }
        var bytes = body.readBytes(length: body.readableBytes) ?? []
        switch contentEncoding {
        case "identity":
            break
        case "gzip":
            do {
                bytes = try Zlib.decompress(bytes, format: .gzip, limit: maxBodySize)
            } catch let e where e.code == .outputLimitExceeded {
                counters.add(refused: 1)
                return self.error(.payloadTooLarge, RPCCode.resourceExhausted, "decompressed body exceeds the limit of \(maxBodySize) bytes", encoding,
                                  close: true)
            } catch {
                counters.add(refused: 1)
                return self.error(.badRequest, RPCCode.invalidArgument, "gzip body cannot be decompressed: \(error.message)", encoding)
            }
        case let other:
            counters.add(refused: 1)
            return error(.unsupportedMediaType, RPCCode.invalidArgument, "unsupported Content-Encoding '\(other)'; use gzip or none", encoding)
        }
        let batch: DecodedBatch
        do {
            batch = try encoding == .json ? decoders.withJSONDecoder { try $0.decode(bytes) } : decoders.withDecoder { try $0.decode(bytes) }
        } catch {
            counters.add(refused: 1)
            return self.error(.badRequest, RPCCode.invalidArgument, "\(error)", encoding)
        }
        return await accept(consume batch, encoding)
    }

    /// Hands a decoded batch on and answers: partial success names the rejected spans; a
    /// refusal downstream is a retryable error.
    func accept(_ batch: consuming DecodedBatch, _ encoding: Encoding) async -> HTTPResponse {
        let spanCount = batch.spans.count
        do {
            try await consumer.consume(batch.takeSpans())
        } catch {
            counters.add(refused: 1)
            return refusal(error, encoding)
        }
        counters.add(spans: Int64(spanCount), rejected: batch.rejectedSpans)
        let message = batch.rejectionSummary
        let answer = encoding == .json ? OTLPJSONResponses.exportResponse(rejectedSpans: batch.rejectedSpans, errorMessage: message)
                                       : OTLPResponses.exportResponse(rejectedSpans: batch.rejectedSpans, errorMessage: message)
        return HTTPResponse(status: .ok, headers: ["Content-Type": encoding.contentType], body: answer)
    }

    public func bodyTooLarge(_ head: HTTPRequestHead) -> HTTPResponse {
        counters.add(refused: 1)
        let encoding: Encoding = head.headers.first(name: "content-type").map(Self.mediaType) == "application/json" ? .json : .protobuf
        return error(.payloadTooLarge, RPCCode.resourceExhausted, "request body exceeds the limit of \(maxBodySize) bytes", encoding, close: true)
    }

    /// 503 with Retry-After and a google.rpc.Status carrying RetryInfo (OTLP "throttling").
    func refusal(_ refusal: IngestRefusal, _ encoding: Encoding) -> HTTPResponse {
        var r = error(.serviceUnavailable, RPCCode.unavailable, refusal.message, encoding, retryAfter: refusal.retryAfterSeconds)
        r.headers.add(name: "Retry-After", value: String(refusal.retryAfterSeconds))
        return r
    }

    func error(_ status: HTTPResponseStatus, _ code: Int32, _ message: String, _ encoding: Encoding, retryAfter: Int? = nil, close: Bool = false) -> HTTPResponse {
        let body = encoding == .json ? OTLPJSONResponses.status(code: code, message: message, retryAfterSeconds: retryAfter.map(Int64.init))
                                     : OTLPResponses.status(code: code, message: message, retryAfterSeconds: retryAfter.map(Int64.init))
        return HTTPResponse(status: status, headers: ["Content-Type": encoding.contentType], body: body, close: close)
    }

    /// `application/x-protobuf; charset=…` → `application/x-protobuf`.
    static func mediaType(_ header: String) -> String {
        String(header.split(separator: ";", maxSplits: 1).first ?? "").trimmingWhitespace().lowercased()
    }
}

/// Counts for the receiver's self-metrics.
public final class ReceiverCounters: Sendable {
    struct Values {
        var spans: Int64 = 0
        var rejected: Int64 = 0
        var refusedRequests: Int64 = 0
        var requests: Int64 = 0
    }
    private let values = NIOLockedValueBox(Values())

    public init() {}

    func add(spans: Int64 = 0, rejected: Int64 = 0, refused: Int64 = 0) {
        values.withLockedValue {
            $0.spans += spans
            $0.rejected += rejected
            $0.refusedRequests += refused
            $0.requests += 1
        }
    }

    public var snapshot: (spans: Int64, rejectedSpans: Int64, refusedRequests: Int64, requests: Int64) {
        values.withLockedValue { ($0.spans, $0.rejected, $0.refusedRequests, $0.requests) }
    }
}
