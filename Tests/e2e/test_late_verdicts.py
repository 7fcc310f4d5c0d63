"""Verdicts that arrive after the spans, from the three sources — POST /v1/outcomes (and
`spanledger outcome`), a feedback span in another trace linking to the run, a span of the
run that arrives after its release — in every order: before the spans (held), changed
twice, after a graceful restart and after SIGKILL. The rollups must equal the ground
truth this test computes: each run counted once, under its latest verdict, in its start
minute; totals over all outcomes never change."""

from __future__ import annotations

import dataclasses
import subprocess
import time
from typing import Dict, List, Optional

import requests

import support
import workload

SEED = 5150
NS = 1_000_000_000


def post_outcomes(d: support.Daemon, body) -> requests.Response:
    return requests.post(d.otlp_url + "/v1/outcomes", json=body, timeout=30)


def verdict(run: workload.RunSpec, outcome: str, **extra) -> Dict[str, str]:
    return {"trace_id": run.trace_id_hex, "outcome": outcome, **extra}


def rfc3339(ns: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // NS)) + f".{(ns % NS) // 1000:06d}Z"


class Truth:
    """Ground truth: the facts of every run sent, with its outcome as the latest verdict decides."""

    def __init__(self) -> None:
        self.facts: Dict[str, workload.RunFacts] = {}

    def add(self, run: workload.RunSpec, outcome: Optional[str] = None) -> None:
        f = workload.interpret_run(run, check_intent=False)
        self.facts[run.trace_id_hex] = dataclasses.replace(f, outcome=outcome or f.outcome)

    def set(self, run: workload.RunSpec, outcome: str) -> None:
        self.facts[run.trace_id_hex] = dataclasses.replace(self.facts[run.trace_id_hex], outcome=outcome)

    def check(self, d: support.Daemon, where: str) -> None:
        facts = list(self.facts.values())
        for group_by, exact in [((), workload.EXACT_FIELDS), (("workflow", "outcome"), workload.EXACT_FIELDS),
                                (("outcome",), workload.EXACT_FIELDS), (("model", "outcome"), workload.MODEL_EXACT_FIELDS)]:
            try:
                support.check_groups(support.rollups(d.api_url, group_by), workload.expected_groups(facts, group_by), group_by, exact)
            except AssertionError as e:
                raise AssertionError(f"{where}: {e}") from None


def test_late_verdicts_from_every_source_in_every_order(daemon_factory):
    d = daemon_factory.start("verdicts")
    truth = Truth()
    w = workload.generate(SEED, 60)
    sent = workload.export_with_sdk(w.runs, d.otlp_url + "/v1/traces")  # raises on any failure
    assert sum(sent.values()) == w.span_count, sent
    for r in w.runs:
        truth.add(r)
    support.wait_for_runs(d.api_url, len(w.runs))
    support.settle(d.api_url, ())
    truth.check(d, "as exported")
    before_totals = support.total(d.api_url)

    by_outcome: Dict[str, List[workload.RunSpec]] = {}
    for r in w.runs:
        by_outcome.setdefault(truth.facts[r.trace_id_hex].outcome, []).append(r)
    pending = by_outcome["pending"]
    decided = [r for o in ("accepted", "edited", "rejected", "escalated") for r in by_outcome.get(o, [])]
    assert len(pending) >= 6 and len(decided) >= 7, {k: len(v) for k, v in by_outcome.items()}

    # 1. API verdicts on pending runs (a batch), and on decided runs (corrections).
    batch = [verdict(pending[0], "accepted", reviewer="ana", reviewer_kind="human"),
             verdict(pending[1], "rejected", reviewer="grader-7", reviewer_kind="llm", comment="wrong refund amount"),
             verdict(pending[2], "edited")]
    r = post_outcomes(d, {"outcomes": batch})
    assert r.status_code == 200, r.text
    assert [x["result"] for x in r.json()["results"]] == ["applied", "applied", "applied"], r.json()
    truth.set(pending[0], "accepted")
    truth.set(pending[1], "rejected")
    truth.set(pending[2], "edited")
    flip = {"accepted": "rejected", "edited": "escalated", "rejected": "accepted", "escalated": "accepted"}
    for run in decided[:3]:
        new = flip[truth.facts[run.trace_id_hex].outcome]
        r = post_outcomes(d, verdict(run, new, reviewer="qa"))
        assert r.status_code == 200 and r.json()["results"][0]["result"] == "corrected", r.text
        truth.set(run, new)
    # Changed twice: the latest by time wins, whatever order the verdicts arrive in.
    twice = decided[3]
    t = time.time_ns()
    for outcome, at in [("escalated", t - 20 * NS), ("accepted", t - 5 * NS), ("rejected", t - 10 * NS)]:
        assert post_outcomes(d, verdict(twice, outcome, time=rfc3339(at))).status_code == 200
    truth.set(twice, "accepted")
    # An older verdict than the one on the spans changes nothing.
    old = decided[4]
    r = post_outcomes(d, verdict(old, flip[truth.facts[old.trace_id_hex].outcome], time=rfc3339(time.time_ns() - 3600 * NS)))
    assert r.json()["results"][0]["result"] == "superseded", r.text
    # Through the CLI.
    out = subprocess.run([str(support.spanledger_bin()), "outcome", pending[3].trace_id_hex, "accepted", "--reviewer", "bo",
                          "--server", d.otlp_url], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "applied" in out.stdout, (out.stdout, out.stderr)
    truth.set(pending[3], "accepted")

    # 2. A feedback span in another trace, linking to the run it reviews.
    reviewed = pending[4]
    fb = support.simple_run("review-bot", [], verdict=None)
    fb.root.attributes["outcome.verdict"] = "thumbs_down"
    fb.root.links.append((reviewed.trace_id, reviewed.root.span_id))
    assert support.post_otlp(d.otlp_url, support.export_bytes([(fb, fb.spans)])).status_code == 200
    truth.add(fb, "pending")  # the feedback trace is a run of its own, without the verdict
    truth.set(reviewed, "rejected")
    # An evaluation span (GenAI evaluation attributes on the span) linking to a decided run.
    evaluated = decided[6]
    ev = support.simple_run("eval-harness", [], verdict=None)
    ev.root.attributes.update({"gen_ai.evaluation.name": "helpfulness", "gen_ai.evaluation.score.label": "escalate"})
    ev.root.links.append((evaluated.trace_id, evaluated.root.span_id))
    assert support.post_otlp(d.otlp_url, support.export_bytes([(ev, ev.spans)])).status_code == 200
    truth.add(ev, "pending")
    truth.set(evaluated, "escalated")

    # 3. A late span of the run carrying an evaluation event.
    late_run = pending[5]
    late = support.add_late_call(late_run, {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
                                            "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 100})
    late.events.append(workload.Event("gen_ai.evaluation.result", time.time_ns(), {"gen_ai.evaluation.score.label": "pass"}))
    assert support.post_otlp(d.otlp_url, support.export_bytes([(late_run, [late])])).status_code == 200
    truth.add(late_run, "accepted")  # now with the late call

    # 4. Verdicts before their spans: held, applied on release. For `early_older` the
    #    run's own span verdict is later than the held one and wins.
    early = support.simple_run("refund-agent", [{"gen_ai.operation.name": "chat", "gen_ai.request.model": "claude-sonnet-4-0",
                                                 "gen_ai.usage.input_tokens": 5000, "gen_ai.usage.output_tokens": 400}], verdict=None)
    early_older = support.simple_run("refund-agent", [{"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
                                                       "gen_ai.usage.input_tokens": 700, "gen_ai.usage.output_tokens": 70}],
                                     verdict="approved")
    r = post_outcomes(d, {"outcomes": [verdict(early, "escalated"),
                                       verdict(early_older, "rejected", time=rfc3339(early_older.root.start_ns))]})
    assert [x["result"] for x in r.json()["results"]] == ["held", "held"], r.text
    assert support.metric(d.api_url, "spanledger_verdicts_held") == 2
    assert support.post_otlp(d.otlp_url, support.export_bytes([(early, early.spans), (early_older, early_older.spans)])).status_code == 200
    truth.add(early, "escalated")
    truth.add(early_older)  # accepted (its span verdict is later)

    ok, _ = support.wait_until(lambda: support.total(d.api_url), lambda g: g.get("runs") == len(truth.facts), timeout=30)
    assert ok
    support.settle(d.api_url, ("outcome",))
    truth.check(d, "after late verdicts")
    after = support.total(d.api_url)
    assert after["runs"] == len(truth.facts)

    t = support.get_trace(d.api_url, pending[1].trace_id_hex).json()
    assert t["outcome"] == "rejected" and t["verdict"]["source"] == "api", t["verdict"]
    assert t["verdict"]["reviewer"] == "grader-7" and t["verdict"]["reviewer_kind"] == "llm"
    assert support.get_trace(d.api_url, reviewed.trace_id_hex).json()["verdict"]["source"] == "feedback_span"
    assert support.get_trace(d.api_url, late_run.trace_id_hex).json()["verdict"]["source"] == "late_span"
    assert support.get_trace(d.api_url, twice.trace_id_hex).json()["verdict"]["corrections"] >= 1

    # 5. Restart changes nothing; a verdict after the restart moves a run flushed before it.
    assert d.stop() == 0
    d.start()
    truth.check(d, "after a graceful restart")
    r = post_outcomes(d, verdict(decided[5], flip[truth.facts[decided[5].trace_id_hex].outcome]))
    assert r.json()["results"][0]["result"] == "corrected", r.text
    truth.set(decided[5], flip[truth.facts[decided[5].trace_id_hex].outcome])
    # Acknowledged verdicts survive SIGKILL (they are in the write-ahead log).
    r = post_outcomes(d, verdict(pending[0], "escalated"))
    assert r.json()["results"][0]["result"] == "corrected"
    truth.set(pending[0], "escalated")
    held_after = support.simple_run("late-bloomer", [], verdict=None)
    assert post_outcomes(d, verdict(held_after, "accepted")).json()["results"][0]["result"] == "held"
    d.kill()
    d.start()
    truth.check(d, "after SIGKILL and replay")
    assert support.post_otlp(d.otlp_url, support.export_bytes([(held_after, held_after.spans)])).status_code == 200
    truth.add(held_after, "accepted")
    ok, _ = support.wait_until(lambda: support.total(d.api_url), lambda g: g.get("runs") == len(truth.facts), timeout=30)
    assert ok
    support.settle(d.api_url, ("outcome",))
    truth.check(d, "held verdict applied after SIGKILL")
    # A verdict held across a flush and a graceful restart still applies.
    held_flushed = support.simple_run("late-bloomer", [], verdict=None)
    assert post_outcomes(d, verdict(held_flushed, "rejected")).json()["results"][0]["result"] == "held"
    time.sleep(2.5)  # a flush writes the held verdicts; the checkpoint passes their log record
    assert d.stop() == 0
    d.start()
    assert support.post_otlp(d.otlp_url, support.export_bytes([(held_flushed, held_flushed.spans)])).status_code == 200
    truth.add(held_flushed, "rejected")
    ok, _ = support.wait_until(lambda: support.total(d.api_url), lambda g: g.get("runs") == len(truth.facts), timeout=30)
    assert ok
    support.settle(d.api_url, ("outcome",))
    truth.check(d, "held verdict applied after a restart")
    # Corrections moved runs between outcomes only: the totals differ from the first
    # ones exactly by the runs and calls sent since.
    final = support.total(d.api_url)
    added = [truth.facts[r.trace_id_hex] for r in (fb, ev, early, early_older, held_after, held_flushed)]
    assert final["runs"] == before_totals["runs"] + len(added)
    late_cost = workload.interpret_run(late_run, check_intent=False).cost_micros - w.facts_for(late_run).cost_micros
    assert final["cost_micros"] == before_totals["cost_micros"] + sum(f.cost_micros for f in added) + late_cost


def test_outcome_api_errors(daemon_factory):
    d = daemon_factory.start("verdict-errors", ["--correction-window", "7d"])
    old = support.simple_run("archive", [{"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
                                          "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 1}],
                             verdict=None, start_ns=time.time_ns() - 8 * 86_400 * NS)
    fresh = support.simple_run("archive", [], verdict=None)
    assert support.post_otlp(d.otlp_url, support.export_bytes([(old, old.spans), (fresh, fresh.spans)])).status_code == 200
    ok, _ = support.wait_until(lambda: support.rollups(d.api_url, since="30d")["groups"],
                               lambda g: bool(g) and g[0]["runs"] == 2, timeout=30)
    assert ok
    before = support.rollups(d.api_url, ("outcome",), since="30d")

    cases = [
        ({"trace_id": "xyz", "outcome": "accepted"}, 400, "trace_id: 'xyz' is not 32 hex digits"),
        ({"trace_id": fresh.trace_id_hex, "outcome": "maybe"}, 400, "outcome: 'maybe' is not accepted, edited, rejected or escalated"),
        ({"trace_id": fresh.trace_id_hex}, 400, "outcome: required"),
        ({"trace_id": fresh.trace_id_hex, "outcome": "accepted", "reviewer_kind": "robot"}, 400, "reviewer_kind: human, llm or code"),
        ({"trace_id": fresh.trace_id_hex, "outcome": "accepted", "time": "yesterday"}, 400, "time: an RFC 3339 time"),
        ({"trace_id": fresh.trace_id_hex, "outcome": "accepted", "colour": "red"}, 400, "colour: unknown field"),
        ({"outcomes": [verdict(fresh, "accepted"), {"trace_id": "00" * 16, "outcome": "accepted"}]}, 400, "outcomes[1].trace_id"),
        ({"outcomes": [verdict(fresh, "accepted"), verdict(old, "accepted")]}, 422, "before the correction window (7 days)"),
    ]
    for body, status, message in cases:
        r = post_outcomes(d, body)
        assert r.status_code == status, (body, r.status_code, r.text)
        assert message in r.json()["error"]["message"], (body, r.text)
    r = requests.post(d.otlp_url + "/v1/outcomes", data="not json", headers={"Content-Type": "application/json"}, timeout=10)
    assert r.status_code == 400 and "not valid JSON" in r.text
    r = requests.post(d.otlp_url + "/v1/outcomes", data="x", headers={"Content-Type": "text/plain"}, timeout=10)
    assert r.status_code == 415
    r = requests.get(d.otlp_url + "/v1/outcomes", timeout=10)
    assert r.status_code == 405 and r.headers["Allow"] == "POST"
    # Nothing of the refused batches was applied.
    assert support.rollups(d.api_url, ("outcome",), since="30d")["groups"] == before["groups"]
    out = subprocess.run([str(support.spanledger_bin()), "outcome", old.trace_id_hex, "accepted", "--server", d.otlp_url],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "correction window" in out.stderr, (out.stdout, out.stderr)


def test_index_segments_match_the_documented_schema(daemon_factory):
    """The trace index on disk decodes with Schemas/spanledger/v1/rollup.proto: a
    corrected run's entry carries its verdict as documented, its trace ID, start and
    duration in the segment's stored part."""
    d = daemon_factory.start("verdict-schema")
    run = support.simple_run("schema-check", [{"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
                                              "gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 10}])
    assert support.post_otlp(d.otlp_url, support.export_bytes([(run, run.spans)])).status_code == 200
    support.wait_for_runs(d.api_url, 1)
    time.sleep(2.5)  # the release is flushed (--flush-interval 1s) before the correction
    at = time.time_ns() // 1000 * 1000
    r = post_outcomes(d, verdict(run, "escalated", reviewer="lee", reviewer_kind="code", time=rfc3339(at)))
    assert r.json()["results"][0]["result"] == "corrected", r.text
    assert d.stop() == 0

    entries = []
    for raw, seg in support.decoded_segments(d.data_dir / "index", "index-*.seg", "TraceIndexSegment"):
        # Entry by entry, the stored part: trace ID, zigzag start delta, duration.
        assert seg.format_version == 2 and bytes(seg.stored) in raw, "stored as it is"
        pos, start = 0, 0
        for e in seg.entries:
            trace_id = seg.stored[pos:pos + 16]
            delta, pos = support.varint(seg.stored, pos + 16)
            duration, pos = support.varint(seg.stored, pos)
            start += support.unzigzag(delta)
            if trace_id == run.trace_id.to_bytes(16, "big"):
                assert start == run.root.start_ns and duration == run.root.end_ns - run.root.start_ns
                entries.append((seg.strings, e))
        assert pos == len(seg.stored)
    assert len(entries) == 2, "one entry at release, one after the correction"
    strings, last = entries[-1]
    assert last.outcome == 4 and last.corrections == 1  # OUTCOME_ESCALATED; accepted → escalated
    assert last.verdict_time_unix_nano == at
    assert last.verdict_source == 2 and last.reviewer_kind == 3  # API, code
    assert strings[last.reviewer] == "lee" and strings[last.workflow] == "schema-check"
    first = entries[0][1]
    assert first.outcome == 1 and first.verdict_source == 1 and first.corrections == 0  # accepted, from spans
