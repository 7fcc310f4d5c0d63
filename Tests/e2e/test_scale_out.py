"""Scale-out (README "Several nodes"): behind a load balancer that routes by trace ID each
run lands on one node, and `spanledger query --server A --merge-server B` merges the
nodes' rollup records (GET /api/v1/rollups/records, a spanledger.v1.RollupSegment) into the
answer one node holding every run gives: exactly, latency percentiles included, because
every measure and sketch adds up."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import requests

import support
import workload

SEED = 4242
RUNS = 90


def rfc3339(ns: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ns // 1_000_000_000))


def query(servers, since: str, until: str, group_by: str):
    args = ["query", "--server", servers[0]]
    for s in servers[1:]:
        args += ["--merge-server", s]
    args += ["--since", since, "--until", until, "--format", "json"]
    if group_by:
        args += ["--group-by", group_by]
    return support.cli_json(*args)


def test_a_query_merged_over_two_nodes_equals_one_node_with_every_run(daemon_factory):
    a, b, whole = daemon_factory.start("node-a"), daemon_factory.start("node-b"), daemon_factory.start("whole")
    w = workload.generate(SEED, RUNS)
    split = {a: w.runs[0::2], b: w.runs[1::2], whole: w.runs}
    for d, runs in split.items():
        sent = workload.export_with_sdk(runs, d.otlp_url + "/v1/traces")
        assert sum(sent.values()) == sum(len(r.spans) for r in runs), sent
    for d, runs in split.items():
        support.wait_for_runs(d.api_url, len(runs))
        support.settle(d.api_url, ())
    # One absolute window for all three (minutes: the workload starts 2-28 minutes ago).
    now = time.time_ns()
    since, until = rfc3339(now - 3_600_000_000_000), rfc3339(now + 120_000_000_000)

    facts = [workload.interpret_run(r) for r in w.runs]
    for group_by in ("", "workflow,outcome", "model", "service,outcome", "agent", "workflow,model"):
        merged = query([a.api_url, b.api_url], since, until, group_by)
        one = query([whole.api_url], since, until, group_by)
        assert merged["groups"], group_by
        assert merged == one, f"group_by={group_by!r}: merged {json.dumps(merged)[:1500]} != one node {json.dumps(one)[:1500]}"
    total = query([a.api_url, b.api_url], since, until, "")["groups"][0]
    assert total["runs"] == RUNS and total["cost_micros"] == sum(f.cost_micros for f in facts)
    # Each node alone holds only its share.
    alone = query([a.api_url], since, until, "")["groups"][0]
    assert alone["runs"] == len(split[a]) < RUNS
    # The order of the servers does not matter.
    assert query([b.api_url, a.api_url], since, until, "workflow,outcome") == query([whole.api_url], since, until, "workflow,outcome")


def test_rollup_records_are_a_rollup_segment_of_the_window(daemon_factory):
    d = daemon_factory.start("records")
    w = workload.generate(SEED + 1, 20)
    workload.export_with_sdk(w.runs, d.otlp_url + "/v1/traces")
    support.wait_for_runs(d.api_url, len(w.runs))
    support.settle(d.api_url, ())
    r = requests.get(d.api_url + "/api/v1/rollups/records", params={"since": "1h"}, timeout=30)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/x-protobuf", (r.status_code, r.headers)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "SchemaTests"))
    from google.protobuf import message_factory
    from schema_tools import compile_descriptor_set
    Segment = message_factory.GetMessages(compile_descriptor_set(["spanledger/v1/rollup.proto"]).file)["spanledger.v1.RollupSegment"]
    seg = Segment()
    seg.ParseFromString(r.content)
    # Runs on the run-level records; LLM cost on the model records (rollup.proto).
    assert sum(rec.runs for rec in seg.records if rec.run_level) == len(w.runs)
    model_records = [rec for rec in seg.records if not rec.run_level and not rec.agent_record]
    assert sum(rec.cost_micros for rec in model_records) == sum(workload.interpret_run(x).cost_micros for x in w.runs)
    # A window before the runs holds none of them; a bad window is a 400 that says why.
    empty = requests.get(d.api_url + "/api/v1/rollups/records", params={"since": "30d", "until": "29d"}, timeout=30)
    seg = Segment()
    seg.ParseFromString(empty.content)
    assert empty.status_code == 200 and len(seg.records) == 0
    bad = requests.get(d.api_url + "/api/v1/rollups/records", params={"since": "yesterday"}, timeout=30)
    assert bad.status_code == 400 and "invalid since" in bad.json()["error"]["message"], bad.text
    # A node named twice would count its runs twice: refused.
    twice = subprocess.run([str(support.spanledger_bin()), "query", "--server", d.api_url, "--merge-server", d.api_url + "/"],
                           capture_output=True, timeout=60)
    assert twice.returncode != 0 and b"named twice" in twice.stderr, twice
    # The CLI says which server failed.
    p = subprocess.run([str(support.spanledger_bin()), "query", "--server", d.api_url, "--merge-server", "http://127.0.0.1:9"],
                       capture_output=True, timeout=60)
    assert p.returncode != 0 and b"127.0.0.1:9" in p.stderr, p


def test_the_shipped_gateway_config_routes_whole_traces_to_the_nodes_grpc_listeners():
    import yaml
    cfg = yaml.safe_load((Path(__file__).resolve().parents[2] / "deploy" / "otelcol-gateway.yaml").read_text())
    lb = cfg["exporters"]["loadbalancing"]
    assert lb["routing_key"] == "traceID", "each trace must land on one node"
    assert lb["protocol"]["otlp"]["tls"]["insecure"] is True
    hosts = lb["resolver"]["static"]["hostnames"]
    assert len(hosts) >= 2 and all(h.endswith(":4317") for h in hosts), hosts  # --otlp-grpc's default port
    assert cfg["service"]["pipelines"]["traces"] == {"receivers": ["otlp"], "exporters": ["loadbalancing"]}


def test_outcome_over_several_nodes_goes_to_the_node_that_has_the_run_and_holds_nothing_elsewhere(daemon_factory):
    a, b = daemon_factory.start("verdict-a"), daemon_factory.start("verdict-b")
    run = support.simple_run("refund-agent", [{"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
                                               "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 100}], verdict=None)
    assert support.post_otlp(b.otlp_url, support.export_bytes([(run, run.spans)])).status_code == 200
    support.wait_for_runs(b.api_url, 1)
    trace = f"{run.trace_id:032x}"

    def held(d):
        return support.metrics(d.api_url)["spanledger_verdicts_held"]

    def outcome(*servers, trace_id=trace):
        args = [str(support.spanledger_bin()), "outcome", trace_id, "accepted"]
        for s in servers:
            args += ["--server", s]
        return subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)

    # A node that does not have the run, asked first, answers not_found and holds nothing.
    p = outcome(a.otlp_url, b.otlp_url)
    assert p.returncode == 0 and p.stdout.startswith(f"{trace}: applied on {b.otlp_url}"), (p.stdout, p.stderr)
    assert held(a) == 0 and held(b) == 0
    assert support.rollups(b.api_url, ["outcome"])["groups"][0]["outcome"] == "accepted"
    assert support.rollups(a.api_url, ["outcome"])["groups"] == []
    # A node that cannot be reached is named and skipped.
    p = outcome("http://127.0.0.1:9", b.otlp_url)
    assert p.returncode == 0 and "unchanged on" in p.stdout and "127.0.0.1:9" in p.stderr, (p.stdout, p.stderr)
    # A run no node has: an error, and still nothing held anywhere.
    missing = "0123456789abcdef0123456789abcdef"
    p = outcome(a.otlp_url, b.otlp_url, trace_id=missing)
    assert p.returncode != 0 and "none of the 2 nodes has run " + missing in p.stderr, (p.stdout, p.stderr)
    assert held(a) == 0 and held(b) == 0
    # One server keeps the one-node meaning: a verdict for a run not seen yet is held.
    p = outcome(a.otlp_url, trace_id=missing)
    assert p.returncode == 0 and f"{missing}: held" in p.stdout, (p.stdout, p.stderr)
    assert held(a) == 1
    # A node named twice is refused before anything is sent.
    p = outcome(a.otlp_url, a.otlp_url + "/")
    assert p.returncode != 0 and "named twice" in p.stderr, p.stderr
    # The endpoint itself: not_found per verdict, the rest of a batch recorded; a bad value is a 400.
    body = {"outcomes": [{"trace_id": missing, "outcome": "rejected"}, {"trace_id": trace, "outcome": "edited"}]}
    r = requests.post(b.otlp_url + "/v1/outcomes?unknown_runs=refuse", json=body, timeout=30)
    assert r.status_code == 200 and [x["result"] for x in r.json()["results"]] == ["not_found", "corrected"], r.text
    assert held(b) == 0
    r = requests.post(b.otlp_url + "/v1/outcomes?unknown_runs=drop", json=body, timeout=30)
    assert r.status_code == 400 and "unknown_runs" in r.json()["error"]["message"], r.text
