"""Helpers for the end-to-end tests: the real daemon as a subprocess, its HTTP API and
CLI, raw OTLP protobuf requests, and comparison of query answers with expectations."""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple
from urllib.parse import quote

import requests

import workload
from workload import NS_PER_MS, NS_PER_S, RunFacts, RunSpec, SpanSpec

REPO_ROOT = Path(__file__).resolve().parents[2]


def spanledger_bin() -> Path:
    return Path(os.environ.get("SPANLEDGER_BIN") or REPO_ROOT / ".build" / "debug" / "spanledger")


# --------------------------------------------------------------------------------------
# The daemon.
# --------------------------------------------------------------------------------------

# Daemons started by each test module, so a failing test's report can carry their logs.
DAEMONS: Dict[str, List["Daemon"]] = {}


_LISTENER_FLAGS: Dict[str, List[str]] = {}


def optional_listener_flags(binary: Path) -> List[str]:
    """Listeners other than OTLP/HTTP and the API that the binary has (an OTLP/gRPC one
    on a fixed default port would collide between daemons): on a port chosen by the OS."""
    key = str(binary)
    if key not in _LISTENER_FLAGS:
        flags: List[str] = []
        try:
            p = subprocess.run([key, "serve", "--help"], stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
            if b"--otlp-grpc" in p.stdout + p.stderr:
                flags += ["--otlp-grpc", "127.0.0.1:0"]
        except (OSError, subprocess.TimeoutExpired):
            return []  # not cached: the binary may be being rebuilt
        _LISTENER_FLAGS[key] = flags
    return list(_LISTENER_FLAGS[key])


class Daemon:
    """`spanledger serve` on loopback ports chosen by the OS."""

    def __init__(self, binary: Path, data_dir: Path, prices: Path, log_path: Path, extra_args: Sequence[str] = ()):
        self.binary, self.data_dir, self.prices, self.log_path = binary, data_dir, prices, log_path
        self.extra_args = list(extra_args)
        self.env: Optional[Dict[str, str]] = None  # extra environment variables for the next start
        self.prefix: List[str] = []  # a command the daemon runs under (setpriv to drop root)
        self.proc: Optional[subprocess.Popen] = None
        self.otlp_url = ""
        self.api_url = ""
        self.listening: Dict[str, Any] = {}

    @property
    def listening_file(self) -> Path:
        return self.data_dir / "listening.json"

    def command(self) -> List[str]:
        return [*self.prefix, str(self.binary), "serve", "--data", str(self.data_dir),
                "--otlp-http", "127.0.0.1:0", "--api", "127.0.0.1:0", *optional_listener_flags(self.binary),
                "--trace-wait", "300ms", "--flush-interval", "1s",
                "--prices", str(self.prices), *self.extra_args]

    def start(self, timeout: float = 30.0) -> "Daemon":
        assert self.proc is None or self.proc.poll() is not None, "already running"
        if not self.binary.exists():
            raise AssertionError(f"spanledger binary not found at {self.binary} (set SPANLEDGER_BIN)")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.listening_file.unlink(missing_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"\n=== start: {' '.join(self.command())}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True,
                                         env={**os.environ, **self.env} if self.env else None)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"spanledger serve exited with {self.proc.returncode} before listening.json "
                                     f"appeared\n{self.log_tail()}")
            try:
                info = json.loads(self.listening_file.read_text())
                break
            except (FileNotFoundError, json.JSONDecodeError):
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"{self.listening_file} did not appear within {timeout}s\n{self.log_tail()}")
            time.sleep(0.05)
        for key in ("otlp_http", "api", "pid"):
            assert key in info, f"listening.json lacks {key!r}: {info}"
        assert info["pid"] == self.proc.pid, f"listening.json pid {info['pid']} != process {self.proc.pid}"
        for key in ("otlp_http", "api"):
            assert re.fullmatch(r"127\.0\.0\.1:[1-9]\d*", info[key]), f"listening.json {key}={info[key]!r}"
        self.listening = info
        self.otlp_url = f"http://{info['otlp_http']}"
        self.api_url = f"http://{info['api']}"
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM (graceful shutdown) and the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(f"spanledger did not exit within {timeout}s of SIGTERM\n{self.log_tail()}")
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def log_tail(self, lines: int = 200) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


# --------------------------------------------------------------------------------------
# HTTP.
# --------------------------------------------------------------------------------------

_session = requests.Session()
_session.trust_env = False  # loopback only: never through a proxy from the environment


def http(method: str, url: str, **kw) -> requests.Response:
    kw.setdefault("timeout", 30)
    return _session.request(method, url, **kw)


def post_otlp(otlp_url: str, body: bytes, content_type: str = "application/x-protobuf",
              path: str = "/v1/traces") -> requests.Response:
    return http("POST", otlp_url + path, data=body, headers={"Content-Type": content_type})


def rollups_url(api_url: str, since: str = "1h", group_by: Sequence[str] = (), workflow: Optional[str] = None) -> str:
    q = [f"since={quote(since)}"]
    if group_by:
        q.append("group_by=" + ",".join(group_by))  # a literal comma list
    if workflow is not None:
        q.append("workflow=" + quote(workflow, safe=""))
    return f"{api_url}/api/v1/rollups?" + "&".join(q)


def rollups(api_url: str, group_by: Sequence[str] = (), workflow: Optional[str] = None,
            since: str = "1h") -> Dict[str, Any]:
    r = http("GET", rollups_url(api_url, since, group_by, workflow))
    assert r.status_code == 200, f"GET {r.url} -> {r.status_code}: {r.text[:2000]}"
    assert r.headers.get("Content-Type", "").startswith("application/json"), r.headers.get("Content-Type")
    doc = r.json()
    assert set(doc) >= {"from", "to", "groups"}, doc
    return doc


def total(api_url: str, workflow: Optional[str] = None) -> Dict[str, Any]:
    """The single ungrouped group (all zeros when there is no data)."""
    groups = rollups(api_url, workflow=workflow)["groups"]
    assert len(groups) <= 1, groups
    return groups[0] if groups else {"runs": 0, "llm_calls": 0}


def get_trace(api_url: str, trace_id: str) -> requests.Response:
    return http("GET", f"{api_url}/api/v1/traces/{trace_id}")


def wait_until(probe: Callable[[], Any], done: Callable[[Any], bool], timeout: float = 30.0,
               interval: float = 0.25) -> Tuple[bool, Any]:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if done(value):
            return True, value
        if time.monotonic() > deadline:
            return False, value
        time.sleep(interval)


def wait_for_runs(api_url: str, runs: int, workflow: Optional[str] = None, timeout: float = 30.0) -> Dict[str, Any]:
    ok, g = wait_until(lambda: total(api_url, workflow), lambda g: g.get("runs") == runs, timeout)
    assert ok, f"runs never reached {runs} within {timeout}s (workflow={workflow}); last answer: {g}"
    return g


def settle(api_url: str, group_by: Sequence[str], quiet: float = 2.0, timeout: float = 30.0) -> Dict[str, Any]:
    """The rollups once the answer has stayed the same for `quiet` seconds."""
    deadline = time.monotonic() + timeout
    last = rollups(api_url, group_by)["groups"]
    since = time.monotonic()
    while time.monotonic() - since < quiet:
        if time.monotonic() > deadline:
            raise AssertionError(f"rollups kept changing for {timeout}s")
        time.sleep(0.25)
        now = rollups(api_url, group_by)["groups"]
        if now != last:
            last, since = now, time.monotonic()
    return {"groups": last}


# --------------------------------------------------------------------------------------
# CLI.
# --------------------------------------------------------------------------------------

def cli(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    cmd = [str(spanledger_bin()), *args]
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    assert p.returncode == 0, (f"{' '.join(cmd)} exited {p.returncode}\nstdout: {p.stdout.decode(errors='replace')}\n"
                               f"stderr: {p.stderr.decode(errors='replace')}")
    return p


def cli_json(*args: str) -> Any:
    p = cli(*args)
    try:
        return json.loads(p.stdout)
    except json.JSONDecodeError as e:
        raise AssertionError(f"not JSON ({e}): {p.stdout[:2000]!r}")


def cli_query(source: Sequence[str], group_by: Sequence[str] = (), since: str = "1h") -> Dict[str, Any]:
    """`spanledger query` with source `--server URL` or `--data DIR`."""
    args = ["query", *source, "--since", since]
    if group_by:
        args += ["--group-by", ",".join(group_by)]
    return cli_json(*args, "--format", "json")


# --------------------------------------------------------------------------------------
# Raw OTLP protobuf.
# --------------------------------------------------------------------------------------

def any_value(v: Any):
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue
    if isinstance(v, bool):
        return AnyValue(bool_value=v)
    if isinstance(v, int):
        return AnyValue(int_value=v)
    if isinstance(v, float):
        return AnyValue(double_value=v)
    if isinstance(v, str):
        return AnyValue(string_value=v)
    raise TypeError(type(v))


def key_values(attrs: Dict[str, Any]):
    from opentelemetry.proto.common.v1.common_pb2 import KeyValue
    return [KeyValue(key=k, value=any_value(v)) for k, v in attrs.items()]


def export_request(items: Iterable[Tuple[RunSpec, Sequence[SpanSpec]]]):
    """An ExportTraceServiceRequest with the given spans, one ResourceSpans per service."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
    from opentelemetry.proto.resource.v1.resource_pb2 import Resource
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

    kinds = {"internal": Span.SPAN_KIND_INTERNAL, "server": Span.SPAN_KIND_SERVER, "client": Span.SPAN_KIND_CLIENT}
    by_service: Dict[str, List[Any]] = {}
    for run, spans in items:
        for s in spans:
            ps = Span(trace_id=run.trace_id.to_bytes(16, "big"), span_id=s.span_id.to_bytes(8, "big"),
                      parent_span_id=b"" if s.parent_id is None else s.parent_id.to_bytes(8, "big"),
                      name=s.name, kind=kinds[s.kind], start_time_unix_nano=s.start_ns, end_time_unix_nano=s.end_ns,
                      attributes=key_values(s.attributes))
            for e in s.events:
                ps.events.add(time_unix_nano=e.time_ns, name=e.name, attributes=key_values(e.attributes))
            for trace_id, span_id in s.links:
                ps.links.add(trace_id=trace_id.to_bytes(16, "big"), span_id=span_id.to_bytes(8, "big"))
            if s.error:
                ps.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message="upstream error"))
            by_service.setdefault(s.service, []).append(ps)
    req = ExportTraceServiceRequest()
    for service, spans in by_service.items():
        req.resource_spans.append(ResourceSpans(
            resource=Resource(attributes=key_values({"service.name": service})),
            scope_spans=[ScopeSpans(scope=InstrumentationScope(name="spanledger-e2e-raw", version="1"), spans=spans)]))
    return req


def export_bytes(items: Iterable[Tuple[RunSpec, Sequence[SpanSpec]]]) -> bytes:
    return export_request(items).SerializeToString()


def new_span_id() -> int:
    return int.from_bytes(secrets.token_bytes(8), "big") | 1


def simple_run(workflow: str, llm_calls: Sequence[Dict[str, Any]], *, service: str = "e2e-raw",
               verdict: Optional[str] = "accepted", start_ns: Optional[int] = None) -> RunSpec:
    """A root (named by gen_ai.workflow.name) with LLM-call children, sequential in time,
    starting five minutes ago by default."""
    start = start_ns if start_ns is not None else time.time_ns() - 5 * 60 * NS_PER_S
    root_attrs: Dict[str, Any] = {"gen_ai.operation.name": "invoke_workflow", "gen_ai.workflow.name": workflow}
    if verdict is not None:
        root_attrs["outcome.verdict"] = verdict
    root = SpanSpec(new_span_id(), None, f"invoke_workflow {workflow}", service, start, start, root_attrs)
    spans = [root]
    t = start + 5 * NS_PER_MS
    for attrs in llm_calls:
        s = SpanSpec(new_span_id(), root.span_id, "chat", service, t, t + 400 * NS_PER_MS, dict(attrs), kind="client")
        spans.append(s)
        t = s.end_ns + 10 * NS_PER_MS
    root.end_ns = t + 50 * NS_PER_MS
    return RunSpec(int.from_bytes(secrets.token_bytes(16), "big") | 1, service, spans)


def add_late_call(run: RunSpec, attrs: Dict[str, Any]) -> SpanSpec:
    """A further LLM call inside the root's time span (appended to run.spans)."""
    root = run.root
    start = root.start_ns + (root.end_ns - root.start_ns) // 2
    s = SpanSpec(new_span_id(), root.span_id, "chat", run.service, start, start + 20 * NS_PER_MS, dict(attrs),
                 kind="client")
    run.spans.append(s)
    return s


# --------------------------------------------------------------------------------------
# Comparing answers with expectations.
# --------------------------------------------------------------------------------------

FLOAT_FIELDS = ("acceptance_rate", "cost_usd", "cost_per_accepted_usd")
ALL_FIELDS = ("runs", "accepted", "edited", "rejected", "escalated", "pending", "acceptance_rate", "llm_calls",
              "tool_calls", "input_tokens", "cached_input_tokens", "cache_write_tokens", "output_tokens",
              "reasoning_tokens", "unpriced_tokens", "cost_usd", "cost_micros", "cost_per_accepted_usd", "retries",
              "errors", "incomplete_runs", "latency_p50_ms", "latency_p95_ms")


def group_key(g: Dict[str, Any], group_by: Sequence[str]) -> Tuple[Any, ...]:
    return tuple(g.get(k) for k in group_by)


def check_groups(doc: Dict[str, Any], expected: Dict[Tuple[str, ...], Dict[str, Any]], group_by: Sequence[str],
                 exact_fields: Sequence[str] = workload.EXACT_FIELDS) -> None:
    """Every group present, no other, every exact field equal, floats to 6 places, keys
    only those grouped by, sorted by cost_micros descending then key."""
    groups = doc["groups"]
    problems: List[str] = []
    seen: Dict[Tuple[Any, ...], Dict[str, Any]] = {}
    for g in groups:
        missing = [f for f in ALL_FIELDS if f not in g]
        if missing:
            problems.append(f"group {group_key(g, group_by)} lacks {missing}")
        keys = {k for k in workload.GROUP_KEYS if k in g}
        if keys != set(group_by):
            problems.append(f"group has key fields {sorted(keys)}, grouped by {list(group_by)}: {g}")
        k = group_key(g, group_by)
        if k in seen:
            problems.append(f"group {k} appears twice")
        seen[k] = g
    for k in sorted(set(expected) - set(seen)):
        problems.append(f"missing group {k}: expected {_fields(expected[k], exact_fields)}")
    for k in sorted(set(seen) - set(expected), key=repr):
        problems.append(f"unexpected group {k}: {seen[k]}")
    for k in sorted(set(seen) & set(expected)):
        got, want = seen[k], expected[k]
        for f in exact_fields:
            if got.get(f) != want[f] or type(got.get(f)) is not int:
                problems.append(f"group {k}: {f} = {got.get(f)!r}, expected {want[f]}")
        for f in FLOAT_FIELDS:
            gv, wv = got.get(f), want[f]
            if (gv is None) != (wv is None) or (wv is not None and (not isinstance(gv, (int, float))
                                                                     or abs(gv - wv) > 1.000001e-6)):
                problems.append(f"group {k}: {f} = {gv!r}, expected {wv!r} (6 places)")
    costs = [(-g.get("cost_micros", 0), group_key(g, group_by)) for g in groups]
    if [c for c, _ in costs] != sorted(c for c, _ in costs):
        problems.append(f"groups not sorted by cost_micros descending: {[(-c, k) for c, k in costs]}")
    else:
        for (c1, k1), (c2, k2) in zip(costs, costs[1:]):
            if c1 == c2 and _sort_key(k1, group_by) > _sort_key(k2, group_by):
                problems.append(f"groups with equal cost_micros not sorted by key: {k1} before {k2}")
    assert not problems, f"{len(problems)} problem(s) with group_by={list(group_by)}:\n  " + "\n  ".join(problems)


OUTCOME_ORDER = ("pending", "accepted", "edited", "rejected", "escalated")


def _sort_key(k: Tuple[Any, ...], group_by: Sequence[str] = ()) -> Tuple[Any, ...]:
    """The API's tie order: workflow, model, outcome (in OUTCOME_ORDER), service."""
    named = dict(zip(group_by, k))
    return tuple(OUTCOME_ORDER.index(named[f]) if f == "outcome" and f in named else ("" if named.get(f) is None else str(named[f]))
                 for f in ("workflow", "model", "outcome", "service") if f in named) if group_by else \
        tuple("" if v is None else str(v) for v in k)


def _fields(g: Dict[str, Any], fields: Sequence[str]) -> Dict[str, Any]:
    return {f: g[f] for f in fields}


def comparable(doc: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The groups of an answer (from/to depend on the time of asking)."""
    return doc["groups"]


def parse_rfc3339_ns(s: str) -> int:
    m = re.fullmatch(r"(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})", s)
    assert m, f"not RFC 3339: {s!r}"
    base = datetime.fromisoformat(m.group(1).replace(" ", "T") + ("+00:00" if m.group(3) == "Z" else m.group(3)))
    frac = (m.group(2) or "").ljust(9, "0")
    return int(base.astimezone(timezone.utc).timestamp()) * NS_PER_S + int(frac or 0)


def check_trace(doc: Dict[str, Any], run: RunSpec, facts: RunFacts) -> None:
    """A `GET /api/v1/traces/<id>` / `spanledger trace` answer against the run."""
    problems: List[str] = []

    def eq(what: str, got: Any, want: Any) -> None:
        if got != want:
            problems.append(f"{what} = {got!r}, expected {want!r}")

    def near(what: str, got: Any, want: float, tol: float) -> None:
        if not isinstance(got, (int, float)) or abs(got - want) > tol:
            problems.append(f"{what} = {got!r}, expected {want} ± {tol}")

    root = run.root
    calls = facts.calls.values()
    eq("trace_id", doc.get("trace_id"), run.trace_id_hex)
    eq("workflow", doc.get("workflow"), facts.workflow)
    eq("service", doc.get("service"), facts.service)
    eq("outcome", doc.get("outcome"), facts.outcome)
    eq("cost_micros", doc.get("cost_micros"), facts.cost_micros)
    near("cost_usd", doc.get("cost_usd"), facts.cost_micros / 1e6, 1e-9)
    eq("llm_calls", doc.get("llm_calls"), len(facts.calls))
    eq("input_tokens", doc.get("input_tokens"), sum(c.input_tokens for c in calls))
    eq("output_tokens", doc.get("output_tokens"), sum(c.output_tokens for c in calls))
    eq("unpriced_tokens", doc.get("unpriced_tokens"), sum(c.unpriced_tokens for c in calls))
    eq("incomplete", doc.get("incomplete"), False)
    try:
        near("start (ns)", parse_rfc3339_ns(doc.get("start", "")), root.start_ns, NS_PER_MS)
    except AssertionError as e:
        problems.append(str(e))
    near("duration_ms", doc.get("duration_ms"), (root.end_ns - root.start_ns) / NS_PER_MS, 1.0)
    spans = doc.get("spans") or []
    eq("span count", len(spans), len(run.spans))
    by_id = {s.get("span_id"): s for s in spans}
    for spec in run.spans:
        sid = spec.span_id_hex
        got = by_id.get(sid)
        if got is None:
            problems.append(f"span {sid} ({spec.name}) missing")
            continue
        where = f"span {sid} ({spec.name})"
        if spec.parent_id is None:
            if got.get("parent_span_id") not in (None, ""):
                problems.append(f"{where}: root has parent_span_id {got.get('parent_span_id')!r}")
        else:
            eq(f"{where} parent_span_id", got.get("parent_span_id"), f"{spec.parent_id:016x}")
        eq(f"{where} name", got.get("name"), spec.name)
        kind = facts.kinds[spec.span_id]
        if spec.parent_id is None and kind == "other" and got.get("kind") == "workflow":
            kind = "workflow"  # a root without workflow attributes may be shown as the run's workflow span
        eq(f"{where} kind", got.get("kind"), kind)
        eq(f"{where} error", got.get("error"), spec.error)
        near(f"{where} start_offset_ms", got.get("start_offset_ms"), (spec.start_ns - root.start_ns) / NS_PER_MS, 1.0)
        near(f"{where} duration_ms", got.get("duration_ms"), (spec.end_ns - spec.start_ns) / NS_PER_MS, 1.0)
        c = facts.calls.get(spec.span_id)
        if c is not None:
            for f in ("model", "input_tokens", "cached_input_tokens", "cache_write_tokens", "output_tokens",
                      "reasoning_tokens", "cost_micros", "priced", "retry"):
                eq(f"{where} {f}", got.get(f), getattr(c, f))
    assert not problems, f"trace {run.trace_id_hex}: {len(problems)} problem(s):\n  " + "\n  ".join(problems)


# --------------------------------------------------------------------------------------
# Self-metrics, process state and logs (durability tests).
# --------------------------------------------------------------------------------------

_METRIC_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$")


def metrics(api_url: str) -> Dict[str, float]:
    """GET /metrics as {name or name{labels}: value}."""
    r = http("GET", f"{api_url}/metrics", timeout=10)
    assert r.status_code == 200, f"GET /metrics -> {r.status_code}: {r.text[:500]}"
    out: Dict[str, float] = {}
    for line in r.text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _METRIC_LINE.match(line.strip())
        assert m, f"unparsable /metrics line: {line!r}"
        out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def metric(api_url: str, name: str) -> float:
    values = metrics(api_url)
    assert name in values, f"/metrics lacks {name}; has {sorted(values)}"
    return values[name]


def rss_kib(pid: int) -> Optional[int]:
    """VmRSS of a process in KiB (None once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def serve_refused(data_dir: Path, *args: str) -> str:
    """Runs `spanledger serve` with flags it must refuse: asserts it exits non-zero before
    serving and returns what it printed."""
    p = subprocess.run([str(spanledger_bin()), "serve", "--data", str(data_dir), "--otlp-http", "127.0.0.1:0",
                        "--api", "127.0.0.1:0", "--otlp-grpc", "127.0.0.1:0", *args],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    out = (p.stdout + p.stderr).decode(errors="replace")
    assert p.returncode != 0, f"serve {' '.join(args)} started: {out[-500:]}"
    return out


def log_of_last_start(d: Daemon) -> str:
    """The daemon log written since its latest start."""
    text = d.log_path.read_text(errors="replace")
    i = text.rfind("\n=== start: ")
    return text if i < 0 else text[i:]


# --------------------------------------------------------------------------------------
# Segment files, read with the documented schema.

def decoded_segments(directory: Path, pattern: str, message: str):
    """(file bytes, message) for each segment file in `directory` matching `pattern`, its
    zlib payload parsed as spanledger.v1.`message` from Schemas/spanledger/v1/rollup.proto
    (compiled here with grpcio-tools)."""
    import sys
    import zlib
    from google.protobuf import message_factory
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "SchemaTests"))
    from schema_tools import compile_descriptor_set  # noqa: E402
    cls = message_factory.GetMessages(compile_descriptor_set(["spanledger/v1/rollup.proto"]).file)[f"spanledger.v1.{message}"]
    for path in sorted(directory.glob(pattern)):
        raw = path.read_bytes()
        assert raw[:4] == b"SLSG", path
        compressed = int.from_bytes(raw[16:20], "little")
        m = cls()
        # Exactly the stream the header names (a blocked run-tree file has its block table after it).
        m.ParseFromString(zlib.decompress(raw[24:24 + compressed]))
        yield raw, m


def block_table(raw: bytes):
    """The block table of a blocked run-tree file (header version 2; README "Data
    directory"): (block starts relative to the stream, block CRC-32s, [(trace ID high
    half, block)])."""
    assert raw[4] == 2 and raw[-4:] == b"SLTB"
    stream = 24 + int.from_bytes(raw[16:20], "little")
    table_len = int.from_bytes(raw[-8:-4], "little")
    assert stream + table_len + 8 == len(raw)
    t = raw[stream:stream + table_len]
    u32 = lambda at: int.from_bytes(t[at:at + 4], "little")
    blocks = u32(0)
    starts = [u32(4 + 4 * i) for i in range(blocks + 1)]
    crcs = [u32(4 + 4 * (blocks + 1) + 4 * i) for i in range(blocks)]
    at = 4 + 4 * (blocks + 1) + 4 * blocks
    trees = [(int.from_bytes(t[at + 4 + 12 * k:at + 12 + 12 * k], "little"), u32(at + 12 + 12 * k)) for k in range(u32(at))]
    return starts, crcs, trees


def varint(data: bytes, pos: int) -> Tuple[int, int]:
    """The varint at `pos` and the position after it."""
    value = shift = 0
    while True:
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return value, pos


def unzigzag(v: int) -> int:
    return (v >> 1) ^ -(v & 1)
