"""Every answer of the OTLP receivers, table-driven, against the real daemon.

OTLP/HTTP (protobuf and JSON variants of each case where the content type matters):
200 (+ partial_success for spans with a bad trace/span ID, dropped alone), 400, 404,
405 + Allow: POST, 413 (body or its gzip inflation over --max-body-size), 415 (content
type, content encoding), 503 + Retry-After + RetryInfo. Answers come in the request's
content type; errors are a google.rpc.Status.

OTLP/gRPC: OK (+ partial_success), INVALID_ARGUMENT, RESOURCE_EXHAUSTED without RetryInfo
(a message, or its gzip/deflate inflation, over --max-body-size), UNIMPLEMENTED for other
methods, UNAVAILABLE with google.rpc.RetryInfo in grpc-status-details-bin.

The 503/UNAVAILABLE cases use a second daemon (--max-pending-traces 5 --trace-wait 60s)
filled with five rootless traces, so the next trace has nowhere to go."""

from __future__ import annotations

import json
import math
import re
import time
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans

import support
import transport_support as ts
import workload
from workload import RunSpec

MAX_BODY = 65_536
PROTO, JSON = "application/x-protobuf", "application/json"
MALFORMED_PROTO = b"\x0a\x05abc"      # resource_spans: length 5, 3 bytes follow
MALFORMED_JSON = b'{"resourceSpans": ['
GZIP_MAGIC = b"\x1f\x8b"


@pytest.fixture(scope="module")
def daemon(daemon_factory):
    return ts.start_daemon(daemon_factory, "conformance", ["--max-body-size", str(MAX_BODY)])


# --------------------------------------------------------------------------------------
# Request bodies.
# --------------------------------------------------------------------------------------

def encode(req: ExportTraceServiceRequest, ct: str) -> bytes:
    return req.SerializeToString() if ct == PROTO else json.dumps(ts.request_to_otlp_json(req)).encode()


def valid_run(workflow: str) -> Tuple[ExportTraceServiceRequest, List[RunSpec], int]:
    run = support.simple_run(workflow, [ts.GOOD_CALL, ts.GOOD_CALL])
    return support.export_request([(run, run.spans)]), [run], 0


BAD_IDS = {  # what is wrong: (trace_id bytes or None to keep, span_id bytes or None to keep)
    "short_trace_id": (bytes(range(1, 16)), None),
    "long_trace_id": (bytes(range(1, 18)), None),
    "missing_trace_id": (b"", None),
    "zero_trace_id": (bytes(16), None),
    "short_span_id": (None, bytes(range(1, 8))),
    "missing_span_id": (None, b""),
}


def bad_ids_run(workflow: str) -> Tuple[ExportTraceServiceRequest, List[RunSpec], int]:
    """A good run plus one LLM-call span per kind of bad ID (each would add a call, tokens
    and cost if it were taken)."""
    run = support.simple_run(workflow, [ts.GOOD_CALL])
    req = support.export_request([(run, run.spans)])
    spans = req.resource_spans[0].scope_spans[0].spans
    template = spans[1]
    for trace_id, span_id in BAD_IDS.values():
        s = spans.add()
        s.CopyFrom(template)
        s.span_id = support.new_span_id().to_bytes(8, "big")
        if trace_id is not None:
            s.trace_id = trace_id
        if span_id is not None:
            s.span_id = span_id
    return req, [run], len(BAD_IDS)


def missing_times_run(workflow: str) -> Tuple[ExportTraceServiceRequest, List[RunSpec], int]:
    """A good run plus LLM-call spans of it without a start time, an end time or either
    (both are required; taken, each would add a call, tokens and cost at 1970)."""
    run = support.simple_run(workflow, [ts.GOOD_CALL])
    req = support.export_request([(run, run.spans)])
    spans = req.resource_spans[0].scope_spans[0].spans
    template = spans[1]
    for start, end in [(0, template.end_time_unix_nano), (template.start_time_unix_nano, 0), (0, 0)]:
        s = spans.add()
        s.CopyFrom(template)
        s.span_id = support.new_span_id().to_bytes(8, "big")
        s.start_time_unix_nano, s.end_time_unix_nano = start, end
    return req, [run], 3


def empty_containers(_: str) -> Tuple[ExportTraceServiceRequest, List[RunSpec], int]:
    req = ExportTraceServiceRequest(resource_spans=[ResourceSpans(), ResourceSpans(scope_spans=[ScopeSpans()])])
    return req, [], 0


def big_run(workflow: str, size: int) -> ExportTraceServiceRequest:
    run = support.simple_run(workflow, [dict(ts.GOOD_CALL, **{"gen_ai.prompt": "x" * size})])
    return support.export_request([(run, run.spans)])


def gzip_truncated(data: bytes) -> bytes:
    z = ts.gzip_bytes(data)
    return z[: len(z) // 2]


def gzip_corrupt(data: bytes) -> bytes:
    z = bytearray(ts.gzip_bytes(data))
    for i in range(12, min(len(z) - 8, 40)):  # scramble the deflate stream, keep header and size
        z[i] ^= 0xA5
    return bytes(z)


# --------------------------------------------------------------------------------------
# The OTLP/HTTP table.
# --------------------------------------------------------------------------------------

@dataclass
class HttpCase:
    name: str
    status: int
    content_types: Tuple[Optional[str], ...] = (PROTO, JSON)
    body: Callable[[str, str], Tuple[bytes, List[RunSpec], int]] = None  # (ct, workflow) -> body, runs, rejected
    method: str = "POST"
    path: str = "/v1/traces"
    headers: Dict[str, str] = field(default_factory=dict)
    status_code: Optional[int] = None  # google.rpc.Code in the Status body, when fixed by the contract
    answer_ct: Optional[str] = None    # expected answer content type when not the request's


def from_request(make) -> Callable[[str, str], Tuple[bytes, List[RunSpec], int]]:
    def body(ct: str, wf: str):
        req, runs, rejected = make(wf)
        return encode(req, ct), runs, rejected
    return body


def raw(proto: bytes, js: bytes):
    return lambda ct, wf: (proto if ct in (PROTO, None) else js, [], 0)


def gz(make, transform=ts.gzip_bytes):
    def body(ct: str, wf: str):
        data, runs, rejected = make(ct, wf)
        return transform(data), runs, rejected
    return body


HTTP_CASES = [
    HttpCase("valid", 200, body=from_request(valid_run)),
    HttpCase("valid_gzip", 200, body=gz(from_request(valid_run)), headers={"Content-Encoding": "gzip"}),
    HttpCase("valid_identity_encoding", 200, body=from_request(valid_run), headers={"Content-Encoding": "identity"}),
    # An empty Content-Encoding names no encoding: the body is taken as it is.
    HttpCase("valid_empty_encoding", 200, body=from_request(valid_run), headers={"Content-Encoding": ""}),
    HttpCase("empty_body", 200, body=raw(b"", b"")),
    HttpCase("empty_object", 200, content_types=(JSON,), body=raw(b"", b"{}")),
    HttpCase("empty_containers", 200, body=from_request(empty_containers)),
    HttpCase("bad_ids_partial_success", 200, body=from_request(bad_ids_run)),
    HttpCase("bad_ids_partial_success_gzip", 200, body=gz(from_request(bad_ids_run)),
             headers={"Content-Encoding": "gzip"}),
    HttpCase("missing_times_partial_success", 200, body=from_request(missing_times_run)),
    HttpCase("undecodable", 400, body=raw(MALFORMED_PROTO, MALFORMED_JSON), status_code=code_pb2.INVALID_ARGUMENT),
    HttpCase("gzip_of_undecodable", 400, body=gz(raw(MALFORMED_PROTO, MALFORMED_JSON)),
             headers={"Content-Encoding": "gzip"}, status_code=code_pb2.INVALID_ARGUMENT),
    HttpCase("gzip_truncated", 400, body=gz(from_request(valid_run), gzip_truncated),
             headers={"Content-Encoding": "gzip"}, status_code=code_pb2.INVALID_ARGUMENT),
    HttpCase("gzip_corrupt", 400, body=gz(from_request(valid_run), gzip_corrupt),
             headers={"Content-Encoding": "gzip"}, status_code=code_pb2.INVALID_ARGUMENT),
    HttpCase("gzip_header_only", 400, body=raw(GZIP_MAGIC + b"\x08\x00", GZIP_MAGIC + b"\x08\x00"),
             headers={"Content-Encoding": "gzip"}, status_code=code_pb2.INVALID_ARGUMENT),
    HttpCase("not_gzip_at_all", 400, body=from_request(valid_run), headers={"Content-Encoding": "gzip"},
             status_code=code_pb2.INVALID_ARGUMENT),
    HttpCase("other_path", 404, body=from_request(valid_run), path="/v1/metrics"),
    HttpCase("root_path", 404, body=from_request(valid_run), path="/"),
    HttpCase("trailing_slash", 404, body=from_request(valid_run), path="/v1/traces/"),
    HttpCase("get", 405, body=raw(b"", b""), method="GET"),
    HttpCase("put", 405, body=from_request(valid_run), method="PUT"),
    HttpCase("delete", 405, body=raw(b"", b""), method="DELETE"),
    HttpCase("body_too_large", 413, body=lambda ct, wf: (encode(big_run(wf, 2 * MAX_BODY), ct), [], 0),
             status_code=code_pb2.RESOURCE_EXHAUSTED),
    HttpCase("gzip_inflates_too_large", 413,
             body=gz(lambda ct, wf: (encode(big_run(wf, 16 * MAX_BODY), ct), [], 0)),
             headers={"Content-Encoding": "gzip"}, status_code=code_pb2.RESOURCE_EXHAUSTED),
    HttpCase("content_type_text", 415, content_types=("text/plain",), body=raw(b"{}", b"{}"), answer_ct=PROTO),
    HttpCase("content_type_application_protobuf", 415, content_types=("application/protobuf",),
             body=from_request(valid_run), answer_ct=PROTO),
    HttpCase("content_type_missing", 415, content_types=(None,), body=from_request(valid_run), answer_ct=PROTO),
    HttpCase("content_encoding_br", 415, body=from_request(valid_run), headers={"Content-Encoding": "br"}),
    HttpCase("content_encoding_deflate", 415, body=lambda ct, wf: (zlib.compress(encode(valid_run(wf)[0], ct)), [], 0),
             headers={"Content-Encoding": "deflate"}),
    HttpCase("content_encoding_compress", 415, body=from_request(valid_run), headers={"Content-Encoding": "compress"}),
]

HTTP_PARAMS = [pytest.param(c, ct, id=f"{c.name}-{(ct or 'none').split('/')[-1]}")
               for c in HTTP_CASES for ct in c.content_types]


def check_success_body(r, ct: str, rejected: int) -> None:
    if ct == JSON:
        doc = r.json()
        if rejected == 0:
            assert doc == {}, f"a fully accepted request answers {{}}: {doc}"
        else:
            assert set(doc) == {"partialSuccess"}, doc
            ps = doc["partialSuccess"]
            assert ps.get("rejectedSpans") == str(rejected), f"rejectedSpans should be \"{rejected}\": {doc}"
            assert re.search(r"[A-Za-z]{3,} [A-Za-z]{2,}", ps.get("errorMessage", "")), doc
    else:
        resp = ExportTraceServiceResponse.FromString(r.content)
        if rejected == 0:
            assert not resp.HasField("partial_success"), f"partial_success on a fully accepted request: {resp}"
        else:
            assert resp.partial_success.rejected_spans == rejected, resp
            assert re.search(r"[A-Za-z]{3,} [A-Za-z]{2,}", resp.partial_success.error_message), resp


def error_status(r, answer_ct: str) -> Tuple[int, str, List[Any]]:
    """(code, message, details) of a google.rpc.Status answer in either encoding."""
    if answer_ct == JSON:
        st = ts.json_status(r)
        return st["code"], st["message"], st.get("details", [])
    st = ts.proto_status(r)
    return st.code, st.message, list(st.details)


@pytest.mark.parametrize("case,ct", HTTP_PARAMS)
def test_http(daemon, case: HttpCase, ct: Optional[str]):
    wf = f"conf-http-{case.name}-{(ct or 'none').split('/')[-1]}"
    body, runs, rejected = case.body(ct, wf)
    if case.name == "gzip_inflates_too_large":
        assert len(body) < MAX_BODY // 4, len(body)  # only its inflation is too large
    if case.name == "body_too_large":
        assert len(body) > MAX_BODY
    r = ts.post(daemon, body, content_type=ct, headers=case.headers, path=case.path, method=case.method)
    assert r.status_code == case.status, (case.name, ct, r.status_code, r.headers, r.content[:500])
    answer_ct = case.answer_ct or ct or PROTO
    got_ct = r.headers.get("Content-Type", "").split(";")[0].strip()
    assert got_ct == answer_ct, f"answer Content-Type {got_ct!r}, expected {answer_ct!r} (the request's)"
    if case.status == 200:
        check_success_body(r, ct, rejected)
        for run in runs:
            support.wait_for_runs(daemon.api_url, 1, workflow=wf)
            support.check_groups(support.rollups(daemon.api_url, workflow=wf),
                                 workload.expected_groups([workload.interpret_run(run)]), ())
        return
    code, message, details = error_status(r, answer_ct)
    assert code != code_pb2.OK and message.strip(), (code, message)
    if case.status_code is not None:
        assert code == case.status_code, f"google.rpc.Status code {code}, expected {case.status_code}: {message}"
    assert details == [], f"only 503 carries details (RetryInfo): {details}"
    if case.status == 405:
        assert r.headers.get("Allow") == "POST", f"405 without Allow: POST: {dict(r.headers)}"
    if case.status == 413:
        assert r.headers.get("Connection", "").lower() == "close", f"413 should close the connection: {dict(r.headers)}"
    assert "Retry-After" not in r.headers, dict(r.headers)


def test_http_refused_requests_were_not_counted(daemon):
    """Nothing of a 4xx request reached the rollups (every table body held a valid run)."""
    ts.good_export_lands(daemon, "conf-http-good-after")
    time.sleep(0.5)
    names = {g["workflow"] for g in support.rollups(daemon.api_url, ("workflow",))["groups"]}
    refused = {f"conf-http-{c.name}-{(ct or 'none').split('/')[-1]}" for c in HTTP_CASES if c.status != 200
               for ct in c.content_types}
    assert not names & refused, f"refused requests counted: {sorted(names & refused)}"


# --------------------------------------------------------------------------------------
# The OTLP/gRPC table.
# --------------------------------------------------------------------------------------

@dataclass
class GrpcCase:
    name: str
    code: grpc.StatusCode
    body: Callable[[str], Tuple[bytes, List[RunSpec], int]]
    compression: Optional[grpc.Compression] = None
    method: str = ts.EXPORT_METHOD


def g_from_request(make):
    def body(wf: str):
        req, runs, rejected = make(wf)
        return req.SerializeToString(), runs, rejected
    return body


GRPC_CASES = [
    GrpcCase("valid", grpc.StatusCode.OK, g_from_request(valid_run)),
    GrpcCase("valid_gzip", grpc.StatusCode.OK, g_from_request(valid_run), grpc.Compression.Gzip),
    GrpcCase("valid_deflate", grpc.StatusCode.OK, g_from_request(valid_run), grpc.Compression.Deflate),
    GrpcCase("empty_request", grpc.StatusCode.OK, lambda wf: (b"", [], 0)),
    GrpcCase("empty_containers", grpc.StatusCode.OK, g_from_request(empty_containers)),
    GrpcCase("bad_ids_partial_success", grpc.StatusCode.OK, g_from_request(bad_ids_run)),
    GrpcCase("bad_ids_partial_success_gzip", grpc.StatusCode.OK, g_from_request(bad_ids_run), grpc.Compression.Gzip),
    GrpcCase("missing_times_partial_success", grpc.StatusCode.OK, g_from_request(missing_times_run)),
    GrpcCase("undecodable", grpc.StatusCode.INVALID_ARGUMENT, lambda wf: (MALFORMED_PROTO, [], 0)),
    GrpcCase("undecodable_bad_wire_type", grpc.StatusCode.INVALID_ARGUMENT, lambda wf: (b"\x0f\x01\x02", [], 0)),
    GrpcCase("undecodable_gzip", grpc.StatusCode.INVALID_ARGUMENT, lambda wf: (MALFORMED_PROTO, [], 0),
             grpc.Compression.Gzip),
    # Over the limit by a little (2×) and by a lot (16×), plain and compressed: all the same answer.
    GrpcCase("message_too_large", grpc.StatusCode.RESOURCE_EXHAUSTED,
             lambda wf: (big_run(wf, 2 * MAX_BODY).SerializeToString(), [], 0)),
    # Far over it the answer is the same, and comes from the message's length prefix (or
    # from the inflation) before the rest is read: README "OTLP/gRPC".
    GrpcCase("message_far_too_large", grpc.StatusCode.RESOURCE_EXHAUSTED,
             lambda wf: (big_run(wf, 16 * MAX_BODY).SerializeToString(), [], 0)),
    GrpcCase("gzip_inflates_too_large", grpc.StatusCode.RESOURCE_EXHAUSTED,
             lambda wf: (big_run(wf, 2 * MAX_BODY).SerializeToString(), [], 0), grpc.Compression.Gzip),
    GrpcCase("gzip_inflates_far_too_large", grpc.StatusCode.RESOURCE_EXHAUSTED,
             lambda wf: (big_run(wf, 16 * MAX_BODY).SerializeToString(), [], 0), grpc.Compression.Gzip),
    GrpcCase("deflate_inflates_far_too_large", grpc.StatusCode.RESOURCE_EXHAUSTED,
             lambda wf: (big_run(wf, 16 * MAX_BODY).SerializeToString(), [], 0), grpc.Compression.Deflate),
    GrpcCase("other_method", grpc.StatusCode.UNIMPLEMENTED, lambda wf: (b"", [], 0),
             method="/opentelemetry.proto.collector.trace.v1.TraceService/Query"),
    GrpcCase("metrics_service", grpc.StatusCode.UNIMPLEMENTED, lambda wf: (b"", [], 0),
             method="/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"),
]


def grpc_call(target: str, case: GrpcCase, body: bytes) -> ts.GrpcResult:
    if case.method == ts.EXPORT_METHOD:
        return ts.grpc_export(target, body, compression=case.compression)
    with grpc.insecure_channel(target, options=ts.GRPC_CHANNEL_OPTIONS) as ch:
        try:
            resp, c = ch.unary_unary(case.method).with_call(body, timeout=30, compression=case.compression)
            return ts.GrpcResult(grpc.StatusCode.OK, "", resp, dict(c.trailing_metadata() or ()))
        except grpc.RpcError as e:
            return ts.GrpcResult(e.code(), e.details() or "", None, dict(e.trailing_metadata() or ()))


@pytest.mark.parametrize("case", GRPC_CASES, ids=lambda c: c.name)
def test_grpc(daemon, case: GrpcCase):
    wf = f"conf-grpc-{case.name}"
    body, runs, rejected = case.body(wf)
    relay = ts.CountingRelay(ts.grpc_target(daemon))
    try:
        res = grpc_call(relay.address, case, body)
    finally:
        relay.close()
    assert res.code == case.code, (case.name, res.code, res.details, res.trailing)
    if "inflates" in case.name:
        assert len(body) > 2 * MAX_BODY and relay.up < MAX_BODY // 2, \
            f"the message should cross the wire compressed: {relay.up} bytes sent for {len(body)}"
    if case.code == grpc.StatusCode.OK:
        resp = ExportTraceServiceResponse.FromString(res.response)
        if rejected == 0:
            assert not resp.HasField("partial_success"), resp
        else:
            assert resp.partial_success.rejected_spans == rejected, resp
            assert re.search(r"[A-Za-z]{3,} [A-Za-z]{2,}", resp.partial_success.error_message), resp
        for run in runs:
            support.wait_for_runs(daemon.api_url, 1, workflow=wf)
            support.check_groups(support.rollups(daemon.api_url, workflow=wf),
                                 workload.expected_groups([workload.interpret_run(run)]), ())
        return
    assert res.details.strip(), f"{case.code} without a message"
    st = res.status()
    if st is not None:  # rich status: must agree with the plain one, and carry no RetryInfo
        assert st.code == case.code.value[0] and st.message == res.details, (st, res.details)
        assert not ts.retry_infos(st), f"{case.code} must not carry RetryInfo (it is not retryable): {st}"


def test_grpc_refused_requests_were_not_counted(daemon):
    ts.good_export_lands(daemon, "conf-grpc-good-after", via="grpc")
    time.sleep(0.5)
    names = {g["workflow"] for g in support.rollups(daemon.api_url, ("workflow",))["groups"]}
    refused = {f"conf-grpc-{c.name}" for c in GRPC_CASES if c.code != grpc.StatusCode.OK}
    assert not names & refused, f"refused requests counted: {sorted(names & refused)}"


# --------------------------------------------------------------------------------------
# Backpressure: 503 / UNAVAILABLE with RetryInfo.
# --------------------------------------------------------------------------------------

BUSY_PENDING = 5


@pytest.fixture(scope="module")
def busy(daemon_factory):
    """A daemon whose trace assembly is full of live (rootless, recent) traces."""
    d = ts.start_daemon(daemon_factory, "busy", ["--max-pending-traces", str(BUSY_PENDING), "--trace-wait", "60s"])
    for i in range(BUSY_PENDING):
        run = support.simple_run(f"busy-fill-{i}", [ts.GOOD_CALL])
        r = support.post_otlp(d.otlp_url, support.export_bytes([(run, run.spans[1:])]))  # no root: stays open
        assert r.status_code == 200, (i, r.status_code, r.content[:300])
    ok = ts.wait_for(lambda: support.metric(d.api_url, "spanledger_pending_traces") == BUSY_PENDING, 10)
    assert ok, f"pending traces: {support.metrics(d.api_url)}"
    return d


def rootless_body(ct: str) -> bytes:
    run = support.simple_run("busy-refused", [ts.GOOD_CALL])
    return encode(support.export_request([(run, run.spans[1:])]), ct)


@pytest.mark.parametrize("ct", [PROTO, JSON], ids=["protobuf", "json"])
def test_http_503_retry_after_and_retry_info(busy, ct):
    r = ts.post(busy, rootless_body(ct), content_type=ct)
    assert r.status_code == 503, (r.status_code, r.headers, r.content[:500])
    assert r.headers.get("Content-Type", "").split(";")[0] == ct, r.headers
    ra = r.headers.get("Retry-After", "")
    assert re.fullmatch(r"[1-9]\d*", ra), f"Retry-After must be delay-seconds: {ra!r}"
    if ct == PROTO:
        st = ts.proto_status(r)
        assert st.code == code_pb2.UNAVAILABLE, st
        infos = ts.retry_infos(st)
        assert len(infos) == 1, f"exactly one RetryInfo detail expected: {st}"
        delay = infos[0].retry_delay.seconds + infos[0].retry_delay.nanos / 1e9
    else:
        st = ts.json_status(r)
        assert st["code"] == code_pb2.UNAVAILABLE, st
        infos = [x for x in st.get("details", []) if x.get("@type") == "type.googleapis.com/google.rpc.RetryInfo"]
        assert len(infos) == 1, f"exactly one RetryInfo detail (JSON Any with @type) expected: {st}"
        m = re.fullmatch(r"(\d+)(?:\.(\d{1,9}))?s", infos[0].get("retryDelay", ""))
        assert m, f"retryDelay must be a google.protobuf.Duration in JSON (\"30s\"): {infos[0]}"
        delay = int(m.group(1)) + int((m.group(2) or "0").ljust(9, "0")) / 1e9
    assert delay > 0, delay
    assert int(ra) == math.ceil(delay), f"Retry-After {ra} disagrees with RetryInfo {delay}s"


def test_grpc_unavailable_with_retry_info(busy):
    res = ts.grpc_export(ts.grpc_target(busy), rootless_body(PROTO))
    assert res.code == grpc.StatusCode.UNAVAILABLE, (res.code, res.details)
    assert res.details.strip()
    assert "grpc-status-details-bin" in res.trailing, f"no grpc-status-details-bin trailer: {res.trailing}"
    st = res.status()
    assert st.code == code_pb2.UNAVAILABLE and st.message == res.details, st
    infos = ts.retry_infos(st)
    assert len(infos) == 1, f"exactly one RetryInfo detail expected: {st}"
    assert infos[0].retry_delay.seconds > 0 or infos[0].retry_delay.nanos > 0, infos[0]


def test_busy_daemon_still_answers_empty_requests(busy):
    """Refusal is for new traces only: an empty request is still 200 / OK."""
    r = support.post_otlp(busy.otlp_url, b"")
    assert r.status_code == 200, (r.status_code, r.content[:300])
    res = ts.grpc_export(ts.grpc_target(busy), b"")
    assert res.code == grpc.StatusCode.OK, (res.code, res.details)
    assert support.metric(busy.api_url, "spanledger_pending_traces") == BUSY_PENDING
