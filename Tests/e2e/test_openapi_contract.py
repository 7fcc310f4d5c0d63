"""Contract tests: Schemas/openapi.yaml against the running daemon, in both directions, the
Prometheus exposition of /metrics, and the deploy/ assets built on it (Grafana dashboard,
Prometheus rules and configuration).

Forward: every operation of the spec is called with a table of concrete requests (every
query parameter and every enum value at least once, group_by variants), and every
documented error status is provoked; status, Content-Type, documented headers and the
body are checked against the spec's schemas (jsonschema, Draft 2020-12, $refs resolved
inside the spec; integers must be JSON integers). Backward: the paths the daemon serves
(a list kept here and checked against the handlers' source) are exactly the spec's paths,
undocumented /api/* paths are 404, and every response object schema forbids undeclared
properties, so a field the daemon adds without the spec fails validation.

The daemon is fed the e2e workload through the OpenTelemetry SDK, a run with sub-agents, a
task with rework, late verdicts through POST /v1/outcomes, an outcome registry (so the
scorecard has functions) and alert rules (so the alert report has alerts, a pending one,
and notifications delivered, failing and retried)."""

from __future__ import annotations

import copy
import functools
import http.client
import json
import os
import re
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Set, Tuple
from urllib.parse import quote, urlsplit

import jsonschema
import pytest
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

import support
import workload

REPO = support.REPO_ROOT
SPEC_PATH = REPO / "Schemas" / "openapi.yaml"
DASHBOARD_PATH = REPO / "deploy" / "grafana" / "spanledger-dashboard.json"
RULES_PATH = REPO / "deploy" / "prometheus" / "spanledger-alerts.yaml"
PROMETHEUS_CONFIG_PATH = REPO / "deploy" / "prometheus" / "prometheus.example.yaml"
QUERY_HANDLER_SOURCE = REPO / "Sources" / "QueryAPI" / "QueryHTTPHandler.swift"

NS = 1_000_000_000
MS = 1_000_000
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

# The paths each listener serves (the reverse direction: all must be in the spec, and the
# spec must have no other). test_served_paths_match_the_handler_source keeps this list
# honest against Sources/QueryAPI/QueryHTTPHandler.swift.
SERVED_QUERY_PATHS = {"/api/v1/rollups", "/api/v1/rollups/records", "/api/v1/series", "/api/v1/top", "/api/v1/traces/{id}", "/api/v1/workflows", "/api/v1/runs",
                      "/api/v1/scorecard", "/api/v1/routes", "/api/v1/alerts", "/api/v1/status", "/healthz", "/metrics", "/", "/index.html"}
SERVED_OTLP_PATHS = {"/v1/traces", "/v1/outcomes"}
# How literal paths or prefixes in the handler's source map to the spec's templates.
SOURCE_PATH_TEMPLATES = {"/api/v1/traces/": "/api/v1/traces/{id}"}

# Paths near the served ones that must not answer anything but 404.
UNDOCUMENTED_API_PATHS = ["/api/v1/rollup", "/api/v1/rollups/", "/api/v1/Rollups", "/api/v1/traces", "/api/v1/trace/x",
                          "/api/v1/series/", "/api/v1/top/spend", "/api/v1/workflow", "/api/v1/scorecards",
                          "/api/v1/route", "/api/v1/alerts/firing", "/api/v1/metrics", "/api/v1/healthz", "/api/v1/status/", "/api/v1/",
                          "/api/v1", "/api/v2/rollups", "/api/", "/api/v1/unknown", "/api/v1/outcomes", "/v1/traces"]

# --------------------------------------------------------------------------------------
# The spec and validation against it.
# --------------------------------------------------------------------------------------

SPEC_URI = "urn:spanledger:openapi"


@functools.lru_cache(maxsize=None)
def _spec_text() -> str:
    return SPEC_PATH.read_text()


def load_spec() -> Dict[str, Any]:
    return yaml.safe_load(_spec_text())


@pytest.fixture(scope="module")
def spec() -> Dict[str, Any]:
    return load_spec()


def _strict_validator_class():
    # An integer must be a JSON integer (1, not 1.0): a client decoding into int64 needs it.
    checker = Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _c, x: isinstance(x, int) and not isinstance(x, bool))
    return jsonschema.validators.extend(Draft202012Validator, type_checker=checker)


StrictValidator = _strict_validator_class()


def _absolute_refs(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: (SPEC_URI + v if k == "$ref" and isinstance(v, str) and v.startswith("#") else _absolute_refs(v))
                for k, v in node.items()}
    if isinstance(node, list):
        return [_absolute_refs(v) for v in node]
    return node


def schema_errors(the_spec: Dict[str, Any], schema: Dict[str, Any], instance: Any) -> List[str]:
    """Every validation error of `instance` against `schema` (a schema of the spec, whose
    $refs point into the spec)."""
    registry = Registry().with_resource(SPEC_URI, Resource.from_contents(the_spec, default_specification=DRAFT202012))
    v = StrictValidator(_absolute_refs(schema), registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER)
    errors = sorted(v.iter_errors(instance), key=lambda e: list(e.absolute_path))
    return [f"at {'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message[:400]}" for e in errors]


def pointer(the_spec: Dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = the_spec
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def deref(the_spec: Dict[str, Any], node: Dict[str, Any]) -> Dict[str, Any]:
    while isinstance(node, dict) and "$ref" in node:
        node = pointer(the_spec, node["$ref"])
    return node


def operations(the_spec: Dict[str, Any]) -> Iterable[Tuple[str, str, Dict[str, Any]]]:
    for path, item in the_spec["paths"].items():
        for method, op in item.items():
            if method in HTTP_METHODS:
                yield path, method, op


def media_type(value: str) -> Tuple[str, Dict[str, str]]:
    parts = [p.strip() for p in value.split(";")]
    params = {}
    for p in parts[1:]:
        if "=" in p:
            k, v = p.split("=", 1)
            params[k.strip().lower()] = v.strip().strip('"').lower()
    return parts[0].lower(), params


def documented_media(content: Dict[str, Any], actual: str) -> Optional[str]:
    """The key of `content` that the actual Content-Type matches: same type, and every
    parameter the spec names present with the same value."""
    a_type, a_params = media_type(actual)
    for key in content:
        k_type, k_params = media_type(key)
        if k_type == a_type and all(a_params.get(n) == v for n, v in k_params.items()):
            return key
    return None


RPC_CODE_OF_STATUS = {400: 3, 404: 5, 405: 12, 413: 8, 415: 3, 503: 14}


@dataclass
class Answer:
    status: int
    headers: Dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def check_against_spec(the_spec: Dict[str, Any], path: str, op_method: str, answer: Answer, what: str) -> Any:
    """The answer's status, Content-Type, documented headers and body against the spec's
    operation `op_method` of `path`. Returns the decoded body (JSON, text or bytes)."""
    op = the_spec["paths"][path][op_method]
    responses = op["responses"]
    status = str(answer.status)
    hint = ""
    if answer.status == 404 and path in ("/api/v1/series", "/api/v1/top", "/", "/index.html"):
        hint = " (a binary built before this endpoint existed? rebuild and set SPANLEDGER_BIN)"
    assert status in responses, (f"{what}: status {answer.status} is not among the documented responses "
                                 f"{sorted(responses)} of {op_method.upper()} {path}{hint}; body: {answer.body[:500]!r}")
    response = deref(the_spec, responses[status])
    for name, header in (response.get("headers") or {}).items():
        header = deref(the_spec, header)
        value = answer.headers.get(name.lower())
        if header.get("required"):
            assert value is not None, f"{what}: documented header {name} missing; headers {answer.headers}"
        if value is not None and "schema" in header:
            typed: Any = value
            if header["schema"].get("type") == "integer":
                assert re.fullmatch(r"-?\d+", value), f"{what}: header {name}: {value!r} is not an integer"
                typed = int(value)
            errors = schema_errors(the_spec, header["schema"], typed)
            assert not errors, f"{what}: header {name}: {value!r}: {errors}"
    content = response.get("content")
    if not content:
        assert not answer.body, f"{what}: no content documented, got {answer.body[:300]!r}"
        return None
    actual_type = answer.headers.get("content-type", "")
    key = documented_media(content, actual_type)
    assert key is not None, f"{what}: Content-Type {actual_type!r} is not one of the documented {sorted(content)}"
    schema = content[key].get("schema")
    mtype = media_type(key)[0]
    if mtype == "application/json" or mtype.endswith("+json"):
        try:
            body = answer.json()
        except ValueError as e:
            raise AssertionError(f"{what}: body is not JSON ({e}): {answer.body[:500]!r}")
    elif mtype.startswith("text/"):
        body = answer.body.decode("utf-8")
    else:
        return answer.body
    if schema is not None:
        errors = schema_errors(the_spec, schema, body)
        assert not errors, (f"{what}: the body does not match the schema of {status} {key}:\n  " + "\n  ".join(errors[:20])
                            + f"\nbody: {answer.body[:1500]!r}")
    if isinstance(body, dict) and answer.status >= 400:
        if isinstance(body.get("error"), dict):
            assert body["error"].get("code") == answer.status, f"{what}: error.code {body['error'].get('code')} != {answer.status}"
        elif "code" in body and answer.status in RPC_CODE_OF_STATUS:
            assert body["code"] == RPC_CODE_OF_STATUS[answer.status], f"{what}: google.rpc.Status code {body['code']}"
    return body


# --------------------------------------------------------------------------------------
# The requests.
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    path: str                                   # a path of the spec
    query: Tuple[Tuple[str, str], ...] = ()
    status: int = 200
    params: Tuple[Tuple[str, str], ...] = ()    # path parameters
    method: str = "GET"                         # the HTTP method sent
    op: str = "get"                             # the operation of the spec that documents the answer
    body: Any = None                            # JSON-able, bytes, or a callable(ctx) giving either
    content_type: Optional[str] = None
    headers: Tuple[Tuple[str, str], ...] = ()
    oversize: int = 0                           # send only a head with this Content-Length
    expect: str = ""                            # in the error message

    @property
    def otlp(self) -> bool:
        return self.path in SERVED_OTLP_PATHS

    @property
    def id(self) -> str:
        q = "&".join(f"{k}={v}" for k, v in self.query)
        p = self.path
        for k, v in self.params:
            p = p.replace("{" + k + "}", v)
        extra = f" [{self.content_type}]" if self.content_type else ""
        extra += f" Content-Length:{self.oversize}" if self.oversize else ""
        return f"{self.method} {p}{'?' + q if q else ''}{extra} -> {self.status}"


def C(path: str, query: Optional[Dict[str, str]] = None, status: int = 200, *, params: Optional[Dict[str, str]] = None,
      method: str = "GET", op: Optional[str] = None, body: Any = None, content_type: Optional[str] = None,
      headers: Optional[Dict[str, str]] = None, oversize: int = 0, expect: str = "") -> Case:
    if op is None:
        op = "post" if path in SERVED_OTLP_PATHS else "get"
    return Case(path, tuple((query or {}).items()), status, tuple((params or {}).items()), method, op, body, content_type,
                tuple((headers or {}).items()), oversize, expect)


def P(path: str, body: Any, status: int = 200, content_type: Optional[str] = "application/json", **kw) -> Case:
    return C(path, status=status, method="POST", body=body, content_type=content_type, **kw)


GROUP_DIMENSIONS = ("workflow", "model", "outcome", "service", "agent", "function")

QUERY_OK: List[Case] = [
    # rollups
    C("/api/v1/rollups"),
    C("/api/v1/rollups", {"since": "1h"}),
    C("/api/v1/rollups", {"since": "{since_rfc3339}", "until": "now"}),
    C("/api/v1/rollups", {"since": "{today}", "until": "{tomorrow}"}),
    C("/api/v1/rollups", {"since": "1h", "until": "30m"}),
    *[C("/api/v1/rollups", {"group_by": g}) for g in GROUP_DIMENSIONS],
    C("/api/v1/rollups", {"group_by": "workflow,model"}),
    C("/api/v1/rollups", {"group_by": "workflow,outcome,service"}),
    C("/api/v1/rollups", {"group_by": "function,workflow,agent"}),
    C("/api/v1/rollups", {"group_by": "Workflow,workflow"}),
    C("/api/v1/rollups", {"group_by": "model", "workflow": "triage-agent"}),
    C("/api/v1/rollups", {"group_by": "workflow", "model": "{model}"}),
    C("/api/v1/rollups", {"group_by": "workflow", "service": "support-api"}),
    C("/api/v1/rollups", {"workflow": "no-such-workflow"}),
    # rollup records (for merging nodes)
    C("/api/v1/rollups/records"),
    C("/api/v1/rollups/records", {"since": "{since_rfc3339}", "until": "now"}),
    C("/api/v1/rollups/records", {"since": "1h", "until": "30m"}),
    # series
    C("/api/v1/series"),
    C("/api/v1/series", {"since": "1h", "step": "5m"}),
    C("/api/v1/series", {"since": "2h", "until": "now", "step": "1h", "group_by": "workflow"}),
    C("/api/v1/series", {"since": "1h", "group_by": "workflow,outcome"}),
    C("/api/v1/series", {"since": "1h", "group_by": "agent", "workflow": "research-assistant"}),
    C("/api/v1/series", {"since": "1h", "group_by": "model,service", "step": "10m"}),
    C("/api/v1/series", {"since": "1h", "group_by": "function", "model": "{model}", "service": "support-api"}),
    C("/api/v1/series", {"since": "{since_rfc3339}", "workflow": "no-such-workflow"}),
    C("/api/v1/series", {"since": "1h", "group_by": "workflow", "workflow": "no-such-workflow"}),
    # top
    C("/api/v1/top"),
    *[C("/api/v1/top", {"by": b, "since": "1h"}) for b in ("spend", "retries", "acceptance", "change")],
    *[C("/api/v1/top", {"dimension": d}) for d in ("workflow", "model", "service", "agent", "function")],
    C("/api/v1/top", {"by": "acceptance", "min_decided": "0", "limit": "2"}),
    C("/api/v1/top", {"by": "change", "since": "30m", "until": "now", "dimension": "model", "workflow": "triage-agent"}),
    C("/api/v1/top", {"since": "quarter", "limit": "1000"}),
    # one run
    *[C("/api/v1/traces/{id}", params={"id": "{%s}" % name})
      for name in ("showcase", "showcase_upper", "agents", "api_verdict", "corrected", "rework", "old")],
    C("/api/v1/workflows"),
    C("/api/v1/runs"),
    C("/api/v1/runs", {"since": "7d", "until": "now", "workflow": "support-answer", "outcome": "accepted", "limit": "5"}),
    *[C("/api/v1/runs", {"since": "quarter", "outcome": o}) for o in ("pending", "edited", "rejected", "escalated")],
    C("/api/v1/runs", {"outcome": "maybe"}, status=400),
    C("/api/v1/runs", {"limit": "0"}, status=400),
    # registry
    C("/api/v1/scorecard"),
    C("/api/v1/scorecard", {"since": "90d"}),
    C("/api/v1/scorecard", {"since": "quarter", "until": "now"}),
    C("/api/v1/scorecard", {"since": "1h", "until": "{tomorrow}"}),
    C("/api/v1/routes"),
    C("/api/v1/routes", {"since": "1h", "min_runs": "5"}),
    C("/api/v1/routes", {"confidence": "0.9", "margin": "0.05", "min_runs": "0"}),
    C("/api/v1/routes", {"workflow": "triage-agent", "since": "quarter", "until": "now"}),
    C("/api/v1/alerts"),
    C("/api/v1/status"),
    C("/healthz"),
    C("/metrics"),
    C("/"),
    C("/index.html"),
]

QUERY_ERRORS: List[Case] = [
    C("/api/v1/rollups", {"since": "yesterday"}, 400, expect="invalid since"),
    C("/api/v1/rollups", {"until": "soon"}, 400, expect="invalid until"),
    C("/api/v1/rollups", {"since": "1h", "until": "2h"}, 400, expect="since must be before until"),
    C("/api/v1/rollups", {"group_by": "colour"}, 400, expect="unknown group-by dimension"),
    C("/api/v1/rollups", {"group_by": "agent,model"}, 400, expect="not both"),
    C("/api/v1/rollups/records", {"since": "yesterday"}, 400, expect="invalid since"),
    C("/api/v1/rollups/records", {"since": "1h", "until": "2h"}, 400, expect="since must be before until"),
    C("/api/v1/series", {"step": "30s"}, 400, expect="whole number of minutes"),
    C("/api/v1/series", {"step": "abc"}, 400, expect="whole number of minutes"),
    C("/api/v1/series", {"since": "400d", "step": "1m"}, 400, expect="points"),
    C("/api/v1/series", {"group_by": "colour"}, 400, expect="unknown group-by dimension"),
    C("/api/v1/series", {"since": "later"}, 400, expect="invalid since"),
    C("/api/v1/top", {"by": "cost"}, 400, expect="by 'cost' must be one of"),
    C("/api/v1/top", {"dimension": "outcome"}, 400, expect="dimension 'outcome'"),
    C("/api/v1/top", {"limit": "0"}, 400, expect="limit"),
    C("/api/v1/top", {"limit": "1001"}, 400, expect="limit"),
    C("/api/v1/top", {"limit": "ten"}, 400, expect="limit"),
    C("/api/v1/top", {"min_decided": "-1"}, 400, expect="min_decided"),
    C("/api/v1/top", {"since": "bogus"}, 400, expect="invalid since"),
    C("/api/v1/traces/{id}", params={"id": "xyz"}, status=400, expect="invalid trace ID"),
    C("/api/v1/traces/{id}", params={"id": ""}, status=400, expect="invalid trace ID"),
    C("/api/v1/traces/{id}", params={"id": "0123456789abcdef0123456789abcdeg"}, status=400, expect="invalid trace ID"),
    C("/api/v1/traces/{id}", params={"id": "{absent}"}, status=404, expect="no run with trace ID"),
    C("/api/v1/traces/{id}", params={"id": "0" * 32}, status=404, expect="no run with trace ID"),
    C("/api/v1/scorecard", {"since": "bogus"}, 400, expect="invalid since"),
    C("/api/v1/scorecard", {"until": "bogus"}, 400, expect="invalid until"),
    C("/api/v1/routes", {"confidence": "2"}, 400, expect="confidence"),
    C("/api/v1/routes", {"confidence": "high"}, 400, expect="confidence"),
    C("/api/v1/routes", {"min_runs": "x"}, 400, expect="min_runs"),
    C("/api/v1/routes", {"min_runs": "-1"}, 400, expect="must not be negative"),
    C("/api/v1/routes", {"margin": "1"}, 400, expect="margin"),
    C("/api/v1/routes", {"since": "bogus"}, 400, expect="invalid since"),
]
for _path in sorted(SERVED_QUERY_PATHS):
    _params = {"id": "{showcase}"} if "{id}" in _path else None
    QUERY_ERRORS.append(C(_path, params=_params, status=405, method="POST", expect="not allowed"))
    QUERY_ERRORS.append(C(_path, params=_params, status=413, oversize=65537, expect="too large"))
QUERY_ERRORS += [
    C("/api/v1/rollups", status=405, method=m, expect="not allowed") for m in ("PUT", "DELETE", "PATCH", "OPTIONS")]


def _batch_over_the_limit(ctx: Dict[str, str]) -> Dict[str, Any]:
    return {"outcomes": [{"trace_id": ctx["absent"], "outcome": "accepted"}] * 10_001}


OTLP_CASES: List[Case] = [
    # POST /v1/outcomes
    P("/v1/outcomes", {"trace_id": "{held}", "outcome": "approved", "reviewer": "contract@example.com",
                       "reviewer_kind": "LLM", "comment": "checked by the contract test", "time": "{now_rfc3339}"}),
    P("/v1/outcomes", {"outcomes": [{"trace_id": "{pending_b}", "outcome": "thumbs_down"},
                                    {"trace_id": "{pending_b}", "outcome": "Edited", "reviewer_kind": "code"}]}),
    P("/v1/outcomes", {"outcomes": []}),
    # Clients of several nodes: a run this node does not have is not_found, not held.
    P("/v1/outcomes", {"trace_id": "{absent}", "outcome": "accepted"}, query={"unknown_runs": "refuse"}),
    P("/v1/outcomes", {"trace_id": "{held}", "outcome": "accepted"}, query={"unknown_runs": "hold"}),
    P("/v1/outcomes", {"trace_id": "{held}", "outcome": "accepted"}, 400, query={"unknown_runs": "drop"}, expect="unknown_runs"),
    P("/v1/outcomes", {"trace_id": "{showcase_upper}", "outcome": "escalated"}, content_type="application/json; charset=utf-8"),
    P("/v1/outcomes", b"not json", 400, expect="not valid JSON"),
    P("/v1/outcomes", [], 400, expect="expected a JSON object"),
    P("/v1/outcomes", {"trace_id": "{held}", "outcome": "accepted", "colour": "red"}, 400, expect="colour: unknown field"),
    P("/v1/outcomes", {"trace_id": "xyz", "outcome": "accepted"}, 400, expect="not 32 hex digits"),
    P("/v1/outcomes", {"trace_id": "0" * 32, "outcome": "accepted"}, 400, expect="not all zero"),
    P("/v1/outcomes", {"trace_id": "{held}"}, 400, expect="outcome: required"),
    P("/v1/outcomes", {"trace_id": "{held}", "outcome": "pending"}, 400, expect="is not accepted, edited"),
    P("/v1/outcomes", {"trace_id": "{held}", "outcome": "accepted", "reviewer_kind": "robot"}, 400, expect="reviewer_kind"),
    P("/v1/outcomes", {"trace_id": "{held}", "outcome": "accepted", "reviewer": "r" * 257}, 400, expect="reviewer"),
    P("/v1/outcomes", {"trace_id": "{held}", "outcome": "accepted", "comment": "c" * 4097}, 400, expect="comment"),
    P("/v1/outcomes", {"trace_id": "{held}", "outcome": "accepted", "time": "yesterday"}, 400, expect="RFC 3339"),
    P("/v1/outcomes", {"trace_id": "{held}", "outcome": "accepted", "time": "{future_rfc3339}"}, 400, expect="in the future"),
    P("/v1/outcomes", {"outcomes": [], "extra": 1}, 400, expect="no other keys"),
    P("/v1/outcomes", {"outcomes": {"trace_id": "{held}"}}, 400, expect="must be an array"),
    P("/v1/outcomes", {"outcomes": [{"trace_id": "{held}", "outcome": "accepted"}, {"trace_id": "x", "outcome": "accepted"}]},
      400, expect="outcomes[1].trace_id"),
    P("/v1/outcomes", _batch_over_the_limit, 400, expect="the limit is 10000"),
    C("/v1/outcomes", status=405, method="GET", expect="use POST"),
    C("/v1/outcomes", status=405, method="PUT", expect="use POST"),
    P("/v1/outcomes", None, 413, oversize=16 * 1024 * 1024 + 1, expect="exceeds the limit"),
    P("/v1/outcomes", b"x", 415, content_type="text/plain", expect="unsupported Content-Type"),
    P("/v1/outcomes", b'{"trace_id": "x"}', 415, content_type=None, expect="unsupported Content-Type"),
    P("/v1/outcomes", {"outcomes": [{"trace_id": "{held}", "outcome": "accepted"}, {"trace_id": "{old}", "outcome": "accepted"}]},
      422, expect="correction window"),
    # POST /v1/traces (OTLP; JSON answers are checked, protobuf ones by Content-Type only)
    P("/v1/traces", {}),
    P("/v1/traces", b"", content_type="application/x-protobuf"),
    P("/v1/traces", b"{not json", 400),
    C("/v1/traces", status=405, method="GET"),
    P("/v1/traces", None, 413, oversize=16 * 1024 * 1024 + 1, expect="exceeds the limit"),
    P("/v1/traces", b"x", 415, content_type="text/plain"),
    P("/v1/traces", b"{}", 415, headers={"Content-Encoding": "br"}, expect="Content-Encoding"),
]

ALL_CASES = QUERY_OK + QUERY_ERRORS + OTLP_CASES

# Documented statuses the table above cannot provoke, and why (checked elsewhere or not at all).
DISK_FULL_CASES = [("/v1/outcomes", "post", "503"), ("/v1/traces", "post", "503")]  # test_disk_full_is_a_documented_503
NOT_PROVOKED = {("/v1/outcomes", "post", "500"): "an unexpected failure inside the daemon; nothing from outside causes it"}


# --------------------------------------------------------------------------------------
# The daemon and its workload.
# --------------------------------------------------------------------------------------

REGISTRY = """
one_off_max_runs: 3
workflows:
  - {name: support-answer, outcome: "A customer's question answered correctly without a rewrite", function: support,
     owner: ana@example.com, quarterly_target: 400, quarterly_budget_usd: 25}
  - {name: triage-agent, outcome: "A ticket routed to the right queue with a summary", function: support,
     owner: ana@example.com, quarterly_target: 300}
  - {name: "doc-*", outcome: "A document summarized so a reader can skip it", function: operations, owner: ops@example.com}
  - {name: research-assistant, outcome: "A research question answered with sources checked", function: research,
     owner: rex@example.com, quarterly_budget_usd: 5}
"""

ALERTS = """
evaluation_interval: 1s
delivery: {retry_initial: 200ms, retry_max: 1s, retry_deadline: 10m}
hooks:
  - {name: log, type: exec, command: ["/bin/true"]}
  - {name: refuses, type: exec, command: ["/bin/false"]}
  - {name: nowhere, type: webhook, url: "http://127.0.0.1:9/hook"}
default_hooks: [log]
rules:
  - {name: support-budget, type: spend_budget, function: support, budget_usd: 0.0001, period: month, hooks: [log, refuses]}
  - {name: unpriced, type: unpriced_model, hooks: [nowhere, log]}
  - {name: unpriced-slowly, type: unpriced_model, for: 1h}
  - {name: quality, type: acceptance_drop, floor: 0.99, min_runs: 5}
  - {name: retries, type: retry_storm, ratio: 0.01, min_calls: 5}
"""


def chat(model: str, input_tokens: int, output_tokens: int, **extra) -> Dict[str, Any]:
    return {"gen_ai.operation.name": "chat", "gen_ai.request.model": model,
            "gen_ai.usage.input_tokens": input_tokens, "gen_ai.usage.output_tokens": output_tokens, **extra}


def agents_run(start: int) -> workload.RunSpec:
    """A workflow with three sub-agents, one inside another."""
    S = workload.SpanSpec
    root = S(1, None, "invoke_workflow research-assistant", "svc", start, start + 900 * MS,
             {"gen_ai.operation.name": "invoke_workflow", "gen_ai.workflow.name": "research-assistant",
              "outcome.verdict": "accepted", "outcome.reviewer": "rex", "outcome.reviewer_kind": "human"})
    planner = S(2, 1, "invoke_agent planner", "svc", start + 10 * MS, start + 100 * MS,
                {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner"})
    researcher = S(3, 1, "invoke_agent researcher", "svc", start + 110 * MS, start + 700 * MS,
                   {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "researcher"})
    summarizer = S(4, 3, "invoke_agent summarizer", "svc", start + 500 * MS, start + 690 * MS,
                   {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "summarizer"})
    spans = [root, planner, researcher, summarizer,
             S(10, 2, "chat", "svc", start + 20 * MS, start + 90 * MS, chat("gpt-4o-mini", 10_000, 1_000), kind="client"),
             S(11, 3, "chat", "svc", start + 120 * MS, start + 300 * MS, chat("claude-sonnet-4-0", 20_000, 2_000), kind="client"),
             S(12, 3, "execute_tool search", "svc", start + 305 * MS, start + 310 * MS, {"gen_ai.operation.name": "execute_tool"}),
             S(13, 4, "chat", "svc", start + 510 * MS, start + 680 * MS, chat("gpt-4o-mini", 5_000, 500), kind="client"),
             S(14, 1, "chat", "svc", start + 710 * MS, start + 890 * MS, chat("gpt-4o-mini", 1_000, 100), kind="client")]
    return workload.RunSpec(int.from_bytes(secrets.token_bytes(16), "big") | 1, "svc", spans)


@dataclass
class Contract:
    daemon: support.Daemon
    ctx: Dict[str, str]
    runs: int
    extras: Dict[str, Any] = field(default_factory=dict)


def rfc3339(ns: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // NS)) + "Z"


@pytest.fixture(scope="module")
def contract(daemon_factory, tmp_path_factory) -> Contract:
    tmp = tmp_path_factory.mktemp("contract")
    (tmp / "registry.yaml").write_text(REGISTRY)
    (tmp / "alerts.yaml").write_text(ALERTS)
    d = daemon_factory.start("contract", ["--registry", str(tmp / "registry.yaml"), "--alerts", str(tmp / "alerts.yaml"),
                                          "--correction-window", "1h"])
    now = time.time_ns()
    w = workload.generate(20261124, 120, base_time_ns=now)
    sent = workload.export_with_sdk(w.runs, d.otlp_url + "/v1/traces")
    assert sum(sent.values()) == w.span_count, sent

    agents = agents_run(now - 5 * 60 * NS)
    first = support.simple_run("drafter", [chat("claude-sonnet-4-0", 10_000, 1_000)], verdict="rejected",
                               start_ns=now - 12 * 60 * NS)
    again = support.simple_run("drafter", [chat("gpt-4o-mini", 20_000, 2_000)], verdict=None, start_ns=now - 10 * 60 * NS)
    for r in (first, again):
        r.root.attributes["outcome.task_id"] = "contract-task-1"
    one_off = support.simple_run("lead-enrich", [chat("gpt-4o-mini", 1_000, 100)], verdict="accepted")
    old = support.simple_run("archive", [chat("gpt-4o-mini", 100, 10)], verdict=None, start_ns=now - 2 * 3600 * NS)
    extra = [agents, first, one_off, old, again]
    total_runs = len(w.runs)
    # The task's second run is sent once the rejected first one is released: it is rework
    # when it is released itself (what the ledger counters see).
    for batch in (extra[:-1], extra[-1:]):
        r = support.post_otlp(d.otlp_url, support.export_bytes([(run, run.spans) for run in batch]))
        assert r.status_code == 200, (r.status_code, r.content[:300])
        total_runs += len(batch)
        ok, g = support.wait_until(lambda: support.rollups(d.api_url, since="24h")["groups"],
                                   lambda g: bool(g) and g[0]["runs"] == total_runs, timeout=30)
        assert ok, f"runs never reached {total_runs}: {g}"

    facts = {run.trace_id_hex: f for run, f in zip(w.runs, w.facts)}
    pending = [run for run in w.runs if facts[run.trace_id_hex].outcome == "pending"]
    accepted = [run for run in w.runs if facts[run.trace_id_hex].outcome == "accepted"]
    assert len(pending) >= 3 and accepted, "the workload has too few pending or accepted runs"
    # Late verdicts: one with every field on a pending run, one correcting an accepted run.
    api_verdict, pending_b, corrected = pending[0], pending[1], accepted[0]
    r = support.http("POST", d.otlp_url + "/v1/outcomes", json={"outcomes": [
        {"trace_id": api_verdict.trace_id_hex, "outcome": "accepted", "reviewer": "ana@example.com",
         "reviewer_kind": "human", "comment": "refund amount checked", "time": rfc3339(now)},
        {"trace_id": corrected.trace_id_hex, "outcome": "rejected", "reviewer": "bo", "reviewer_kind": "llm"}]})
    assert r.status_code == 200, r.text
    assert [x["result"] for x in r.json()["results"]] == ["applied", "corrected"], r.text
    ok, t = support.wait_until(lambda: support.get_trace(d.api_url, corrected.trace_id_hex).json(),
                               lambda t: t.get("verdict", {}).get("corrections") == 1, timeout=20)
    assert ok, t

    today = datetime.now(timezone.utc).date()
    by_model = support.rollups(d.api_url, ("model",))["groups"]
    ctx = {
        "showcase": w.showcase.trace_id_hex, "showcase_upper": w.showcase.trace_id_hex.upper(),
        "agents": agents.trace_id_hex, "api_verdict": api_verdict.trace_id_hex, "corrected": corrected.trace_id_hex,
        "rework": again.trace_id_hex, "old": old.trace_id_hex, "pending_b": pending_b.trace_id_hex,
        "held": secrets.token_hex(16), "absent": secrets.token_hex(16),
        "model": next(g["model"] for g in by_model if g["model"]),
        "since_rfc3339": rfc3339(now - 3600 * NS), "now_rfc3339": rfc3339(now),
        "future_rfc3339": rfc3339(now + 3600 * NS),
        "today": today.isoformat(), "tomorrow": (today + timedelta(days=1)).isoformat(),
    }
    # Alerts: firing and pending ones, notifications delivered and failing.
    ok, report = support.wait_until(lambda: support.http("GET", d.api_url + "/api/v1/alerts").json(),
                                    lambda a: a["firing"] and a["pending"] and
                                    {"delivered", "pending"} <= {n["result"] for n in a["notifications"]}, timeout=30)
    return Contract(d, ctx, total_runs, {"alerts_ready": ok, "alerts": report})


def resolve(value: Any, ctx: Dict[str, str]) -> Any:
    if callable(value):
        return value(ctx)
    if isinstance(value, str):
        return value.format_map(ctx) if "{" in value and "}" in value and not value.startswith("{\"") else value
    if isinstance(value, dict):
        return {resolve(k, ctx): resolve(v, ctx) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, ctx) for v in value]
    return value


def send(case: Case, c: Contract) -> Answer:
    base = c.daemon.otlp_url if case.otlp else c.daemon.api_url
    path = case.path
    for k, v in case.params:
        path = path.replace("{" + k + "}", quote(resolve(v, c.ctx), safe=""))
    if case.query:
        path += "?" + "&".join(f"{quote(k)}={quote(resolve(v, c.ctx), safe=',')}" for k, v in case.query)
    headers = dict(case.headers)
    if case.content_type:
        headers["Content-Type"] = case.content_type
    if case.oversize:
        # Only the head: the server must answer from the Content-Length alone.
        host = urlsplit(base)
        conn = http.client.HTTPConnection(host.hostname, host.port, timeout=30)
        try:
            conn.putrequest(case.method, path)
            for k, v in {**headers, "Content-Length": str(case.oversize)}.items():
                conn.putheader(k, v)
            conn.endheaders()
            resp = conn.getresponse()
            return Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
        finally:
            conn.close()
    body = resolve(case.body, c.ctx)
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    r = support.http(case.method, base + path, data=data, headers=headers)
    return Answer(r.status_code, {k.lower(): v for k, v in r.headers.items()}, r.content)


def check_case(case: Case, c: Contract, the_spec: Dict[str, Any]) -> Any:
    answer = send(case, c)
    body = check_against_spec(the_spec, case.path, case.op, answer, case.id)
    assert answer.status == case.status, f"{case.id}: got {answer.status}: {answer.body[:500]!r}"
    if case.expect:
        message = body["error"]["message"] if isinstance(body, dict) and "error" in body else \
            body.get("message", "") if isinstance(body, dict) else answer.body.decode(errors="replace")
        assert case.expect in message, f"{case.id}: message {message!r} lacks {case.expect!r}"
    return body


# --------------------------------------------------------------------------------------
# 1. The spec itself.
# --------------------------------------------------------------------------------------

def test_spec_is_valid_openapi(spec):
    from openapi_spec_validator import validate
    validate(spec)
    assert spec["openapi"].startswith("3.")


def _walk_schemas(the_spec: Dict[str, Any]) -> Iterable[Tuple[str, Dict[str, Any]]]:
    """Every schema reachable from a response, by where it is."""
    seen: Set[int] = set()

    def walk(node: Any, where: str):
        if isinstance(node, dict):
            if "$ref" in node and isinstance(node["$ref"], str):
                target = pointer(the_spec, node["$ref"])
                if id(target) not in seen:
                    seen.add(id(target))
                    yield from walk(target, node["$ref"])
            yield where, node
            for k, v in node.items():
                if k in ("properties", "dependentRequired", "examples", "example") and isinstance(v, dict):
                    if k == "properties":
                        for name, sub in v.items():
                            yield from walk(sub, f"{where}.{name}")
                    continue
                if k in ("items", "additionalProperties", "not") and isinstance(v, dict):
                    yield from walk(v, f"{where}[{k}]")
                elif k in ("oneOf", "anyOf", "allOf", "prefixItems") and isinstance(v, list):
                    for i, sub in enumerate(v):
                        yield from walk(sub, f"{where}.{k}[{i}]")

    for path, method, op in operations(the_spec):
        for status, response in op["responses"].items():
            response = deref(the_spec, response)
            for media, m in (response.get("content") or {}).items():
                if "schema" in m:
                    yield from walk(m["schema"], f"{method.upper()} {path} {status} {media}")


def test_response_objects_declare_every_property(spec):
    """No additionalProperties surprises: every object schema in a response either lists
    its properties and forbids others, or is an explicit map (additionalProperties: schema),
    and every required property is declared."""
    problems = []
    for where, schema in _walk_schemas(spec):
        types = schema.get("type")
        is_object = types == "object" or (isinstance(types, list) and "object" in types)
        if not is_object:
            continue
        if "properties" in schema:
            if schema.get("additionalProperties") is not False:
                problems.append(f"{where}: properties listed but additionalProperties is not false")
            undeclared = set(schema.get("required", [])) - set(schema["properties"])
            if undeclared:
                problems.append(f"{where}: required but not declared: {sorted(undeclared)}")
        elif not isinstance(schema.get("additionalProperties"), dict) and where.split()[1] != "/v1/traces":
            problems.append(f"{where}: an object with neither properties nor a map schema")
    assert not problems, "\n".join(problems)


def test_every_documented_status_is_provoked(spec):
    documented = {(path, method, status) for path, method, op in operations(spec) for status in op["responses"]}
    covered = {(c.path, c.op, str(c.status)) for c in ALL_CASES} | set(DISK_FULL_CASES)
    missing = documented - covered - set(NOT_PROVOKED)
    assert not missing, f"documented but never provoked by this file: {sorted(missing)}"
    undocumented = covered - documented
    assert not undocumented, f"requests expecting statuses the spec does not document: {sorted(undocumented)}"


def test_every_query_parameter_and_enum_value_is_exercised(spec):
    problems = []
    for path, method, op in operations(spec):
        ok_cases = [c for c in ALL_CASES if c.path == path and c.op == method and c.status < 300]
        for p in op.get("parameters", []):
            p = deref(spec, p)
            if p["in"] != "query":
                continue
            values = [v for c in ok_cases for k, v in c.query if k == p["name"]]
            if not values:
                problems.append(f"{method.upper()} {path}: query parameter {p['name']} never sent")
            schema = p["schema"]
            enum = schema.get("enum") or schema.get("items", {}).get("enum") or []
            sent = {part.strip().lower() for v in values for part in v.split(",")}
            for value in enum:
                if value not in sent:
                    problems.append(f"{method.upper()} {path}: {p['name']}={value} never sent")
    assert not problems, "\n".join(problems)


def test_a_broken_spec_fails_the_contract(spec, contract):
    """The checks can fail: a required property the daemon does not send, a property it
    sends that the spec does not declare, and a wrong type are each caught."""
    answer = send(C("/api/v1/rollups", {"group_by": "workflow"}), contract)
    assert answer.status == 200
    check_against_spec(spec, "/api/v1/rollups", "get", answer, "intact spec")
    breakages = {
        "a required property never sent": lambda s: s["components"]["schemas"]["RollupGroup"]["required"].append("not_sent"),
        "a property sent but not declared": lambda s: s["components"]["schemas"]["RollupGroup"]["properties"].pop("rework_rate"),
        "an integer declared a string": lambda s: s["components"]["schemas"]["RollupGroup"]["properties"].update(
            runs={"type": "string"}),
        "a nullable number declared non-null": lambda s: s["components"]["schemas"].update(
            NullableUsd={"type": "number"}),
    }
    groups = answer.json()["groups"]
    for what, breakage in breakages.items():
        if what.startswith("a nullable") and all(g["cost_per_accepted_usd"] is not None for g in groups):
            continue  # no null to trip over in this answer
        broken = copy.deepcopy(spec)
        breakage(broken)
        with pytest.raises(AssertionError, match="does not match the schema"):
            check_against_spec(broken, "/api/v1/rollups", "get", answer, what)


# --------------------------------------------------------------------------------------
# 2. Forward: every request of the table against the spec.
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", QUERY_OK, ids=lambda c: c.id)
def test_query_api_answers_match_the_spec(case, contract, spec):
    check_case(case, contract, spec)


@pytest.mark.parametrize("case", QUERY_ERRORS, ids=lambda c: c.id)
def test_query_api_errors_match_the_spec(case, contract, spec):
    answer = send(case, contract)
    check_against_spec(spec, case.path, case.op, answer, case.id)
    assert answer.status == case.status, f"{case.id}: got {answer.status}: {answer.body[:500]!r}"
    message = answer.json()["error"]["message"]
    assert case.expect in message, f"{case.id}: message {message!r} lacks {case.expect!r}"
    if case.status == 405:
        assert answer.headers.get("allow") == "GET", answer.headers


@pytest.mark.parametrize("case", OTLP_CASES, ids=lambda c: c.id)
def test_otlp_listener_answers_match_the_spec(case, contract, spec):
    check_case(case, contract, spec)


def test_answers_carry_what_the_workload_put_in(contract, spec):
    """The table only checks shapes; a few values make sure the shapes were filled."""
    api = contract.daemon.api_url
    get = lambda path: support.http("GET", api + path).json()  # noqa: E731
    total = get("/api/v1/rollups?since=24h")["groups"][0]
    assert total["runs"] == contract.runs, total
    agents = {g["agent"] for g in get("/api/v1/rollups?group_by=agent&workflow=research-assistant")["groups"]}
    assert agents == {"planner", "researcher", "summarizer", ""}, agents
    functions = {g["function"] for g in get("/api/v1/rollups?group_by=function")["groups"]}
    assert {"support", "operations", "research", "(undeclared)"} <= functions, functions
    t = get(f"/api/v1/traces/{contract.ctx['api_verdict']}")
    assert t["verdict"] == {"source": "api", "time": t["verdict"]["time"], "reviewer": "ana@example.com",
                            "reviewer_kind": "human", "corrections": 0}, t["verdict"]
    t = get(f"/api/v1/traces/{contract.ctx['rework']}")
    assert t["task_id"] == "contract-task-1" and t["rework"] is True, t
    series = get("/api/v1/series?since=1h&step=5m&group_by=workflow")
    start, end = (support.parse_rfc3339_ns(series[k]) // NS for k in ("from", "to"))
    assert series["step_seconds"] == 300 and start % 300 == 0, series["from"]
    for sr in series["series"]:
        ts = [support.parse_rfc3339_ns(p["t"]) // NS for p in sr["points"]]
        assert ts == list(range(start, end, 300)), (sr.get("workflow"), ts[:3], start, end)
    assert sum(p["runs"] for sr in series["series"] for p in sr["points"]) >= total["runs"] - 1  # all but the 2-hour-old run
    top = get("/api/v1/top?by=spend&limit=3")
    assert [i["workflow"] for i in top["items"]] == [g["workflow"] for g in get("/api/v1/rollups?group_by=workflow")["groups"][:3]]
    card = get("/api/v1/scorecard")
    assert {f["function"] for f in card["functions"]} == {"support", "operations", "research"}, card["functions"]
    assert any("outcome" in w for f in card["functions"] for w in f["workflows"])
    assert {"lead-enrich", "archive", "drafter", "research-assistant"} <= {w["workflow"] for w in card["one_off"]["workflows"]}, \
        card["one_off"]
    assert card["undeclared"]["workflows"], card["undeclared"]
    routes = get("/api/v1/routes?since=1h&min_runs=0")
    assert routes["routes"] and routes["recommendations"], routes
    report = contract.extras["alerts"]
    assert contract.extras["alerts_ready"], f"the alert report never had firing, pending and retried alerts: {report}"
    assert report["rules"] and report["hooks"], report
    errors = schema_errors(spec, {"$ref": "#/components/schemas/AlertReport"}, report)
    assert not errors, errors


# --------------------------------------------------------------------------------------
# 3. Backward: what the daemon serves is what the spec lists.
# --------------------------------------------------------------------------------------

def test_spec_paths_are_exactly_the_served_paths(spec):
    assert set(spec["paths"]) == SERVED_QUERY_PATHS | SERVED_OTLP_PATHS, \
        (f"in the spec, not served: {sorted(set(spec['paths']) - SERVED_QUERY_PATHS - SERVED_OTLP_PATHS)}; "
         f"served, not in the spec: {sorted(SERVED_QUERY_PATHS | SERVED_OTLP_PATHS - set(spec['paths']))}")
    for path in SERVED_QUERY_PATHS:
        urls = {s["url"] for s in spec["paths"][path].get("servers", [])}
        assert urls == {"http://127.0.0.1:4320"}, (path, urls)
    for path in SERVED_OTLP_PATHS:
        urls = {s["url"] for s in spec["paths"][path].get("servers", [])}
        assert urls == {"http://127.0.0.1:4318"}, (path, urls)


def test_served_paths_match_the_handler_source():
    """Every path literal of the query API's handler is in SERVED_QUERY_PATHS, so an
    endpoint added to the code without the spec fails here."""
    source = QUERY_HANDLER_SOURCE.read_text()
    literals = set(re.findall(r'"(/[A-Za-z0-9_./{}-]*)"', source))
    found = {SOURCE_PATH_TEMPLATES.get(p, p) for p in literals}
    unlisted = found - SERVED_QUERY_PATHS
    assert not unlisted, f"{QUERY_HANDLER_SOURCE.name} serves {sorted(unlisted)}, missing from the spec and this test"


@pytest.mark.parametrize("path", UNDOCUMENTED_API_PATHS)
def test_undocumented_api_paths_are_404(path, contract, spec):
    r = support.http("GET", contract.daemon.api_url + path)
    assert r.status_code == 404, f"GET {path} -> {r.status_code}: {r.text[:300]} (an undocumented path must be 404)"
    body = r.json()
    assert not schema_errors(spec, {"$ref": "#/components/schemas/Error"}, body), body
    assert body["error"]["code"] == 404


@pytest.mark.parametrize("path", ["/v1/logs", "/v1/metrics", "/v1/outcome", "/v1/traces/", "/v1/outcomes/x", "/"])
def test_undocumented_otlp_paths_are_404(path, contract, spec):
    r = support.http("POST", contract.daemon.otlp_url + path, data=b"{}", headers={"Content-Type": "application/json"})
    assert r.status_code == 404, f"POST {path} -> {r.status_code}: {r.text[:300]} (an undocumented path must be 404)"
    body = r.json()
    assert not schema_errors(spec, {"$ref": "#/components/schemas/RpcStatus"}, body), body
    assert body["code"] == RPC_CODE_OF_STATUS[404], body


def test_documented_paths_answer_with_documented_statuses(contract, spec):
    """A plain GET of every query-API path (defaults only) answers a documented status."""
    for path in sorted(SERVED_QUERY_PATHS):
        concrete = path.replace("{id}", contract.ctx["showcase"])
        r = support.http("GET", contract.daemon.api_url + concrete)
        assert str(r.status_code) in spec["paths"][path]["get"]["responses"], (path, r.status_code, r.text[:300])
        assert r.status_code == 200, f"GET {concrete} -> {r.status_code}: {r.text[:300]}"


# --------------------------------------------------------------------------------------
# 4. 503 on a full disk (a 6 MiB tmpfs; needs root, as test_durability's).
# --------------------------------------------------------------------------------------

@pytest.fixture
def full_disk(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a 6 MiB tmpfs")
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mnt)], capture_output=True, timeout=30)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {(p.stderr + p.stdout).decode(errors='replace').strip()}")
    try:
        yield mnt
    finally:
        if subprocess.run(["umount", str(mnt)], capture_output=True, timeout=30).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True, timeout=30)


def _fill(path: Path) -> None:
    with open(path, "wb", buffering=0) as fh:
        for size in (1 << 16, 4096, 512, 1):
            for _ in range(20_000):
                try:
                    fh.write(b"\0" * size)
                except OSError:
                    break


def _otlp_json_with_padding(size: int) -> bytes:
    """One root span in the OTLP JSON encoding with a string attribute of `size` bytes."""
    now = time.time_ns()
    span = {"traceId": secrets.token_hex(16), "spanId": secrets.token_hex(8), "name": "disk", "kind": 1,
            "startTimeUnixNano": str(now - NS), "endTimeUnixNano": str(now),
            "attributes": [{"key": "padding", "value": {"stringValue": "y" * size}}]}
    return json.dumps({"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "disk"}}]},
                                          "scopeSpans": [{"scope": {"name": "contract"}, "spans": [span]}]}]}).encode()


def test_disk_full_is_a_documented_503(daemon_factory, full_disk, spec):
    d = support.Daemon(support.spanledger_bin(), full_disk / "data", daemon_factory.prices,
                       daemon_factory.tmp / "contract-diskfull.log", [])
    daemon_factory.daemons.append(d)
    support.DAEMONS.setdefault(daemon_factory.module, []).append(d)
    try:
        d.start()
        _fill(full_disk / "filler")
        seen: Dict[str, Answer] = {}
        deadline = time.monotonic() + 60
        while len(seen) < 2 and time.monotonic() < deadline:
            if "/v1/outcomes" not in seen:
                body = {"outcomes": [{"trace_id": secrets.token_hex(16), "outcome": "accepted", "comment": "x" * 2000}
                                     for _ in range(50)]}
                r = support.http("POST", d.otlp_url + "/v1/outcomes", json=body)
                assert r.status_code in (200, 503), (r.status_code, r.text[:300])
                if r.status_code == 503:
                    seen["/v1/outcomes"] = Answer(r.status_code, {k.lower(): v for k, v in r.headers.items()}, r.content)
            if "/v1/traces" not in seen:
                r = support.http("POST", d.otlp_url + "/v1/traces", data=_otlp_json_with_padding(20_000),
                                 headers={"Content-Type": "application/json"})
                assert r.status_code in (200, 503), (r.status_code, r.content[:300])
                if r.status_code == 503:
                    seen["/v1/traces"] = Answer(r.status_code, {k.lower(): v for k, v in r.headers.items()}, r.content)
        assert set(seen) == {"/v1/outcomes", "/v1/traces"}, f"no 503 on a full disk from {set(SERVED_OTLP_PATHS) - set(seen)}"
        for path, answer in seen.items():
            check_against_spec(spec, path, "post", answer, f"POST {path} on a full disk")
    finally:
        d.kill()


# --------------------------------------------------------------------------------------
# 5. /metrics as Prometheus sees it.
# --------------------------------------------------------------------------------------

SELF_METRICS = {
    "spanledger_spans_received_total": "counter", "spanledger_spans_rejected_total": "counter",
    "spanledger_requests_refused_total": "counter", "spanledger_runs_released_total": "counter",
    "spanledger_runs_incomplete_total": "counter", "spanledger_traces_evicted_total": "counter",
    "spanledger_late_span_groups_total": "counter", "spanledger_verdicts_applied_total": "counter",
    "spanledger_spans_repeated_total": "counter",
    "spanledger_verdict_corrections_total": "counter", "spanledger_verdicts_held": "gauge",
    "spanledger_flushes_total": "counter", "spanledger_flush_failures_total": "counter",
    "spanledger_pending_traces": "gauge", "spanledger_pending_spans": "gauge", "spanledger_pending_bytes": "gauge",
    "spanledger_batches_refused_total": "counter", "spanledger_requests_over_inflight_total": "counter",
    "spanledger_inflight_request_bytes": "gauge", "spanledger_wal_records_total": "counter",
    "spanledger_wal_bytes_total": "counter", "spanledger_wal_append_failures_total": "counter",
    "spanledger_wal_disk_full_total": "counter", "spanledger_wal_fsync_seconds": "histogram",
    "spanledger_alerts_firing": "gauge", "spanledger_alerts_pending": "gauge",
    "spanledger_alert_notifications_delivered_total": "counter", "spanledger_alert_notifications_failed_total": "counter",
}

# The ledger families (names final): type and label names.
LEDGER_METRICS = {
    "spanledger_ledger_runs_total": ("counter", {"workflow", "model", "outcome"}),
    "spanledger_ledger_cost_usd_total": ("counter", {"workflow", "model", "outcome"}),
    "spanledger_ledger_tokens_total": ("counter", {"workflow", "model", "type"}),
    "spanledger_ledger_llm_calls_total": ("counter", {"workflow", "model"}),
    "spanledger_ledger_retries_total": ("counter", {"workflow", "model"}),
    "spanledger_ledger_rework_runs_total": ("counter", {"workflow"}),
    "spanledger_ledger_series_overflowed": ("gauge", set()),
}
OVERFLOW = "__overflow__"
TOKEN_TYPES = {"input", "cached_input", "cache_write", "output", "reasoning"}


def scrape(api_url: str) -> Tuple[str, Dict[str, Any]]:
    """The exposition and its families keyed by the name samples carry (`…_total` for
    counters, the base name for histograms)."""
    from prometheus_client.parser import text_string_to_metric_families
    r = support.http("GET", api_url + "/metrics")
    assert r.status_code == 200, r.status_code
    families = {}
    for f in text_string_to_metric_families(r.text):
        name = f.name + "_total" if f.type == "counter" and any(s.name == f.name + "_total" for s in f.samples) else f.name
        assert name not in families, f"family {name} exposed twice"
        families[name] = f
    return r.text, families


def test_metrics_parse_as_prometheus_text(contract):
    text, families = scrape(contract.daemon.api_url)
    problems = []
    for name, kind in SELF_METRICS.items():
        if name not in families:
            problems.append(f"missing family {name}")
        elif families[name].type != kind:
            problems.append(f"{name} is a {families[name].type}, expected {kind}")
    # Families recorded through swift-metrics (the WAL's fsync timer) carry no HELP: the
    # swift-metrics API has no place for it. Every other family must have one.
    through_swift_metrics = {"spanledger_wal_fsync_seconds"}
    for name, f in families.items():
        if not f.documentation and name not in through_swift_metrics:
            problems.append(f"{name} has no HELP")
        for s in f.samples:
            if not s.name.startswith("spanledger_"):
                problems.append(f"sample {s.name} does not start with spanledger_")
    h = families.get("spanledger_wal_fsync_seconds")
    if h is not None:
        names = {s.name for s in h.samples}
        if not {"spanledger_wal_fsync_seconds_bucket", "spanledger_wal_fsync_seconds_sum",
                "spanledger_wal_fsync_seconds_count"} <= names:
            problems.append(f"histogram samples {sorted(names)}")
        if not any(s.labels.get("le") == "+Inf" for s in h.samples):
            problems.append("histogram without le=+Inf")
    received = families["spanledger_spans_received_total"].samples[0].value
    if received < 100:
        problems.append(f"spans_received_total {received} after the workload")
    assert not problems, "\n".join(problems)


def test_ledger_metrics_families_and_labels(contract):
    """The ledger counters (waits for a daemon that exports them)."""
    _, families = scrape(contract.daemon.api_url)
    problems = []
    for name, (kind, labels) in LEDGER_METRICS.items():
        f = families.get(name)
        if f is None:
            problems.append(f"missing family {name}")
            continue
        if f.type != kind:
            problems.append(f"{name} is a {f.type}, expected {kind}")
        samples = [s for s in f.samples if not s.name.endswith("_created")]
        if not samples:
            problems.append(f"{name} has no sample after the workload")
        for s in samples:
            if set(s.labels) != labels:
                problems.append(f"{s.name}{s.labels}: labels {sorted(s.labels)}, expected {sorted(labels)}")
                continue
            if s.labels and all(v == OVERFLOW for v in s.labels.values()):
                continue
            if "outcome" in labels and s.labels["outcome"] not in workload.OUTCOMES:
                problems.append(f"{s.name}{s.labels}: outcome {s.labels['outcome']!r}")
            if "type" in labels and s.labels["type"] not in TOKEN_TYPES:
                problems.append(f"{s.name}{s.labels}: type {s.labels['type']!r}")
            if OVERFLOW in s.labels.values():
                problems.append(f"{s.name}{s.labels}: {OVERFLOW} must replace every label of the series")
            if s.value < 0:
                problems.append(f"{s.name}{s.labels} = {s.value}")
    assert not problems, "\n".join(problems[:40])


def test_ledger_metrics_add_up_to_the_rollups(contract):
    """Cost, calls, retries and rework in the counters are those of the rollups (every run
    of the workload is released; verdicts move runs between outcomes, not totals)."""
    _, families = scrape(contract.daemon.api_url)
    missing = [n for n in LEDGER_METRICS if n not in families]
    assert not missing, f"missing families {missing}"

    def total(name: str, **match: str) -> float:
        return sum(s.value for s in families[name].samples
                   if s.name == name and all(s.labels.get(k) == v for k, v in match.items()))

    g = support.rollups(contract.daemon.api_url, since="24h")["groups"][0]
    assert abs(total("spanledger_ledger_cost_usd_total") - g["cost_micros"] / 1e6) < 1e-5 * max(1, g["llm_calls"]), \
        (total("spanledger_ledger_cost_usd_total"), g["cost_usd"])
    assert total("spanledger_ledger_llm_calls_total") == g["llm_calls"]
    assert total("spanledger_ledger_retries_total") == g["retries"]
    # Rework is counted when a run is released as rework; the rollups also count runs that
    # became rework later (an earlier run of the task rejected afterwards).
    assert 1 <= total("spanledger_ledger_rework_runs_total") <= g["rework_runs"]
    assert total("spanledger_ledger_tokens_total", type="output") == g["output_tokens"]
    # A run counts under each model it called: at least once per workflow.
    for w in support.rollups(contract.daemon.api_url, ("workflow",), since="24h")["groups"]:
        assert total("spanledger_ledger_runs_total", workflow=w["workflow"]) >= w["runs"], w["workflow"]
    overflowed = families["spanledger_ledger_series_overflowed"].samples[0].value
    assert overflowed == 0, f"{overflowed} label sets overflowed with a handful of workflows"


# --------------------------------------------------------------------------------------
# 6. deploy/: the Grafana dashboard, the Prometheus rules and configuration.
# --------------------------------------------------------------------------------------

PROMQL_WORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool",
                "inf", "nan", "start", "end"}
PROMETHEUS_OWN_SERIES = {"up"}  # made by Prometheus at every scrape


def promql_metric_names(expr: str) -> Set[str]:
    """The metric names a PromQL expression selects (label matchers, ranges, grouping
    clauses, strings and Grafana variables removed; functions are names followed by `(`)."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    s = re.sub(r"\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*", " 1 ", s)
    s = re.sub(r"\{[^}]*\}", " ", s)
    s = re.sub(r"\[[^\]]*\]", " ", s)
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    names = set()
    for m in re.finditer(r"(?<![A-Za-z0-9_:.])[A-Za-z_:][A-Za-z0-9_:]*", s):
        if s[m.end():].lstrip().startswith("(") or m.group(0).lower() in PROMQL_WORDS:
            continue
        names.add(m.group(0))
    return names


def test_promql_metric_name_extraction():
    assert promql_metric_names('sum by (workflow) (rate(spanledger_ledger_cost_usd_total{workflow=~"$workflow"}'
                               '[$__rate_interval])) / ignoring(x) sum(a_b:c offset 1d) > bool 0.5e3') == \
        {"spanledger_ledger_cost_usd_total", "a_b:c"}
    assert promql_metric_names('histogram_quantile(0.99, sum by (le) (rate(x_bucket[5m]))) or vector(0)') == {"x_bucket"}


def dashboard() -> Dict[str, Any]:
    return json.loads(DASHBOARD_PATH.read_text())


def dashboard_panels(d: Dict[str, Any]) -> List[Dict[str, Any]]:
    out = []
    for p in d["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))  # collapsed rows
    return out


def known_metric_names(api_url: str) -> Set[str]:
    _, families = scrape(api_url)
    names = {s.name for f in families.values() for s in f.samples}
    return names | set(LEDGER_METRICS)


def test_grafana_dashboard_model():
    d = dashboard()
    assert d["schemaVersion"] >= 36, d["schemaVersion"]
    assert d.get("uid") and d.get("title"), "a dashboard needs a uid and a title"
    inputs = {i["name"]: i for i in d.get("__inputs", [])}
    assert inputs.get("DS_PROMETHEUS", {}).get("pluginId") == "prometheus", d.get("__inputs")
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert variables.get("DS_PROMETHEUS", {}).get("type") == "datasource" and \
        variables["DS_PROMETHEUS"].get("query") == "prometheus", variables.get("DS_PROMETHEUS")
    wf = variables.get("workflow")
    assert wf and wf["type"] == "query", wf
    query = wf["query"]["query"] if isinstance(wf["query"], dict) else wf["query"]
    assert re.fullmatch(r"label_values\(\s*spanledger_ledger_\w+\s*,\s*workflow\s*\)", query), query
    problems = []
    ids = [p["id"] for p in dashboard_panels(d)]
    if len(ids) != len(set(ids)):
        problems.append(f"panel ids repeat: {ids}")
    for p in dashboard_panels(d):
        if p["type"] == "row":
            continue
        ds = p.get("datasource") or {}
        if ds.get("uid") != "${DS_PROMETHEUS}" or ds.get("type") != "prometheus":
            problems.append(f"panel {p['title']!r}: datasource {ds}")
        if not p.get("targets"):
            problems.append(f"panel {p['title']!r} has no query")
        for t in p.get("targets", []):
            if not t.get("expr") or (t.get("datasource") or ds).get("uid") != "${DS_PROMETHEUS}":
                problems.append(f"panel {p['title']!r}: target {t}")
        if not {"x", "y", "w", "h"} <= set(p.get("gridPos", {})):
            problems.append(f"panel {p['title']!r}: gridPos {p.get('gridPos')}")
    assert not problems, "\n".join(problems)


# The views a dashboard must have, as a test of its queries: a title word and what its
# expression must contain.
DASHBOARD_VIEWS = {
    "accepted outcomes": [r'spanledger_ledger_runs_total\{[^}]*outcome=~"accepted\|edited"'],
    "cost per accepted outcome": [r"spanledger_ledger_cost_usd_total", r'spanledger_ledger_runs_total\{[^}]*outcome=~"accepted\|edited"'],
    "spend by workflow": [r"spanledger_ledger_cost_usd_total", r"by \(workflow\)"],
    "outcome mix": [r"spanledger_ledger_runs_total", r"by \(outcome\)"],
    "acceptance rate": [r'outcome=~"accepted\|edited"', r'outcome=~"accepted\|edited\|rejected\|escalated"'],
    "retries": [r"spanledger_ledger_retries_total"],
    "tokens by type": [r"spanledger_ledger_tokens_total", r"by \(type\)"],
    "spans": [r"spanledger_spans_received_total"],
    "pending traces": [r"spanledger_pending_traces"],
    "fsync p99": [r"histogram_quantile\(0\.99", r"spanledger_wal_fsync_seconds_bucket"],
    "alerts firing": [r"spanledger_alerts_firing"],
}


def test_grafana_dashboard_has_every_view():
    panels = [p for p in dashboard_panels(dashboard()) if p["type"] != "row"]
    missing = []
    for view, patterns in DASHBOARD_VIEWS.items():
        ok = any(view in p["title"].lower() and
                 all(any(re.search(pat, t["expr"]) for t in p["targets"]) for pat in patterns) for p in panels)
        if not ok:
            missing.append(view)
    assert not missing, f"no panel for {missing}"


def test_grafana_queries_use_only_exported_metrics(contract):
    allowed = known_metric_names(contract.daemon.api_url)
    d = dashboard()
    problems = []
    for p in dashboard_panels(d):
        for t in p.get("targets", []):
            unknown = promql_metric_names(t["expr"]) - allowed
            if unknown:
                problems.append(f"panel {p['title']!r}: {sorted(unknown)} in {t['expr']}")
    for v in d["templating"]["list"]:
        if v["type"] == "query":
            q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
            m = re.match(r"label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)", q)
            if m and m.group(1) not in allowed:
                problems.append(f"variable {v['name']}: {m.group(1)}")
    assert not problems, "\n".join(problems)


def rules() -> Dict[str, Any]:
    return yaml.safe_load(RULES_PATH.read_text())


def test_prometheus_rules_use_only_exported_metrics(contract):
    allowed = known_metric_names(contract.daemon.api_url) | PROMETHEUS_OWN_SERIES
    problems = []
    names = set()
    for g in rules()["groups"]:
        for r in g["rules"]:
            names.add(r.get("alert") or r.get("record"))
            unknown = promql_metric_names(r["expr"]) - allowed
            if unknown:
                problems.append(f"{r.get('alert') or r.get('record')}: {sorted(unknown)}")
            if "alert" in r and not ({"severity"} <= set(r.get("labels", {})) and "summary" in r.get("annotations", {})):
                problems.append(f"{r['alert']}: needs a severity label and a summary")
    assert not problems, "\n".join(problems)
    for needed in ("SpanLedgerSpendSpike", "SpanLedgerAcceptanceLow", "SpanLedgerRetryRatioHigh", "SpanLedgerDown",
                   "SpanLedgerNotScraped", "SpanLedgerWALFsyncSlow", "SpanLedgerPendingTracesNearLimit"):
        assert needed in names, f"no rule {needed}"


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is not installed (Debian package prometheus)")
    return path


def run_promtool(*args: str, cwd: Optional[Path] = None) -> str:
    p = subprocess.run([promtool(), *args], capture_output=True, text=True, timeout=120, cwd=cwd)
    assert p.returncode == 0, f"promtool {' '.join(args)} exited {p.returncode}:\n{p.stdout}\n{p.stderr}"
    return p.stdout + p.stderr


def test_promtool_checks_rules_and_config():
    run_promtool("check", "rules", str(RULES_PATH))
    out = run_promtool("check", "config", str(PROMETHEUS_CONFIG_PATH))
    assert "spanledger-alerts.yaml" in out, out
    cfg = yaml.safe_load(PROMETHEUS_CONFIG_PATH.read_text())
    jobs = {j["job_name"]: j for j in cfg["scrape_configs"]}
    job = jobs["spanledger"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert [t for sc in job["static_configs"] for t in sc["targets"]] == ["127.0.0.1:4320"]


GRAFANA_SUBSTITUTIONS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h", "${__range}": "1h",
                         "$__range_s": "3600", "$workflow": ".*", "${workflow:regex}": ".*", "$instance": ".*",
                         "$window": "1h"}


def test_grafana_queries_are_valid_promql(tmp_path):
    """Every panel query, with the Grafana variables filled in, parses as PromQL
    (promtool checks it as a recording rule)."""
    promtool()
    records = []
    for p in dashboard_panels(dashboard()):
        for i, t in enumerate(p.get("targets", [])):
            expr = t["expr"]
            for k in sorted(GRAFANA_SUBSTITUTIONS, key=len, reverse=True):
                expr = expr.replace(k, GRAFANA_SUBSTITUTIONS[k])
            assert "$" not in expr, f"panel {p['title']!r}: a Grafana variable this test does not know: {expr}"
            records.append({"record": f"dashboard:panel_{p['id']}_{i}", "expr": expr})
    f = tmp_path / "dashboard-queries.yaml"
    f.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]}))
    run_promtool("check", "rules", str(f))


def _series(name: str, labels: Dict[str, str], values: str) -> Dict[str, str]:
    inner = ",".join(f'{k}="{v}"' for k, v in {"job": "spanledger", "instance": "127.0.0.1:4320", **labels}.items())
    return {"series": f"{name}{{{inner}}}", "values": values}


def test_promtool_unit_tests_of_the_alerts(tmp_path):
    """The rules fire on the data they are for and stay quiet on healthy data."""
    promtool()
    runs = "spanledger_ledger_runs_total"
    tests = [
        {   # support: every run rejected (no accepted series at all), 60/h; billing: all accepted.
            "interval": "1m",
            "input_series": [
                _series(runs, {"workflow": "support", "model": "m", "outcome": "rejected"}, "0+1x120"),
                _series(runs, {"workflow": "billing", "model": "m", "outcome": "accepted"}, "0+1x120"),
                _series(runs, {"workflow": "tiny", "model": "m", "outcome": "rejected"}, "0+0.1x120"),
            ],
            "promql_expr_test": [{"expr": 'count by (alertname, workflow) (ALERTS{alertstate="firing", alertname="SpanLedgerAcceptanceLow"})',
                                  "eval_time": "100m", "exp_samples": [
                                      {"labels": '{alertname="SpanLedgerAcceptanceLow", workflow="support"}', "value": 1}]}],
        },
        {   # 40% of calls retried in "storm", 5% in "calm".
            "interval": "1m",
            "input_series": [
                _series("spanledger_ledger_llm_calls_total", {"workflow": "storm", "model": "m"}, "0+10x60"),
                _series("spanledger_ledger_retries_total", {"workflow": "storm", "model": "m"}, "0+4x60"),
                _series("spanledger_ledger_llm_calls_total", {"workflow": "calm", "model": "m"}, "0+10x60"),
                _series("spanledger_ledger_retries_total", {"workflow": "calm", "model": "m"}, "0+0.5x60"),
            ],
            "promql_expr_test": [{"expr": 'count by (alertname, workflow) (ALERTS{alertstate="firing", alertname="SpanLedgerRetryRatioHigh"})',
                                  "eval_time": "45m", "exp_samples": [
                                      {"labels": '{alertname="SpanLedgerRetryRatioHigh", workflow="storm"}', "value": 1}]}],
        },
        {   # Spend: $0.05/min yesterday; today "spiky" at $0.5/min (10×), "steady" unchanged.
            "interval": "10m",
            "input_series": [
                _series("spanledger_ledger_cost_usd_total", {"workflow": "spiky", "model": "m", "outcome": "accepted"},
                        "0+0.5x144 72.5+5x18"),
                _series("spanledger_ledger_cost_usd_total", {"workflow": "steady", "model": "m", "outcome": "accepted"},
                        "0+0.5x162"),
            ],
            "promql_expr_test": [{"expr": 'count by (alertname, workflow) (ALERTS{alertstate="firing", alertname="SpanLedgerSpendSpike"})',
                                  "eval_time": "1610m", "exp_samples": [
                                      {"labels": '{alertname="SpanLedgerSpendSpike", workflow="spiky"}', "value": 1}]}],
        },
        {   # The daemon down, and not scraped at all.
            "interval": "1m",
            "input_series": [{"series": 'up{job="spanledger", instance="127.0.0.1:4320"}', "values": "1x5 0x20"}],
            "promql_expr_test": [{"expr": 'count by (alertname) (ALERTS{alertstate="firing", alertname=~"SpanLedgerDown|SpanLedgerNotScraped"})',
                                  "eval_time": "20m", "exp_samples": [{"labels": '{alertname="SpanLedgerDown"}', "value": 1}]}],
        },
        {
            "interval": "1m",
            "input_series": [{"series": 'up{job="other"}', "values": "1x30"}],
            "promql_expr_test": [{"expr": 'count by (alertname) (ALERTS{alertstate="firing", alertname=~"SpanLedgerDown|SpanLedgerNotScraped"})',
                                  "eval_time": "25m", "exp_samples": [{"labels": '{alertname="SpanLedgerNotScraped"}', "value": 1}]}],
        },
        {   # fsync p99 ~0.2 s; pending traces at 90% of the default limit.
            "interval": "1m",
            "input_series": [
                *[_series("spanledger_wal_fsync_seconds_bucket", {"le": le}, f"0+{n}x40")
                  for le, n in (("0.01", 10), ("0.1", 50), ("0.25", 100), ("1.0", 100), ("+Inf", 100))],
                _series("spanledger_pending_traces", {}, "90000x40"),
            ],
            "promql_expr_test": [{"expr": 'count by (alertname) (ALERTS{alertstate="firing", alertname=~"SpanLedgerWALFsyncSlow|SpanLedgerPendingTracesNearLimit"})',
                                  "eval_time": "30m", "exp_samples": [
                                      {"labels": '{alertname="SpanLedgerPendingTracesNearLimit"}', "value": 1},
                                      {"labels": '{alertname="SpanLedgerWALFsyncSlow"}', "value": 1}]}],
        },
    ]
    f = tmp_path / "alerts-test.yaml"
    f.write_text(yaml.safe_dump({"rule_files": [str(RULES_PATH)], "evaluation_interval": "1m", "tests": tests},
                                sort_keys=False))
    run_promtool("test", "rules", str(f))
