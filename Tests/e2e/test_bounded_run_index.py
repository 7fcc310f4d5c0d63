"""The run index keeps only the newest runs in memory (`--max-indexed-runs`). Runs that
left it are found on disk: a verdict moves them between outcome buckets, a late span
joins them, their trace view reads back, and all of that holds after a restart, which
loads only the newest runs. The rollups must equal the ground truth throughout, and the
daemon's own gauges must show the bound held."""

from __future__ import annotations

import dataclasses
from typing import Dict

import requests

import support
import workload

SEED = 8080
BOUND = 20
LATE_CALL = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
             "gen_ai.usage.input_tokens": 3_000, "gen_ai.usage.output_tokens": 200}


def post_outcome(d: support.Daemon, run: workload.RunSpec, outcome: str) -> str:
    r = requests.post(d.otlp_url + "/v1/outcomes", json={"trace_id": run.trace_id_hex, "outcome": outcome}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["results"][0]["result"]


def check(d: support.Daemon, facts: Dict[str, workload.RunFacts], where: str) -> None:
    for group_by, exact in [((), workload.EXACT_FIELDS), (("workflow", "outcome"), workload.EXACT_FIELDS),
                            (("model", "outcome"), workload.MODEL_EXACT_FIELDS)]:
        try:
            support.check_groups(support.rollups(d.api_url, group_by), workload.expected_groups(list(facts.values()), group_by),
                                 group_by, exact)
        except AssertionError as e:
            raise AssertionError(f"{where}: {e}") from None


def test_runs_that_left_memory_take_verdicts_late_spans_and_trace_views(daemon_factory):
    d = daemon_factory.start("bounded", ["--max-indexed-runs", str(BOUND)])
    w = workload.generate(SEED, 200)
    sent = workload.export_with_sdk(w.runs, d.otlp_url + "/v1/traces")
    assert sum(sent.values()) == w.span_count, sent
    facts = {r.trace_id_hex: workload.interpret_run(r, check_intent=False) for r in w.runs}
    start_of = {r.trace_id_hex: min(s.start_ns for s in r.spans) for r in w.runs}
    support.wait_for_runs(d.api_url, len(w.runs))
    support.settle(d.api_url, ())
    check(d, facts, "as exported")

    # Flushed every second: then all but the newest runs leave memory.
    ok, m = support.wait_until(lambda: support.metrics(d.api_url),
                               lambda m: m.get("spanledger_runs_on_disk_only", 0) >= len(w.runs) - 2 * BOUND, timeout=30)
    assert ok, f"runs never left memory: {m.get('spanledger_indexed_runs')}, {m.get('spanledger_runs_on_disk_only')}"
    assert m["spanledger_indexed_runs"] <= 2 * BOUND, m["spanledger_indexed_runs"]
    assert m["spanledger_trace_locator_bytes"] > 0
    hits_before = m.get("spanledger_run_disk_lookup_hits_total", 0)

    # The first runs sent were released first and left memory first.
    early = w.runs[1:30]
    flip = {"accepted": "rejected", "edited": "escalated", "rejected": "accepted", "escalated": "accepted", "pending": "accepted"}
    changed = []
    for run in early[:6]:
        old = facts[run.trace_id_hex].outcome
        result = post_outcome(d, run, flip[old])
        assert result == ("applied" if old == "pending" else "corrected"), (old, result)
        facts[run.trace_id_hex] = dataclasses.replace(facts[run.trace_id_hex], outcome=flip[old])
        changed.append(run)
    # A batch of verdicts for runs on disk: their files are read off the ledger, once per
    # flush for the whole batch, and the results are those of the verdicts one by one.
    segments_before = support.metric(d.api_url, "spanledger_verdict_batch_segments_read_total")
    batch = early[12:20]
    r = requests.post(d.otlp_url + "/v1/outcomes", timeout=30,
                      json={"outcomes": [{"trace_id": run.trace_id_hex, "outcome": flip[facts[run.trace_id_hex].outcome]} for run in batch]})
    assert r.status_code == 200, r.text
    for run, res in zip(batch, r.json()["results"]):
        old = facts[run.trace_id_hex].outcome
        assert res["result"] == ("applied" if old == "pending" else "corrected"), (old, res)
        facts[run.trace_id_hex] = dataclasses.replace(facts[run.trace_id_hex], outcome=flip[old])
        changed.append(run)
    m = support.metrics(d.api_url)
    flushes = len(list((d.data_dir / "index").glob("index-*.seg")))
    assert 1 <= m["spanledger_verdict_batch_segments_read_total"] - segments_before <= flushes, (segments_before, m["spanledger_verdict_batch_segments_read_total"], flushes)
    assert "spanledger_run_reads_discarded_total" in m
    # A verdict for a trace never sent is held, not applied to a run it might collide with.
    r = requests.post(d.otlp_url + "/v1/outcomes", json={"trace_id": "ab" * 16, "outcome": "accepted"}, timeout=30)
    assert r.json()["results"][0]["result"] == "held", r.text

    late_run = early[10]
    late = support.add_late_call(late_run, LATE_CALL)
    r = support.post_otlp(d.otlp_url, support.export_bytes([(late_run, [late])]))
    assert r.status_code == 200, (r.status_code, r.content[:500])
    outcome = facts[late_run.trace_id_hex].outcome
    facts[late_run.trace_id_hex] = dataclasses.replace(workload.interpret_run(late_run, check_intent=False), outcome=outcome)
    want_calls = sum(len(f.calls) for f in facts.values())
    ok, g = support.wait_until(lambda: support.total(d.api_url), lambda g: g.get("llm_calls") == want_calls, timeout=30)
    assert ok, f"the late span of a run on disk never counted: {g}"
    support.settle(d.api_url, ())
    check(d, facts, "after verdicts and a late span for runs on disk")
    assert support.total(d.api_url)["runs"] == len(w.runs), "a late span must not make a second run"

    t = support.get_trace(d.api_url, late_run.trace_id_hex)
    assert t.status_code == 200, t.text[:500]
    support.check_trace(t.json(), late_run, facts[late_run.trace_id_hex])
    # The verdicts and the trace view read their runs off the ledger (the batch reads
    # above); the late span looks its run up on it.
    assert support.metric(d.api_url, "spanledger_run_disk_lookup_hits_total") >= hits_before + 1

    # A restart loads only the newest runs; the others are still found on disk.
    assert d.stop() == 0
    d.start()
    check(d, facts, "after a restart")
    m = support.metrics(d.api_url)
    assert m["spanledger_indexed_runs"] <= 2 * BOUND, m["spanledger_indexed_runs"]
    assert m["spanledger_indexed_runs"] + m["spanledger_runs_on_disk_only"] >= len(w.runs)
    correct(d, facts, changed[0], flip, "after a correction following the restart")
    t = support.get_trace(d.api_url, early[20].trace_id_hex)
    assert t.status_code == 200, t.text[:500]
    support.check_trace(t.json(), early[20], facts[early[20].trace_id_hex])

    # Compaction merges the small flushes' index and run-tree files: fewer files, and
    # every run is found as before (its latest entry, its tree with the late span).
    flushes_before = len(list((d.data_dir / "traces").glob("traces-*.seg")))
    assert flushes_before >= 3, flushes_before
    assert d.stop() == 0
    d.extra_args += ["--compaction-interval", "1s"]
    d.start()
    ok, merged = support.wait_until(lambda: support.metric(d.api_url, "spanledger_run_segments_merged_total"), lambda n: n >= 2, 30)
    assert ok, f"no flushes merged within 30 s of compaction every second ({merged})"
    assert support.metric(d.api_url, "spanledger_run_segment_merge_failures_total") == 0
    left = len(list((d.data_dir / "traces").glob("traces-*.seg")))
    assert left < flushes_before and len(list((d.data_dir / "index").glob("index-*.seg"))) <= left, (flushes_before, left)
    check(d, facts, "after the flushes were merged")
    for run in (late_run, early[20], changed[1]):
        t = support.get_trace(d.api_url, run.trace_id_hex)
        assert t.status_code == 200, t.text[:500]
        support.check_trace(t.json(), run, facts[run.trace_id_hex])
    correct(d, facts, changed[2], flip, "after a correction of a merged run")
    # The run list reads runs that left memory from disk: every run, newest first, each by
    # its latest entry (the corrected outcomes), and filters on outcome see them.
    listed = runs_listed(d)
    assert [r["trace_id"] for r in listed] == sorted(facts, key=lambda t: (start_of[t], t), reverse=True)
    assert all(r["outcome"] == facts[r["trace_id"]].outcome for r in listed), "a listed run shows its latest outcome"
    rejected = {t for t, f in facts.items() if f.outcome == "rejected"}
    assert {r["trace_id"] for r in runs_listed(d, outcome="rejected")} == rejected
    assert support.metric(d.api_url, "spanledger_run_list_segments_read_total") >= 1
    assert d.stop() == 0
    d.start()
    check(d, facts, "after a restart on merged files")
    t = support.get_trace(d.api_url, late_run.trace_id_hex)
    support.check_trace(t.json(), late_run, facts[late_run.trace_id_hex])
    assert len(runs_listed(d)) == len(w.runs)


def correct(d: support.Daemon, facts: Dict[str, workload.RunFacts], run: workload.RunSpec, flip: Dict[str, str], where: str) -> None:
    """Posts a verdict that changes the run's decided outcome and checks the rollups after it."""
    old = facts[run.trace_id_hex].outcome
    assert post_outcome(d, run, flip[old]) == "corrected"
    facts[run.trace_id_hex] = dataclasses.replace(facts[run.trace_id_hex], outcome=flip[old])
    support.settle(d.api_url, ())
    check(d, facts, where)


def runs_listed(d: support.Daemon, **params: str):
    r = requests.get(d.api_url + "/api/v1/runs", params={"since": "1h", "limit": "1000", **params}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["runs"]


def test_max_indexed_runs_must_be_positive(tmp_path):
    assert "limits must be positive" in support.serve_refused(tmp_path / "d", "--max-indexed-runs", "0")
