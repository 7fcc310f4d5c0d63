"""A span that arrives after its trace was released joins the same run: the run count
stays 1 while calls, tokens, cost and retries grow by exactly that span's amounts."""

from __future__ import annotations

import support
import workload

FIRST_CALL = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic",
              "gen_ai.request.model": "claude-sonnet-4-0", "gen_ai.response.model": "claude-sonnet-4-20250514",
              "gen_ai.usage.input_tokens": 12_345, "gen_ai.usage.cache_read.input_tokens": 10_000,
              "gen_ai.usage.cache_creation.input_tokens": 1_000, "gen_ai.usage.output_tokens": 678}
LATE_CALL = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
             "gen_ai.response.model": "gpt-4o-mini-2024-07-18", "gen_ai.usage.input_tokens": 2_001,
             "gen_ai.usage.cache_read.input_tokens": 1_000, "gen_ai.usage.output_tokens": 333,
             "http.request.resend_count": 1}
WORKFLOW = "late-span"


def test_late_span_joins_its_run(daemon_factory):
    d = daemon_factory.start()
    run = support.simple_run(WORKFLOW, [FIRST_CALL], verdict="approved")
    r = support.post_otlp(d.otlp_url, support.export_bytes([(run, run.spans)]))
    assert r.status_code == 200, (r.status_code, r.content[:500])

    before = workload.interpret_run(run)
    # cost: 1345 × 3 + 10000 × 0.30 + 1000 × 3.75 + 678 × 15 per million = 0.020955 USD
    assert before.cost_micros == 20_955
    support.wait_for_runs(d.api_url, 1)
    support.check_groups(support.rollups(d.api_url), workload.expected_groups([before]), ())

    late = support.add_late_call(run, LATE_CALL)
    r = support.post_otlp(d.otlp_url, support.export_bytes([(run, [late])]))
    assert r.status_code == 200, (r.status_code, r.content[:500])

    after = workload.interpret_run(run)
    late_facts = after.calls[late.span_id]
    # 1001 × 0.15 + 1000 × 0.075 + 333 × 0.60 per million = 0.00042495 → 425 micro-dollars (half up)
    assert late_facts.cost_micros == 425 and late_facts.retry
    ok, g = support.wait_until(lambda: support.total(d.api_url), lambda g: g.get("llm_calls") == 2, timeout=30)
    assert ok, f"the late span never counted: {g}"
    support.settle(d.api_url, ())
    support.check_groups(support.rollups(d.api_url), workload.expected_groups([after]), ())
    support.check_groups(support.rollups(d.api_url, ("workflow", "outcome")),
                         workload.expected_groups([after], ("workflow", "outcome")), ("workflow", "outcome"))
    support.check_groups(support.rollups(d.api_url, ("model",)), workload.expected_groups([after], ("model",)),
                         ("model",), workload.MODEL_EXACT_FIELDS)
    t = support.get_trace(d.api_url, run.trace_id_hex)
    assert t.status_code == 200, t.text[:500]
    support.check_trace(t.json(), run, after)


def test_an_export_sent_again_is_counted_once(daemon_factory):
    """OTLP exporters send a batch again when they did not see its answer (a timeout, a
    dropped connection), though the daemon may already have taken it. Spans whose run
    already holds their span ID are dropped, while the run is assembling and after it
    was released, so its calls, tokens and cost count once; a new span in the same
    export still joins its run."""
    d = daemon_factory.start("resent")
    runs = [support.simple_run(WORKFLOW + "-resent", [FIRST_CALL, dict(LATE_CALL, **{"http.request.resend_count": 0})])
            for _ in range(3)]
    spans = sum(len(r.spans) for r in runs)
    body = support.export_bytes([(r, r.spans) for r in runs])
    # Twice within the trace wait (300 ms): the copy meets its runs in assembly.
    for _ in range(2):
        r = support.post_otlp(d.otlp_url, body)
        assert r.status_code == 200, (r.status_code, r.content[:500])
    support.wait_for_runs(d.api_url, 3)
    assert support.metric(d.api_url, "spanledger_spans_repeated_total") == spans
    # Once more after release, with one new call for the first run: the copies arrive
    # late for runs that already hold them; the new call joins its run.
    late = support.add_late_call(runs[0], LATE_CALL)
    r = support.post_otlp(d.otlp_url, support.export_bytes([(run, run.spans) for run in runs]))
    assert r.status_code == 200, (r.status_code, r.content[:500])
    ok, n = support.wait_until(lambda: support.metric(d.api_url, "spanledger_spans_repeated_total"), lambda n: n == 2 * spans, timeout=30)
    assert ok, f"repeated spans counted {n}, expected {2 * spans}"
    expected = [workload.interpret_run(run) for run in runs]
    assert late.span_id in expected[0].calls
    ok, g = support.wait_until(lambda: support.total(d.api_url), lambda g: g.get("llm_calls") == 2 * 3 + 1, timeout=30)
    assert ok, f"calls not counted once each: {g}"
    support.settle(d.api_url, ())
    support.check_groups(support.rollups(d.api_url), workload.expected_groups(expected), ())
    support.check_groups(support.rollups(d.api_url, ("model",)), workload.expected_groups(expected, ("model",)),
                         ("model",), workload.MODEL_EXACT_FIELDS)
    assert support.metric(d.api_url, "spanledger_late_span_groups_total") == 1  # only the new call's group
    assert support.metric(d.api_url, "spanledger_runs_released_total") == 3
    t = support.get_trace(d.api_url, runs[0].trace_id_hex)
    assert t.status_code == 200, t.text[:500]
    support.check_trace(t.json(), runs[0], expected[0])
