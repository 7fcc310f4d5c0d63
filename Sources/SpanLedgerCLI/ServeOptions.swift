import ArgumentParser
import Foundation
import LedgerCore
import Yams

/// `spanledger serve` settings. Every option is both a flag and a key of the YAML file
/// given with `--config` (flag wins over file, file over the embedded default).
struct ServeSettings: Sendable, Equatable {
    /// `--data` / `data`: data directory.
    var data = "./data"
    /// `--otlp-http` / `otlp_http`: OTLP/HTTP listener.
    var otlpHTTP = "127.0.0.1:4318"
    /// `--otlp-grpc` / `otlp_grpc`: OTLP/gRPC listener.
    var otlpGRPC = "127.0.0.1:4317"
    /// `--api` / `api`: query API, dashboard and /metrics listener.
    var api = "127.0.0.1:4320"
    /// `--trace-wait` / `trace_wait`: quiet time before a rooted trace is released.
    var traceWait = "5s"
    /// `--trace-max-age` / `trace_max_age`: longest a trace stays open.
    var traceMaxAge = "10m"
    /// `--max-pending-traces` / `max_pending_traces`.
    var maxPendingTraces = 100_000
    /// `--max-pending-bytes` / `max_pending_bytes`.
    var maxPendingBytes = 256 << 20
    /// `--max-spans-per-trace` / `max_spans_per_trace`.
    var maxSpansPerTrace = 10_000
    /// `--max-trace-bytes` / `max_trace_bytes`.
    var maxTraceBytes = 16 << 20
    /// `--flush-interval` / `flush_interval`: how often rollups are written to disk.
    var flushInterval = "5s"
    /// `--max-unflushed-spans` / `max_unflushed_spans`: spans of released runs that start a flush before the interval is up.
    var maxUnflushedSpans = 200_000
    /// `--max-release-lag` / `max_release_lag`: ingest waits while release lags more than this ("0s" = never).
    var maxReleaseLag = "500ms"
    /// `--prices` / `prices`: price file adding to / overriding the built-in table.
    var prices: String?
    /// `--max-body-size` / `max_body_size`: largest OTLP request body, bytes (after gzip inflation too).
    var maxBodySize = 16 << 20
    /// `--idle-timeout` / `idle_timeout`: a connection silent this long is closed.
    var idleTimeout = "30s"
    /// `--log-level` / `log_level`: trace, debug, info, notice, warning, error, critical.
    var logLevel = "info"
    /// `--durability` / `durability`: fsync, batch or none (write-ahead log).
    var durability = "fsync"
    /// `--durability-interval` / `durability_interval`: fsync period in `batch` mode.
    var durabilityInterval = "100ms"
    /// `--max-inflight-bytes` / `max_inflight_bytes`: request bytes being decoded and logged at once.
    var maxInflightBytes = 64 << 20
    /// `--read-timeout` / `read_timeout`: a whole request must arrive within this.
    var readTimeout = "30s"
    /// `--max-attribute-depth` / `max_attribute_depth`: AnyValue nesting.
    var maxAttributeDepth = 32
    /// `--max-span-attributes` / `max_span_attributes`.
    var maxSpanAttributes = 1024
    /// `--max-attribute-bytes` / `max_attribute_bytes`: one string attribute value.
    var maxAttributeBytes = 65_536
    /// `--max-spans-per-request` / `max_spans_per_request`.
    var maxSpansPerRequest = 100_000
    /// `--alerts` / `alerts`: alert rules file (YAML, Schemas/alerts.md).
    var alerts: String?
    /// `--compact-hourly-after` / `compact_hourly_after`: minute buckets older than this become hourly.
    var compactHourlyAfter = "48h"
    /// `--compact-daily-after` / `compact_daily_after`: hour buckets older than this become daily.
    var compactDailyAfter = "30d"
    /// `--retention` / `retention`: rollups older than this are dropped.
    var retention = "400d"
    /// `--compaction-interval` / `compaction_interval`: how often compaction runs.
    var compactionInterval = "1h"
    /// `--max-metric-series` / `max_metric_series`: label sets per ledger metric on /metrics.
    var maxMetricSeries = 2_000
    /// `--registry` / `registry`: outcome registry (YAML, Schemas/registry.md).
    var registry: String?
    /// `--correction-window` / `correction_window`: verdicts for older runs are refused.
    var correctionWindow = "30d"
    /// `--max-held-verdicts` / `max_held_verdicts`: verdicts kept for runs not seen yet.
    var maxHeldVerdicts = 1_000_000
    /// `--max-indexed-runs` / `max_indexed_runs`: runs whose index entry stays in memory.
    var maxIndexedRuns = 100_000
    /// `--max-task-runs` / `max_task_runs`: task-tagged runs listed in memory for rework.
    var maxTaskRuns = 250_000
    /// `--lookup-cache-bytes` / `lookup_cache_bytes`: inflated segment files kept for lookups of runs on disk.
    var lookupCacheBytes = 64 << 20
    /// `--trace-retention` / `trace_retention`: run trees and index entries older than this are removed.
    var traceRetention = "30d"
    /// `--heap-trim-slack` / `heap_trim_slack`: resident bytes past live heap (beyond the
    /// idle baseline) kept before free heap is given back to the system; 0 never trims.
    var heapTrimSlack = 32 << 20

    static let keys: Set<String> = ["data", "otlp_http", "otlp_grpc", "api", "trace_wait", "trace_max_age", "max_pending_traces", "max_pending_bytes",
                                    "flush_interval", "max_unflushed_spans", "max_indexed_runs", "max_task_runs", "lookup_cache_bytes", "trace_retention", "max_release_lag", "prices", "max_body_size", "idle_timeout", "log_level", "durability",
                                    "durability_interval", "max_inflight_bytes", "read_timeout", "max_attribute_depth", "max_span_attributes",
                                    "max_attribute_bytes", "max_spans_per_request", "max_spans_per_trace", "max_trace_bytes", "alerts",
                                    "correction_window", "max_held_verdicts", "registry", "max_metric_series",
                                    "compact_hourly_after", "compact_daily_after", "retention", "compaction_interval", "heap_trim_slack"]

    /// Applies the keys of a YAML config file. Unknown keys are an error (typos must not pass silently).
    mutating func apply(yamlFile path: String) throws {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw ValidationError("cannot read config file \(path)") }
        let loaded: Any?
        do { loaded = try Yams.load(yaml: text) } catch { throw ValidationError("config file \(path) is not valid YAML: \(error)") }
        guard let map = loaded as? [String: Any] else {
            if loaded == nil { return }
            throw ValidationError("config file \(path): expected a mapping of settings")
        }
        for key in map.keys.sorted() where !Self.keys.contains(key) {
            throw ValidationError("config file \(path): unknown key '\(key)' (known: \(Self.keys.sorted().joined(separator: ", ")))")
        }
        func str(_ k: String) throws -> String? {
            guard let v = map[k] else { return nil }
            if let s = v as? String { return s }
            if let i = v as? Int { return String(i) }
            throw ValidationError("config file \(path): '\(k)' must be a string")
        }
        func int(_ k: String) throws -> Int? {
            guard let v = map[k] else { return nil }
            if let i = v as? Int { return i }
            if let s = v as? String, let i = Int(s) { return i }
            throw ValidationError("config file \(path): '\(k)' must be an integer")
        }
        if let v = try str("data") { data = v }
        if let v = try str("otlp_http") { otlpHTTP = v }
        if let v = try str("otlp_grpc") { otlpGRPC = v }
        if let v = try str("api") { api = v }
        if let v = try str("trace_wait") { traceWait = v }
        if let v = try str("trace_max_age") { traceMaxAge = v }
        if let v = try int("max_pending_traces") { maxPendingTraces = v }
        if let v = try int("max_pending_bytes") { maxPendingBytes = v }
        if let v = try str("flush_interval") { flushInterval = v }
        if let v = try int("max_unflushed_spans") { maxUnflushedSpans = v }
        if let v = try str("max_release_lag") { maxReleaseLag = v }
        if let v = try str("prices") { prices = v }
        if let v = try int("max_body_size") { maxBodySize = v }
        if let v = try str("idle_timeout") { idleTimeout = v }
        if let v = try str("log_level") { logLevel = v }
        if let v = try str("durability") { durability = v }
        if let v = try str("durability_interval") { durabilityInterval = v }
        if let v = try int("max_inflight_bytes") { maxInflightBytes = v }
        if let v = try str("read_timeout") { readTimeout = v }
        if let v = try int("max_attribute_depth") { maxAttributeDepth = v }
        if let v = try int("max_span_attributes") { maxSpanAttributes = v }
        if let v = try int("max_attribute_bytes") { maxAttributeBytes = v }
        if let v = try int("max_spans_per_request") { maxSpansPerRequest = v }
        if let v = try int("max_spans_per_trace") { maxSpansPerTrace = v }
        if let v = try int("max_trace_bytes") { maxTraceBytes = v }
        if let v = try str("alerts") { alerts = v }
        if let v = try str("correction_window") { correctionWindow = v }
        if let v = try str("registry") { registry = v }
        if let v = try int("max_metric_series") { maxMetricSeries = v }
        if let v = try str("compact_hourly_after") { compactHourlyAfter = v }
        if let v = try str("compact_daily_after") { compactDailyAfter = v }
        if let v = try str("retention") { retention = v }
        if let v = try str("compaction_interval") { compactionInterval = v }
        if let v = try int("max_held_verdicts") { maxHeldVerdicts = v }
        if let v = try int("max_indexed_runs") { maxIndexedRuns = v }
        if let v = try int("max_task_runs") { maxTaskRuns = v }
        if let v = try int("lookup_cache_bytes") { lookupCacheBytes = v }
        if let v = try str("trace_retention") { traceRetention = v }
        if let v = try int("heap_trim_slack") { heapTrimSlack = v }
    }

    static func duration(_ text: String, _ name: String) throws -> Int64 {
        guard let ns = DurationText.nanoseconds(text), ns > 0 else {
            throw ValidationError("\(name) '\(text)' is not a positive duration (e.g. 300ms, 5s, 10m)")
        }
        return ns
    }
}
