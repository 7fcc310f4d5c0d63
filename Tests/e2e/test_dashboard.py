"""The web dashboard (`GET /`): headless Chromium renders the page served by the real
daemon, fed a known workload (the seeded workload of workload.py plus two hand-built runs
of one task, the second of them rework), and the rendered DOM must show the numbers
computed here from the runs' span attributes: headline accepted outcomes and cost per
accepted outcome, every workflow's row with its spend and accepted count, the diagnostics
lists, a workflow's trend charts (one point per step), routes and agents, one run's tree
with its spans and total cost, the scorecard and the firing alerts.

The page is read through stable hooks: `data-testid` attributes and `data-value` (the
number as the API gave it) beside the formatted text. Skipped only when no Chromium is
installed (`apt-get install chromium`; scripts/install-deps installs it)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence
from urllib.parse import quote

import pytest

import support
import workload

# --------------------------------------------------------------------------------------
# Headless Chromium and a small DOM.
# --------------------------------------------------------------------------------------

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium_binary() -> Optional[str]:
    explicit = os.environ.get("SPANLEDGER_CHROMIUM")
    if explicit:
        return explicit if shutil.which(explicit) else None
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


class Node:
    def __init__(self, tag: str, attrs: Dict[str, str], parent: Optional["Node"]):
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: List[object] = []  # Node or str

    def iter(self) -> Iterator["Node"]:
        yield self
        for c in self.children:
            if isinstance(c, Node):
                yield from c.iter()

    def text(self) -> str:
        if self.tag in ("script", "style", "title"):
            return ""
        parts = [c if isinstance(c, str) else c.text() for c in self.children]
        return " ".join(" ".join(parts).split())

    def get(self, name: str) -> Optional[str]:
        return self.attrs.get(name)

    def all(self, testid: Optional[str] = None, tag: Optional[str] = None, cls: Optional[str] = None) -> List["Node"]:
        out = []
        for n in self.iter():
            if n is self:
                continue
            if testid is not None and n.get("data-testid") != testid:
                continue
            if tag is not None and n.tag != tag:
                continue
            if cls is not None and cls not in (n.get("class") or "").split():
                continue
            out.append(n)
        return out

    def one(self, testid: str) -> "Node":
        found = self.all(testid)
        assert len(found) == 1, f"expected one element with data-testid={testid!r}, found {len(found)}; page text: {_excerpt(self)}"
        return found[0]

    def maybe(self, testid: str) -> Optional["Node"]:
        found = self.all(testid)
        return found[0] if found else None


def _excerpt(node: Node) -> str:
    root = node
    while root.parent is not None:
        root = root.parent
    main = next((n for n in root.iter() if n.get("id") == "main"), root)
    return main.text()[:1500]


class _Builder(HTMLParser):
    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {}, None)
        self.stack = [self.root]

    def handle_starttag(self, tag, attrs):
        n = Node(tag, {k: (v if v is not None else "") for k, v in attrs}, self.stack[-1])
        self.stack[-1].children.append(n)
        if tag not in self.VOID:
            self.stack.append(n)

    def handle_startendtag(self, tag, attrs):
        n = Node(tag, {k: (v if v is not None else "") for k, v in attrs}, self.stack[-1])
        self.stack[-1].children.append(n)

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data):
        self.stack[-1].children.append(data)


def parse_dom(html: str) -> Node:
    b = _Builder()
    b.feed(html)
    b.close()
    return b.root


@dataclass
class Browser:
    binary: str
    tmp: Path
    runs: int = 0

    def _run(self, args: Sequence[str], timeout: float = 90.0) -> bytes:
        """One headless Chromium run in its own process group (killed whole on timeout)."""
        self.runs += 1
        profile = self.tmp / f"profile-{self.runs}"
        cmd = [self.binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--no-proxy-server",
               "--hide-scrollbars", f"--user-data-dir={profile}", *args]
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             start_new_session=True)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.communicate()
            raise AssertionError(f"chromium did not finish within {timeout}s: {' '.join(cmd)}")
        finally:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
        assert p.returncode == 0, f"chromium exited {p.returncode}: {err.decode(errors='replace')[-2000:]}"
        return out

    def dom(self, url: str) -> Node:
        """The DOM once the page's scripts have run and it marked itself ready
        (<html data-ready="1">); a second try with more virtual time if not."""
        last = None
        for budget in (15_000, 40_000):
            html = self._run([f"--virtual-time-budget={budget}", "--dump-dom", url]).decode(errors="replace")
            root = parse_dom(html)
            doc = next((n for n in root.iter() if n.tag == "html"), None)
            if doc is not None and doc.get("data-ready") == "1":
                return root
            last = root
        raise AssertionError(f"{url}: the page never marked itself ready (html data-ready=1); text: {_excerpt(last)}")

    def screenshot(self, url: str, path: Path, size: str = "1400,1800") -> bytes:
        self._run([f"--virtual-time-budget=15000", f"--screenshot={path}", f"--window-size={size}", url])
        assert path.exists(), f"chromium wrote no screenshot to {path}"
        return path.read_bytes()


# --------------------------------------------------------------------------------------
# What the page must show, formatted as the page formats it.
# --------------------------------------------------------------------------------------

def js_fixed(v: float, places: int) -> str:
    """Number.prototype.toFixed for v >= 0: the exact binary value, ties away from zero."""
    return str(Decimal(v).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))


def fmt_usd(v: Optional[float]) -> str:
    """The page's money format: 6 decimals under $0.01, 4 under $1, else 2 with separators."""
    if v is None:
        return "—"
    a = abs(v)
    if a == 0:
        return "$0.00"
    whole, frac = js_fixed(a, 6 if a < 0.01 else 4 if a < 1 else 2).split(".")
    return ("-" if v < 0 else "") + "$" + f"{int(whole):,}" + "." + frac


def fmt_int(n: int) -> str:
    return f"{n:,}"


def fmt_pct(r: Optional[float]) -> str:
    return "—" if r is None else js_fixed(r * 100, 1) + "%"


def micros_div(micros: int, n: int) -> int:
    """micros / n rounded half up to a micro-dollar, as the API writes cost per accepted."""
    return int((Decimal(micros) / Decimal(n)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def attr(node: Node, name: str) -> str:
    v = node.get(name)
    assert v is not None, f"{node.tag} data-testid={node.get('data-testid')!r} has no {name} attribute (a page older than this test?)"
    return v


def value(node: Node) -> float:
    v = node.get("data-value")
    assert v not in (None, ""), f"{node.get('data-testid')} has no data-value: {node.text()!r}"
    return float(v)


# --------------------------------------------------------------------------------------
# The workload.
# --------------------------------------------------------------------------------------

CLAUDE = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "claude-sonnet-4-0",
          "gen_ai.usage.input_tokens": 10_000, "gen_ai.usage.output_tokens": 1_000}   # $0.045000
MINI = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": 10_000, "gen_ai.usage.output_tokens": 1_000}     # $0.002100

REGISTRY = """
one_off_max_runs: 3
workflows:
  - {name: support-answer, outcome: "A customer's question answered correctly without a rewrite", function: support,
     owner: ana@example.com, quarterly_target: 100, quarterly_budget_usd: 10}
  - {name: doc-summarize, outcome: "A document summarized well enough to skip reading it", function: operations,
     owner: bo@example.com}
"""
DECLARED = {"support-answer", "doc-summarize"}

# The workload calls a model with no price (workload.UNPRICED_MODEL): this rule fires.
ALERTS = "rules:\n  - {name: unpriced, type: unpriced_model, window: 1h}\n"

DETAIL_WORKFLOW = "triage-agent"  # several models and a sub-agent


@dataclass
class Seeded:
    daemon: support.Daemon
    work: workload.Workload
    runs: List[workload.RunSpec]
    facts: List[workload.RunFacts]
    rework_run: workload.RunSpec

    @property
    def url(self) -> str:
        return self.daemon.api_url + "/"

    def groups(self, group_by: Sequence[str] = (), workflow: Optional[str] = None):
        return workload.expected_groups(self.facts, group_by, workflow)

    @property
    def total(self) -> Dict:
        return self.groups()[()]

    def by_workflow(self) -> Dict[str, Dict]:
        return {k[0]: g for k, g in self.groups(("workflow",)).items()}


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Browser:
    binary = chromium_binary()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("no Chromium installed on CI: scripts/install-deps installs Debian's chromium")
        pytest.skip("no Chromium installed (looked for " + ", ".join(BROWSERS) + " and $SPANLEDGER_CHROMIUM): "
                    "the dashboard test renders the page in headless Chromium; apt-get install chromium")
    return Browser(binary, tmp_path_factory.mktemp("chromium"))


@pytest.fixture(scope="module")
def seeded(daemon_factory, tmp_path_factory) -> Seeded:
    tmp = tmp_path_factory.mktemp("dashboard-config")
    (tmp / "registry.yaml").write_text(REGISTRY)
    (tmp / "alerts.yaml").write_text(ALERTS)
    d = daemon_factory.start("dashboard", ["--registry", str(tmp / "registry.yaml"), "--alerts", str(tmp / "alerts.yaml")])
    work = workload.generate(seed=20261124, runs=120)
    workload.export_with_sdk(work.runs, d.otlp_url + "/v1/traces")
    # One task drafted twice: the first draft rejected, the second (accepted) is rework.
    now = time.time_ns()
    first = support.simple_run("drafter", [CLAUDE], verdict="rejected", start_ns=now - 12 * 60 * workload.NS_PER_S)
    second = support.simple_run("drafter", [MINI], verdict="accepted", start_ns=now - 10 * 60 * workload.NS_PER_S)
    for run in (first, second):
        run.root.attributes["outcome.task_id"] = "ticket-42"
    r = support.post_otlp(d.otlp_url, support.export_bytes([(run, run.spans) for run in (first, second)]))
    assert r.status_code == 200, r.text
    runs = list(work.runs) + [first, second]
    facts = list(work.facts) + [workload.interpret_run(first), workload.interpret_run(second)]
    support.wait_for_runs(d.api_url, len(runs), timeout=60)
    ok, alerts = support.wait_until(lambda: support.http("GET", d.api_url + "/api/v1/alerts").json(),
                                    lambda a: len(a.get("firing", [])) >= 1, timeout=30)
    assert ok, f"the unpriced_model alert never fired: {alerts}"
    return Seeded(d, work, runs, facts, second)


# --------------------------------------------------------------------------------------
# The page itself.
# --------------------------------------------------------------------------------------

def test_page_is_served_self_contained(seeded):
    for path in ("/", "/index.html"):
        r = support.http("GET", seeded.daemon.api_url + path)
        assert r.status_code == 200, (f"GET {path} -> {r.status_code}: {r.text[:300]} "
                                      "(the dashboard is DashboardPage.html, answered on GET / and GET /index.html)")
        assert r.headers.get("Content-Type") == "text/html; charset=utf-8", r.headers.get("Content-Type")
        page = r.text
        assert "<title>SpanLedger" in page and 'id="main"' in page, page[:500]
    assert len(page.encode()) < 100_000, f"the page is {len(page.encode())} bytes"
    lowered = page.lower()
    for external in ('src="http', "src='http", 'href="http', "href='http", "url(http", "@import", "//cdn", "<link rel=\"stylesheet"):
        assert external not in lowered, f"the page loads an external resource ({external!r}); it must work offline"


@pytest.mark.parametrize("fragment,active", [("", "24h"), ("#range=1h", "1h"), ("#range=7d", "7d")])
def test_headline(seeded, browser, fragment, active):
    dom = browser.dom(seeded.url + fragment)
    on = [n for n in dom.one("range-picker").all(tag="a") if "on" in (n.get("class") or "").split()]
    assert [n.get("data-testid") for n in on] == [f"range-{active}"], [n.get("data-testid") for n in on]
    t = seeded.total
    acc = t["accepted"] + t["edited"]

    accepted = dom.one("headline-accepted")
    assert accepted.text() == fmt_int(acc) and value(accepted) == acc, (accepted.text(), acc)

    cpa = dom.one("headline-cost-per-accepted")
    want = micros_div(t["cost_micros"], acc) / 1e6
    assert abs(value(cpa) - t["cost_micros"] / 1e6 / acc) <= 1e-6, (value(cpa), t["cost_micros"], acc)
    assert cpa.text() == fmt_usd(want), (cpa.text(), fmt_usd(want))

    spend = dom.one("headline-spend")
    assert value(spend) == t["cost_micros"] / 1e6 and spend.text() == fmt_usd(t["cost_micros"] / 1e6), spend.text()

    decided = acc + t["rejected"] + t["escalated"]
    rate = dom.one("headline-acceptance")
    assert abs(value(rate) - acc / decided) <= 1e-6 and rate.text() == fmt_pct(value(rate)), rate.text()

    rework = dom.one("headline-rework")  # one rework run (the second draft) among all runs
    assert abs(value(rework) - 1 / t["runs"]) <= 1e-6 and rework.text() == fmt_pct(value(rework)), rework.text()

    pending = dom.one("headline-pending")
    assert value(pending) == t["pending"] and pending.text() == fmt_int(t["pending"])

    firing = support.http("GET", seeded.daemon.api_url + "/api/v1/alerts").json()["firing"]
    alerts = dom.one("headline-alerts")
    assert value(alerts) == len(firing) >= 1 and alerts.text() == str(len(firing))
    assert "alarm" in (alerts.parent.get("class") or ""), "a firing alert must make its card red"

    # The trend: one point per step over the range's whole minutes up to and including the
    # current one (1 m steps over 1 h, 1 h over 24 h, 6 h over 7 d); it adds up to the total.
    spark = dom.one("headline-sparkline")
    points = int(attr(spark, "data-points"))
    assert points == {"1h": 61, "24h": 25, "7d": 29}[active], (active, points)
    assert len(spark.all(tag="polyline")[0].get("points").split()) == points
    assert int(attr(spark, "data-total")) == acc, (spark.get("data-total"), acc)


def test_workflow_table(seeded, browser):
    dom = browser.dom(seeded.url)
    expected = seeded.by_workflow()
    rows = [n for n in dom.one("workflow-table").all(tag="tr") if (n.get("data-testid") or "").startswith("workflow-row-")]
    got_order = [r.get("data-workflow") for r in rows]
    want_order = [w for w, _ in sorted(expected.items(), key=lambda kv: (-kv[1]["cost_micros"], kv[0]))]
    assert got_order == want_order, f"rows {got_order}, expected by spend {want_order}"
    for w, g in expected.items():
        row = dom.one(f"workflow-row-{w}")
        acc = g["accepted"] + g["edited"]
        cell = row.one(f"workflow-accepted-{w}")
        assert value(cell) == acc and cell.text() == fmt_int(acc), (w, cell.text(), acc)
        spend = row.one(f"workflow-spend-{w}")
        assert value(spend) == g["cost_micros"] / 1e6, (w, value(spend), g["cost_micros"])
        assert spend.text().startswith(fmt_usd(g["cost_micros"] / 1e6)), (w, spend.text())
        cpa = row.one(f"workflow-cost-per-accepted-{w}")
        if acc:
            assert cpa.text() == fmt_usd(micros_div(g["cost_micros"], acc) / 1e6), (w, cpa.text())
        else:
            assert cpa.text() == "—", (w, cpa.text())
        assert value(row.one(f"workflow-runs-{w}")) == g["runs"]
        assert value(row.one(f"workflow-retries-{w}")) == g["retries"]
        mix = row.one(f"workflow-mix-{w}")
        assert mix.get("data-mix") == ",".join(str(g[o]) for o in ("accepted", "edited", "rejected", "escalated", "pending"))
        assert len(mix.all(tag="rect")) == sum(1 for o in ("accepted", "edited", "rejected", "escalated", "pending") if g[o])
    rework = dom.one("workflow-rework-drafter")
    assert value(rework) == 0.5 and "1 run" in rework.text(), rework.text()


def test_diagnostics(seeded, browser):
    dom = browser.dom(seeded.url)
    expected = seeded.by_workflow()
    name_order = sorted(expected)

    def first(testid: str) -> str:
        items = dom.one(testid).all(f"{testid}-item")
        assert items, f"{testid} is empty"
        return items[0].get("data-workflow")

    by_spend = min(name_order, key=lambda w: (-expected[w]["cost_micros"], w))
    assert first("top-spend") == by_spend
    assert value(dom.one("top-spend").all("top-spend-item")[0]) == expected[by_spend]["cost_micros"] / 1e6
    assert first("top-retries") == min((w for w in name_order if expected[w]["retries"]), key=lambda w: (-expected[w]["retries"], w))

    def acceptance(g):
        d = g["accepted"] + g["edited"] + g["rejected"] + g["escalated"]
        return (g["accepted"] + g["edited"]) / d

    ranked = [w for w in name_order if expected[w]["accepted"] + expected[w]["edited"] + expected[w]["rejected"] + expected[w]["escalated"] >= 5]
    assert first("top-acceptance") == min(ranked, key=lambda w: (acceptance(expected[w]), w))
    # Nothing ran in the previous window: the largest change is the largest spend.
    assert first("top-change") == by_spend
    assert len(dom.one("top-spend").all("top-spend-item")) == min(5, len(expected))


def test_scorecard_and_alerts(seeded, browser):
    dom = browser.dom(seeded.url)
    expected = seeded.by_workflow()
    card = dom.one("scorecard")
    now = datetime.now(timezone.utc)
    quarter_start = datetime(now.year, 3 * ((now.month - 1) // 3) + 1, 1, tzinfo=timezone.utc)
    if (now - quarter_start).total_seconds() > 3600:  # every run started in this quarter
        for w in DECLARED:
            g = expected[w]
            assert value(card.one(f"scorecard-accepted-{w}")) == g["accepted"] + g["edited"], w
        undeclared = sum(g["cost_micros"] for w, g in expected.items() if w not in DECLARED)
        assert abs(value(card.one("scorecard-undeclared")) - undeclared / 1e6) <= 1e-6
        assert fmt_usd(undeclared / 1e6) in card.one("scorecard-undeclared").text()
    assert "drafter" in card.one("scorecard-one-off").text()

    alerts = dom.one("alerts")
    firing = alerts.all("alert-firing")
    assert firing and all(f.get("data-rule") == "unpriced" for f in firing), [f.text() for f in firing]
    assert workload.UNPRICED_MODEL in firing[0].one("alert-summary").text()


def test_workflow_detail(seeded, browser):
    w = DETAIL_WORKFLOW
    before = time.time()
    dom = browser.dom(seeded.url + f"#range=1h&workflow={quote(w, safe='')}")
    after = time.time()
    detail = dom.one("workflow-detail")
    assert detail.get("data-workflow") == w
    g = seeded.by_workflow()[w]
    acc = g["accepted"] + g["edited"]
    assert value(detail.one("detail-accepted")) == acc
    assert detail.one("detail-cost-per-accepted").text() == fmt_usd(micros_div(g["cost_micros"], acc) / 1e6)
    assert value(detail.one("detail-spend")) == g["cost_micros"] / 1e6

    # One point per one-minute step from the minute an hour ago through the current one.
    first_minutes = {datetime.fromtimestamp((int(t) - 3600) // 60 * 60, timezone.utc).strftime("%Y-%m-%dT%H:%M:00.000Z")
                     for t in (before, after)}
    charts = {c: dom.one(c) for c in ("chart-accepted", "chart-cost-per-accepted", "chart-spend", "chart-latency-p95")}
    for name, svg in charts.items():
        assert svg.tag == "svg", name
        assert int(attr(svg, "data-points")) == 61, (name, svg.get("data-points"))
        assert len(svg.all(tag="rect", cls="hit")) == 61, name
        assert attr(svg, "data-start") in first_minutes, (name, svg.get("data-start"), first_minutes)
    assert int(attr(charts["chart-accepted"], "data-total")) == acc
    assert abs(float(attr(charts["chart-spend"], "data-total")) - g["cost_micros"] / 1e6) <= 1e-6
    bars = charts["chart-accepted"].all(tag="rect", cls="bar")
    starts = {(f.start_ns // (60 * workload.NS_PER_S)) for f in seeded.facts if f.workflow == w and f.outcome in ("accepted", "edited")}
    assert len(bars) == len(starts), (len(bars), len(starts))

    # Routes: a row per model the workflow's runs called; the incumbent is the most used.
    runs_per_model = Counter(m for f in seeded.facts if f.workflow == w for m in f.models)
    rows = dom.one("routes-table").all("route-row")
    assert {r.get("data-model") for r in rows} == set(runs_per_model), ({r.get("data-model") for r in rows}, runs_per_model)
    top = runs_per_model.most_common()
    if len(top) == 1 or top[0][1] > top[1][1]:
        assert [r.get("data-model") for r in rows if r.get("data-incumbent") == "true"] == [top[0][0]]

    # Agents: the agent enclosing each LLM call (the root agent and its sub-agent).
    want_agents = set()
    for run, f in zip(seeded.runs, seeded.facts):
        if f.workflow != w:
            continue
        by_id = {s.span_id: s for s in run.spans}
        for sid in f.calls:
            s, agent = by_id[sid], ""
            while s is not None:
                if s.attributes.get("gen_ai.operation.name") == "invoke_agent" and s.attributes.get("gen_ai.agent.name"):
                    agent = s.attributes["gen_ai.agent.name"]
                    break
                s = by_id.get(s.parent_id) if s.parent_id is not None else None
            want_agents.add(agent)
    assert {r.get("data-agent") for r in dom.one("agents-table").all("agent-row")} == want_agents

    # Recent runs: the workflow's newest 20 runs, each a link to its tree.
    newest = sorted(((f.start_ns, f.trace_id) for f in seeded.facts if f.workflow == w), reverse=True)[:20]
    run_rows = dom.one("workflow-runs").all("run-row")
    assert [r.get("data-trace-id") for r in run_rows] == [t for _, t in newest]
    assert all((r.get("data-href") or "").endswith("trace=" + r.get("data-trace-id")) for r in run_rows)


def test_trace_view(seeded, browser):
    run = seeded.work.showcase
    facts = seeded.work.facts_for(run)
    dom = browser.dom(seeded.url + f"#range=1h&trace={run.trace_id_hex}")
    view = dom.one("trace-view")
    assert view.get("data-trace-id") == run.trace_id_hex
    cost = view.one("trace-cost")
    assert value(cost) == facts.cost_micros / 1e6 and cost.text() == fmt_usd(facts.cost_micros / 1e6), cost.text()
    assert view.one("trace-outcome").text() == facts.outcome
    assert view.one("trace-workflow").text() == facts.workflow

    tree = dom.one("trace-tree")
    rows = tree.all("span-row")
    assert len(rows) == len(run.spans), (len(rows), len(run.spans))
    by_id = {r.get("data-span-id"): r for r in rows}
    assert set(by_id) == {s.span_id_hex for s in run.spans}
    parents = {s.span_id: s.parent_id for s in run.spans}

    def depth(sid):
        d = 0
        while parents[sid] is not None:
            sid, d = parents[sid], d + 1
        return d

    for s in run.spans:
        row = by_id[s.span_id_hex]
        assert int(attr(row, "data-depth")) == depth(s.span_id), s.name
        assert (row.get("data-error") == "true") == s.error, s.name
        c = facts.calls.get(s.span_id)
        if c is not None:
            assert row.get("data-kind") == "llm"
            assert int(attr(row, "data-cost-micros")) == c.cost_micros, s.name
            assert (row.get("data-retry") == "true") == c.retry, s.name
            assert row.one("span-model").text().startswith(c.model), (row.one("span-model").text(), c.model)
    assert value(tree.one("trace-tree-total")) == facts.cost_micros / 1e6

    # The rework run says so.
    dom = browser.dom(seeded.url + f"#trace={seeded.rework_run.trace_id_hex}")
    assert dom.one("trace-rework").text().startswith("rework"), dom.one("trace-rework").text()


def test_unknown_trace(seeded, browser):
    dom = browser.dom(seeded.url + "#trace=" + "f" * 32)
    assert "No run with this trace ID" in dom.one("trace-error").text()


def test_screenshot(seeded, browser, tmp_path):
    path = tmp_path / "dashboard.png"
    data = browser.screenshot(seeded.url, path)
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:8]
    assert len(data) > 20_000, f"{path}: {len(data)} bytes, a blank page?"
    detail = browser.screenshot(seeded.url + f"#range=1h&workflow={DETAIL_WORKFLOW}", tmp_path / "dashboard-workflow.png")
    assert detail[:8] == b"\x89PNG\r\n\x1a\n" and len(detail) > 20_000
