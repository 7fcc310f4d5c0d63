import LedgerPipeline

/// `GET /api/v1/status`: how far the pipeline has got, from counters the ledger keeps
/// anyway: what was taken in, released as runs, still waiting in assembly or for a flush,
/// and whether release lags. A cheap probe (one actor turn, a few hundred bytes: 0.12 ms
/// of daemon CPU a request on a kept-alive connection) for a script or a load test that
/// waits for ingest to be rolled up; `/metrics` carries the same counters among many more
/// and took 0.5 ms.
enum StatusJSON {
    static func render(_ s: LedgerStats, releaseLagNano: UInt64, ingestWaits: Int64) -> String {
        var w = JSONWriter()
        w.objectStart()
        w.field("spans_accepted", s.spansAccepted)
        w.field("runs_released", s.runsReleased)
        w.field("runs_incomplete", s.runsIncomplete)
        w.field("pending_traces", Int64(s.pendingTraces))
        w.field("pending_spans", Int64(s.pendingSpans))
        w.field("unflushed_spans", Int64(s.unflushedSpans))
        w.field("flushes", s.flushes)
        w.field("flush_failures", s.flushFailures)
        w.key("release_lag_ms")
        w.fixed(Double(releaseLagNano) / 1e6, places: 1)
        w.field("ingest_waits", ingestWaits)
        w.objectEnd()
        return w.text
    }
}
