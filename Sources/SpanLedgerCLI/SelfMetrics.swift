import Alerting
import CAllocator
import LedgerCore
import LedgerPipeline
import OTLPGRPCReceiver
import OTLPReceiver
import Prometheus
import PrometheusExport
import LoadGenerator
import Synchronization
#if canImport(Glibc)
import Glibc
#endif
import WriteAheadLog

/// `/metrics`: the daemon's own health, alert counters, the ledger counters and the
/// write-ahead log's fsync histogram, all in one swift-prometheus registry (the fsync
/// timer through swift-metrics). Health figures are read from the pipeline at each
/// scrape: gauges are set, counters advanced by what changed since the last scrape.
final class SelfMetrics: Sendable {
    let ledgerMetrics: LedgerPrometheus
    var registry: PrometheusCollectorRegistry { ledgerMetrics.registry }
    private let last = Mutex<[String: Int64]>([:])
    /// mallinfo2 walks every free chunk with each arena locked, stalling allocation on
    /// every thread meanwhile: read at most once a second, however often /metrics is
    /// scraped (the benchmark polls it every 10 ms while runs roll up).
    private let heap = Mutex<(readAt: UInt64, stats: sl_heap_stats)?>(nil)
    static let heapReadInterval: UInt64 = 1_000_000_000

    func heapStats() -> sl_heap_stats {
        heap.withLock { cached in
            let now = WallClock.monotonicNano()
            if let c = cached, now - c.readAt < Self.heapReadInterval { return c.stats }
            let stats = sl_heap_read()
            cached = (now, stats)
            return stats
        }
    }

    init(ledgerMetrics: LedgerPrometheus) {
        self.ledgerMetrics = ledgerMetrics
    }

    func record(_ name: String, _ type: String, _ help: String, _ value: Int64) {
        let descriptor = MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
        if type == "counter" {
            let delta = last.withLock { l in
                defer { l[name] = value }
                return value - (l[name] ?? 0)
            }
            let c = registry.makeCounter(descriptor: descriptor)
            if delta > 0 { c.increment(by: delta) }
        } else {
            registry.makeGauge(descriptor: descriptor).set(Double(value))
        }
    }

    func render(ledger: Ledger, receiver: ReceiverCounters, grpc: GRPCCounters, budget: InflightBudget, wal: WriteAheadLog, alerts: AlertEngine, trimmer: HeapTrimmer) async -> String {
        let s = await ledger.currentStats()
        let r = receiver.snapshot
        func metric(_ name: String, _ type: String, _ help: String, _ value: Int64) { record(name, type, help, value) }
        let g = grpc.snapshot
        metric("spanledger_spans_received_total", "counter", "Spans accepted by the receivers (OTLP/HTTP and OTLP/gRPC).", r.spans + g.spans)
        metric("spanledger_grpc_spans_received_total", "counter", "Spans accepted over OTLP/gRPC.", g.spans)
        metric("spanledger_grpc_calls_refused_total", "counter", "OTLP/gRPC Export calls answered with an error status.", g.refusedCalls)
        metric("spanledger_spans_rejected_total", "counter", "Spans rejected alone (partial success).", r.rejectedSpans + g.rejectedSpans)
        metric("spanledger_requests_refused_total", "counter", "OTLP requests answered with an error.", r.refusedRequests)
        metric("spanledger_runs_released_total", "counter", "Runs released by trace assembly.", s.runsReleased)
        metric("spanledger_runs_incomplete_total", "counter", "Runs released without their root span.", s.runsIncomplete)
        metric("spanledger_traces_evicted_total", "counter", "Traces released early because the buffer was full.", s.tracesEvicted)
        metric("spanledger_traces_max_age_total", "counter", "Traces released at the maximum age.", s.tracesReleasedAtMaxAge)
        metric("spanledger_traces_at_trace_limit_total", "counter", "Traces released early at the per-trace span or byte limit.", s.tracesAtTraceLimit)
        metric("spanledger_late_span_groups_total", "counter", "Groups of spans that joined an already released run.", s.lateSpanGroups)
        metric("spanledger_spans_repeated_total", "counter", "Spans dropped because their run already held a span with the same span ID (an export sent again).", s.repeatedSpans)
        metric("spanledger_verdicts_applied_total", "counter", "Verdicts that decided a pending run after it was released (API, feedback spans, late spans, held verdicts).", s.verdictsApplied)
        metric("spanledger_verdict_corrections_total", "counter", "Verdicts that changed a decided run's outcome (the run moved between outcome buckets).", s.verdictCorrections)
        metric("spanledger_verdicts_held", "gauge", "Verdicts held for runs not released or not seen yet.", Int64(s.verdictsHeld))
        metric("spanledger_verdicts_refused_total", "counter", "Verdicts from spans ignored because their run started before the correction window.", s.verdictsRefused)
        metric("spanledger_query_cache_warm", "gauge", "1 once the partial aggregates of whole days are cached after start (long-window queries are fast).", s.queryCacheWarmSeconds == nil ? 0 : 1)
        metric("spanledger_compactions_total", "counter", "Rollup compactions finished.", s.compactions)
        metric("spanledger_compaction_failures_total", "counter", "Rollup compactions that failed (segments left as they were).", s.compactionFailures)
        metric("spanledger_rework_changes_total", "counter", "Runs that became rework, or stopped being rework, after a run of their task was released or changed outcome.", s.reworkChanges)
        metric("spanledger_verdicts_dropped_total", "counter", "Held verdicts dropped at --max-held-verdicts.", s.verdictsDropped)
        metric("spanledger_flushes_total", "counter", "Segment flushes written.", s.flushes)
        metric("spanledger_flushes_idle_total", "counter", "Flushes written on idle CPU time (the daemon and the machine had cores to spare when they started).", s.idleFlushes)
        metric("spanledger_flushes_promoted_total", "counter", "Idle flushes moved to normal priority because the next flush was due (or the daemon stopping) before they ended.", s.promotedFlushes)
        metric("spanledger_flush_failures_total", "counter", "Flushes that failed (their data is kept and written by the next flush) or whose checkpoint failed (replayed, never counted twice).", s.flushFailures)
        metric("spanledger_damaged_segments", "gauge", "Segments skipped at start because they were damaged.", s.damagedSegments)
        metric("spanledger_pending_traces", "gauge", "Traces open in assembly.", Int64(s.pendingTraces))
        metric("spanledger_pending_spans", "gauge", "Spans buffered in assembly.", Int64(s.pendingSpans))
        metric("spanledger_pending_bytes", "gauge", "Approximate bytes of spans buffered in assembly.", Int64(s.pendingBytes))
        metric("spanledger_release_lag_ms", "gauge", "How long the oldest due trace had waited for release at the last release round (ms); over the limit, ingest waits.",
               Int64(ledger.backlog.lagNano / 1_000_000))
        metric("spanledger_ingest_waits_total", "counter", "Batches that waited before admission because release lagged (backpressure).", ledger.backlog.waits)
        metric("spanledger_indexed_runs", "gauge", "Runs whose index entry is in memory (--max-indexed-runs).", Int64(s.indexedRuns))
        metric("spanledger_runs_on_disk_only", "gauge", "Runs whose index entry left memory for disk since start.", Int64(s.runsOnDiskOnly))
        metric("spanledger_run_disk_lookups_total", "counter", "Lookups of runs not in memory that read index segments (late spans, verdicts, trace views, rework).", s.diskLookups)
        metric("spanledger_run_list_segments_read_total", "counter", "Index segments read to list runs no longer in memory (GET /api/v1/runs).", s.runListSegmentsRead)
        metric("spanledger_run_disk_lookup_hits_total", "counter", "Disk lookups that found the run.", s.diskLookupHits)
        metric("spanledger_run_segments_expired_total", "counter", "Flushes whose run trees and index entries passed --trace-retention and were removed.", s.runSegmentsExpired)
        metric("spanledger_run_segments_merged_total", "counter", "Flushes whose index and run-tree files were merged into a bigger pair after compaction.", s.runSegmentsMerged)
        metric("spanledger_merged_run_segments_written_total", "counter", "Merged pairs of index and run-tree files written.", s.mergedRunSegmentsWritten)
        metric("spanledger_run_segment_merge_failures_total", "counter", "Merges of flushes' run files that failed (the files stay as they were).", s.runSegmentMergeFailures)
        metric("spanledger_tasks", "gauge", "Task IDs with runs listed in memory for rework.", Int64(s.tasks))
        metric("spanledger_task_runs", "gauge", "Runs listed in memory under their task ID for rework (--max-task-runs); others are read from disk.", Int64(s.taskRuns))
        metric("spanledger_task_runs_dropped_total", "counter", "Runs dropped from their task's list past --max-task-runs (read from disk if the task runs again).", s.taskRunsDropped)
        metric("spanledger_task_runs_expired_total", "counter", "Runs dropped from their task's list by trace retention.", s.taskRunsExpired)
        metric("spanledger_task_disk_lookups_total", "counter", "Tasks whose runs were read from index segments because some were not listed in memory.", s.taskDiskLookups)
        metric("spanledger_task_segments_read_total", "counter", "Index segments read to list the runs of tasks (rework).", s.taskSegmentsRead)
        metric("spanledger_task_filter_bytes", "gauge", "Bytes of the filter of tasks with runs not listed in memory.", Int64(s.taskFilterBytes))
        metric("spanledger_verdict_batch_segments_read_total", "counter", "Flushes whose index and run-tree files were read for verdicts (once per request, for all the verdicts it carries).", s.batchSegmentsRead)
        metric("spanledger_run_reads_discarded_total", "counter", "Runs on disk read off the ledger for verdicts or a trace view, and read again because a flush, merge or expiry changed the data directory meanwhile.", s.runReadsDiscarded)
        metric("spanledger_lookup_cache_hits_total", "counter", "Lookups of runs on disk (entries, trees, task runs) served by inflated files kept in memory.", s.lookupCacheHits)
        metric("spanledger_lookup_cache_misses_total", "counter", "Lookups of runs on disk that read and inflated a file.", s.lookupCacheMisses)
        metric("spanledger_lookup_cache_bytes", "gauge", "Bytes of inflated index and run-tree files kept for lookups (--lookup-cache-bytes).", Int64(s.lookupCacheBytes))
        metric("spanledger_trace_locator_bytes", "gauge", "Bytes of the Bloom filters that locate runs on disk.", Int64(s.locatorBytes))
        metric("spanledger_unflushed_spans", "gauge", "Spans of released runs not yet flushed to disk.", Int64(s.unflushedSpans))
        metric("spanledger_batches_refused_total", "counter", "Batches refused because assembly was full of live traces.", s.refusedBatches)
        let inflight = budget.snapshot
        metric("spanledger_requests_over_inflight_total", "counter", "Requests (OTLP/HTTP and gRPC) refused because in-flight request bytes were at --max-inflight-bytes.", inflight.refused)
        metric("spanledger_inflight_request_bytes", "gauge", "Request bytes (OTLP/HTTP and gRPC) being decoded and logged now.", inflight.bytes)
        metric("spanledger_wal_replayed_records_total", "counter", "Log records replayed at start.", s.replayedRecords)
        metric("spanledger_wal_replayed_spans_total", "counter", "Spans replayed at start.", s.replayedSpans)
        metric("spanledger_wal_replay_skipped_spans_total", "counter", "Replayed spans skipped because a flush already held them.", s.replaySkippedSpans)
        metric("spanledger_wal_corrupt_records_total", "counter", "Damaged log records skipped.", s.corruptLogRecords)
        metric("spanledger_wal_quarantined_records_total", "counter", "Log records quarantined after crashing a replay.", s.quarantinedRecords)
        metric("spanledger_wal_checkpoint_sequence", "gauge", "Log sequence below which everything is flushed.", Int64(s.checkpointSequence))
        let w = wal.metrics
        metric("spanledger_wal_bytes_total", "counter", "Bytes appended to the write-ahead log.", w.bytesWritten)
        metric("spanledger_wal_records_total", "counter", "Records appended to the write-ahead log.", w.recordsWritten)
        metric("spanledger_wal_append_failures_total", "counter", "Records whose append failed (answered 503).", w.appendFailures)
        metric("spanledger_wal_disk_full_total", "counter", "Records refused because the disk was full.", w.diskFullFailures)
        metric("spanledger_wal_segment_bytes", "gauge", "Bytes of records in the current log segment.", w.segmentBytes)
        metric("spanledger_wal_preallocated_segments_total", "counter", "Log segments started in a zero-filled file.", w.preallocatedSegments)
        metric("spanledger_wal_preallocation_failures_total", "counter", "Zero-fills of the next log segment that failed (retried after 10 s).", w.preallocationFailures)
        let memory = ProcessMetrics.residentMemory(pid: getpid())
        if let rss = memory.current {
            metric("spanledger_process_resident_bytes", "gauge", "Resident memory of the daemon (VmRSS).", Int64(rss))
        }
        if let peak = memory.peak {
            metric("spanledger_process_peak_resident_bytes", "gauge", "Highest resident memory of the daemon since start (VmHWM).", Int64(peak))
        }
        let heap = heapStats()
        if heap.available != 0 {
            metric("spanledger_heap_in_use_bytes", "gauge", "Bytes of live allocations, as the allocator (tcmalloc) counts them (resident memory less code, stacks and free heap).",
                   Int64(heap.in_use))
            metric("spanledger_heap_free_bytes", "gauge", "Bytes free in the allocator's caches and page heap and not yet returned to the system (fragmentation, reuse).",
                   Int64(heap.free))
            let t = trimmer.snapshot
            metric("spanledger_heap_trims_total", "counter", "Times free heap was given back to the system because resident memory ran well past live data.", t.trims)
            metric("spanledger_heap_trimmed_bytes_total", "counter", "Resident bytes given back by those trims.", t.releasedBytes)
        }
        for m in await alerts.metricSamples() { metric(m.name, m.type, m.help, m.value) }
        // Applies the ledger activity reported since the last scrape, then emits everything.
        return ledgerMetrics.render()
    }
}
