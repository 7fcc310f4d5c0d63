"""OTLP/HTTP JSON (`Content-Type: application/json`) against the real daemon.

Positive fixtures follow the shape of the OTLP specification's JSON example
(opentelemetry-proto examples/trace.json: resourceSpans → resource + scopeSpans → scope +
spans, lowerCamelCase keys, hex IDs, int64 as decimal strings), written by hand with
hex IDs in upper and lower case, int64 values as strings and as numbers, and unknown
fields at every level; they must be accepted and counted exactly. Negatives: base64 IDs
(the span alone dropped: 200 + partialSuccess), enum names where integers belong (400),
wrong JSON types (400), not JSON (400). Every answer is JSON; error answers are a
google.rpc.Status in JSON; nothing of a refused request is counted."""

from __future__ import annotations

import copy
import gzip
import json
import secrets
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest

import support
import transport_support as ts
import workload
from workload import NS_PER_MS, NS_PER_S, Event, RunSpec, SpanSpec

SERVICE = "json-svc"
# gpt-4o-mini: 600 × 0.15 + 400 × 0.075 + 200 × 0.60 per million = 240 µ$
# claude-sonnet-4: 1500 × 3 + 500 × 3.75 + 300 × 15 per million = 10875 µ$
EXAMPLE_COST_MICROS = 240 + 10_875


@pytest.fixture(scope="module")
def daemon(daemon_factory):
    return ts.start_daemon(daemon_factory, "json")


def post_json(d, doc: Any, *, raw: Optional[bytes] = None, encoding: Optional[str] = None,
              content_type: str = "application/json"):
    body = raw if raw is not None else json.dumps(doc).encode()
    headers = {}
    if encoding == "gzip":
        body = gzip.compress(body, mtime=0)
        headers["Content-Encoding"] = "gzip"
    r = ts.post(d, body, content_type=content_type, headers=headers)
    assert r.headers.get("Content-Type", "").split(";")[0].strip() == "application/json", \
        f"answer to a JSON request is not JSON: {r.status_code} {r.headers} {r.content[:300]!r}"
    return r


def hex_id(bits: int) -> str:
    return secrets.token_hex(bits // 8)


class Example:
    """A hand-written, spec-shaped OTLP JSON request of one run (root workflow span, two
    LLM calls, one tool call) and the same run as a RunSpec for the expectations."""

    def __init__(self, workflow: str, verdict: str = "accepted", start_ns: Optional[int] = None):
        t0 = start_ns if start_ns is not None else time.time_ns() - 5 * 60 * NS_PER_S
        self.workflow = workflow
        trace = hex_id(128)
        root, c1, c2, tool = (hex_id(64) for _ in range(4))
        self.ids = {"trace": trace, "root": root, "c1": c1, "c2": c2, "tool": tool}
        ms = NS_PER_MS
        self.doc = {
            "resourceSpans": [{
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": SERVICE}},
                                   {"key": "host.name", "value": {"stringValue": "box-1"},
                                    "unknownKeyValueField": {"ignored": True}}],
                    "droppedAttributesCount": 0,
                    "unknownResourceField": [1, "two", {"three": 3}],
                },
                "schemaUrl": "https://opentelemetry.io/schemas/1.26.0",
                "unknownResourceSpansField": "ignored",
                "scopeSpans": [{
                    "scope": {"name": "my.library", "version": "1.0.0",
                              "attributes": [{"key": "my.scope.attribute",
                                              "value": {"stringValue": "some scope attribute"}}],
                              "unknownScopeField": True},
                    "unknownScopeSpansField": {"nested": {"deeper": [None, 1.5]}},
                    "spans": [
                        {   # the root: upper-case IDs, start as a string, end as a number
                            "traceId": trace.upper(), "spanId": root.upper(), "parentSpanId": "",
                            "name": f"invoke_workflow {workflow}", "kind": 2,
                            "startTimeUnixNano": str(t0), "endTimeUnixNano": t0 + 2_000 * ms,
                            "attributes": [
                                {"key": "gen_ai.operation.name", "value": {"stringValue": "invoke_workflow"}},
                                {"key": "gen_ai.workflow.name", "value": {"stringValue": workflow}},
                                {"key": "outcome.verdict", "value": {"stringValue": verdict}},
                            ],
                            "droppedAttributesCount": 0, "droppedEventsCount": 0, "droppedLinksCount": 0,
                            "status": {"code": 1, "unknownStatusField": "x"},
                            "unknownSpanField": {"a": [1, 2, {"b": None}]},
                        },
                        {   # lower-case IDs, parent in upper case; int64 as number / string mixed
                            "traceId": trace.lower(), "spanId": c1.lower(), "parentSpanId": root.upper(),
                            "name": "chat gpt-4o-mini", "kind": 3,
                            "startTimeUnixNano": t0 + 10 * ms, "endTimeUnixNano": str(t0 + 410 * ms),
                            "attributes": [
                                {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                                {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o-mini"}},
                                {"key": "gen_ai.response.model", "value": {"stringValue": "gpt-4o-mini-2024-07-18"}},
                                {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "1000"}},
                                {"key": "gen_ai.usage.cache_read.input_tokens",
                                 "value": {"intValue": 400, "unknownAnyValueField": 1}},
                                {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "200"}},
                            ],
                            "flags": 257, "traceState": "",
                        },
                        {   # mixed-case IDs
                            "traceId": trace[:16].upper() + trace[16:], "spanId": c2[:8] + c2[8:].upper(),
                            "parentSpanId": root.lower(),
                            "name": "chat claude", "kind": 3,
                            "startTimeUnixNano": str(t0 + 420 * ms), "endTimeUnixNano": t0 + 1_420 * ms,
                            "attributes": [
                                {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                                {"key": "gen_ai.response.model", "value": {"stringValue": "claude-sonnet-4-20250514"}},
                                {"key": "gen_ai.usage.input_tokens", "value": {"intValue": 2000}},
                                {"key": "gen_ai.usage.cache_creation.input_tokens", "value": {"intValue": "500"}},
                                {"key": "gen_ai.usage.output_tokens", "value": {"intValue": 300}},
                                {"key": "gen_ai.request.temperature", "value": {"doubleValue": 0.2}},
                                {"key": "gen_ai.request.stream", "value": {"boolValue": False}},
                            ],
                            "events": [{"timeUnixNano": str(t0 + 500 * ms), "name": "gen_ai.content.prompt",
                                        "attributes": [], "unknownEventField": 7}],
                            "links": [],
                        },
                        {
                            "traceId": trace, "spanId": tool.upper(), "parentSpanId": root,
                            "name": "execute_tool search", "kind": 1,
                            "startTimeUnixNano": t0 + 1_430 * ms, "endTimeUnixNano": t0 + 1_900 * ms,
                            "attributes": [
                                {"key": "gen_ai.operation.name", "value": {"stringValue": "execute_tool"}},
                                {"key": "gen_ai.tool.name", "value": {"stringValue": "search"}},
                                {"key": "tags", "value": {"arrayValue": {"values": [{"stringValue": "a"},
                                                                                     {"intValue": "2"}]}}},
                                {"key": "meta", "value": {"kvlistValue": {"values": [
                                    {"key": "k", "value": {"boolValue": True}}]}}},
                                {"key": "blob", "value": {"bytesValue": "AAEC"}},
                            ],
                        },
                    ],
                }],
            }],
            "unknownTopLevelField": {"anything": True},
        }
        sid = lambda h: int(h, 16)  # noqa: E731
        spans = [
            SpanSpec(sid(root), None, f"invoke_workflow {workflow}", SERVICE, t0, t0 + 2_000 * ms,
                     {"gen_ai.operation.name": "invoke_workflow", "gen_ai.workflow.name": workflow,
                      "outcome.verdict": verdict}, kind="server"),
            SpanSpec(sid(c1), sid(root), "chat gpt-4o-mini", SERVICE, t0 + 10 * ms, t0 + 410 * ms,
                     {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
                      "gen_ai.response.model": "gpt-4o-mini-2024-07-18", "gen_ai.usage.input_tokens": 1000,
                      "gen_ai.usage.cache_read.input_tokens": 400, "gen_ai.usage.output_tokens": 200},
                     kind="client"),
            SpanSpec(sid(c2), sid(root), "chat claude", SERVICE, t0 + 420 * ms, t0 + 1_420 * ms,
                     {"gen_ai.operation.name": "chat", "gen_ai.response.model": "claude-sonnet-4-20250514",
                      "gen_ai.usage.input_tokens": 2000, "gen_ai.usage.cache_creation.input_tokens": 500,
                      "gen_ai.usage.output_tokens": 300}, kind="client"),
            SpanSpec(sid(tool), sid(root), "execute_tool search", SERVICE, t0 + 1_430 * ms, t0 + 1_900 * ms,
                     {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"}),
        ]
        self.run = RunSpec(sid(trace), SERVICE, spans)

    @property
    def spans(self) -> List[Dict[str, Any]]:
        return self.doc["resourceSpans"][0]["scopeSpans"][0]["spans"]

    def facts(self) -> workload.RunFacts:
        return workload.interpret_run(self.run)


def check_counted(d, ex: Example) -> None:
    support.wait_for_runs(d.api_url, 1, workflow=ex.workflow)
    facts = ex.facts()
    support.check_groups(support.rollups(d.api_url, workflow=ex.workflow), workload.expected_groups([facts]), ())
    t = support.get_trace(d.api_url, ex.run.trace_id_hex)
    assert t.status_code == 200, (t.status_code, t.text[:500])
    support.check_trace(t.json(), ex.run, facts)


def assert_not_counted(d, workflow: str) -> None:
    """A refused request's run never shows up: checked after a later good run landed
    (so the refused one, had it been taken, would have been released too)."""
    good = Example(f"good-after-{workflow}")
    r = post_json(d, good.doc)
    assert r.status_code == 200, (r.status_code, r.content[:300])
    check_counted(d, good)
    time.sleep(0.5)
    assert support.total(d.api_url, workflow=workflow)["runs"] == 0, f"the refused request of {workflow} was counted"


# --------------------------------------------------------------------------------------
# Accepted.
# --------------------------------------------------------------------------------------

def test_spec_shaped_request_is_counted_exactly(daemon):
    ex = Example("json-example")
    facts = ex.facts()
    assert facts.cost_micros == EXAMPLE_COST_MICROS and len(facts.calls) == 2 and facts.tool_calls == 1
    r = post_json(daemon, ex.doc)
    assert r.status_code == 200, (r.status_code, r.content[:500])
    assert r.json() == {}, f"a fully accepted request answers {{}} (no partialSuccess): {r.content[:300]!r}"
    check_counted(daemon, ex)
    g = support.total(daemon.api_url, workflow="json-example")
    assert (g["runs"], g["accepted"], g["llm_calls"], g["tool_calls"], g["input_tokens"], g["cached_input_tokens"],
            g["cache_write_tokens"], g["output_tokens"], g["cost_micros"]) == \
        (1, 1, 2, 1, 3000, 400, 500, 500, EXAMPLE_COST_MICROS), g
    by_service = support.rollups(daemon.api_url, ("service",), workflow="json-example")["groups"]
    assert [x["service"] for x in by_service] == [SERVICE], by_service


def test_gzip_json_request_is_counted(daemon):
    ex = Example("json-gzip", verdict="rejected")
    r = post_json(daemon, ex.doc, encoding="gzip")
    assert r.status_code == 200, (r.status_code, r.content[:500])
    assert r.json() == {}, r.content[:300]
    check_counted(daemon, ex)


def test_empty_json_request_is_200(daemon):
    for body in (b"{}", b'{"resourceSpans": []}', b'{"resourceSpans": [], "unknown": 1}'):
        r = post_json(daemon, None, raw=body)
        assert r.status_code == 200, (body, r.status_code, r.content[:300])
        assert r.json() == {}, (body, r.content[:300])


def test_int64_numbers_are_exact(daemon):
    """Nanosecond times as JSON numbers above 2^53 must be read exactly: two verdict events
    1 ns apart decide the outcome (the later wins). A reader going through a double sees
    them at the same time, and then no tie-break gets all four runs right."""
    base = (time.time_ns() - 6 * 60 * NS_PER_S) // 1024 * 1024  # T and T+1 round to one double
    assert float(base) == float(base + 1) and base > 2**53
    cases = {  # workflow: (event order as listed, expected outcome)
        "ns-accept-listed-first": ([(1, "accepted"), (0, "rejected")], "accepted"),
        "ns-accept-listed-last": ([(0, "rejected"), (1, "accepted")], "accepted"),
        "ns-reject-listed-first": ([(1, "rejected"), (0, "accepted")], "rejected"),
        "ns-reject-listed-last": ([(0, "accepted"), (1, "rejected")], "rejected"),
    }
    for wf, (events, want) in cases.items():
        ex = Example(wf, start_ns=base - 3 * NS_PER_S)
        root = ex.spans[0]
        root["attributes"] = [a for a in root["attributes"] if a["key"] != "outcome.verdict"]
        root["events"] = [{"timeUnixNano": base + dt, "name": "gen_ai.evaluation.result",
                           "attributes": [{"key": "gen_ai.evaluation.score.label", "value": {"stringValue": label}}]}
                          for dt, label in events]
        ex.run.root.attributes.pop("outcome.verdict")
        ex.run.root.events = [Event("gen_ai.evaluation.result", base + dt, {"gen_ai.evaluation.score.label": label})
                              for dt, label in events]
        assert ex.facts().outcome == want
        r = post_json(daemon, ex.doc)
        assert r.status_code == 200, (wf, r.status_code, r.content[:300])
    for wf, (_, want) in cases.items():
        support.wait_for_runs(daemon.api_url, 1, workflow=wf)
    got = {wf: [g["outcome"] for g in support.rollups(daemon.api_url, ("outcome",), workflow=wf)["groups"]]
           for wf in cases}
    assert got == {wf: [want] for wf, (_, want) in cases.items()}, got


# --------------------------------------------------------------------------------------
# base64 IDs: the span alone is dropped.
# --------------------------------------------------------------------------------------

def b64(hex_str: str) -> str:
    import base64
    return base64.b64encode(bytes.fromhex(hex_str)).decode()


def test_base64_ids_drop_the_span_alone(daemon):
    ex = Example("json-base64")
    trace, root = ex.ids["trace"], ex.ids["root"]
    extra = []
    for i, (field, value) in enumerate([("traceId", b64(trace)), ("spanId", b64(hex_id(64))),
                                        ("parentSpanId", b64(root))]):
        s = copy.deepcopy(ex.spans[1])  # an LLM call: counted if it were taken
        s["spanId"] = hex_id(64)
        s[field] = value
        extra.append(s)
    ex.spans.extend(extra)
    r = post_json(daemon, ex.doc)
    assert r.status_code == 200, (r.status_code, r.content[:500])
    body = r.json()
    ps = body.get("partialSuccess")
    assert isinstance(ps, dict), body
    assert ps.get("rejectedSpans") == "3", f"rejectedSpans (an int64: a JSON string) should be \"3\": {body}"
    assert isinstance(ps.get("errorMessage"), str) and ps["errorMessage"].strip(), body
    assert set(body) == {"partialSuccess"}, body
    check_counted(daemon, ex)  # exactly the four good spans


# --------------------------------------------------------------------------------------
# Refused: 400 with a JSON google.rpc.Status.
# --------------------------------------------------------------------------------------

def _span(i: int) -> Callable[[Dict[str, Any]], Dict[str, Any]]:
    return lambda d: d["resourceSpans"][0]["scopeSpans"][0]["spans"][i]


def _attr(i: int, key: str) -> Callable[[Dict[str, Any]], Dict[str, Any]]:
    return lambda d: next(a for a in _span(i)(d)["attributes"] if a["key"] == key)


def _set(get: Callable[[Dict[str, Any]], Any], key: str, value: Any) -> Callable[[Dict[str, Any]], None]:
    return lambda d: get(d).__setitem__(key, value)


ENUM_NAMES = {  # case: (mutation, field the message must name)
    "span_kind_name": (_set(_span(0), "kind", "SPAN_KIND_SERVER"), "kind"),
    "span_kind_name_on_child": (_set(_span(1), "kind", "SPAN_KIND_CLIENT"), "kind"),
    "status_code_name": (lambda d: _span(1)(d).__setitem__("status", {"code": "STATUS_CODE_ERROR"}), "status.code"),
}

WRONG_TYPES = {  # case: (mutation, text the message must contain)
    "resourceSpans_number": (lambda d: d.__setitem__("resourceSpans", 5), "resourceSpans"),
    "resourceSpans_object": (lambda d: d.__setitem__("resourceSpans", {"a": 1}), "resourceSpans"),
    "scopeSpans_object": (lambda d: d["resourceSpans"][0].__setitem__("scopeSpans", {}), "scopeSpans"),
    "spans_string": (lambda d: d["resourceSpans"][0]["scopeSpans"][0].__setitem__("spans", "x"), "spans"),
    "resource_array": (lambda d: d["resourceSpans"][0].__setitem__("resource", []), "resource"),
    "span_attributes_object": (_set(_span(1), "attributes", {"gen_ai.usage.input_tokens": 5}), "attributes"),
    "resource_attributes_object": (lambda d: d["resourceSpans"][0]["resource"].__setitem__(
        "attributes", {"service.name": "x"}), "attributes"),
    "intValue_bool": (_set(lambda d: _attr(1, "gen_ai.usage.input_tokens")(d)["value"], "intValue", True), "intValue"),
    "intValue_fraction": (_set(lambda d: _attr(1, "gen_ai.usage.input_tokens")(d)["value"], "intValue", 1.5),
                          "intValue"),
    "intValue_not_decimal": (_set(lambda d: _attr(1, "gen_ai.usage.input_tokens")(d)["value"], "intValue", "12abc"),
                             "intValue"),
    "intValue_over_int64": (_set(lambda d: _attr(1, "gen_ai.usage.input_tokens")(d)["value"], "intValue",
                                 "99999999999999999999"), "intValue"),
    "stringValue_number": (_set(lambda d: _attr(0, "gen_ai.workflow.name")(d)["value"], "stringValue", 5),
                           "stringValue"),
    "boolValue_string": (_set(lambda d: _attr(2, "gen_ai.request.stream")(d)["value"], "boolValue", "true"),
                         "boolValue"),
    "arrayValue_list": (_set(lambda d: _attr(3, "tags")(d), "value", {"arrayValue": [1]}), "arrayValue"),
    "attribute_key_number": (_set(_attr(1, "gen_ai.usage.output_tokens"), "key", 7), "key"),
    "span_name_number": (_set(_span(1), "name", 5), "name"),
    "traceId_number": (_set(_span(1), "traceId", 5), "trace"),
    "start_time_bool": (_set(_span(1), "startTimeUnixNano", True), "startTimeUnixNano"),
    "end_time_not_decimal": (_set(_span(1), "endTimeUnixNano", "soon"), "endTimeUnixNano"),
    "events_object": (_set(_span(2), "events", {"name": "x"}), "events"),
    "status_number": (_set(_span(1), "status", 5), "status"),
    # Fields of events, links, status and scope: known fields, wrong types.
    "event_time_bool": (_set(lambda d: _span(2)(d)["events"][0], "timeUnixNano", True), "timeUnixNano"),
    "event_time_not_decimal": (_set(lambda d: _span(2)(d)["events"][0], "timeUnixNano", "abc"), "timeUnixNano"),
    "event_attributes_object": (_set(lambda d: _span(2)(d)["events"][0], "attributes", {"a": 1}), "attributes"),
    "status_message_number": (lambda d: _span(1)(d).__setitem__("status", {"code": 2, "message": 5}), "message"),
    "links_number": (_set(_span(2), "links", 5), "links"),
    "scope_number": (lambda d: d["resourceSpans"][0]["scopeSpans"][0].__setitem__("scope", 5), "scope"),
    "flags_not_decimal": (_set(_span(1), "flags", "abc"), "flags"),
}


def _refused(daemon, case: str, mutate, must_name: str) -> None:
    wf = f"json-refused-{case}"
    ex = Example(wf)
    mutate(ex.doc)
    r = post_json(daemon, ex.doc)
    assert r.status_code == 400, (case, r.status_code, r.content[:500])
    st = ts.json_status(r)
    assert st["code"] == 3, f"INVALID_ARGUMENT (3) expected: {st}"
    assert must_name in st["message"], f"the message should name {must_name!r}: {st}"
    assert_not_counted(daemon, wf)


@pytest.mark.parametrize("case", list(ENUM_NAMES))
def test_enum_names_are_400(daemon, case):
    mutate, name = ENUM_NAMES[case]
    _refused(daemon, case, mutate, name)


@pytest.mark.parametrize("case", list(WRONG_TYPES))
def test_wrong_types_are_400(daemon, case):
    mutate, name = WRONG_TYPES[case]
    _refused(daemon, case, mutate, name)


@pytest.mark.parametrize("raw", [b'{"resourceSpans": [', b"[]", b"null", b"\xff\xfe{", b'{"resourceSpans": [}'],
                         ids=["truncated", "array", "null", "not_utf8", "syntax"])
def test_not_json_is_400(daemon, raw):
    r = post_json(daemon, None, raw=raw)
    assert r.status_code == 400, (raw, r.status_code, r.content[:300])
    assert ts.json_status(r)["code"] == 3
    ts.assert_alive(daemon)
