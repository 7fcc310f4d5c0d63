"""Alert hooks end to end: the real daemon evaluates rules over what it ingests and
delivers to a real HTTP receiver process (Tests/e2e/webhook_receiver.py) and to a real
command. Firing, repeat, resolved, retry on 500, no retry on 400, dedupe by fingerprint,
restarts that neither re-send nor forget, the exec hook, a token spike on a 1 s step,
budgets, acceptance and retry storms, and rule files that are refused with a reason."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

import pytest
import requests

import support

HERE = Path(__file__).resolve().parent
UNPRICED = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "mystery-model-x",
            "gen_ai.usage.input_tokens": 1_000, "gen_ai.usage.output_tokens": 200}
PRICED = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "claude-sonnet-4-0",
          "gen_ai.usage.input_tokens": 100_000, "gen_ai.usage.output_tokens": 10_000}  # $0.45


class Receiver:
    """webhook_receiver.py in its own process on a loopback port chosen by the OS."""

    def __init__(self, tmp: Path):
        port_file = tmp / "receiver.port"
        self.proc = subprocess.Popen([sys.executable, str(HERE / "webhook_receiver.py"), "--port-file", str(port_file)],
                                     stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while not port_file.exists():
            assert self.proc.poll() is None, "webhook receiver exited"
            assert time.monotonic() < deadline, "webhook receiver did not start"
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{port_file.read_text()}"

    def plan(self, path: str, statuses: List[int]) -> None:
        requests.post(self.url + "/_control/plan", json={"path": path, "statuses": statuses}, timeout=5).raise_for_status()

    def requests(self, path: str) -> List[Dict[str, Any]]:
        got = requests.get(self.url + "/_control/requests", timeout=5).json()
        return [r for r in got if r["path"] == path]

    def wait(self, path: str, count: int, timeout: float = 30.0) -> List[Dict[str, Any]]:
        ok, got = support.wait_until(lambda: self.requests(path), lambda rs: len(rs) >= count, timeout=timeout)
        assert ok, f"{path}: expected {count} requests, got {len(got)}: {json.dumps(got)[:2000]}"
        return got

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture()
def receiver(tmp_path):
    r = Receiver(tmp_path)
    yield r
    r.close()


def run_cli(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    """The CLI's exit code and text output, whatever the exit code."""
    return subprocess.run([str(support.spanledger_bin()), *args], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout)


def rules_file(tmp: Path, name: str, text: str) -> Path:
    p = tmp / f"{name}.yaml"
    p.write_text(text)
    return p


def send(d: support.Daemon, *runs) -> None:
    r = support.post_otlp(d.otlp_url, support.export_bytes([(run, run.spans) for run in runs]))
    assert r.status_code == 200, (r.status_code, r.content[:500])


def alerts(d: support.Daemon) -> Dict[str, Any]:
    r = requests.get(d.api_url + "/api/v1/alerts", timeout=10)
    assert r.status_code == 200, r.text[:500]
    return r.json()


def check_alertmanager_payload(body: Dict[str, Any], status: str, receiver: str) -> Dict[str, Any]:
    """The Prometheus Alertmanager webhook payload, version 4."""
    for key in ("version", "groupKey", "truncatedAlerts", "status", "receiver", "groupLabels", "commonLabels",
                "commonAnnotations", "externalURL", "alerts"):
        assert key in body, f"payload lacks {key}: {body}"
    assert body["version"] == "4" and body["status"] == status and body["receiver"] == receiver, body
    assert len(body["alerts"]) == 1, body
    a = body["alerts"][0]
    for key in ("status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"):
        assert key in a, f"alert lacks {key}: {a}"
    assert a["status"] == status
    assert re.fullmatch(r"[0-9a-f]{16}", a["fingerprint"]), a["fingerprint"]
    assert support.parse_rfc3339_ns(a["startsAt"]) > 0
    if status == "firing":
        assert a["endsAt"] == "0001-01-01T00:00:00Z", a["endsAt"]
    else:
        assert support.parse_rfc3339_ns(a["endsAt"]) >= support.parse_rfc3339_ns(a["startsAt"])
    assert a["labels"]["alertname"] and "summary" in a["annotations"] and "query" in a["annotations"]
    assert a["annotations"]["query"].startswith(body["externalURL"] + "/api/v1/rollups?"), a["annotations"]
    assert body["commonLabels"] == a["labels"]
    return a


def test_unpriced_model_fires_repeats_resolves_and_dedupes(daemon_factory, receiver, tmp_path):
    rules = rules_file(tmp_path, "unpriced", f"""
evaluation_interval: 1s
delivery: {{repeat_interval: 4s, retry_initial: 200ms}}
hooks:
  - {{name: am, type: webhook, url: "{receiver.url}/am", headers: {{Authorization: "Bearer s3cret"}}}}
  - {{name: chat, type: slack, url: "{receiver.url}/slack"}}
default_hooks: [am, chat]
rules:
  - {{name: unpriced-models, type: unpriced_model, window: 5s, labels: {{team: platform}}}}
""")
    d = daemon_factory.start("unpriced", ["--alerts", str(rules)])
    t0 = time.time()
    send(d, support.simple_run("triage", [UNPRICED]))
    first = receiver.wait("/am", 1)
    assert first[0]["headers"]["authorization"] == "Bearer s3cret"
    a = check_alertmanager_payload(first[0]["body"], "firing", "am")
    assert a["labels"]["model"] == "mystery-model-x" and a["labels"]["alertname"] == "unpriced-models"
    assert a["labels"]["rule_type"] == "unpriced_model" and a["labels"]["team"] == "platform"
    assert "mystery-model-x" in a["annotations"]["summary"] and "triage" in a["annotations"]["summary"]
    slack = receiver.wait("/slack", 1)[0]["body"]
    assert slack["text"].startswith("[FIRING] unpriced-models"), slack
    assert "mystery-model-x" in slack["text"]

    # The same model again while firing: same fingerprint, no new notification.
    send(d, support.simple_run("triage", [UNPRICED]))
    time.sleep(1.5)
    assert len(receiver.requests("/am")) == 1, "a second firing notification was sent for the same alert"

    # Repeat after 4 s, resolved once the 5 s window holds no unpriced call (about 5.5 s
    # after the first, as the second run extends the window): no second repeat fits.
    got = receiver.wait("/am", 3, timeout=30)
    statuses = [r["body"]["status"] for r in got]
    assert statuses == ["firing", "firing", "resolved"], statuses
    assert len({r["body"]["alerts"][0]["fingerprint"] for r in got}) == 1
    resolved = check_alertmanager_payload(got[2]["body"], "resolved", "am")
    assert resolved["startsAt"] == a["startsAt"]
    assert receiver.wait("/slack", 3)[2]["body"]["text"].startswith("[RESOLVED]")
    time.sleep(4)  # no more repeats once resolved
    assert len(receiver.requests("/am")) == 3, [r["body"]["status"] for r in receiver.requests("/am")]
    assert time.time() - t0 < 60

    doc = alerts(d)
    assert doc["firing"] == [] and doc["resolved"][0]["labels"]["model"] == "mystery-model-x"
    results = [(n["hook"], n["status"], n["result"], n["attempts"]) for n in doc["notifications"]]
    assert sorted(results) == sorted([("am", "firing", "delivered", 1)] * 2 + [("am", "resolved", "delivered", 1)]
                                     + [("chat", "firing", "delivered", 1)] * 2 + [("chat", "resolved", "delivered", 1)]), results
    m = support.metrics(d.api_url)
    assert m["spanledger_alert_notifications_delivered_total"] == 6 and m["spanledger_alerts_firing"] == 0
    out = run_cli("alerts", "--server", d.api_url)
    assert out.returncode == 0, out.stderr
    assert "No alert is firing." in out.stdout and "unpriced-models" in out.stdout and "delivered" in out.stdout


def test_retry_on_500_and_no_retry_on_400(daemon_factory, receiver, tmp_path):
    receiver.plan("/flaky", [500, 503])
    receiver.plan("/bad", [400])
    rules = rules_file(tmp_path, "retry", f"""
delivery: {{retry_initial: 300ms, retry_max: 2s, retry_deadline: 1m}}
hooks:
  - {{name: flaky, type: webhook, url: "{receiver.url}/flaky"}}
  - {{name: bad, type: webhook, url: "{receiver.url}/bad"}}
rules:
  - {{name: unpriced, type: unpriced_model, hooks: [flaky, bad]}}
""")
    d = daemon_factory.start("retry", ["--alerts", str(rules)])
    send(d, support.simple_run("retry-wf", [UNPRICED]))
    flaky = receiver.wait("/flaky", 3)
    assert [r["status"] for r in flaky] == [500, 503, 200]
    assert flaky[1]["time"] - flaky[0]["time"] >= 0.25 and flaky[2]["time"] - flaky[1]["time"] >= 0.5, "no exponential backoff"
    assert len({json.dumps(r["body"], sort_keys=True) for r in flaky}) == 1, "retries must send the same notification"
    time.sleep(3)
    assert [r["status"] for r in receiver.requests("/bad")] == [400], "a 400 must not be retried"
    assert len(receiver.requests("/flaky")) == 3
    by_hook = {n["hook"]: n for n in alerts(d)["notifications"]}
    assert by_hook["flaky"]["result"] == "delivered" and by_hook["flaky"]["attempts"] == 3
    assert by_hook["bad"]["result"] == "failed" and by_hook["bad"]["attempts"] == 1 and by_hook["bad"]["http_status"] == 400
    assert "400" in by_hook["bad"]["error"]
    assert "not retried" in support.log_of_last_start(d)


def test_restart_neither_resends_nor_forgets(daemon_factory, receiver, tmp_path):
    receiver.plan("/down", [503] * 10_000)
    rules = rules_file(tmp_path, "restart", f"""
delivery: {{repeat_interval: 1h, retry_initial: 200ms, retry_max: 500ms, retry_deadline: 10m}}
hooks:
  - {{name: budget, type: webhook, url: "{receiver.url}/budget"}}
  - {{name: down, type: webhook, url: "{receiver.url}/down"}}
rules:
  - {{name: daily-spend, type: spend_budget, period: day, budget_usd: 0.5, warning: 0.5, critical: 0.8, hooks: [budget]}}
  - {{name: unpriced, type: unpriced_model, window: 1h, hooks: [down]}}
""")
    d = daemon_factory.start("restart", ["--alerts", str(rules)])
    # $0.45 of claude-sonnet-4-0 (100k in × $3 + 10k out × $15 per million): warning (≥ $0.25)
    # and critical (≥ $0.40) of a $0.50 day both fire; the projection is not checked so early.
    send(d, support.simple_run("billing", [PRICED]), support.simple_run("billing", [UNPRICED]))
    budget = receiver.wait("/budget", 2)
    thresholds = sorted(r["body"]["alerts"][0]["labels"]["threshold"] for r in budget)
    assert thresholds == ["critical", "warning"], thresholds
    sev = {r["body"]["alerts"][0]["labels"]["threshold"]: r["body"]["alerts"][0]["labels"]["severity"] for r in budget}
    assert sev == {"warning": "warning", "critical": "critical"}
    assert "$0.450000" in budget[0]["body"]["alerts"][0]["annotations"]["summary"], budget[0]["body"]
    receiver.wait("/down", 2)  # failing, being retried
    # Delivery is at least once: a kill between the receiver's answer and the daemon
    # recording it would rightly send again. Kill only once both budget notifications are
    # on disk as delivered, so what is tested is that recorded deliveries are not repeated.
    state = d.data_dir / "alerts" / "state.json"

    def delivered_on_disk() -> int:
        try:
            log = json.loads(state.read_text()).get("log", [])
        except (OSError, ValueError):
            return 0
        return sum(1 for n in log if n.get("hook") == "budget" and n.get("result") == "delivered")

    ok, n = support.wait_until(delivered_on_disk, lambda n: n == 2, timeout=10)
    assert ok, f"{n} budget notifications recorded as delivered"

    d.kill()  # SIGKILL while /down is still being retried
    receiver.plan("/down", [])
    before_restart = len(receiver.requests("/down"))
    d.start()
    receiver.wait("/down", before_restart + 1, timeout=30)
    ok, got = support.wait_until(lambda: receiver.requests("/down"), lambda rs: rs[-1]["status"] == 200, timeout=30)
    assert ok, [r["status"] for r in got]
    time.sleep(3)
    delivered = [r for r in receiver.requests("/down") if r["status"] == 200]
    assert len(delivered) == 1, f"the pending notification was delivered {len(delivered)} times after the restart"
    assert len(receiver.requests("/budget")) == 2, "the restart re-sent delivered notifications"

    # A graceful restart: still nothing re-sent, both budget alerts still firing.
    assert d.stop() == 0
    d.start()
    time.sleep(3)
    assert len(receiver.requests("/budget")) == 2 and len([r for r in receiver.requests("/down") if r["status"] == 200]) == 1
    doc = alerts(d)
    assert sorted(a["rule"] for a in doc["firing"]) == ["daily-spend", "daily-spend", "unpriced"], doc["firing"]


def test_exec_hook_receives_the_json(daemon_factory, tmp_path):
    out = tmp_path / "exec-out.json"
    script = tmp_path / "hook.py"
    script.write_text("import json, os, sys\n"
                      "body = json.load(sys.stdin)\n"
                      "body['_env_status'] = os.environ.get('SPANLEDGER_ALERT_STATUS')\n"
                      f"open({str(out)!r}, 'w').write(json.dumps(body))\n")
    rules = rules_file(tmp_path, "exec", f"""
hooks:
  - {{name: script, type: exec, command: ["{sys.executable}", "{script}"], timeout: 10s}}
rules:
  - {{name: unpriced, type: unpriced_model, hooks: [script]}}
""")
    d = daemon_factory.start("exec", ["--alerts", str(rules)])
    send(d, support.simple_run("exec-wf", [UNPRICED]))
    ok, _ = support.wait_until(lambda: out.exists(), lambda e: e, timeout=30)
    assert ok, "the exec hook never ran"
    body = json.loads(out.read_text())
    a = check_alertmanager_payload(body, "firing", "script")
    assert a["labels"]["model"] == "mystery-model-x" and body["_env_status"] == "firing"
    ok, doc = support.wait_until(lambda: alerts(d), lambda doc: doc["notifications"] and doc["notifications"][0]["result"] == "delivered")
    assert ok, doc


def test_token_spike_on_a_one_second_step(daemon_factory, receiver, tmp_path):
    rules = rules_file(tmp_path, "spike", f"""
hooks: [{{name: am, type: webhook, url: "{receiver.url}/spike"}}]
default_hooks: [am]
rules:
  - name: spike
    type: token_spike
    workflows: ["agent-*"]
    step: 1s
    window: 20s
    min_history: 8s
    factor: 3
    for_steps: 2
    resolve_steps: 2
    per_model: false
""")
    d = daemon_factory.start("spike", ["--alerts", str(rules)])
    call = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": 800, "gen_ai.usage.output_tokens": 200}

    def traffic(seconds: float, runs_per_second: int, workflow: str = "agent-support") -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            send(d, *[support.simple_run(workflow, [call]) for _ in range(runs_per_second // 4)])
            time.sleep(0.25)

    traffic(14, 8)  # baseline: ~8,000 tokens/s
    assert receiver.requests("/spike") == [], "fired during steady traffic"
    traffic(4, 48)  # 6× for 4 s
    got = receiver.wait("/spike", 1, timeout=15)
    a = check_alertmanager_payload(got[0]["body"], "firing", "am")
    assert a["labels"]["workflow"] == "agent-support" and "model" not in a["labels"], a["labels"]
    assert "tokens/min against a baseline of" in a["annotations"]["summary"], a["annotations"]
    traffic(5, 8)
    got = receiver.wait("/spike", 2, timeout=20)
    assert got[1]["body"]["status"] == "resolved"
    # Another workflow outside the rule's globs never alerts.
    assert all(r["body"]["alerts"][0]["labels"]["workflow"] == "agent-support" for r in got)
    m = support.metrics(d.api_url)
    assert m["spanledger_alert_series"] >= 1


def test_acceptance_drop_and_retry_storm(daemon_factory, receiver, tmp_path):
    rules = rules_file(tmp_path, "quality", f"""
evaluation_interval: 1s
hooks: [{{name: q, type: webhook, url: "{receiver.url}/quality"}}]
default_hooks: [q]
rules:
  - {{name: acceptance, type: acceptance_drop, floor: 0.6, window: 1h, min_runs: 10}}
  - {{name: retries, type: retry_storm, ratio: 0.5, min_calls: 8, window: 1m}}
""")
    d = daemon_factory.start("quality", ["--alerts", str(rules)])
    runs = [support.simple_run("reviewer", [PRICED], verdict="accepted") for _ in range(3)]
    runs += [support.simple_run("reviewer", [PRICED], verdict="rejected") for _ in range(7)]
    retry = dict(PRICED, **{"http.request.resend_count": 1})
    # Two runs of 4 calls, 3 of them retries: min_calls 8 holds the alert until both are
    # released (they may be released on different ticks), so it fires on 6 of 8; likewise
    # min_runs 10 holds the acceptance alert until all 10 reviewed runs are in.
    runs += [support.simple_run("flaky-agent", [PRICED, retry, retry, retry]) for _ in range(2)]
    send(d, *runs)
    got = receiver.wait("/quality", 2)
    by_rule = {r["body"]["alerts"][0]["labels"]["alertname"]: r["body"]["alerts"][0] for r in got}
    acc = by_rule["acceptance"]
    assert acc["labels"]["workflow"] == "reviewer"
    assert "30.0% of 10 reviewed runs accepted" in acc["annotations"]["summary"], acc["annotations"]
    storm = by_rule["retries"]
    assert storm["labels"]["workflow"] == "flaky-agent"
    assert "6 of 8 LLM calls" in storm["annotations"]["summary"], storm["annotations"]


@pytest.mark.parametrize("text,reason", [
    ("rules:\n  - {name: a, type: token_spike, facter: 3}\n", "unknown key 'facter'"),
    ("rules:\n  - {name: a, type: token_bomb}\n", "unknown rule type 'token_bomb'"),
    ("rules:\n  - {name: a, type: spend_budget}\n", "needs budget_usd"),
    ("rules:\n  - {name: a, type: unpriced_model, hooks: [nope]}\n", "no hook named 'nope'"),
    ("hooks:\n  - {name: h, type: webhook, url: 'ftp://x'}\n", "is not an http:// or https:// URL"),
    ("rules:\n  - {name: a, type: token_spike, step: 7s}\n", "step must divide"),
    ("rules: [\n", "not valid YAML"),
])
def test_bad_rule_files_are_refused_with_the_reason(daemon_factory, tmp_path, text, reason):
    bad = rules_file(tmp_path, "bad", text)
    out = run_cli("alerts", "check", str(bad))
    assert out.returncode != 0 and reason in out.stderr, (out.returncode, out.stdout, out.stderr)
    d = daemon_factory.create("bad-" + str(abs(hash(text)) % 10_000), ["--alerts", str(bad)])
    with pytest.raises(AssertionError) as e:
        d.start(timeout=20)
    assert reason in str(e.value), str(e.value)[-2000:]


def test_spike_detector_evaluation_harness():
    """The replay of synthetic days through the real detector meets the targets
    (≥ 95% of 3× five-minute spikes found within 2 minutes, ≤ 1 false positive per
    100 series per week) on a reduced scenario."""
    out = run_cli("alerts", "simulate", "--series", "30", "--days", "3", "--warmup-days", "3", "--check-targets", timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert re.search(r"detected", out.stdout), out.stdout
