"""Hostile input against the real daemon (started with --read-timeout 3s and
--max-spans-per-request 100, other limits at their defaults: --max-body-size 16 MiB,
--max-attribute-depth 32, --max-span-attributes 1024, --max-attribute-bytes 65536).

gzip bombs (memory stays flat), truncated gzip, AnyValue nesting 10,000 deep (protobuf,
hand-encoded, and JSON) and at the depth limit, slow-loris clients, spans with too many
or too large attributes (dropped alone), too many spans in one request. After each case
the daemon is alive and a good client's export is accepted and shows up exactly."""

from __future__ import annotations

import json
import socket
import time
import zlib
from typing import List, Optional, Tuple

import grpc
import pytest
import requests
from google.rpc import code_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue

import support
import transport_support as ts
import workload
from workload import RunSpec

PROTO, JSON = "application/x-protobuf", "application/json"
READ_TIMEOUT_S = 3
MAX_SPANS = 100
MAX_BODY = 16 << 20
MAX_DEPTH = 32
MAX_ATTRS = 1024
MAX_ATTR_BYTES = 65_536
RSS_GROWTH_LIMIT_KIB = 50 * 1024


@pytest.fixture(scope="module")
def daemon(daemon_factory):
    return ts.start_daemon(daemon_factory, "hostile", [
        "--read-timeout", f"{READ_TIMEOUT_S}s", "--idle-timeout", "30s",
        "--max-spans-per-request", str(MAX_SPANS)])


_counter = [0]


def good_client_still_served(d, case: str) -> None:
    ts.assert_alive(d)
    _counter[0] += 1
    ts.good_export_lands(d, f"good-after-{case}-{_counter[0]}")


def encode(req: ExportTraceServiceRequest, ct: str) -> bytes:
    return req.SerializeToString() if ct == PROTO else json.dumps(ts.request_to_otlp_json(req)).encode()


def status_of(r, ct: str) -> Tuple[int, str]:
    if ct == JSON:
        st = ts.json_status(r)
        return st["code"], st["message"]
    st = ts.proto_status(r)
    return st.code, st.message


# --------------------------------------------------------------------------------------
# gzip.
# --------------------------------------------------------------------------------------

def gzip_bomb(inflated: int = 100 << 20) -> bytes:
    co = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip container
    chunk = bytes(1 << 20)
    return b"".join([co.compress(chunk) for _ in range(inflated >> 20)] + [co.flush()])


@pytest.mark.parametrize("ct", [PROTO, JSON], ids=["protobuf", "json"])
def test_gzip_bomb_is_413_and_memory_stays_flat(daemon, ct):
    bomb = gzip_bomb()
    assert len(bomb) < 110_000 and zlib.decompress(bomb, 31)[: 1 << 10] == bytes(1 << 10)
    # (deflate cannot exceed ~1032:1, so ≥100 MB of inflation needs ~100 KB of gzip)
    good_client_still_served(daemon, "warm-up")  # the baseline includes a served request
    with ts.RssSampler(daemon.proc.pid) as rss:
        r = ts.post(daemon, bomb, content_type=ct, headers={"Content-Encoding": "gzip"}, timeout=60)
        time.sleep(0.2)
    grew_peak, grew_after = rss.peak - rss.before, (rss.after or 0) - rss.before
    ts.assert_alive(daemon)
    assert grew_peak < RSS_GROWTH_LIMIT_KIB and grew_after < RSS_GROWTH_LIMIT_KIB, \
        f"VmRSS {rss.before} KiB before, peak {rss.peak}, after {rss.after}: a 100 MB inflation must stop at the limit"
    assert r.status_code == 413, (r.status_code, r.content[:300])
    code, msg = status_of(r, ct)
    assert code == code_pb2.RESOURCE_EXHAUSTED, (code, msg)
    good_client_still_served(daemon, "gzip-bomb")


def test_grpc_gzip_bomb_is_resource_exhausted_and_memory_stays_flat(daemon):
    run = support.simple_run("grpc-bomb", [dict(ts.GOOD_CALL, **{"gen_ai.prompt": "x" * (100 << 20)})])
    body = support.export_bytes([(run, run.spans)])
    good_client_still_served(daemon, "warm-up-grpc")
    relay = ts.CountingRelay(ts.grpc_target(daemon))
    try:
        with ts.RssSampler(daemon.proc.pid) as rss:
            res = ts.grpc_export(relay.address, body, compression=grpc.Compression.Gzip, timeout=60)
            time.sleep(0.2)
    finally:
        relay.close()
    assert relay.up < 1_000_000, f"the bomb should cross the wire compressed: {relay.up} bytes"
    ts.assert_alive(daemon)
    grew_peak, grew_after = rss.peak - rss.before, (rss.after or 0) - rss.before
    # The receiver inflates at most --max-body-size before it refuses (README "OTLP/gRPC"),
    # as the OTLP/HTTP one does: the same bound, not the 100 MB bomb.
    assert grew_peak < RSS_GROWTH_LIMIT_KIB and grew_after < RSS_GROWTH_LIMIT_KIB, \
        (f"VmRSS {rss.before} KiB before, peak {rss.peak}, after {rss.after}: a 100 MB gRPC inflation must stop at "
         f"--max-body-size ({MAX_BODY} bytes)")
    assert res.code == grpc.StatusCode.RESOURCE_EXHAUSTED, (res.code, res.details)
    assert str(MAX_BODY) in res.details, res.details
    good_client_still_served(daemon, "grpc-gzip-bomb")


@pytest.mark.parametrize("ct", [PROTO, JSON], ids=["protobuf", "json"])
@pytest.mark.parametrize("how", ["truncated", "cut_to_header", "bad_crc"])
def test_broken_gzip_is_400(daemon, ct, how):
    run = support.simple_run(f"broken-gzip-{how}", [ts.GOOD_CALL])
    z = bytearray(ts.gzip_bytes(encode(support.export_request([(run, run.spans)]), ct)))
    if how == "truncated":
        z = z[: len(z) - 12]
    elif how == "cut_to_header":
        z = z[:10]
    else:
        z[-8] ^= 0xFF  # CRC-32 of the trailer
    r = ts.post(daemon, bytes(z), content_type=ct, headers={"Content-Encoding": "gzip"})
    assert r.status_code == 400, (how, r.status_code, r.content[:300])
    code, msg = status_of(r, ct)
    assert code == code_pb2.INVALID_ARGUMENT and "gzip" in msg.lower(), (code, msg)
    good_client_still_served(daemon, f"broken-gzip-{how}")
    assert support.total(daemon.api_url, workflow=f"broken-gzip-{how}")["runs"] == 0


# --------------------------------------------------------------------------------------
# AnyValue nesting.
# --------------------------------------------------------------------------------------

def proto_with(req: ExportTraceServiceRequest, *, span: bytes = b"", resource: bytes = b"",
               scope: bytes = b"") -> bytes:
    """req re-encoded with extra encoded fields appended to its first resource, first
    scope and second span (protobuf fields may come in any order)."""
    out = b""
    for i, rs in enumerate(req.resource_spans):
        body = ts.ld(1, rs.resource.SerializeToString() + (resource if i == 0 else b""))
        for j, ss in enumerate(rs.scope_spans):
            sbody = ts.ld(1, ss.scope.SerializeToString() + (scope if i == j == 0 else b""))
            for k, sp in enumerate(ss.spans):
                sbody += ts.ld(2, sp.SerializeToString() + (span if i == j == 0 and k == 1 else b""))
            body += ts.ld(2, sbody)
        out += ts.ld(1, body)
    return out


def deep_proto(where: str, depth: int, kind: str, req: ExportTraceServiceRequest) -> bytes:
    kv = ts.key_value("deep", ts.nested_any_value(depth, kind))
    if where == "span":
        return proto_with(req, span=ts.ld(9, kv))                 # Span.attributes
    if where == "event":
        return proto_with(req, span=ts.ld(11, ts.ld(2, b"e") + ts.ld(3, kv)))  # Span.events[].attributes
    if where == "link":
        return proto_with(req, span=ts.ld(13, ts.ld(1, bytes(range(1, 17))) + ts.ld(2, bytes(range(1, 9)))
                                        + ts.ld(4, kv)))          # Span.links[].attributes
    if where == "resource":
        return proto_with(req, resource=ts.ld(1, kv))             # Resource.attributes
    if where == "scope":
        return proto_with(req, scope=ts.ld(3, kv))                # InstrumentationScope.attributes
    raise ValueError(where)


def deep_json(where: str, depth: int, kind: str, req: ExportTraceServiceRequest) -> bytes:
    doc = ts.request_to_otlp_json(req)
    marker = {"key": "deep", "value": "__DEEP__"}
    rs = doc["resourceSpans"][0]
    span = rs["scopeSpans"][0]["spans"][1]
    if where == "span":
        span.setdefault("attributes", []).append(marker)
    elif where == "event":
        span["events"] = [{"timeUnixNano": "1", "name": "e", "attributes": [marker]}]
    elif where == "link":
        span["links"] = [{"traceId": "0102030405060708090a0b0c0d0e0f10", "spanId": "0102030405060708",
                          "attributes": [marker]}]
    elif where == "resource":
        rs["resource"]["attributes"].append(marker)
    elif where == "scope":
        rs["scopeSpans"][0]["scope"]["attributes"] = [marker]
    text = json.dumps(doc)
    assert text.count('"__DEEP__"') == 1
    return text.replace('"__DEEP__"', ts.nested_json_any_value(depth, kind)).encode()


def deep_request(ct: str, where: str, depth: int, kind: str, workflow: str) -> Tuple[bytes, RunSpec]:
    run = support.simple_run(workflow, [ts.GOOD_CALL])
    req = support.export_request([(run, run.spans)])
    return (deep_proto if ct == PROTO else deep_json)(where, depth, kind, req), run


@pytest.mark.parametrize("ct", [PROTO, JSON], ids=["protobuf", "json"])
@pytest.mark.parametrize("kind", ["array", "kvlist"])
@pytest.mark.parametrize("where", ["span", "event", "link", "resource", "scope"])
def test_depth_10000_is_400(daemon, ct, kind, where):
    wf = f"deep-{where}-{kind}-{ct.split('/')[-1]}"
    body, _ = deep_request(ct, where, 10_000, kind, wf)
    r = ts.post(daemon, body, content_type=ct)
    ts.assert_alive(daemon)
    assert r.status_code == 400, (r.status_code, r.content[:300])
    code, msg = status_of(r, ct)
    assert code == code_pb2.INVALID_ARGUMENT, (code, msg)
    good_client_still_served(daemon, wf)
    assert support.total(daemon.api_url, workflow=wf)["runs"] == 0


@pytest.mark.parametrize("kind", ["array", "kvlist"])
def test_grpc_depth_10000_is_invalid_argument(daemon, kind):
    body, _ = deep_request(PROTO, "span", 10_000, kind, f"deep-grpc-{kind}")
    res = ts.grpc_export(ts.grpc_target(daemon), body)
    ts.assert_alive(daemon)
    assert res.code == grpc.StatusCode.INVALID_ARGUMENT, (res.code, res.details)
    good_client_still_served(daemon, f"deep-grpc-{kind}")


def test_json_10000_nested_unknown_field_does_not_crash(daemon):
    run = support.simple_run("deep-unknown-json", [ts.GOOD_CALL])
    doc = ts.request_to_otlp_json(support.export_request([(run, run.spans)]))
    doc["unknownField"] = "__DEEP__"
    body = json.dumps(doc).replace('"__DEEP__"', "[" * 10_000 + "]" * 10_000).encode()
    r = ts.post(daemon, body, content_type=JSON)
    ts.assert_alive(daemon)
    assert r.status_code in (200, 400), (r.status_code, r.content[:300])  # ignored, or refused by the parser
    good_client_still_served(daemon, "deep-unknown-json")


# Depth = AnyValues on the chain (a plain string is 1). 32 is within the limit however
# nesting is counted (32 values, 31 containers); 34 values (33 containers) is deeper
# than 32 however counted.
@pytest.mark.parametrize("ct", [PROTO, JSON], ids=["protobuf", "json"])
@pytest.mark.parametrize("kind", ["array", "kvlist"])
@pytest.mark.parametrize("depth,accepted", [(2, True), (MAX_DEPTH, True), (MAX_DEPTH + 2, False)],
                         ids=["depth2", "depth32", "depth34"])
def test_depth_limit_boundary(daemon, ct, kind, depth, accepted):
    wf = f"depth-{depth}-{kind}-{ct.split('/')[-1]}"
    body, run = deep_request(ct, "span", depth, kind, wf)
    r = ts.post(daemon, body, content_type=ct)
    if accepted:
        assert r.status_code == 200, (f"{depth} nested AnyValues ({kind}) must be within "
                                      f"--max-attribute-depth {MAX_DEPTH}", r.status_code, r.content[:300])
        support.wait_for_runs(daemon.api_url, 1, workflow=wf)
        support.check_groups(support.rollups(daemon.api_url, workflow=wf),
                             workload.expected_groups([workload.interpret_run(run)]), ())
    else:
        assert r.status_code == 400, (f"{depth} nested AnyValues ({kind}) are deeper than "
                                      f"--max-attribute-depth {MAX_DEPTH}", r.status_code, r.content[:300])
        good_client_still_served(daemon, wf)
        assert support.total(daemon.api_url, workflow=wf)["runs"] == 0


# --------------------------------------------------------------------------------------
# Slow clients.
# --------------------------------------------------------------------------------------

def raw_request(body: bytes, ct: str = PROTO) -> Tuple[bytes, bytes]:
    head = (f"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {ct}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    return head, body


def trickle(d, first: bytes, rest: bytes, on_second: Optional[callable] = None, limit_s: float = 12.0):
    """Sends `first` at once, then `rest` one byte per second; returns (seconds until the
    daemon closed the connection or None, bytes of `rest` sent, what the daemon sent)."""
    host, port = d.listening["otlp_http"].rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=10)
    s.settimeout(0.05)
    t0 = time.monotonic()
    got, sent, closed_at, next_send = b"", 0, None, t0
    try:
        if first:
            s.sendall(first)
        while time.monotonic() - t0 < limit_s:
            now = time.monotonic()
            if sent < len(rest) and now >= next_send:
                try:
                    s.send(rest[sent:sent + 1])
                except OSError:
                    closed_at = now - t0
                    break
                sent += 1
                next_send += 1.0
                if sent == 2 and on_second is not None:
                    on_second()
            try:
                chunk = s.recv(4096)
                if chunk == b"":
                    closed_at = time.monotonic() - t0
                    break
                got += chunk
            except socket.timeout:
                pass
            except OSError:
                closed_at = time.monotonic() - t0
                break
    finally:
        s.close()
    return closed_at, sent, got


@pytest.mark.parametrize("phase", ["headers", "body"])
def test_slow_loris_is_cut_off(daemon, phase):
    run = support.simple_run(f"loris-{phase}", [ts.GOOD_CALL])
    head, body = raw_request(support.export_bytes([(run, run.spans)]))
    first, rest = (b"", head + body) if phase == "headers" else (head, body)
    other = support.simple_run(f"during-loris-{phase}", [ts.GOOD_CALL])
    answers: List[int] = []

    def good_client_meanwhile():
        answers.append(support.post_otlp(daemon.otlp_url, support.export_bytes([(other, other.spans)])).status_code)

    closed_at, sent, got = trickle(daemon, first, rest, on_second=good_client_meanwhile)
    assert closed_at is not None, f"the daemon kept a 1 byte/s client for 12 s ({sent} bytes sent)"
    assert READ_TIMEOUT_S - 0.5 <= closed_at <= 2 * READ_TIMEOUT_S, \
        f"closed after {closed_at:.2f} s; --read-timeout is {READ_TIMEOUT_S} s"
    assert not got.startswith(b"HTTP/1.1 200"), got[:200]
    assert answers == [200], f"a good client was not served while the slow one trickled: {answers}"
    support.wait_for_runs(daemon.api_url, 1, workflow=f"during-loris-{phase}")
    good_client_still_served(daemon, f"loris-{phase}")
    assert support.total(daemon.api_url, workflow=f"loris-{phase}")["runs"] == 0


def test_keepalive_connection_idles_until_idle_timeout(daemon):
    """--read-timeout bounds how long one request may take to arrive; a keep-alive
    connection silent between requests is governed by --idle-timeout (30 s here)."""
    host, port = daemon.listening["otlp_http"].rsplit(":", 1)
    head, body = raw_request(b"")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(head)
        first = s.recv(4096)
        assert first.startswith(b"HTTP/1.1 200"), first
        time.sleep(READ_TIMEOUT_S + 2)
        try:
            s.sendall(head)
            second = s.recv(4096)
        except OSError as e:
            second = repr(e).encode()
    assert second.startswith(b"HTTP/1.1 200"), \
        (f"a keep-alive connection silent for {READ_TIMEOUT_S + 2} s (< --idle-timeout 30 s) was closed: "
         f"{second[:200]!r}")


# --------------------------------------------------------------------------------------
# Attribute limits: the span alone is dropped.
# --------------------------------------------------------------------------------------

def run_with_hostile_call(workflow: str, mutate) -> Tuple[ExportTraceServiceRequest, RunSpec, RunSpec]:
    """Root + two good LLM calls; `mutate` spoils the second call (protobuf Span; what it
    adds changes nothing SpanLedger reads). Returns the request, the whole run (counted
    if the call is taken) and the run without that call (counted if it is dropped)."""
    run = support.simple_run(workflow, [ts.GOOD_CALL, ts.GOOD_CALL])
    req = support.export_request([(run, run.spans)])
    victim = req.resource_spans[0].scope_spans[0].spans[2]
    assert victim.span_id == run.spans[2].span_id.to_bytes(8, "big")
    mutate(victim)
    kept = RunSpec(run.trace_id, run.service, run.spans[:2])
    return req, run, kept


def add_attributes(n_total: int):
    def mutate(span):
        for i in range(n_total - len(span.attributes)):
            span.attributes.add(key=f"extra.{i}", value=AnyValue(int_value=i))
        assert len(span.attributes) == n_total
    return mutate


def add_string(value: str, where: str = "attribute"):
    def mutate(span):
        v = AnyValue(string_value=value)
        if where == "attribute":
            span.attributes.add(key="gen_ai.prompt", value=v)
        elif where == "array":
            span.attributes.add(key="gen_ai.prompts", value=AnyValue(array_value=ArrayValue(values=[v])))
        elif where == "event":
            ev = span.events.add(name="gen_ai.content.prompt", time_unix_nano=span.start_time_unix_nano)
            ev.attributes.add(key="gen_ai.prompt", value=v)
    return mutate


ATTRIBUTE_CASES = {  # case: (mutation, dropped?)
    "1024_attributes": (add_attributes(MAX_ATTRS), False),
    "1025_attributes": (add_attributes(MAX_ATTRS + 1), True),
    "value_65536_bytes": (add_string("x" * MAX_ATTR_BYTES), False),
    "value_65537_bytes": (add_string("x" * (MAX_ATTR_BYTES + 1)), True),
    "utf8_value_65536_bytes": (add_string("é" * (MAX_ATTR_BYTES // 2)), False),
    "utf8_value_65537_bytes": (add_string("é" * (MAX_ATTR_BYTES // 2) + "x"), True),   # 32769 characters
    "array_element_65537_bytes": (add_string("x" * (MAX_ATTR_BYTES + 1), "array"), True),
    "event_value_65537_bytes": (add_string("x" * (MAX_ATTR_BYTES + 1), "event"), True),
}


@pytest.mark.parametrize("via", ["protobuf", "json", "grpc"])
@pytest.mark.parametrize("case", list(ATTRIBUTE_CASES))
def test_attribute_limits_drop_the_span_alone(daemon, case, via):
    mutate, dropped = ATTRIBUTE_CASES[case]
    wf = f"attrs-{case}-{via}"
    req, whole, kept = run_with_hostile_call(wf, mutate)
    if via == "grpc":
        res = ts.grpc_export(ts.grpc_target(daemon), req.SerializeToString())
        assert res.code == grpc.StatusCode.OK, (res.code, res.details)
        resp = ExportTraceServiceResponse.FromString(res.response)
        rejected, message = resp.partial_success.rejected_spans, resp.partial_success.error_message
    else:
        ct = PROTO if via == "protobuf" else JSON
        r = ts.post(daemon, encode(req, ct), content_type=ct)
        assert r.status_code == 200, (r.status_code, r.content[:300])
        if ct == PROTO:
            resp = ExportTraceServiceResponse.FromString(r.content)
            rejected, message = resp.partial_success.rejected_spans, resp.partial_success.error_message
        else:
            ps = r.json().get("partialSuccess", {})
            rejected, message = int(ps.get("rejectedSpans", 0)), ps.get("errorMessage", "")
    assert rejected == (1 if dropped else 0), (case, rejected, message)
    if dropped:
        assert message.strip(), "partial success without an error_message"
    support.wait_for_runs(daemon.api_url, 1, workflow=wf)
    facts = workload.interpret_run(kept if dropped else whole)
    assert len(facts.calls) == (1 if dropped else 2)
    support.check_groups(support.rollups(daemon.api_url, workflow=wf), workload.expected_groups([facts]), ())
    good_client_still_served(daemon, wf)


# --------------------------------------------------------------------------------------
# Spans per request.
# --------------------------------------------------------------------------------------

def many_spans_request(workflow: str, n: int, resources: int = 1) -> Tuple[ExportTraceServiceRequest, RunSpec]:
    """One run of n spans (root + n-1 LLM calls), split over `resources` services."""
    run = support.simple_run(workflow, [ts.GOOD_CALL] * (n - 1))
    services = [f"svc-{i}" for i in range(resources)]
    for i, s in enumerate(run.spans):
        s.service = run.service if i == 0 else services[i % resources]
    req = support.export_request([(run, run.spans)])
    assert sum(len(ss.spans) for rs in req.resource_spans for ss in rs.scope_spans) == n
    assert len(req.resource_spans) == len({s.service for s in run.spans})
    return req, run


@pytest.mark.parametrize("via", ["protobuf", "json", "grpc"])
@pytest.mark.parametrize("n,resources", [(MAX_SPANS, 1), (MAX_SPANS + 1, 1), (MAX_SPANS + 1, 3), (5000, 1)],
                         ids=["100", "101", "101_in_3_resources", "5000"])
def test_spans_per_request_limit(daemon, n, resources, via):
    wf = f"spans-{n}-{resources}-{via}"
    req, run = many_spans_request(wf, n, resources)
    if via == "grpc":
        res = ts.grpc_export(ts.grpc_target(daemon), req.SerializeToString())
        ok = res.code == grpc.StatusCode.OK
        detail = (res.code, res.details)
        if n > MAX_SPANS:
            assert res.code == grpc.StatusCode.INVALID_ARGUMENT, detail
    else:
        ct = PROTO if via == "protobuf" else JSON
        r = ts.post(daemon, encode(req, ct), content_type=ct)
        ok = r.status_code == 200
        detail = (r.status_code, r.content[:300])
        if n > MAX_SPANS:
            assert r.status_code == 400, detail
            code, msg = status_of(r, ct)
            assert code == code_pb2.INVALID_ARGUMENT and str(MAX_SPANS) in msg, (code, msg)
    if n <= MAX_SPANS:
        assert ok, detail
        support.wait_for_runs(daemon.api_url, 1, workflow=wf)
        facts = workload.interpret_run(run)
        assert facts.cost_micros == (n - 1) * ts.GOOD_COST_MICROS
        support.check_groups(support.rollups(daemon.api_url, workflow=wf), workload.expected_groups([facts]), ())
    else:
        good_client_still_served(daemon, wf)
        assert support.total(daemon.api_url, workflow=wf)["runs"] == 0


# --------------------------------------------------------------------------------------
# Running out of file descriptors.
# --------------------------------------------------------------------------------------

FD_LIMIT = 128


def test_running_out_of_file_descriptors_loses_nothing_and_recovers(daemon_factory):
    """A daemon limited to 128 open files gets 300 idle connections on both OTLP
    listeners and the API: accept fails (EMFILE) and a flush meanwhile cannot open its
    files. The listeners back off instead of ending the daemon; once the connections
    close, a run accepted before is still there (and after a restart), and new exports
    over HTTP and gRPC land."""
    d = daemon_factory.create("fdlimit", [*ts.GRPC_ARGS])
    d.prefix = ["prlimit", f"--nofile={FD_LIMIT}:{FD_LIMIT}", "--"]
    d.start()
    before = support.simple_run("fd-before", [ts.GOOD_CALL])
    r = support.post_otlp(d.otlp_url, support.export_bytes([(before, before.spans)]))
    assert r.status_code == 200, (r.status_code, r.content[:300])
    held: List[socket.socket] = []
    try:
        for address in [d.listening["otlp_http"], d.listening["otlp_grpc"], d.api_url.split("//")[1]] * 100:
            host, port = address.rsplit(":", 1)
            held.append(socket.create_connection((host, int(port)), timeout=5))
        # Out of files: a new connection is not accepted (not answered within 2 s).
        with pytest.raises((requests.exceptions.Timeout, requests.exceptions.ConnectionError)):
            requests.get(d.api_url + "/healthz", timeout=2)
        # Past the trace wait and a flush interval: the run is released and a flush tried.
        time.sleep(1)
        assert d.running, f"the daemon exited with {d.proc.returncode} while out of files\n{d.log_tail()}"
    finally:
        for s in held:
            s.close()
    # NIO retries accept after a second's backoff.
    assert ts.wait_for(lambda: support.http("GET", d.api_url + "/healthz", timeout=2).status_code == 200, 20), d.log_tail()
    support.wait_for_runs(d.api_url, 1, workflow="fd-before")
    ts.good_export_lands(d, "fd-after-http")
    ts.good_export_lands(d, "fd-after-grpc", via="grpc")
    assert d.stop() == 0
    d.start()
    for wf in ["fd-before", "fd-after-http", "fd-after-grpc"]:
        assert support.total(d.api_url, workflow=wf)["runs"] == 1, wf
