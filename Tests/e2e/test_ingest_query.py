"""A seeded workload of 300 agent runs exported with the OpenTelemetry SDK to the real
daemon; every rollup group must equal what Schemas/conventions.md says, exactly, through
the HTTP API and the CLI, and again after a graceful restart."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import pytest

import support
import workload

SEED = 20261123
RUNS = 300
GROUPINGS = [(), ("workflow",), ("workflow", "outcome"), ("model",), ("service",), ("outcome",)]


@dataclass
class Ingested:
    daemon: support.Daemon
    workload: workload.Workload


def fields_for(group_by):
    return workload.MODEL_EXACT_FIELDS if "model" in group_by else workload.EXACT_FIELDS


@pytest.fixture(scope="module")
def ingested(daemon_factory) -> Ingested:
    daemon = daemon_factory.start()
    w = workload.generate(SEED, RUNS)
    sent = workload.export_with_sdk(w.runs, daemon.otlp_url + "/v1/traces")
    assert sum(sent.values()) == w.span_count, sent
    support.wait_for_runs(daemon.api_url, RUNS, timeout=30)
    support.settle(daemon.api_url, ("workflow", "outcome"))
    return Ingested(daemon, w)


@pytest.mark.parametrize("group_by", GROUPINGS, ids=lambda g: ",".join(g) or "total")
def test_rollups_equal_expected(ingested, group_by):
    doc = support.rollups(ingested.daemon.api_url, group_by)
    support.check_groups(doc, ingested.workload.groups(group_by), group_by, fields_for(group_by))


def test_window_bounds(ingested):
    doc = support.rollups(ingested.daemon.api_url)
    start, end = support.parse_rfc3339_ns(doc["from"]), support.parse_rfc3339_ns(doc["to"])
    now = time.time_ns()
    assert abs(end - now) < 120 * workload.NS_PER_S, doc
    assert abs((end - start) - 3600 * workload.NS_PER_S) <= 120 * workload.NS_PER_S, doc


@pytest.mark.parametrize("wf", workload.WORKFLOWS)
def test_workflow_filter(ingested, wf):
    api, w = ingested.daemon.api_url, ingested.workload
    support.check_groups(support.rollups(api, workflow=wf), w.groups((), workflow=wf), ())
    support.check_groups(support.rollups(api, ("outcome",), workflow=wf), w.groups(("outcome",), workflow=wf),
                         ("outcome",))


def test_latency_percentiles_plausible(ingested):
    doc = support.rollups(ingested.daemon.api_url, ("workflow",))
    expected = ingested.workload.groups(("workflow",))
    for g in doc["groups"]:
        lat = expected[(g["workflow"],)]["_latencies"]
        lo, hi = min(lat) * 0.95, max(lat) * 1.05
        p50, p95 = g["latency_p50_ms"], g["latency_p95_ms"]
        assert lo <= p50 <= p95 <= hi, (g["workflow"], p50, p95, min(lat), max(lat))


@pytest.mark.parametrize("group_by", [(), ("workflow",), ("workflow", "outcome"), ("model",)],
                         ids=lambda g: ",".join(g) or "total")
def test_cli_query_matches_api(ingested, group_by):
    api = ingested.daemon.api_url
    via_cli = support.cli_query(["--server", api], group_by)
    via_api = support.rollups(api, group_by)
    assert support.comparable(via_cli) == support.comparable(via_api)
    support.check_groups(via_cli, ingested.workload.groups(group_by), group_by, fields_for(group_by))


def test_trace_detail(ingested):
    api, w = ingested.daemon.api_url, ingested.workload
    run = w.showcase
    facts = w.facts_for(run)
    assert len(facts.calls) == 6 and facts.outcome != "pending"  # the showcase is what we think it is
    r = support.get_trace(api, run.trace_id_hex)
    assert r.status_code == 200, r.text[:2000]
    support.check_trace(r.json(), run, facts)
    support.check_trace(support.cli_json("trace", run.trace_id_hex, "--server", api, "--format", "json"), run, facts)
    # A few more runs of every workflow, through the API only.
    for wf in workload.WORKFLOWS:
        for other in [x for x in w.runs if w.facts_for(x).workflow == wf][:3]:
            resp = support.get_trace(api, other.trace_id_hex)
            assert resp.status_code == 200, resp.text[:2000]
            support.check_trace(resp.json(), other, w.facts_for(other))


def test_unknown_trace_is_404(ingested):
    r = support.get_trace(ingested.daemon.api_url, "0123456789abcdef0123456789abcdef")
    assert r.status_code == 404, (r.status_code, r.text[:500])


def test_restart_keeps_rollups(ingested, daemon_factory):
    """Must stay last in this module: it stops and restarts the daemon."""
    d, w = ingested.daemon, ingested.workload
    before = {g: support.comparable(support.rollups(d.api_url, g)) for g in GROUPINGS}

    rc = d.stop()
    assert rc == 0, f"exit code {rc} after SIGTERM\n{d.log_tail()}"

    for g in GROUPINGS:
        offline = support.cli_query(["--data", str(d.data_dir)], g)
        assert support.comparable(offline) == before[g], f"query --data, group_by={g}"

    d.start()
    support.wait_for_runs(d.api_url, RUNS, timeout=30)
    for g in GROUPINGS:
        after = support.comparable(support.rollups(d.api_url, g))
        assert after == before[g], f"after restart, group_by={g}"
        support.check_groups({"groups": after}, w.groups(g), g, fields_for(g))


def test_cli_csv_and_table_match_the_json_answer(ingested):
    """`query --format csv` carries every group with the JSON answer's numbers, money as
    fixed six-decimal USD (never exponent notation); the table shows the same groups."""
    import csv
    import io
    api = ingested.daemon.api_url
    expected = ingested.workload.groups(("workflow",))
    p = support.cli("query", "--server", api, "--since", "1h", "--group-by", "workflow", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(p.stdout.decode())))
    assert sorted(r["workflow"] for r in rows) == sorted(k[0] for k in expected)
    for r in rows:
        want = expected[(r["workflow"],)]
        assert int(r["runs"]) == want["runs"] and int(r["cost_micros"]) == want["cost_micros"], r
        assert re.fullmatch(r"\d+\.\d{6}", r["cost_usd"]), r["cost_usd"]
        assert round(float(r["cost_usd"]) * 1_000_000) == want["cost_micros"], r
    table = support.cli("query", "--server", api, "--since", "1h", "--group-by", "workflow").stdout.decode()
    lines = table.splitlines()
    assert lines[1].split()[0] == "WORKFLOW" and set(lines[2]) <= {"-", " "}, table
    body = lines[3:]
    assert len(body) == len(expected), table
    for (name,) in expected:  # workflow names may contain spaces ("POST /v1/triage")
        assert any(l.startswith(name + " ") for l in body), (name, table)
    assert not re.search(r"\d[eE][-+]\d", table), table  # no exponent-notation numbers


def test_every_answer_counts_each_run_once_while_flushes_come_and_go(daemon_factory):
    """Queries read the table of flushed rollups plus the records released since the last
    flush was taken, which the table takes only then. Polled while runs arrive and a flush
    is taken every 200 ms, no answer counts a run twice or half of one (a run's calls come
    with it), and the last answer counts every run once, through the API and, after a
    restart, from disk."""
    d = daemon_factory.start("flushing", extra_args=["--flush-interval", "200ms"])
    call = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 10}
    sent = 0
    answers = []
    for _ in range(12):
        runs = [support.simple_run("flush-race", [call, call]) for _ in range(25)]
        assert support.post_otlp(d.otlp_url, support.export_bytes([(r, r.spans) for r in runs])).status_code == 200
        sent += len(runs)
        for _ in range(3):
            g = support.total(d.api_url)
            answers.append((g.get("runs", 0), g.get("llm_calls", 0)))
            assert g.get("runs", 0) <= sent and g.get("llm_calls", 0) == 2 * g.get("runs", 0), (sent, g)
            time.sleep(0.05)
    final = support.wait_for_runs(d.api_url, sent, timeout=30)
    assert final["llm_calls"] == 2 * sent and final["input_tokens"] == 200 * sent, final
    assert any(0 < runs < sent for runs, _ in answers), answers  # some answers came mid-stream
    flushes = support.metric(d.api_url, "spanledger_flushes_total")
    assert flushes >= 6, flushes  # every 200 ms while the runs arrived and released
    before = support.rollups(d.api_url, ("workflow", "model"))
    d.stop()
    d.start()
    assert support.rollups(d.api_url, ("workflow", "model"))["groups"] == before["groups"]
