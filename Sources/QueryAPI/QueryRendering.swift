import LedgerCore
import LedgerStore
import OutcomeRegistry
import Rollups

/// The JSON contract of `GET /api/v1/rollups` and `spanledger query --format json`
/// (Schemas/query-api.md). Keys not grouped by are absent.
public enum RollupJSON {
    public static func render(_ groups: [QueryGroup], query: RollupQuery) -> String {
        var w = JSONWriter()
        w.objectStart()
        w.field("from", RFC3339.format(unixNano: query.windowStartUnix * 1_000_000_000))
        w.field("to", RFC3339.format(unixNano: query.windowEndUnix * 1_000_000_000))
        w.key("groups")
        w.arrayStart()
        for g in groups { write(g, to: &w) }
        w.arrayEnd()
        w.objectEnd()
        return w.text
    }

    static func write(_ g: QueryGroup, to w: inout JSONWriter) {
        w.objectStart()
        writeKeys(g, to: &w)
        writeMeasures(g, to: &w)
        w.objectEnd()
    }

    /// The key fields a group was grouped by (the others are absent).
    static func writeKeys(_ g: QueryGroup, to w: inout JSONWriter) {
        if let v = g.function { w.field("function", v) }
        if let v = g.workflow { w.field("workflow", v) }
        if let v = g.model { w.field("model", v) }
        if let v = g.outcome { w.field("outcome", v.name) }
        if let v = g.service { w.field("service", v) }
        if let v = g.agent { w.field("agent", v) }
    }

    /// The measure fields of a group (or of a time-series point), without braces.
    static func writeMeasures(_ g: QueryGroup, to w: inout JSONWriter) {
        let m = g.measures
        w.field("runs", g.runs)
        for o in [Outcome.accepted, .edited, .rejected, .escalated, .pending] { w.field(o.name, g.runs(o)) }
        w.key("acceptance_rate"); w.fixed(g.acceptanceRate, places: 6)
        w.field("llm_calls", m.llmCalls)
        w.field("tool_calls", m.toolCalls)
        w.field("input_tokens", m.inputTokens)
        w.field("cached_input_tokens", m.cachedInputTokens)
        w.field("cache_write_tokens", m.cacheWriteTokens)
        w.field("output_tokens", m.outputTokens)
        w.field("reasoning_tokens", m.reasoningTokens)
        w.field("unpriced_tokens", m.unpricedTokens)
        w.key("cost_usd"); w.number(literal: Money.usdString(micros: m.costMicros))
        w.field("cost_micros", m.costMicros)
        w.key("cost_per_accepted_usd")
        if let c = g.costPerAcceptedMicros { w.number(literal: Money.usdString(micros: Int64(c.rounded(.toNearestOrAwayFromZero)))) } else { w.null() }
        w.field("retries", m.retries)
        w.field("errors", m.errors)
        w.field("incomplete_runs", m.incompleteRuns)
        w.field("rework_runs", m.reworkRuns)
        w.key("rework_rate"); w.fixed(g.reworkRate, places: 6)
        w.key("rework_cost_usd"); w.number(literal: Money.usdString(micros: m.reworkCostMicros))
        w.field("rework_cost_micros", m.reworkCostMicros)
        w.key("latency_p50_ms"); w.fixed(m.latency.quantile(0.5), places: 1)
        w.key("latency_p95_ms"); w.fixed(m.latency.quantile(0.95), places: 1)
    }
}

/// The JSON of `GET /api/v1/traces/{id}` and `spanledger trace --format json`.
public enum TraceJSON {
    /// `GET /api/v1/runs`: one line per run, newest first.
    public static func renderList(_ entries: [TraceIndexEntry], fromUnixNano: Int64, toUnixNano: Int64) -> String {
        var w = JSONWriter()
        w.objectStart()
        w.field("from", RFC3339.format(unixNano: fromUnixNano))
        w.field("to", RFC3339.format(unixNano: toUnixNano))
        w.key("runs")
        w.arrayStart()
        for e in entries {
            w.objectStart()
            w.field("trace_id", e.traceID.hex)
            w.field("workflow", e.workflow)
            w.field("service", e.service)
            w.field("start", RFC3339.format(unixNano: e.startUnixNano, fractional: true))
            w.key("duration_ms"); w.fixed(Double(e.durationNano) / 1_000_000, places: 3)
            w.field("outcome", e.outcome.name)
            w.field("verdict_source", e.verdictSource.name)
            w.key("cost_usd"); w.number(literal: Money.usdString(micros: e.costMicros))
            w.field("cost_micros", e.costMicros)
            w.field("llm_calls", e.llmCalls)
            w.field("retries", e.retries)
            w.field("errors", e.errors)
            w.field("rework", e.rework)
            w.field("incomplete", e.incomplete)
            w.key("models")
            w.arrayStart()
            for m in e.models where !m.isEmpty { w.string(m) }
            w.arrayEnd()
            w.objectEnd()
        }
        w.arrayEnd()
        w.objectEnd()
        return w.text
    }


    public static func render(entry: TraceIndexEntry, spans: [StoredSpan]) -> String {
        var w = JSONWriter()
        w.objectStart()
        w.field("trace_id", entry.traceID.hex)
        w.field("workflow", entry.workflow)
        w.field("service", entry.service)
        w.field("start", RFC3339.format(unixNano: entry.startUnixNano, fractional: true))
        w.key("duration_ms"); w.fixed(Double(entry.durationNano) / 1_000_000, places: 3)
        w.field("outcome", entry.outcome.name)
        w.key("verdict")
        w.objectStart()
        w.field("source", entry.verdictSource.name)
        if entry.verdictTimeUnixNano != 0 { w.field("time", RFC3339.format(unixNano: entry.verdictTimeUnixNano, fractional: true)) }
        if !entry.reviewer.isEmpty { w.field("reviewer", entry.reviewer) }
        if entry.reviewerKind != .unknown { w.field("reviewer_kind", entry.reviewerKind.name) }
        w.field("corrections", entry.corrections)
        w.objectEnd()
        if !entry.taskID.isEmpty { w.field("task_id", entry.taskID) }
        w.field("rework", entry.rework)
        w.key("agents")
        w.arrayStart()
        for a in entry.agents where !a.isEmpty { w.string(a) }
        w.arrayEnd()
        w.field("cost_micros", entry.costMicros)
        w.key("cost_usd"); w.number(literal: Money.usdString(micros: entry.costMicros))
        w.field("llm_calls", entry.llmCalls)
        w.field("tool_calls", entry.toolCalls)
        w.field("input_tokens", entry.inputTokens)
        w.field("output_tokens", entry.outputTokens)
        w.field("unpriced_tokens", entry.unpricedTokens)
        w.field("retries", entry.retries)
        w.field("errors", entry.errors)
        w.field("incomplete", entry.incomplete)
        w.key("spans")
        w.arrayStart()
        for s in spans.sorted(by: { ($0.startOffsetNano, $0.spanID.value) < ($1.startOffsetNano, $1.spanID.value) }) {
            w.objectStart()
            w.field("span_id", s.spanID.hex)
            w.field("parent_span_id", s.parentSpanID.isNone ? "" : s.parentSpanID.hex)
            w.field("name", s.name)
            w.field("kind", s.kind.name)
            w.field("model", s.model)
            w.field("agent", s.agent)
            w.field("input_tokens", s.usage.input)
            w.field("cached_input_tokens", s.usage.cacheRead)
            w.field("cache_write_tokens", s.usage.cacheWrite)
            w.field("output_tokens", s.usage.output)
            w.field("reasoning_tokens", s.usage.reasoning)
            w.field("cost_micros", s.costMicros)
            w.field("priced", s.priced)
            w.field("explicit_cost", s.explicitCost)
            w.field("error", s.error)
            w.field("retry", s.retry)
            w.key("start_offset_ms"); w.fixed(Double(s.startOffsetNano) / 1_000_000, places: 3)
            w.key("duration_ms"); w.fixed(Double(s.durationNano) / 1_000_000, places: 3)
            w.objectEnd()
        }
        w.arrayEnd()
        w.objectEnd()
        return w.text
    }
}

/// Builds a RollupQuery from the API's or CLI's parameters.
public enum QueryParameters {
    /// A time-series step: a duration of whole minutes (`5m`, `1h`, `1d`); default about
    /// 60 points over the window.
    public static func step(_ text: String?, windowSeconds: Int64) throws(QueryError) -> Int64 {
        guard let text, !text.isEmpty else {
            for s: Int64 in [60, 300, 900, 3_600, 10_800, 21_600, 86_400, 604_800] where windowSeconds / s <= 60 { return s }
            return 604_800
        }
        guard let ns = DurationText.nanoseconds(text), ns > 0, ns % 60_000_000_000 == 0 else {
            throw QueryError("step '\(text)' must be a whole number of minutes (1m, 5m, 1h, 1d)")
        }
        return ns / 1_000_000_000
    }

    /// A [from, to) window: `since`/`until` as RFC 3339, a date, a duration back from now,
    /// or `quarter` (the start of the current UTC calendar quarter).
    public static func window(since: String, until: String?, now: Int64) throws(QueryError) -> (Int64, Int64) {
        var to = now
        if let until, !until.isEmpty {
            guard let t = TimeArgument.resolve(until, now: now) else { throw QueryError("invalid until '\(until)': use RFC 3339, a date, 'now', or a duration back from now") }
            to = t
        }
        let from: Int64
        if since == "quarter" {
            from = Scorecard.quarter(containing: to - 1).0
        } else {
            guard let f = TimeArgument.resolve(since, now: now) else {
                throw QueryError("invalid since '\(since)': use quarter, RFC 3339 (2026-11-23T10:00:00Z), a date, or a duration back from now (24h, 90d)")
            }
            from = f
        }
        guard from < to else { throw QueryError("since must be before until") }
        return (from, to)
    }

    public static func rollupQuery(since: String?, until: String?, groupBy: String?, workflow: String?, model: String?, service: String?,
                                   now: Int64) throws(QueryError) -> RollupQuery {
        let sinceText = since ?? "24h"
        if sinceText == "quarter" {
            let (from, to) = try window(since: "quarter", until: until, now: now)
            return RollupQuery(fromUnixNano: from, toUnixNano: to, groupBy: try GroupDimension.parseList(groupBy ?? ""),
                               workflow: workflow.flatMap { $0.isEmpty ? nil : $0 }, model: model.flatMap { $0.isEmpty ? nil : $0 },
                               service: service.flatMap { $0.isEmpty ? nil : $0 })
        }
        guard let from = TimeArgument.resolve(sinceText, now: now) else {
            throw QueryError("invalid since '\(sinceText)': use RFC 3339 (2026-11-23T10:00:00Z), a date, or a duration back from now (24h, 7d)")
        }
        let to: Int64
        if let until, !until.isEmpty {
            guard let t = TimeArgument.resolve(until, now: now) else {
                throw QueryError("invalid until '\(until)': use RFC 3339, a date, 'now', or a duration back from now")
            }
            to = t
        } else {
            to = now
        }
        guard from < to else { throw QueryError("since must be before until") }
        let dims = try GroupDimension.parseList(groupBy ?? "")
        func nonEmpty(_ s: String?) -> String? { s.flatMap { $0.isEmpty ? nil : $0 } }
        return RollupQuery(fromUnixNano: from, toUnixNano: to, groupBy: dims, workflow: nonEmpty(workflow), model: nonEmpty(model), service: nonEmpty(service))
    }
}
