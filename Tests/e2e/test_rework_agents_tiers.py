"""Rework, sub-agents and tiered prices with hand-computed costs to the micro-dollar.

Prices (the test's price file, Tests/e2e/workload.py, first; then the built-in table):
gpt-4o-mini $0.15 in / $0.60 out, claude-sonnet-4 $3 / $15 per million tokens;
gemini-2.5-pro (built in) $1.25 / $10, and above 200,000 input tokens per call $2.50 in,
$0.625 cache read, $15 out for the whole call."""

from __future__ import annotations

import time
from typing import Any, Dict, Optional

import requests

import support
import workload

NS = 1_000_000_000
MS = 1_000_000


def chat(model: str, input_tokens: int, output_tokens: int, **extra) -> Dict[str, Any]:
    return {"gen_ai.operation.name": "chat", "gen_ai.request.model": model,
            "gen_ai.usage.input_tokens": input_tokens, "gen_ai.usage.output_tokens": output_tokens, **extra}


def send(d: support.Daemon, *runs: workload.RunSpec) -> None:
    r = support.post_otlp(d.otlp_url, support.export_bytes([(run, run.spans) for run in runs]))
    assert r.status_code == 200, (r.status_code, r.content[:300])


def group(d: support.Daemon, group_by, **match) -> Dict[str, Any]:
    groups = support.rollups(d.api_url, group_by)["groups"]
    found = [g for g in groups if all(g.get(k) == v for k, v in match.items())]
    assert len(found) == 1, (match, groups)
    return found[0]


def test_sub_agents_carry_the_cost_they_spent(daemon_factory):
    d = daemon_factory.start("agents")
    start = time.time_ns() - 120 * NS
    trace = int.from_bytes(b"agents-case-0001", "big")
    S = workload.SpanSpec
    root = S(1, None, "invoke_workflow research-assistant", "svc", start, start + 900 * MS,
             {"gen_ai.operation.name": "invoke_workflow", "gen_ai.workflow.name": "research-assistant", "outcome.verdict": "accepted"})
    planner = S(2, 1, "invoke_agent planner", "svc", start + 10 * MS, start + 100 * MS,
                {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner"})
    researcher = S(3, 1, "invoke_agent researcher", "svc", start + 110 * MS, start + 700 * MS,
                   {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "researcher"})
    summarizer = S(4, 3, "invoke_agent summarizer", "svc", start + 500 * MS, start + 690 * MS,
                   {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "summarizer"})
    spans = [root, planner, researcher, summarizer,
             S(10, 2, "chat", "svc", start + 20 * MS, start + 90 * MS, chat("gpt-4o-mini", 10_000, 1_000), kind="client"),
             S(11, 3, "chat", "svc", start + 120 * MS, start + 300 * MS, chat("claude-sonnet-4-0", 20_000, 2_000), kind="client"),
             S(12, 3, "chat", "svc", start + 310 * MS, start + 480 * MS, chat("claude-sonnet-4-0", 20_000, 2_000), kind="client"),
             S(13, 3, "execute_tool search", "svc", start + 485 * MS, start + 495 * MS, {"gen_ai.operation.name": "execute_tool"}),
             S(14, 4, "chat", "svc", start + 510 * MS, start + 680 * MS, chat("gpt-4o-mini", 5_000, 500), kind="client"),
             S(15, 1, "chat", "svc", start + 710 * MS, start + 890 * MS, chat("gpt-4o-mini", 1_000, 100), kind="client")]
    run = workload.RunSpec(trace, "svc", spans)
    send(d, run)
    support.wait_for_runs(d.api_url, 1)
    # planner: 10,000 × 0.15 + 1,000 × 0.60 per million = $0.002100
    # researcher: 2 × (20,000 × 3 + 2,000 × 15) = 2 × $0.090000 = $0.180000, and one tool call
    # summarizer (inside researcher, its own agent): 5,000 × 0.15 + 500 × 0.60 = $0.001050
    # the workflow itself (no agent span encloses the call): 1,000 × 0.15 + 100 × 0.60 = $0.000210
    expected = {"planner": (2_100, 1, 0), "researcher": (180_000, 2, 1), "summarizer": (1_050, 1, 0), "": (210, 1, 0)}
    groups = support.rollups(d.api_url, ("workflow", "agent"))["groups"]
    got = {g["agent"]: (g["cost_micros"], g["llm_calls"], g["tool_calls"]) for g in groups}
    assert got == expected, groups
    assert all(g["workflow"] == "research-assistant" and g["runs"] == 1 and g["accepted"] == 1 for g in groups)
    # The cost stays with the top workflow.
    total = group(d, ("workflow",), workflow="research-assistant")
    assert total["cost_micros"] == 183_360 and total["runs"] == 1 and total["llm_calls"] == 5 and total["tool_calls"] == 1
    # Which sub-agent burns the budget: sorted by cost.
    assert [g["agent"] for g in groups] == ["researcher", "planner", "summarizer", ""]
    r = requests.get(support.rollups_url(d.api_url, "1h", ("agent", "model")), timeout=10)
    assert r.status_code == 400 and "not both" in r.text
    t = support.get_trace(d.api_url, run.trace_id_hex).json()
    assert t["agents"] == ["planner", "researcher", "summarizer"], t["agents"]
    by_id = {s["span_id"]: s for s in t["spans"]}
    assert by_id[f"{14:016x}"]["agent"] == "summarizer" and by_id[f"{15:016x}"]["agent"] == ""

    # A late call inside the planner joins the planner's record.
    late = S(16, 2, "chat", "svc", start + 95 * MS, start + 99 * MS, chat("gpt-4o-mini", 2_000, 0), kind="client")
    r = support.post_otlp(d.otlp_url, support.export_bytes([(run, [late])]))
    assert r.status_code == 200
    ok, g = support.wait_until(lambda: group(d, ("agent",), agent="planner"), lambda g: g["llm_calls"] == 2, timeout=20)
    assert ok, g
    assert g["cost_micros"] == 2_100 + 300 and g["runs"] == 1  # 2,000 × 0.15 per million = $0.000300
    # Restart: the agent records are on disk.
    assert d.stop() == 0
    d.start()
    groups = support.rollups(d.api_url, ("agent",))["groups"]
    assert {g["agent"]: g["cost_micros"] for g in groups} == {"planner": 2_400, "researcher": 180_000, "summarizer": 1_050, "": 210}


def test_rework_follows_rejected_and_edited_runs_of_a_task(daemon_factory):
    d = daemon_factory.start("rework")
    t0 = time.time_ns() - 20 * 60 * NS

    def run(minute: int, task: Optional[str], verdict: Optional[str], call: Dict[str, Any], key: str = "outcome.task_id"):
        r = support.simple_run("drafter", [call], verdict=verdict, start_ns=t0 + minute * 60 * NS)
        if task is not None:
            r.root.attributes[key] = task
        return r

    claude = chat("claude-sonnet-4-0", 10_000, 1_000)   # $0.045000
    mini = chat("gpt-4o-mini", 20_000, 2_000)           # 20,000 × 0.15 + 2,000 × 0.60 = $0.004200
    tiny = chat("gpt-4o-mini", 1_000, 100)              # $0.000210
    r5 = run(0, "ticket-42", None, tiny)                # before r1: not rework
    r1 = run(1, "ticket-42", "rejected", claude)
    r2 = run(2, "ticket-42", None, mini)                # after a rejected run of the task: rework
    r3 = run(3, "conv-7", "accepted", claude, key="gen_ai.conversation.id")
    r4 = run(4, "conv-7", None, tiny, key="gen_ai.conversation.id")  # after an accepted run: not (yet) rework
    # r2 arrives before r1: rework is decided when r1 is released too.
    send(d, r2, r5, r3, r4)
    support.wait_for_runs(d.api_url, 4)
    send(d, r1)
    support.wait_for_runs(d.api_url, 5)
    g = group(d, ("workflow",), workflow="drafter")
    assert (g["runs"], g["rework_runs"], g["rework_cost_micros"]) == (5, 1, 4_200), g
    assert g["rework_rate"] == 0.2

    # r3 is edited after all: r4 becomes rework, charged to its own start minute and outcome.
    r = requests.post(d.otlp_url + "/v1/outcomes", json={"trace_id": r3.trace_id_hex, "outcome": "edited"}, timeout=10)
    assert r.json()["results"][0]["result"] == "corrected"
    g = group(d, ("workflow",), workflow="drafter")
    assert (g["rework_runs"], g["rework_cost_micros"], g["rework_rate"]) == (2, 4_410, 0.4), g
    by_outcome = {x["outcome"]: x for x in support.rollups(d.api_url, ("outcome",))["groups"]}
    assert by_outcome["pending"]["rework_runs"] == 2 and by_outcome["pending"]["rework_cost_micros"] == 4_410
    by_model = {x["model"]: x for x in support.rollups(d.api_url, ("model",))["groups"]}
    assert by_model["gpt-4o-mini"]["rework_cost_micros"] == 4_410 and by_model["claude-sonnet-4-0"]["rework_runs"] == 0
    assert support.get_trace(d.api_url, r4.trace_id_hex).json()["rework"] is True
    assert support.get_trace(d.api_url, r4.trace_id_hex).json()["task_id"] == "conv-7"

    # r1 is accepted on appeal: r2 is no longer rework. r2 then rejected itself changes nothing for r5 (earlier).
    requests.post(d.otlp_url + "/v1/outcomes", json={"trace_id": r1.trace_id_hex, "outcome": "accepted"}, timeout=10)
    requests.post(d.otlp_url + "/v1/outcomes", json={"trace_id": r2.trace_id_hex, "outcome": "rejected"}, timeout=10)
    g = group(d, ("workflow",), workflow="drafter")
    assert (g["rework_runs"], g["rework_cost_micros"]) == (1, 210), g
    assert g["cost_micros"] == 210 + 45_000 + 4_200 + 45_000 + 210, g  # corrections never change totals
    assert support.metric(d.api_url, "spanledger_rework_changes_total") >= 3
    # Restart and SIGKILL: the same.
    assert d.stop() == 0
    d.start()
    g = group(d, ("workflow",), workflow="drafter")
    assert (g["rework_runs"], g["rework_cost_micros"], g["runs"]) == (1, 210, 5), g
    d.kill()
    d.start()
    g = group(d, ("workflow",), workflow="drafter")
    assert (g["rework_runs"], g["rework_cost_micros"], g["runs"]) == (1, 210, 5), g


def test_tiered_prices_apply_to_the_whole_call(daemon_factory):
    d = daemon_factory.start("tiers")
    at_limit = support.simple_run("long-context", [chat("gemini-2.5-pro", 200_000, 1_000)])
    above = support.simple_run("long-context", [chat("gemini-2.5-pro", 250_000, 3_000, **{"gen_ai.usage.cache_read.input_tokens": 50_000})])
    send(d, at_limit, above)
    support.wait_for_runs(d.api_url, 2)
    # 200,000 input (not above the threshold): 200,000 × 1.25 + 1,000 × 10 = $0.260000
    # 250,000 input, 50,000 of them cache reads: 200,000 × 2.50 + 50,000 × 0.625 + 3,000 × 15 = $0.576250
    costs = sorted(s["cost_micros"] for r in (at_limit, above)
                   for s in support.get_trace(d.api_url, r.trace_id_hex).json()["spans"] if s["kind"] == "llm")
    assert costs == [260_000, 576_250], costs
    assert group(d, ("workflow",), workflow="long-context")["cost_micros"] == 836_250
    out = support.cli("prices", "check", "gemini-2.5-pro-preview").stdout.decode()
    assert "above 200000 input tokens per call" in out, out
