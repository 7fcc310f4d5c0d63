"""OTLP/HTTP error handling of the real daemon (started with --max-body-size 1024):
each bad request gets its status code, and the daemon keeps accepting good ones."""

from __future__ import annotations

import time

import pytest
import requests
from google.protobuf.message import DecodeError
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

import support
import workload

MAX_BODY = 1024

CALL = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 200}

MALFORMED = {
    "truncated": b"\x0a\x05abc",                 # resource_spans: length 5, 3 bytes follow
    "bad_wire_type": b"\x0f\x01\x02",            # field 1 with wire type 7
    "truncated_varint": b"\x0a\x03\x0a\x81",     # nested field cut inside a varint
}


@pytest.fixture(scope="module")
def daemon(daemon_factory):
    return daemon_factory.start(extra_args=["--max-body-size", str(MAX_BODY)])


def export_and_check(daemon, workflow: str) -> None:
    """A valid one-call run is accepted and shows up with exactly its numbers."""
    run = support.simple_run(workflow, [CALL])
    body = support.export_bytes([(run, run.spans)])
    assert len(body) < MAX_BODY
    r = support.post_otlp(daemon.otlp_url, body)
    assert r.status_code == 200, (r.status_code, r.content[:500])
    support.wait_for_runs(daemon.api_url, 1, workflow=workflow)
    facts = workload.interpret_run(run)
    assert facts.cost_micros == 270  # 1000 × 0.15 + 200 × 0.60 per million, in micro-dollars
    support.check_groups(support.rollups(daemon.api_url, workflow=workflow), workload.expected_groups([facts]), ())


def test_malformed_protobuf_is_400_then_valid_export_lands(daemon):
    for name, body in MALFORMED.items():
        with pytest.raises(DecodeError):
            ExportTraceServiceRequest.FromString(body)
        r = support.post_otlp(daemon.otlp_url, body)
        assert r.status_code == 400, (name, r.status_code, r.content[:500])
        assert r.content, f"{name}: 400 with an empty body"
        assert r.headers.get("Content-Type", "").startswith("application/x-protobuf"), (name, r.headers)
        status = Status.FromString(r.content)
        assert status.message, f"{name}: google.rpc.Status without a message: {status}"
    export_and_check(daemon, "after-malformed")


def test_other_content_type_is_415(daemon):
    run = support.simple_run("sent-as-text", [CALL])
    r = support.post_otlp(daemon.otlp_url, support.export_bytes([(run, run.spans)]), content_type="text/plain")
    assert r.status_code == 415, (r.status_code, r.content[:500])
    export_and_check(daemon, "after-415")
    time.sleep(1.0)  # past --trace-wait: had the text/plain body been taken, its run would show
    assert support.total(daemon.api_url, workflow="sent-as-text")["runs"] == 0


def test_unknown_path_is_404(daemon):
    r = support.post_otlp(daemon.otlp_url, ExportTraceServiceRequest().SerializeToString(), path="/v1/nothing")
    assert r.status_code == 404, (r.status_code, r.content[:500])


def test_get_on_traces_endpoint_is_405(daemon):
    r = support.http("GET", daemon.otlp_url + "/v1/traces")
    assert r.status_code == 405, (r.status_code, r.content[:500])
    assert "POST" in r.headers.get("Allow", ""), f"405 without Allow: POST (RFC 9110): {dict(r.headers)}"


def test_body_over_max_body_size_is_413(daemon):
    run = support.simple_run("too-big", [dict(CALL, **{"gen_ai.prompt": "x" * 4096})])
    body = support.export_bytes([(run, run.spans)])
    assert len(body) > 4096
    try:
        r = support.post_otlp(daemon.otlp_url, body)
    except requests.ConnectionError as e:
        raise AssertionError("connection dropped instead of a 413 answer (a server that closes with the body "
                             f"unread sends a TCP reset that can destroy its own response): {e}")
    assert r.status_code == 413, (r.status_code, r.content[:500])
    export_and_check(daemon, "after-413")
    assert support.total(daemon.api_url, workflow="too-big")["runs"] == 0


def test_empty_export_request_is_200(daemon):
    r = support.post_otlp(daemon.otlp_url, ExportTraceServiceRequest().SerializeToString())
    assert r.status_code == 200, (r.status_code, r.content[:500])
    assert r.headers.get("Content-Type", "").startswith("application/x-protobuf"), r.headers
    ExportTraceServiceResponse.FromString(r.content)  # an ExportTraceServiceResponse (may be empty)


def test_unknown_trace_is_404(daemon):
    r = support.get_trace(daemon.api_url, "fedcba9876543210fedcba9876543210")
    assert r.status_code == 404, (r.status_code, r.text[:500])
