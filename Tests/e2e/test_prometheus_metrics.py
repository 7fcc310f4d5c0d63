"""/metrics on the API listener, parsed by prometheus_client's text parser: the ledger
counters (swift-prometheus) add up to what was sent, and the cardinality cap folds label
sets past --max-metric-series into one `__overflow__` series without losing counts."""

from __future__ import annotations

import time

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
    # Resident memory now and at its peak, both from one read of /proc/self/status.
    rss = fams["spanledger_process_resident_bytes"].samples[0].value
    peak = fams["spanledger_process_peak_resident_bytes"].samples[0].value
    assert 4 << 20 < rss <= peak < 4 << 30, (rss, peak)
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

    # The same workflows again, after that scrape: the counters resolved then count them,
    # kept or folded as before, and nothing more is folded.
    again = [support.simple_run(f"wf-{i}", [CALL], verdict="accepted") for i in range(5) for _ in range(2)]
    assert support.post_otlp(d.otlp_url, support.export_bytes([(r, r.spans) for r in again])).status_code == 200
    support.wait_for_runs(d.api_url, 20)
    fams = families(d.api_url)
    runs_samples = [s for s in fams["spanledger_ledger_runs"].samples if s.name.endswith("_total")]
    assert sum(s.value for s in runs_samples) == 20 and len(runs_samples) == 4, runs_samples
    assert [s.value for s in runs_samples if s.labels.get("workflow") == "__overflow__"] == [8]
    assert sorted(s.value for s in runs_samples if s.labels.get("workflow") != "__overflow__") == [4, 4, 4]
    assert sum(s.value for s in fams["spanledger_ledger_tokens"].samples if s.name.endswith("_total")) == 220_000
    assert fams["spanledger_ledger_series_overflowed"].samples[0].value == 15


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
    for args, message in [(["--max-release-lag", "soon"], "max release lag 'soon' is not a duration"),
                          (["--max-unflushed-spans", "0"], "limits must be positive"),
                          (["--heap-trim-slack=-1"], "heap trim slack must not be negative")]:
        out = support.serve_refused(tmp_path / "d", *args)
        assert message in out, (args, out)


def _hold_then_release(d, runs: int) -> None:
    """Buffers `runs` 8-span runs (held for the 2 s trace wait), then waits until every one
    is released and flushed: the memory their pending spans held is free again."""
    for _ in range(runs // 500):
        batch = [support.simple_run("trim", [CALL] * 7) for _ in range(500)]
        assert support.post_otlp(d.otlp_url, support.export_bytes([(r, r.spans) for r in batch])).status_code == 200
    support.wait_for_runs(d.api_url, runs, timeout=60)
    ok, left = support.wait_until(lambda: support.metric(d.api_url, "spanledger_unflushed_spans"), lambda n: n == 0, 15)
    assert ok, left


def _resident_less_heap(d) -> float:
    fams = families(d.api_url)
    return fams["spanledger_process_resident_bytes"].samples[0].value - fams["spanledger_heap_in_use_bytes"].samples[0].value


def test_free_heap_goes_back_to_the_system_once_buffered_traces_are_released(daemon_factory):
    # 25,000 runs held in assembly take about 23 MB of heap (10,000 did while span records
    # were 128 bytes; at 88, 15,000 left the untrimmed daemon's gap 6-8 MB over the trimmed
    # one here, and once in CI only 4.07 MB, a hair over the 4 MB asked below);
    # once released, that memory is
    # free heap the allocator (tcmalloc) alone keeps resident for reuse. With a 1 MB slack
    # the trimmer gives it back within a second or two of the gap opening. The heap gauges
    # are there only while tcmalloc really serves malloc (the daemon checks).
    args = ["--trace-wait", "2s", "--flush-interval", "500ms"]
    d = daemon_factory.start("trim", args + ["--heap-trim-slack", "1048576"])
    off = daemon_factory.start("trim-off", args + ["--heap-trim-slack", "0"])  # 0 never trims
    time.sleep(1.1)  # the heap figures are cached for a second
    idle = _resident_less_heap(d)  # code, stacks: what is resident besides the heap
    _hold_then_release(d, 25_000)
    _hold_then_release(off, 25_000)
    ok, trimmed = support.wait_until(lambda: support.metric(d.api_url, "spanledger_heap_trimmed_bytes_total"),
                                     lambda b: b > 1_000_000, 15)
    assert ok, f"no trim released over 1 MB (released {trimmed} bytes)"
    fams = families(d.api_url)
    assert fams["spanledger_heap_trims"].type == "counter" and fams["spanledger_heap_trims"].samples[0].value >= 1
    # Resident memory is back to live heap plus the idle baseline, give or take what
    # ingest itself leaves resident outside the heap (code and stacks first touched, 5-9 MB
    # here), while the untrimmed daemon keeps its free heap: looked at each second (the
    # trimmer's round and the heap figures' cache) for up to 10 s, as a slow VM's trims lag.
    def gaps():
        return _resident_less_heap(d), _resident_less_heap(off)

    def settled(g):
        return g[0] < idle + (12 << 20) and g[1] > g[0] + (4 << 20)

    time.sleep(1.1)
    ok, (trimmed_gap, kept_gap) = support.wait_until(gaps, settled, 10, interval=1.0)
    print(f"\n[trim] resident less heap: idle {idle / 1e6:.1f} MB, trimmed {trimmed_gap / 1e6:.1f} MB, untrimmed {kept_gap / 1e6:.1f} MB")
    assert trimmed_gap < idle + (12 << 20), (trimmed_gap, idle)
    assert kept_gap > trimmed_gap + (4 << 20), (kept_gap, trimmed_gap, idle)
    assert support.metric(off.api_url, "spanledger_heap_trims_total") == 0
    assert support.metric(off.api_url, "spanledger_heap_trimmed_bytes_total") == 0


def status(api_url: str) -> dict:
    r = requests.get(api_url + "/api/v1/status", timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json", (r.status_code, r.text[:300])
    return r.json()


def test_status_follows_spans_from_assembly_to_the_flush(daemon_factory):
    """/api/v1/status, the cheap probe scripts and the bench poll: spans counted when taken
    in, their traces pending through the trace wait, then released as runs, unflushed until
    a flush writes them; the same numbers as the Prometheus counters."""
    d = daemon_factory.start("status", ["--trace-wait", "3s", "--flush-interval", "1h", "--max-unflushed-spans", "1000000"])
    s = status(d.api_url)
    progress = ("spans_accepted", "runs_released", "pending_traces", "pending_spans", "unflushed_spans")
    assert {k: s[k] for k in progress} == dict.fromkeys(progress, 0), s
    runs = [support.simple_run(f"status-{i % 3}", [CALL, CALL], verdict="accepted") for i in range(12)]
    assert support.post_otlp(d.otlp_url, support.export_bytes([(r, r.spans) for r in runs])).status_code == 200
    # Acknowledged: taken in, and waiting out the 3 s trace wait in assembly.
    s = status(d.api_url)
    assert s["spans_accepted"] == 36 and s["runs_released"] == 0, s
    assert s["pending_traces"] == 12 and s["pending_spans"] == 36, s
    ok, s = support.wait_until(lambda: status(d.api_url), lambda s: s["runs_released"] == 12, 30)
    assert ok, f"runs never released: {s}"
    assert s["pending_traces"] == 0 and s["pending_spans"] == 0 and s["runs_incomplete"] == 0, s
    assert s["unflushed_spans"] == 36 and s["flushes"] == 0 and s["flush_failures"] == 0, s
    assert s["release_lag_ms"] == 0 and s["ingest_waits"] == 0, s
    fams = families(d.api_url)
    assert fams["spanledger_runs_released"].samples[0].value == 12
    assert fams["spanledger_spans_received"].samples[0].value == 36
    # A restart flushes on the way down: nothing left unflushed, and the counters start again.
    d.stop()
    d.start()
    s = status(d.api_url)
    assert s["unflushed_spans"] == 0 and s["runs_released"] == 0 and s["pending_traces"] == 0, s
    assert support.total(d.api_url)["runs"] == 12
