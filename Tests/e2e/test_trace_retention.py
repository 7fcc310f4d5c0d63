"""Trace retention (`--trace-retention`): the run trees and index entries of runs older
than it are removed from disk at compaction, and their trace views answer 404, while the
rollups keep counting them exactly; newer runs keep their trees; all of it holds after
a restart. A retention shorter than the correction window is refused."""

from __future__ import annotations

import time

import support
import workload

SEED = 4242
NS = 1_000_000_000
FRESH_CALL = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
              "gen_ai.usage.input_tokens": 1_000, "gen_ai.usage.output_tokens": 100}


def test_old_run_trees_expire_and_rollups_keep_counting_them(daemon_factory):
    d = daemon_factory.start("retention", ["--trace-retention", "10m", "--correction-window", "10m",
                                           "--compaction-interval", "1s"])
    # Runs that started 17 to 43 minutes ago: all past a 10-minute retention.
    old = workload.generate(SEED, 40, base_time_ns=time.time_ns() - 15 * 60 * NS)
    sent = workload.export_with_sdk(old.runs, d.otlp_url + "/v1/traces")
    assert sum(sent.values()) == old.span_count, sent
    facts = [workload.interpret_run(r, check_intent=False) for r in old.runs]
    support.wait_for_runs(d.api_url, len(old.runs))
    support.settle(d.api_url, ())
    ok, m = support.wait_until(lambda: support.metrics(d.api_url),
                               lambda m: m.get("spanledger_run_segments_expired_total", 0) >= 1, timeout=30)
    assert ok, f"nothing expired: {m.get('spanledger_run_segments_expired_total')}\n{d.log_tail(30)}"
    for r in old.runs[:10]:
        t = support.get_trace(d.api_url, r.trace_id_hex)
        assert t.status_code == 404, (r.trace_id_hex, t.status_code, t.text[:300])

    fresh = support.simple_run("fresh-after-retention", [FRESH_CALL], start_ns=time.time_ns() - 2 * NS)
    r = support.post_otlp(d.otlp_url, support.export_bytes([(fresh, fresh.spans)]))
    assert r.status_code == 200, (r.status_code, r.content[:300])
    facts.append(workload.interpret_run(fresh, check_intent=False))
    support.wait_for_runs(d.api_url, len(old.runs) + 1)
    support.settle(d.api_url, ())
    for group_by in [(), ("workflow", "outcome")]:
        support.check_groups(support.rollups(d.api_url, group_by), workload.expected_groups(facts, group_by), group_by)
    t = support.get_trace(d.api_url, fresh.trace_id_hex)
    assert t.status_code == 200, t.text[:300]
    support.check_trace(t.json(), fresh, facts[-1])

    assert d.stop() == 0
    d.start()
    for group_by in [(), ("workflow", "outcome")]:
        support.check_groups(support.rollups(d.api_url, group_by), workload.expected_groups(facts, group_by), group_by)
    assert support.get_trace(d.api_url, old.runs[5].trace_id_hex).status_code == 404
    t = support.get_trace(d.api_url, fresh.trace_id_hex)
    assert t.status_code == 200, t.text[:300]
    support.check_trace(t.json(), fresh, facts[-1])


def test_trace_retention_shorter_than_the_correction_window_is_refused(tmp_path):
    out = support.serve_refused(tmp_path / "d", "--trace-retention", "1d")
    assert "need correction-window <= trace-retention" in out, out
