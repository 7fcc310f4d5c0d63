"""CLI output against golden files (Tests/e2e/golden/*.txt): the tables an SRE reads in a
terminal, for a fixed workload with fixed IDs, token counts and durations. Times in the
output (window bounds) are replaced by <T> before comparing, and so are the scorecard's
share of the quarter elapsed and its pace (which depend on today's date; the pace is
checked against the elapsed share instead). Regenerate after a deliberate change with
SPANLEDGER_UPDATE_GOLDEN=1 and review the diff."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

import support
import workload

GOLDEN = Path(__file__).resolve().parent / "golden"
NS = 1_000_000_000
MS = 1_000_000
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")

REGISTRY = """
workflows:
  - {name: support-answer, outcome: "A customer's question answered correctly without a rewrite", function: support,
     owner: ana@example.com, quarterly_target: 100, quarterly_budget_usd: 10}
  - {name: research-assistant, outcome: "A research brief the analyst used as written", function: research, owner: cy@example.com}
"""


def chat(model, i, o, **extra):
    return {"gen_ai.operation.name": "chat", "gen_ai.request.model": model, "gen_ai.usage.input_tokens": i,
            "gen_ai.usage.output_tokens": o, **extra}


def fixed_runs(start: int):
    S, R = workload.SpanSpec, workload.RunSpec
    runs = []
    # support-answer: 4 runs, claude or gpt-4o-mini, mixed outcomes, one retry.
    for n, (model, verdict) in enumerate([("claude-sonnet-4-0", "accepted"), ("claude-sonnet-4-0", "rejected"),
                                          ("gpt-4o-mini", "accepted"), ("gpt-4o-mini", "edited")]):
        t = start + n * 60 * NS
        root = S(0x100 + n, None, "invoke_workflow support-answer", "support-api", t, t + 2_000 * MS,
                 {"gen_ai.operation.name": "invoke_workflow", "gen_ai.workflow.name": "support-answer", "outcome.verdict": verdict})
        spans = [root, S(0x200 + n, root.span_id, "chat", "support-api", t + 10 * MS, t + 900 * MS, chat(model, 12_000 + 1_000 * n, 800), kind="client"),
                 S(0x300 + n, root.span_id, "execute_tool kb.search", "support-api", t + 950 * MS, t + 1_100 * MS, {"gen_ai.operation.name": "execute_tool"})]
        if n == 1:
            spans.append(S(0x400 + n, root.span_id, "chat", "support-api", t + 1_200 * MS, t + 1_900 * MS,
                           chat(model, 12_500, 700, **{"http.request.resend_count": 1}), kind="client"))
        runs.append(R(0xA000 + n, "support-api", spans))
    # research-assistant with two sub-agents.
    t = start + 5 * 60 * NS
    root = S(0x500, None, "invoke_workflow research-assistant", "batch-worker", t, t + 4_000 * MS,
             {"gen_ai.operation.name": "invoke_workflow", "gen_ai.workflow.name": "research-assistant"})
    planner = S(0x501, 0x500, "invoke_agent planner", "batch-worker", t + 10 * MS, t + 600 * MS,
                {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner"})
    writer = S(0x502, 0x500, "invoke_agent writer", "batch-worker", t + 700 * MS, t + 3_900 * MS,
               {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "writer"})
    runs.append(R(0xB000, "batch-worker", [root, planner, writer,
                                           S(0x503, 0x501, "chat", "batch-worker", t + 20 * MS, t + 590 * MS, chat("gpt-4o-mini", 3_000, 300), kind="client"),
                                           S(0x504, 0x502, "chat", "batch-worker", t + 710 * MS, t + 3_800 * MS, chat("claude-sonnet-4-0", 30_000, 4_000), kind="client")]))
    return runs


ELAPSED = re.compile(r"\(quarter (\d+)% elapsed\)")


def normalize(text: str) -> str:
    return TIME.sub("<T>", text)


def normalize_pace(text: str) -> tuple[str, list[int]]:
    """The scorecard with its date-dependent figures as <E> and <P>, and the paces replaced."""
    lines = text.split("\n")
    header = next((i for i, line in enumerate(lines) if line.startswith("FUNCTION")), None)
    paces: list[int] = []
    if header is not None:
        # The PACE column is right-aligned under its 4-character header.
        start = lines[header].index("PACE")
        end = start + len("PACE")
        for i in range(header + 2, len(lines)):
            cell = lines[i][start:end]
            if re.fullmatch(r" *\d+%", cell):
                paces.append(int(cell.strip().rstrip("%")))
                lines[i] = lines[i][:start] + "<P>".rjust(end - start) + lines[i][end:]
    return ELAPSED.sub("(quarter <E> elapsed)", "\n".join(lines)), paces


@pytest.fixture(scope="module")
def daemon(daemon_factory, tmp_path_factory):
    registry = tmp_path_factory.mktemp("golden") / "registry.yaml"
    registry.write_text(REGISTRY)
    d = daemon_factory.start("golden", ["--registry", str(registry)])
    runs = fixed_runs(time.time_ns() // (60 * NS) * 60 * NS - 20 * 60 * NS)
    assert support.post_otlp(d.otlp_url, support.export_bytes([(r, r.spans) for r in runs])).status_code == 200
    support.wait_for_runs(d.api_url, len(runs))
    return d


CASES = {
    "query-workflow": ["query", "--since", "1h", "--group-by", "workflow"],
    "query-workflow-outcome-csv": ["query", "--since", "1h", "--group-by", "workflow,outcome", "--format", "csv"],
    "query-agent": ["query", "--since", "1h", "--group-by", "workflow,agent"],
    "query-model": ["query", "--since", "1h", "--group-by", "model"],
    "trace": ["trace", f"{0xA001:032x}"],
    "trace-csv": ["trace", f"{0xB000:032x}", "--format", "csv"],
    "top-spend": ["top", "--by", "spend", "--since", "1h"],
    "top-retries": ["top", "--by", "retries", "--since", "1h"],
    "scorecard": ["scorecard"],
    "routes": ["routes", "--since", "1h"],
    "alerts": ["alerts"],
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_cli_output_matches_golden(daemon, name):
    out = support.cli(*CASES[name], "--server", daemon.api_url).stdout.decode()
    got = normalize(out)
    if name == "scorecard":
        elapsed = int(ELAPSED.search(got).group(1))
        got, paces = normalize_pace(got)
        # support-answer: 3 accepted of a quarterly target of 100 (3%) against the share of
        # the quarter elapsed, which is printed rounded (hence the bounds).
        low, high = 300 / (elapsed + 0.5), (300 / (elapsed - 0.5) if elapsed >= 1 else float("inf"))
        assert len(paces) <= 1 and all(low - 0.5 <= p <= high + 0.5 for p in paces), (elapsed, paces)
        assert paces or elapsed == 0, "the pace is shown once any of the quarter has elapsed"
    path = GOLDEN / f"{name}.txt"
    if os.environ.get("SPANLEDGER_UPDATE_GOLDEN") == "1":
        path.write_text(got)
    assert path.exists(), f"no golden file {path}; run with SPANLEDGER_UPDATE_GOLDEN=1 and review it"
    want = path.read_text()
    assert got == want, f"{' '.join(CASES[name])} output changed:\n--- golden\n{want}\n--- got\n{got}"


def test_trace_lists_every_span_once_even_when_parents_form_a_cycle(daemon_factory):
    """Spans whose parents form a cycle, or that are their own parent, hang from no root:
    `spanledger trace` lists them after the tree, each once. A second span under an ID the
    trace already holds is taken for an export sent again and dropped (the first kept)."""
    d = daemon_factory.start("cycles", [])
    S, R = workload.SpanSpec, workload.RunSpec
    t = time.time_ns() - 60 * NS
    root = S(0x10, None, "invoke_workflow cyc", "svc", t, t + 500 * MS,
             {"gen_ai.operation.name": "invoke_workflow", "gen_ai.workflow.name": "cycles"})
    spans = [root,
             S(0x11, 0x10, "child", "svc", t + MS, t + 2 * MS),
             S(0x12, 0x13, "loop-a", "svc", t + 3 * MS, t + 4 * MS),
             S(0x13, 0x12, "loop-b", "svc", t + 5 * MS, t + 6 * MS),
             S(0x14, 0x14, "self-parent", "svc", t + 7 * MS, t + 8 * MS, chat("gpt-4o-mini", 100, 10), kind="client"),
             S(0x11, 0x10, "child-again", "svc", t + 9 * MS, t + 10 * MS)]
    run = R(0xC0C0, "svc", spans)
    assert support.post_otlp(d.otlp_url, support.export_bytes([(run, run.spans)])).status_code == 200
    support.wait_for_runs(d.api_url, 1)
    out = support.cli("trace", f"{0xC0C0:032x}", "--server", d.api_url, timeout=30).stdout.decode()
    rows = out.splitlines()
    names = [line.split()[0] for line in rows[rows.index(next(r for r in rows if r.startswith("---"))) + 1:] if line.strip()]
    assert sorted(names) == sorted(s.name.split()[0] for s in spans if s.name != "child-again"), out
    # The tree first (root, then its child), the spans no root reaches after it.
    assert names[:2] == ["invoke_workflow", "child"], out
    assert support.metric(d.api_url, "spanledger_spans_repeated_total") == 1
