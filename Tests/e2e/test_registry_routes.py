"""The outcome registry, the scorecard and model routes on a seeded workload whose right
answers are computed here by hand (prices: claude-sonnet-4 $3 / $15 and gpt-4o-mini
$0.15 / $0.60 per million input / output tokens)."""

from __future__ import annotations

import time

import pytest
import requests

import support

CLAUDE = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "claude-sonnet-4-0",
          "gen_ai.usage.input_tokens": 10_000, "gen_ai.usage.output_tokens": 1_000}   # $0.045000
MINI = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": 10_000, "gen_ai.usage.output_tokens": 1_000}     # $0.002100

REGISTRY = """
one_off_max_runs: 3
workflows:
  - {name: support-answer, outcome: "A customer's question answered correctly without a rewrite", function: support,
     owner: ana@example.com, quarterly_target: 100, quarterly_budget_usd: 10}
  - {name: "lead-*", outcome: "A qualified lead handed to sales with a next step", function: sales, owner: bo@example.com}
  - {name: code-review, outcome: "A pull request reviewed with findings the author accepted", function: engineering,
     owner: cy@example.com, quarterly_target: 50}
"""


def runs(workflow, call, accepted, rejected=0, pending=0):
    out = []
    for verdict, n in (("accepted", accepted), ("rejected", rejected), (None, pending)):
        out += [support.simple_run(workflow, [call], verdict=verdict, start_ns=time.time_ns() - 10 * 60 * 1_000_000_000) for _ in range(n)]
    return out


@pytest.fixture(scope="module")
def seeded(daemon_factory, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("registry")
    registry = tmp / "registry.yaml"
    registry.write_text(REGISTRY)
    alerts = tmp / "alerts.yaml"
    alerts.write_text("evaluation_interval: 1s\nrules:\n"
                      "  - {name: support-budget, type: spend_budget, function: support, budget_usd: 1, period: month}\n")
    d = daemon_factory.start("registry", ["--registry", str(registry), "--alerts", str(alerts)])
    all_runs = (runs("support-answer", CLAUDE, 48, rejected=12) + runs("support-answer", MINI, 47, rejected=13)
                + runs("code-review", CLAUDE, 54, rejected=6) + runs("code-review", MINI, 27, rejected=33)
                + runs("lead-enrich", MINI, 2) + runs("mystery-bot", CLAUDE, 0, pending=4))
    for i in range(0, len(all_runs), 50):
        batch = all_runs[i:i + 50]
        r = support.post_otlp(d.otlp_url, support.export_bytes([(run, run.spans) for run in batch]))
        assert r.status_code == 200, r.text
    support.wait_for_runs(d.api_url, len(all_runs))
    return d


def test_group_by_function(seeded):
    groups = support.rollups(seeded.api_url, ("function",))["groups"]
    got = {g["function"]: (g["runs"], g["cost_micros"]) for g in groups}
    # support: 60 × $0.045 + 60 × $0.0021 = $2.826000; engineering the same; sales 2 × $0.0021
    assert got == {"support": (120, 2_826_000), "engineering": (120, 2_826_000), "(undeclared)": (4, 180_000), "sales": (2, 4_200)}, got
    out = support.cli("query", "--server", seeded.api_url, "--since", "1h", "--group-by", "function").stdout.decode()
    assert "(undeclared)" in out and "engineering" in out


def test_scorecard(seeded):
    r = requests.get(seeded.api_url + "/api/v1/scorecard", timeout=10)
    assert r.status_code == 200, r.text
    card = r.json()
    assert card["total_cost_usd"] == 5.8362
    by_function = {f["function"]: f for f in card["functions"]}
    assert set(by_function) == {"support", "engineering", "sales"}
    s = by_function["support"]
    assert (s["accepted"], s["target"], s["budget_usd"], s["cost_usd"]) == (95, 100, 10.0, 2.826)
    assert s["cost_per_accepted_usd"] == 0.029747  # $2.826000 / 95 = $0.0297473…
    w = s["workflows"][0]
    assert w["workflow"] == "support-answer" and w["owner"] == "ana@example.com"
    assert w["target_attainment"] == 0.95 and w["budget_used"] == 0.2826
    assert w["cost_per_accepted_trend"] is None  # nothing accepted in the 7 days before
    assert w["cost_per_accepted_last_7d_usd"] == 0.029747
    assert by_function["engineering"]["workflows"][0]["target_attainment"] == 1.62  # 81 / 50
    und = card["undeclared"]
    assert [x["workflow"] for x in und["workflows"]] == ["mystery-bot"] and und["cost_usd"] == 0.18
    assert und["share_of_spend"] == round(180_000 / 5_836_200, 6)
    assert [x["workflow"] for x in card["one_off"]["workflows"]] == ["lead-enrich"] and card["one_off"]["max_runs"] == 3
    out = support.cli("scorecard", "--server", seeded.api_url).stdout.decode()
    assert "support-answer" in out and "No declared outcome: $0.18" in out and "lead-enrich" in out, out


def test_routes(seeded):
    r = requests.get(seeded.api_url + "/api/v1/routes?since=1h", timeout=10)
    assert r.status_code == 200, r.text
    doc = r.json()
    recs = {(x["workflow"], x["candidate"]): x for x in doc["recommendations"]}
    sw = recs[("support-answer", "gpt-4o-mini")]
    assert sw["incumbent"] == "claude-sonnet-4-0" and sw["verdict"] == "switch"
    # (45,000 − 2,100) micro-dollars per run × 60 incumbent runs
    assert sw["savings_micros"] == 2_574_000 and sw["savings_usd"] == 2.574
    assert "two-proportion z-test" in sw["test"] and sw["p_value"] > 0.05
    cr = recs[("code-review", "gpt-4o-mini")]
    assert cr["verdict"] == "worse" and cr["p_value"] < 0.001
    routes = {(x["workflow"], x["model"]): x for x in doc["routes"]}
    claude = routes[("support-answer", "claude-sonnet-4-0")]
    assert claude["incumbent"] and claude["acceptance_rate"] == 0.8
    assert claude["acceptance_low"] < 0.8 < claude["acceptance_high"]
    assert claude["cost_per_accepted_usd"] == 0.05625  # $2.700000 / 48
    out = support.cli("routes", "--server", seeded.api_url, "--since", "1h").stdout.decode()
    assert "switch" in out and "worse" in out and "2.574000" in out, out
    bad = requests.get(seeded.api_url + "/api/v1/routes?confidence=2", timeout=10)
    assert bad.status_code == 400


def test_alert_rules_scope_by_registry_functions(seeded):
    ok, doc = support.wait_until(lambda: requests.get(seeded.api_url + "/api/v1/alerts", timeout=10).json(),
                                 lambda d: any(a["rule"] == "support-budget" for a in d["firing"]), timeout=20)
    assert ok, doc
    firing = [a for a in doc["firing"] if a["rule"] == "support-budget"]
    assert all(a["labels"]["function"] == "support" for a in firing)
    assert {a["labels"]["threshold"] for a in firing} == {"warning", "critical"}


def test_a_bad_registry_is_refused_at_start(daemon_factory, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("workflows:\n  - {name: x, outcome: 'Does the thing well', function: astrology, owner: me}\n")
    d = daemon_factory.create("bad-registry", ["--registry", str(bad)])
    with pytest.raises(AssertionError) as e:
        d.start(timeout=20)
    assert "'astrology' is not one of" in str(e.value)
