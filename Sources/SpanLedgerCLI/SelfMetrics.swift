import LedgerPipeline
import OTLPReceiver

/// The daemon's own health in the Prometheus text exposition format.
enum SelfMetrics {
    static func render(ledger: Ledger, receiver: ReceiverCounters) async -> String {
        let s = await ledger.currentStats()
        let r = receiver.snapshot
        var out = ""
        func metric(_ name: String, _ type: String, _ help: String, _ value: Int64) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n\(name) \(value)\n"
        }
        metric("spanledger_spans_received_total", "counter", "Spans accepted by the receivers.", r.spans)
        metric("spanledger_spans_rejected_total", "counter", "Spans rejected alone (partial success).", r.rejectedSpans)
        metric("spanledger_requests_refused_total", "counter", "OTLP requests answered with an error.", r.refusedRequests)
        metric("spanledger_runs_released_total", "counter", "Runs released by trace assembly.", s.runsReleased)
        metric("spanledger_runs_incomplete_total", "counter", "Runs released without their root span.", s.runsIncomplete)
        metric("spanledger_traces_evicted_total", "counter", "Traces released early because the buffer was full.", s.tracesEvicted)
        metric("spanledger_traces_max_age_total", "counter", "Traces released at the maximum age.", s.tracesReleasedAtMaxAge)
        metric("spanledger_late_span_groups_total", "counter", "Groups of spans that joined an already released run.", s.lateSpanGroups)
        metric("spanledger_flushes_total", "counter", "Segment flushes written.", s.flushes)
        metric("spanledger_flush_failures_total", "counter", "Segment flushes that failed and were retried.", s.flushFailures)
        metric("spanledger_damaged_segments", "gauge", "Segments skipped at start because they were damaged.", s.damagedSegments)
        metric("spanledger_pending_traces", "gauge", "Traces open in assembly.", Int64(s.pendingTraces))
        metric("spanledger_pending_spans", "gauge", "Spans buffered in assembly.", Int64(s.pendingSpans))
        return out
    }
}
