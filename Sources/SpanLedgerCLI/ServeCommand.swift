import ArgumentParser
import Attribution
import CAllocator
import DurableFiles
import Alerting
import Foundation
import HTTPServing
import LedgerCore
import LedgerPipeline
import LedgerStore
import Logging
import NIOCore
import OTLPDecoding
import OTLPGRPCReceiver
import OTLPReceiver
import OutcomeRegistry
import PrometheusExport
import Rollups
import QueryAPI
import ServiceLifecycle
import Synchronization
import WriteAheadLog

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "Run the collector: OTLP receivers, trace assembly, rollups, query API.")

    @Option(help: "YAML config file; every flag below is also a key (otlp_http, trace_wait, …).") var config: String?
    @Option(help: "Data directory (default ./data).") var data: String?
    @Option(name: .customLong("otlp-http"), help: "OTLP/HTTP listen address (default 127.0.0.1:4318).") var otlpHTTP: String?
    @Option(name: .customLong("otlp-grpc"), help: "OTLP/gRPC listen address (default 127.0.0.1:4317).") var otlpGRPC: String?
    @Option(help: "Query API listen address (default 127.0.0.1:4320).") var api: String?
    @Option(name: .customLong("trace-wait"), help: "Quiet time before a trace with its root is released (default 5s).") var traceWait: String?
    @Option(name: .customLong("trace-max-age"), help: "Longest a trace stays open before release as incomplete (default 10m).") var traceMaxAge: String?
    @Option(name: .customLong("max-pending-traces"), help: "Open traces held before the oldest is released early (default 100000).") var maxPendingTraces: Int?
    @Option(name: .customLong("max-pending-bytes"), help: "Buffered span bytes before the oldest trace is released early (default 268435456).") var maxPendingBytes: Int?
    @Option(name: .customLong("max-spans-per-trace"), help: "Spans held for one trace before it is released as it stands (default 10000).") var maxSpansPerTrace: Int?
    @Option(name: .customLong("max-trace-bytes"), help: "Bytes held for one trace before it is released as it stands (default 16777216).") var maxTraceBytes: Int?
    @Option(name: .customLong("flush-interval"), help: "How often rollups are written to disk (default 5s).") var flushInterval: String?
    @Option(name: .customLong("max-unflushed-spans"), help: "Spans of released runs that start a flush before the interval is up (default 200000).")
    var maxUnflushedSpans: Int?
    @Option(name: .customLong("max-release-lag"), help: "Ingest waits (up to 1 s a batch) while the oldest due trace has waited longer than this for release (default 500ms; 0s = never).")
    var maxReleaseLag: String?
    @Option(help: "Price file (JSON, Schemas/prices.md) adding to or overriding the built-in prices.") var prices: String?
    @Option(name: .customLong("max-body-size"), help: "Largest OTLP request body in bytes, after gzip inflation too (default 16777216).") var maxBodySize: Int?
    @Option(name: .customLong("idle-timeout"), help: "Close connections silent this long (default 30s).") var idleTimeout: String?
    @Option(name: .customLong("log-level"), help: "Log level (default info).") var logLevel: String?
    @Option(help: "Write-ahead log durability: fsync (before every answer, group-committed), batch (fsync every --durability-interval), none (default fsync).") var durability: String?
    @Option(name: .customLong("durability-interval"), help: "fsync period of --durability batch (default 100ms).") var durabilityInterval: String?
    @Option(name: .customLong("max-inflight-bytes"), help: "Request bytes (OTLP/HTTP and gRPC together) decoded and logged at once before 503 / UNAVAILABLE (default 67108864).") var maxInflightBytes: Int?
    @Option(name: .customLong("read-timeout"), help: "A whole request must arrive within this (default 30s).") var readTimeout: String?
    @Option(name: .customLong("max-attribute-depth"), help: "Nesting of attribute arrays/key-value lists (default 32).") var maxAttributeDepth: Int?
    @Option(name: .customLong("max-span-attributes"), help: "Attributes per span (default 1024).") var maxSpanAttributes: Int?
    @Option(name: .customLong("max-attribute-bytes"), help: "Bytes of one string attribute value (default 65536).") var maxAttributeBytes: Int?
    @Option(name: .customLong("max-spans-per-request"), help: "Spans in one request (default 100000).") var maxSpansPerRequest: Int?
    @Option(name: .customLong("compact-hourly-after"), help: "Minute rollup buckets older than this merge into hourly ones (default 48h).") var compactHourlyAfter: String?
    @Option(name: .customLong("compact-daily-after"), help: "Hourly buckets older than this merge into daily ones (default 30d).") var compactDailyAfter: String?
    @Option(help: "Rollups older than this are dropped (default 400d).") var retention: String?
    @Option(name: .customLong("compaction-interval"), help: "How often rollups are compacted (default 1h).") var compactionInterval: String?
    @Option(name: .customLong("max-metric-series"), help: "Label sets per ledger metric on /metrics before series fold into __overflow__ (default 2000).") var maxMetricSeries: Int?
    @Option(help: "Outcome registry (YAML, Schemas/registry.md): each workflow's outcome sentence, function, owner, target and budget.") var registry: String?
    @Option(name: .customLong("correction-window"), help: "Verdicts for runs that started longer ago than this are refused (default 30d).") var correctionWindow: String?
    @Option(name: .customLong("max-held-verdicts"), help: "Verdicts held for runs not seen yet (default 1000000).") var maxHeldVerdicts: Int?
    @Option(name: .customLong("trace-retention"), help: "Run trees and index entries of runs older than this are removed at compaction; at least the correction window (default 30d).") var traceRetention: String?
    @Option(name: .customLong("heap-trim-slack"), help: "Resident bytes past live heap (beyond the idle baseline) kept before free heap is given back to the system; 0 never trims (default 33554432).") var heapTrimSlack: Int?
    @Option(name: .customLong("max-indexed-runs"), help: "Runs whose index entry stays in memory; older ones are looked up on disk (default 100000).") var maxIndexedRuns: Int?
    @Option(name: .customLong("max-task-runs"), help: "Task-tagged runs listed in memory for rework; runs past it are read from disk when their task runs again (default 250000).") var maxTaskRuns: Int?
    @Option(name: .customLong("lookup-cache-bytes"), help: "Bytes of inflated index and run-tree files kept (30 s after last use) for lookups of runs no longer in memory: late verdicts, trace views, rework; 0 keeps none (default 67108864).") var lookupCacheBytes: Int?
    @Option(help: "Alert rules file (YAML, Schemas/alerts.md): token spikes, budgets, acceptance, retries, unpriced models, and their hooks.") var alerts: String?

    func settings() throws -> ServeSettings {
        var s = ServeSettings()
        if let config { try s.apply(yamlFile: config) }
        if let data { s.data = data }
        if let otlpHTTP { s.otlpHTTP = otlpHTTP }
        if let otlpGRPC { s.otlpGRPC = otlpGRPC }
        if let api { s.api = api }
        if let traceWait { s.traceWait = traceWait }
        if let traceMaxAge { s.traceMaxAge = traceMaxAge }
        if let maxPendingTraces { s.maxPendingTraces = maxPendingTraces }
        if let maxPendingBytes { s.maxPendingBytes = maxPendingBytes }
        if let flushInterval { s.flushInterval = flushInterval }
        if let maxUnflushedSpans { s.maxUnflushedSpans = maxUnflushedSpans }
        if let maxReleaseLag { s.maxReleaseLag = maxReleaseLag }
        if let maxSpansPerTrace { s.maxSpansPerTrace = maxSpansPerTrace }
        if let maxTraceBytes { s.maxTraceBytes = maxTraceBytes }
        if let prices { s.prices = prices }
        if let maxBodySize { s.maxBodySize = maxBodySize }
        if let idleTimeout { s.idleTimeout = idleTimeout }
        if let logLevel { s.logLevel = logLevel }
        if let durability { s.durability = durability }
        if let durabilityInterval { s.durabilityInterval = durabilityInterval }
        if let maxInflightBytes { s.maxInflightBytes = maxInflightBytes }
        if let readTimeout { s.readTimeout = readTimeout }
        if let maxAttributeDepth { s.maxAttributeDepth = maxAttributeDepth }
        if let maxSpanAttributes { s.maxSpanAttributes = maxSpanAttributes }
        if let maxAttributeBytes { s.maxAttributeBytes = maxAttributeBytes }
        if let maxSpansPerRequest { s.maxSpansPerRequest = maxSpansPerRequest }
        if let alerts { s.alerts = alerts }
        if let correctionWindow { s.correctionWindow = correctionWindow }
        if let registry { s.registry = registry }
        if let maxMetricSeries { s.maxMetricSeries = maxMetricSeries }
        if let compactHourlyAfter { s.compactHourlyAfter = compactHourlyAfter }
        if let compactDailyAfter { s.compactDailyAfter = compactDailyAfter }
        if let retention { s.retention = retention }
        if let compactionInterval { s.compactionInterval = compactionInterval }
        if let maxHeldVerdicts { s.maxHeldVerdicts = maxHeldVerdicts }
        if let maxIndexedRuns { s.maxIndexedRuns = maxIndexedRuns }
        if let maxTaskRuns { s.maxTaskRuns = maxTaskRuns }
        if let lookupCacheBytes { s.lookupCacheBytes = lookupCacheBytes }
        if let traceRetention { s.traceRetention = traceRetention }
        if let heapTrimSlack { s.heapTrimSlack = heapTrimSlack }
        return s
    }

    /// tcmalloc's per-thread caches of free blocks, all threads together: 8 MB instead of its
    /// 32 MB default took 5-10 MB off peak resident memory at the default limits (few
    /// threads allocate: the event loops and the task pool). Its CPU cost was not measured
    /// apart; the tcmalloc-against-glibc pairs in the README ran with this cap.
    static let threadCacheBytes = 8 << 20

    func run() async throws {
        let s = try settings()
        sl_heap_configure(Self.threadCacheBytes)
        guard let level = Logger.Level(rawValue: s.logLevel) else { throw ValidationError("unknown log level '\(s.logLevel)'") }
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = level
            return h
        }
        let logger = Logger(label: "spanledger")
        // One metrics registry for /metrics; swift-metrics (the WAL's fsync timer) reports into it.
        guard s.maxMetricSeries > 0 else { throw ValidationError("max metric series must be positive") }
        let prometheus = LedgerPrometheus(maxLabelSets: s.maxMetricSeries)
        prometheus.bootstrapSwiftMetrics()
        let selfMetrics = SelfMetrics(ledgerMetrics: prometheus)
        guard s.heapTrimSlack >= 0 else { throw ValidationError("heap trim slack must not be negative (0 never trims)") }
        let trimmer = HeapTrimmer(slack: s.heapTrimSlack, logger: logger, heap: { selfMetrics.heapStats() })

        var ledgerConfig = LedgerConfiguration()
        ledgerConfig.dataDirectory = s.data
        ledgerConfig.assembly.waitNano = UInt64(try ServeSettings.duration(s.traceWait, "trace wait"))
        ledgerConfig.assembly.maxAgeNano = UInt64(try ServeSettings.duration(s.traceMaxAge, "trace max age"))
        ledgerConfig.assembly.maxTraces = s.maxPendingTraces
        ledgerConfig.assembly.maxBytes = s.maxPendingBytes
        ledgerConfig.assembly.maxSpansPerTrace = s.maxSpansPerTrace
        ledgerConfig.assembly.maxTraceBytes = s.maxTraceBytes
        ledgerConfig.flushIntervalNano = UInt64(try ServeSettings.duration(s.flushInterval, "flush interval"))
        ledgerConfig.maxUnflushedSpans = s.maxUnflushedSpans
        guard let releaseLag = DurationText.nanoseconds(s.maxReleaseLag), releaseLag >= 0 else {
            throw ValidationError("max release lag '\(s.maxReleaseLag)' is not a duration (e.g. 500ms, 2s; 0s turns the wait off)")
        }
        ledgerConfig.maxReleaseLagNano = UInt64(releaseLag)
        ledgerConfig.correctionWindowNano = try ServeSettings.duration(s.correctionWindow, "correction window")
        ledgerConfig.maxHeldVerdicts = s.maxHeldVerdicts
        ledgerConfig.maxIndexedRuns = s.maxIndexedRuns
        ledgerConfig.maxTaskRuns = s.maxTaskRuns
        guard s.lookupCacheBytes >= 0 else { throw ValidationError("lookup cache bytes must not be negative") }
        ledgerConfig.lookupCacheBytes = s.lookupCacheBytes
        ledgerConfig.traceRetentionNano = try ServeSettings.duration(s.traceRetention, "trace retention")
        guard ledgerConfig.correctionWindowNano <= ledgerConfig.traceRetentionNano else {
            throw ValidationError("need correction-window <= trace-retention: a run's outcome can change only while its run tree is kept")
        }
        ledgerConfig.compaction = CompactionPolicy(
            hourlyAfterSeconds: try ServeSettings.duration(s.compactHourlyAfter, "compact hourly after") / 1_000_000_000,
            dailyAfterSeconds: try ServeSettings.duration(s.compactDailyAfter, "compact daily after") / 1_000_000_000,
            retentionSeconds: try ServeSettings.duration(s.retention, "retention") / 1_000_000_000)
        guard ledgerConfig.compaction.hourlyAfterSeconds <= ledgerConfig.compaction.dailyAfterSeconds,
              ledgerConfig.compaction.dailyAfterSeconds <= ledgerConfig.compaction.retentionSeconds else {
            throw ValidationError("need compact-hourly-after <= compact-daily-after <= retention")
        }
        ledgerConfig.compactionIntervalNano = UInt64(try ServeSettings.duration(s.compactionInterval, "compaction interval"))
        guard s.maxHeldVerdicts > 0 else { throw ValidationError("max held verdicts must be positive") }
        guard s.maxPendingTraces > 0, s.maxPendingBytes > 0, s.maxBodySize > 0, s.maxSpansPerTrace > 0, s.maxTraceBytes > 0, s.maxUnflushedSpans > 0,
              s.maxIndexedRuns > 0, s.maxTaskRuns > 0 else { throw ValidationError("limits must be positive") }

        let priceTable: PriceTable
        do { priceTable = try PriceTable.load(userFile: s.prices) } catch { throw ValidationError("\(error)") }

        let outcomeRegistry: OutcomeRegistry
        do { outcomeRegistry = try s.registry.map { try OutcomeRegistry.load(path: $0) } ?? OutcomeRegistry() } catch { throw ValidationError("\(error)") }
        // Functions declared in the registry scope alert rules too (the rules file's own `functions:` come first).
        let alertConfig: AlertConfiguration
        do {
            alertConfig = try s.alerts.map { try AlertConfiguration.load(path: $0, extraFunctions: outcomeRegistry.functionPatterns) } ?? AlertConfiguration()
        } catch { throw ValidationError("\(error)") }

        guard let durabilityMode = Durability.parse(s.durability, batchIntervalNano: UInt64(try ServeSettings.duration(s.durabilityInterval, "durability interval"))) else {
            throw ValidationError("durability '\(s.durability)' must be fsync, batch or none")
        }
        var walConfig = WriteAheadLog.Configuration(directory: s.data + "/wal")
        walConfig.durability = durabilityMode
        walConfig.preallocate = true
        let (wal, walReport) = try WriteAheadLog.open(walConfig)
        let ledger = try Ledger(configuration: ledgerConfig, prices: priceTable, logger: logger, wal: wal)
        try await ledger.recover(report: walReport)
        try wal.start()
        let inbox = ActivityInbox()
        let alertEngine: AlertEngine
        do {
            alertEngine = try AlertEngine(configuration: alertConfig, rollups: ledger, inbox: inbox, dataDirectory: s.data,
                                          externalURL: "http://\(s.api)", logger: logger)
        } catch { throw ValidationError("\(error)") }
        await ledger.setActivityObserver(FanOutObserver([inbox, prometheus]))
        let counters = ReceiverCounters()
        guard s.maxInflightBytes > 0 else { throw ValidationError("max inflight bytes must be positive (got \(s.maxInflightBytes))") }
        let budget = InflightBudget(limit: s.maxInflightBytes)
        var otlpConfig = try HTTPServerConfiguration(address: s.otlpHTTP)
        var apiConfig = try HTTPServerConfiguration(address: s.api)
        let idle = try ServeSettings.duration(s.idleTimeout, "idle timeout")
        otlpConfig.idleTimeout = .nanoseconds(idle)
        apiConfig.idleTimeout = .nanoseconds(idle)
        let readTimeout = try ServeSettings.duration(s.readTimeout, "read timeout")
        otlpConfig.readTimeout = .nanoseconds(readTimeout)
        apiConfig.readTimeout = .nanoseconds(readTimeout)
        var decodeLimits = DecodeLimits()
        decodeLimits.maxAnyValueDepth = s.maxAttributeDepth
        decodeLimits.maxAttributesPerSpan = s.maxSpanAttributes
        decodeLimits.maxAttributeValueBytes = s.maxAttributeBytes
        decodeLimits.maxSpansPerRequest = s.maxSpansPerRequest
        guard [s.maxAttributeDepth, s.maxSpanAttributes, s.maxAttributeBytes, s.maxSpansPerRequest].allSatisfy({ $0 > 0 }) else {
            throw ValidationError("decode limits must be positive")
        }

        let listening = ListeningFile(path: s.data + "/listening.json", expected: ["otlp_http", "otlp_grpc", "api"])
        let grpcAddress = try HTTPServerConfiguration(address: s.otlpGRPC)
        var grpcConfig = OTLPGRPCReceiver.Configuration(host: grpcAddress.host, port: grpcAddress.port)
        grpcConfig.maxMessageBytes = s.maxBodySize
        let grpcCounters = GRPCCounters()
        let ingest = DurableIngest(ledger: ledger, wal: wal)
        let grpc = OTLPGRPCReceiver(configuration: grpcConfig, consumer: ingest, limits: decodeLimits, counters: grpcCounters, budget: budget,
                                    logger: logger, onBound: { host, port in await listening.bound("otlp_grpc", host: host, port: port) })
        let otlp = HTTPServer(name: "OTLP/HTTP receiver", configuration: otlpConfig,
                              handler: OTLPHTTPReceiver(consumer: ingest, outcomes: ingest, maxBodySize: s.maxBodySize, counters: counters,
                                                         budget: budget, limits: decodeLimits), logger: logger,
                              onBound: { await listening.bound("otlp_http", $0) })
        let queryAPI = HTTPServer(name: "query API", configuration: apiConfig,
                                  handler: QueryHTTPHandler(ledger: ledger, registry: outcomeRegistry,
                                                            metrics: { await selfMetrics.render(ledger: ledger, receiver: counters, grpc: grpcCounters, budget: budget, wal: wal, alerts: alertEngine,
                                                                                                 trimmer: trimmer) },
                                                            alerts: { await alertEngine.reportJSON() }),
                                  logger: logger, onBound: { address in
                                      await listening.bound("api", address)
                                      await alertEngine.setExternalURL("http://\(address.ipAddress ?? "127.0.0.1"):\(address.port ?? 0)")
                                  })
        let group = ServiceGroup(configuration: .init(
            services: [
                .init(service: LedgerService(ledger: ledger, logger: logger)),
                .init(service: AlertService(engine: alertEngine, sender: HookSender(logger: logger), logger: logger)),
                .init(service: queryAPI),
                .init(service: grpc),
                .init(service: otlp),
                .init(service: trimmer),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint],
            cancellationSignals: [],
            logger: logger))
        let signals = SecondSignalExit(logger: logger)
        try await group.run()
        signals.cancel()
        wal.close()
        listening.remove()
        logger.info("stopped cleanly")
    }
}

/// Writes `<data>/listening.json` once every listener is bound, so scripts and tests can
/// find ports chosen by the OS (`--otlp-http 127.0.0.1:0`).
actor ListeningFile {
    let path: String
    let expected: Set<String>
    var addresses: [String: String] = [:]

    init(path: String, expected: Set<String>) {
        self.path = path
        self.expected = expected
    }

    func bound(_ name: String, _ address: SocketAddress) {
        bound(name, host: address.ipAddress ?? "127.0.0.1", port: address.port ?? 0)
    }

    func bound(_ name: String, host: String, port: Int) {
        let hostText = host.contains(":") ? "[\(host)]" : host
        addresses[name] = "\(hostText):\(port)"
        guard Set(addresses.keys) == expected else { return }
        var w = JSONWriter()
        w.objectStart()
        for k in addresses.keys.sorted() { w.field(k, addresses[k]!) }
        w.field("pid", Int64(ProcessInfo.processInfo.processIdentifier))
        w.objectEnd()
        try? FileIO.writeAtomically(Array((w.text + "\n").utf8), to: path)
    }

    nonisolated func remove() { FileIO.remove(path) }
}

/// The first SIGTERM/SIGINT starts the graceful shutdown (ServiceGroup); a second one
/// exits at once. Data already acknowledged is in the write-ahead log either way.
final class SecondSignalExit: @unchecked Sendable { // sources are set once and only cancelled
    let sources: [any DispatchSourceSignal]

    init(logger: Logger) {
        let count = Mutex(0)
        sources = [SIGTERM, SIGINT].map { sig in
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler {
                let n = count.withLock { c in
                    c += 1
                    return c
                }
                if n >= 2 {
                    logger.warning("second signal: exiting now without finishing the shutdown")
                    exit(130)
                }
            }
            source.resume()
            return source
        }
    }

    func cancel() { for s in sources { s.cancel() } }
}
