import GRPCCore
import GRPCNIOTransportHTTP2Posix
import LedgerCore
import LedgerPipeline
import Logging
import OTLPDecoding
import ServiceLifecycle
import Synchronization

/// What an Export call answers: spans rejected alone (partial success), if any.
public struct ExportResult: Sendable {
    public var rejectedSpans: Int64
    public var errorMessage: String?
}

/// Decodes the request message with libprotobuf-c straight from gRPC's bytes: an
/// undecodable message is INVALID_ARGUMENT with the reason.
struct ExportRequestDeserializer: MessageDeserializer {
    let pool: DecoderPool
    let maxMessageBytes: Int

    func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> DecodedBatch {
        guard serializedMessageBytes.count <= maxMessageBytes else {
            throw RPCError(code: .resourceExhausted, message: "request message is \(serializedMessageBytes.count) bytes (after decompression); the limit is \(maxMessageBytes)")
        }
        do {
            return try serializedMessageBytes.withUnsafeBytes { raw in try pool.withDecoder { try $0.decode(raw) } }
        } catch let e as OTLPDecodeError {
            throw RPCError(code: .invalidArgument, message: e.message)
        }
    }
}

/// Encodes ExportTraceServiceResponse (with partial_success when spans were rejected).
struct ExportResponseSerializer: MessageSerializer {
    func serialize<Bytes: GRPCContiguousBytes>(_ message: ExportResult) throws -> Bytes {
        Bytes(OTLPResponses.exportResponse(rejectedSpans: message.rejectedSpans, errorMessage: message.errorMessage))
    }
}

/// `opentelemetry.proto.collector.trace.v1.TraceService/Export` (OTLP/gRPC).
public struct OTLPTraceService: RegistrableRPCService {
    public static let export = MethodDescriptor(fullyQualifiedService: "opentelemetry.proto.collector.trace.v1.TraceService", method: "Export")
    let consumer: any SpanConsumer
    let pool: DecoderPool
    let counters: GRPCCounters
    let maxMessageBytes: Int

    public func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
        let consumer = self.consumer
        let counters = self.counters
        router.registerHandler(forMethod: Self.export, deserializer: ExportRequestDeserializer(pool: pool, maxMessageBytes: maxMessageBytes), serializer: ExportResponseSerializer()) {
            request, _ in
            var batch: DecodedBatch?
            do {
                for try await message in request.messages { batch = message }
            } catch {
                counters.refused()
                throw error
            }
            guard var decoded = batch else { throw RPCError(code: .invalidArgument, message: "Export call carried no request message") }
            batch = nil
            let spanCount = decoded.spans.count
            do {
                try await consumer.consume(decoded.takeSpans())
            } catch let error as IngestRefusal {
                counters.refused()
                // UNAVAILABLE with google.rpc.RetryInfo in grpc-status-details-bin (OTLP throttling).
                var metadata = Metadata()
                metadata.addBinary(OTLPResponses.status(code: RPCCode.unavailable, message: error.message, retryAfterSeconds: Int64(error.retryAfterSeconds)),
                                   forKey: "grpc-status-details-bin")
                // The OpenTelemetry exporters also read a bare RetryInfo from this trailer.
                metadata.addBinary(OTLPResponses.retryInfo(seconds: Int64(error.retryAfterSeconds)), forKey: "google.rpc.retryinfo-bin")
                throw RPCError(code: .unavailable, message: error.message, metadata: metadata)
            }
            counters.accepted(spans: Int64(spanCount), rejected: decoded.rejectedSpans)
            let message = decoded.rejectedSpans > 0 ? "\(decoded.rejectedSpans) span(s) rejected: \(decoded.rejectionMessage ?? "invalid span")" : nil
            return StreamingServerResponse(single: ServerResponse(message: ExportResult(rejectedSpans: decoded.rejectedSpans, errorMessage: message)))
        }
    }
}

/// Counters of the gRPC receiver for /metrics.
public final class GRPCCounters: Sendable {
    private let values = Mutex((spans: Int64(0), rejectedSpans: Int64(0), refusedCalls: Int64(0)))
    public init() {}
    func accepted(spans: Int64, rejected: Int64) { values.withLock { $0.spans += spans; $0.rejectedSpans += rejected } }
    func refused() { values.withLock { $0.refusedCalls += 1 } }
    public var snapshot: (spans: Int64, rejectedSpans: Int64, refusedCalls: Int64) { values.withLock { $0 } }
}

/// The OTLP/gRPC listener as a lifecycle service: serves until graceful shutdown, then
/// lets calls in flight finish.
public struct OTLPGRPCReceiver: Service {
    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        /// Largest request message, counted after decompression (`--max-body-size`):
        /// larger ones get RESOURCE_EXHAUSTED. The transport itself stops reading at four
        /// times this (a stream reset), so a hostile sender cannot make it buffer more.
        public var maxMessageBytes: Int = 16 << 20
        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }
    }

    /// Flow-control window offered to each connection and stream: a few batches in flight.
    static let windowBytes = 4 << 20
    /// Largest HTTP/2 frame a client may send (a batch in one or two frames).
    static let maxFrameBytes = 1 << 20

    let server: GRPCServer<HTTP2ServerTransport.Posix>
    let transport: HTTP2ServerTransport.Posix
    let logger: Logger
    let onBound: @Sendable (String, Int) async -> Void

    public init(configuration: Configuration, consumer: any SpanConsumer, limits: DecodeLimits, counters: GRPCCounters, logger: Logger,
                onBound: @escaping @Sendable (String, Int) async -> Void) {
        let transport = HTTP2ServerTransport.Posix(
            address: .ipv4(host: configuration.host, port: configuration.port),
            transportSecurity: .plaintext,
            config: .defaults { config in
                config.compression.enabledAlgorithms = [.gzip, .deflate]
                config.rpc.maxRequestPayloadSize = configuration.maxMessageBytes * 4
                // The transport's defaults (a 64 KB window, 16 KB frames) make an exporter
                // wait for stream window updates two or three times per 512-span batch
                // (about 160 KB), and cut it into ten frames for the server to parse and
                // join. (The connection's window starts at 64 KB by the HTTP/2 spec and
                // grows to this target once data flows.)
                config.http2.targetWindowSize = Self.windowBytes
                config.http2.maxFrameSize = Self.maxFrameBytes
            })
        self.transport = transport
        self.server = GRPCServer(transport: transport, services: [
            OTLPTraceService(consumer: consumer, pool: DecoderPool(limits: limits), counters: counters, maxMessageBytes: configuration.maxMessageBytes),
        ])
        self.logger = logger
        self.onBound = onBound
    }

    public func run() async throws {
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask { try await server.serve() }
                let address = try await transport.listeningAddress
                if let ipv4 = address.ipv4 {
                    logger.info("OTLP/gRPC receiver listening", metadata: ["address": "\(ipv4.host):\(ipv4.port)"])
                    await onBound(ipv4.host, ipv4.port)
                }
            }
        } onGracefulShutdown: {
            server.beginGracefulShutdown()
        }
        logger.info("OTLP/gRPC receiver stopped")
    }
}
