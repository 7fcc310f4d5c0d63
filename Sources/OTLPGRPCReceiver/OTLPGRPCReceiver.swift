import LedgerCore
import LedgerPipeline
import HTTPServing
import Logging
import NIOCore
import NIOHTTP2
import NIOPosix
import OTLPDecoding
import ServiceLifecycle
import Synchronization

/// `opentelemetry.proto.collector.trace.v1.TraceService/Export` (OTLP/gRPC): decodes the
/// request with libprotobuf-c, hands the spans on, answers ExportTraceServiceResponse
/// (partial_success for rejected spans), INVALID_ARGUMENT for an undecodable message, and
/// UNAVAILABLE with google.rpc.RetryInfo when the pipeline refuses the batch or the
/// request bytes in flight (both receivers together) are at `--max-inflight-bytes`.
public struct OTLPTraceExport: Sendable {
    public static let path = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
    let consumer: any SpanConsumer
    let pool: DecoderPool
    let counters: GRPCCounters
    let budget: InflightBudget

    public init(consumer: any SpanConsumer, limits: DecodeLimits, counters: GRPCCounters, budget: InflightBudget) {
        self.consumer = consumer
        self.pool = DecoderPool(limits: limits)
        self.counters = counters
        self.budget = budget
    }

    public func export(_ request: GRPCRequestBytes) async -> Result<[UInt8], GRPCStatus> {
        let size = request.count
        guard budget.reserve(size) else { return .failure(Self.unavailable(InflightBudget.refusal)) }
        defer { budget.release(size) }
        var decoded: DecodedBatch
        do {
            decoded = try request.withUnsafeBytes { raw in try pool.withDecoder { try $0.decode(raw) } }
        } catch let e as OTLPDecodeError {
            return .failure(GRPCStatus(code: RPCCode.invalidArgument, message: e.message))
        } catch {
            return .failure(GRPCStatus(code: RPCCode.invalidArgument, message: "\(error)"))
        }
        let spanCount = decoded.spans.count
        do {
            try await consumer.consume(decoded.takeSpans())
        } catch {
            return .failure(Self.unavailable(error))
        }
        counters.accepted(spans: Int64(spanCount), rejected: decoded.rejectedSpans)
        return .success(OTLPResponses.exportResponse(rejectedSpans: decoded.rejectedSpans, errorMessage: decoded.rejectionSummary))
    }

    /// UNAVAILABLE with google.rpc.RetryInfo in grpc-status-details-bin (OTLP throttling);
    /// the OpenTelemetry exporters also read a bare RetryInfo from its own trailer.
    static func unavailable(_ refusal: IngestRefusal) -> GRPCStatus {
        let seconds = Int64(refusal.retryAfterSeconds)
        return GRPCStatus(code: RPCCode.unavailable, message: refusal.message, binaryMetadata: [
            ("grpc-status-details-bin", OTLPResponses.status(code: RPCCode.unavailable, message: refusal.message, retryAfterSeconds: seconds)),
            ("google.rpc.retryinfo-bin", OTLPResponses.retryInfo(seconds: seconds)),
        ])
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

/// The OTLP/gRPC listener as a lifecycle service: HTTP/2 (cleartext, prior knowledge) on
/// SwiftNIO, unary calls served by `GRPCConnectionHandler`. Graceful shutdown stops
/// accepting, sends each connection GOAWAY, and lets calls in flight finish.
public struct OTLPGRPCReceiver: Service {
    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        /// Largest request message, counted after decompression (`--max-body-size`):
        /// larger ones get RESOURCE_EXHAUSTED, as soon as the message's length prefix (or
        /// the inflation) shows it, so no more than this is buffered per call.
        public var maxMessageBytes: Int = 16 << 20
        /// A call's request must arrive whole within this of its headers.
        public var requestTimeout: TimeAmount = .seconds(30)
        /// A connection without calls for this long is closed (GOAWAY).
        public var maxIdleTime: TimeAmount = .minutes(10)
        /// Calls in flight at shutdown get this long to finish.
        public var maxGraceTime: TimeAmount = .seconds(30)
        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }
    }

    /// Flow-control window offered to each connection and stream: a few batches in flight.
    /// (HTTP/2's default is 64 KB: an exporter would wait for window updates two or three
    /// times per 512-span batch of about 160 KB.)
    static let windowBytes = 4 << 20
    /// Largest HTTP/2 frame a client may send: a batch in one or two frames, not ten.
    static let maxFrameBytes = 1 << 20
    static let maxConcurrentStreams = 256

    let configuration: Configuration
    let routes: GRPCUnaryRoutes
    let logger: Logger
    let onBound: @Sendable (String, Int) async -> Void
    let connections = ConnectionTracker()

    public init(configuration: Configuration, consumer: any SpanConsumer, limits: DecodeLimits, counters: GRPCCounters,
                budget: InflightBudget = InflightBudget(), logger: Logger, onBound: @escaping @Sendable (String, Int) async -> Void) {
        let export = OTLPTraceExport(consumer: consumer, limits: limits, counters: counters, budget: budget)
        self.routes = GRPCUnaryRoutes([OTLPTraceExport.path: { await export.export($0) }], refused: { _ in counters.refused() })
        self.configuration = configuration
        self.logger = logger
        self.onBound = onBound
    }

    public func run() async throws {
        let configuration = self.configuration
        let routes = self.routes
        let logger = self.logger
        let connections = self.connections
        let http2 = Self.http2Configuration()
        let management = NIOHTTP2ServerConnectionManagementHandler.Configuration(
            maxIdleTime: configuration.maxIdleTime, maxAge: nil, maxGraceTime: configuration.maxGraceTime,
            keepalive: .init(pingInterval: .hours(2), ackTimeout: .seconds(20)))
        let handlerConfiguration = GRPCConnectionHandler.Configuration(
            maxMessageBytes: configuration.maxMessageBytes, windowBytes: Self.windowBytes, requestTimeout: configuration.requestTimeout,
            maxBufferedBytes: configuration.maxMessageBytes + Self.windowBytes)

        let server = try await ServerBootstrap.spanLedgerListener()
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    guard connections.opened(channel) else { throw ChannelError.ioOnClosedChannel }
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(NIOHTTP2Handler(mode: .server, connectionConfiguration: http2))
                    try sync.addHandler(NIOHTTP2ServerConnectionManagementHandler(eventLoop: channel.eventLoop, configuration: management))
                    try sync.addHandler(GRPCConnectionHandler(routes: routes, configuration: handlerConfiguration, logger: logger))
                }
            }
            .bind(host: configuration.host, port: configuration.port).get()
        if let address = server.localAddress, let port = address.port {
            logger.info("OTLP/gRPC receiver listening", metadata: ["address": "\(address.ipAddress ?? configuration.host):\(port)"])
            await onBound(address.ipAddress ?? configuration.host, port)
        }
        await connections.serve(until: server) { shutdown in
            // GOAWAY to each connection; NIO's connection management handler closes it
            // once its calls are answered (or after maxGraceTime).
            for (channel, _) in shutdown { channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent()) }
        }
        logger.info("OTLP/gRPC receiver stopped")
    }

    /// SETTINGS offered to clients: batch-sized windows and frames, bounded streams and headers.
    static func http2Configuration() -> NIOHTTP2Handler.ConnectionConfiguration {
        var http2 = NIOHTTP2Handler.ConnectionConfiguration()
        http2.initialSettings = [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: maxConcurrentStreams),
            HTTP2Setting(parameter: .maxHeaderListSize, value: 16 << 10),
            HTTP2Setting(parameter: .initialWindowSize, value: windowBytes),
            HTTP2Setting(parameter: .maxFrameSize, value: maxFrameBytes),
        ]
        return http2
    }
}
