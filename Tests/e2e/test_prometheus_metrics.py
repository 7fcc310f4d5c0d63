"""/metrics on the API listener, parsed by prometheus_client's text parser: the ledger
counters (swift-prometheus) add up to what was sent, and the cardinality cap folds label
sets past --max-metric-series into one `__overflow__` series without losing counts."""

from __future__ import annotations


import requests
from prometheus_client.parser import text_string_to_metric_families

import support

CALL = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": 10_000, "gen_ai.usage.output_tokens": 1_000}  # $0.002100


def families(api_url: str):
    r = requests.get(api_url + "/metrics", timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return {f.name: f for f in text_string_to_metric_families(r.text)}


def test_ledger_counters_and_cardinality_cap(daemon_factory):
    d = daemon_factory.start("prom", ["--max-metric-series", "3"])
    runs = [support.simple_run(f"wf-{i}", [CALL], verdict="accepted") for i in range(5) for _ in range(2)]
    assert support.post_otlp(d.otlp_url, support.export_bytes([(r, r.spans) for r in runs])).status_code == 200
    support.wait_for_runs(d.api_url, 10)
    fams = families(d.api_url)
    for name in ("spanledger_spans_received", "spanledger_runs_released", "spanledger_ledger_runs", "spanledger_ledger_cost_usd",
                 "spanledger_ledger_tokens", "spanledger_ledger_llm_calls"):
        assert name in fams and fams[name].type == "counter", (name, sorted(fams))
    assert fams["spanledger_ledger_series_overflowed"].type == "gauge"
    assert fams["spanledger_wal_fsync_seconds"].type == "histogram"
    for f in fams.values():
        for s in f.samples:
            assert s.name.startswith("spanledger_"), s.name

    runs_samples = fams["spanledger_ledger_runs"].samples
    assert sum(s.value for s in runs_samples if s.name.endswith("_total")) == 10
    labels = [s.labels for s in runs_samples if s.name.endswith("_total")]
    assert len(labels) == 4, labels  # 3 label sets kept + the overflow series
    overflow = [s for s in runs_samples if s.labels.get("workflow") == "__overflow__"]
    assert overflow and overflow[0].labels == {"workflow": "__overflow__", "model": "__overflow__", "outcome": "__overflow__"}
    assert overflow[0].value == 4  # two workflows × two runs folded
    cost = sum(s.value for s in fams["spanledger_ledger_cost_usd"].samples if s.name.endswith("_total"))
    assert abs(cost - 10 * 0.0021) < 1e-9, cost
    tokens = {}
    for s in fams["spanledger_ledger_tokens"].samples:
        if s.name.endswith("_total"):
            tokens[s.labels["type"]] = tokens.get(s.labels["type"], 0) + s.value
    # 10 label sets (5 workflows × input, output), 3 kept: the rest fold, the sum stays.
    assert sum(tokens.values()) == 110_000 and tokens.get("__overflow__", 0) > 0, tokens
    # Once per run, by workflow and outcome.
    assert sum(s.value for s in fams["spanledger_ledger_workflow_runs"].samples if s.name.endswith("_total")) == 10
    # Label sets folded: runs 2, workflow runs 2, cost 2, llm calls 2, tokens 10 − 3 = 7.
    gauge = fams["spanledger_ledger_series_overflowed"].samples[0].value
    assert gauge == 15, gauge
    # Totals survive the fold: the same numbers as the query API.
    assert support.total(d.api_url)["cost_micros"] == 21_000


def test_a_flush_starts_early_once_enough_spans_wait_for_one(daemon_factory):
    # The interval alone would not flush during this test: the spans waiting for a flush do.
    d = daemon_factory.start("early-flush", ["--flush-interval", "1h", "--max-unflushed-spans", "20",
                                             "--max-release-lag", "250ms"])
    runs = [support.simple_run("early", [CALL, CALL], verdict="accepted") for _ in range(10)]  # 30 spans
    assert support.post_otlp(d.otlp_url, support.export_bytes([(r, r.spans) for r in runs])).status_code == 200
    support.wait_for_runs(d.api_url, 10)
    ok, flushes = support.wait_until(lambda: support.metric(d.api_url, "spanledger_flushes_total"), lambda n: n >= 1, 15)
    assert ok, f"no flush within 15 s of 30 spans released (flushes {flushes})"
    assert support.metric(d.api_url, "spanledger_unflushed_spans") < 20
    assert sorted((d.data_dir / "traces").glob("traces-*.seg")), "the run trees are on disk"
    fams = families(d.api_url)
    assert fams["spanledger_release_lag_ms"].type == "gauge"
    assert fams["spanledger_unflushed_spans"].type == "gauge"
    assert fams["spanledger_ingest_waits"].type == "counter"


def test_backpressure_settings_are_checked(tmp_path):
    for flag, value, message in [("--max-release-lag", "soon", "max release lag 'soon' is not a duration"),
                                 ("--max-unflushed-spans", "0", "limits must be positive")]:
        out = support.serve_refused(tmp_path / "d", flag, value)
        assert message in out, (flag, value, out)


def test_memory_gauges_match_the_process_and_grow_with_buffered_spans(daemon_factory):
    # Resident memory as /proc reports it, and malloc's own split of it: live data versus
    # free heap kept by the allocator. Traces held open in assembly are live data.
    d = daemon_factory.start("memory", ["--trace-wait", "1h"])
    before = families(d.api_url)
    for name in ("spanledger_process_resident_bytes", "spanledger_process_peak_resident_bytes",
                 "spanledger_heap_in_use_bytes", "spanledger_heap_free_bytes"):
        assert name in before and before[name].type == "gauge", (name, sorted(before))
    rss = before["spanledger_process_resident_bytes"].samples[0].value
    with open(f"/proc/{d.proc.pid}/status") as f:
        vm_rss = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))
    assert abs(rss - vm_rss) < 0.25 * vm_rss, (rss, vm_rss)
    assert before["spanledger_process_peak_resident_bytes"].samples[0].value >= rss
    in_use_before = before["spanledger_heap_in_use_bytes"].samples[0].value
    assert 0 < in_use_before < vm_rss
    # 2,000 open traces of 8 spans, rootless so none is released: about 2.5 MB of spans.
    for batch in range(4):
        runs = [support.simple_run("memory", [CALL] * 8) for _ in range(500)]
        body = support.export_bytes([(r, r.spans[1:]) for r in runs])  # without the root: held open
        assert support.post_otlp(d.otlp_url, body).status_code == 200
    ok, pending = support.wait_until(lambda: support.metric(d.api_url, "spanledger_pending_traces"), lambda n: n == 2000, 15)
    assert ok, pending
    # The heap figures are read at most once a second (mallinfo2 locks the arenas).
    ok, in_use_after = support.wait_until(lambda: families(d.api_url)["spanledger_heap_in_use_bytes"].samples[0].value,
                                          lambda v: v - in_use_before > 1_000_000, 10)
    assert ok, (in_use_before, in_use_after)
