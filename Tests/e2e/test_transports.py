"""Interop with the official OpenTelemetry Python SDK exporters: one seeded agent workload
(workload.py: four workflows, every verdict kind, retries, errors, several dialects) is
exported into a fresh daemon per transport —

  http_protobuf  OTLP/HTTP protobuf          (opentelemetry-exporter-otlp-proto-http)
  http_gzip      the same, Compression.Gzip
  grpc           OTLP/gRPC                    (opentelemetry-exporter-otlp-proto-grpc, insecure)
  grpc_gzip      the same, Compression.Gzip
  http_json      OTLP/HTTP JSON: the SDK's own encode_spans → MessageToJson, IDs hex
                 (upper and lower case), enums as integers, int64 as strings and numbers

— and every daemon must answer exactly the rollups workload.py computes, and all five
must answer identically (all fields, latency percentiles included). Each exporter talks
through a byte-counting loopback relay, so compression is seen on the wire."""

from __future__ import annotations

import json
from typing import Any, Dict, List

import pytest
import requests

import support
import transport_support as ts
import workload

SEED = 20261124
RUNS = 300
PATHS = ["http_protobuf", "http_gzip", "grpc", "grpc_gzip", "http_json"]
GROUPINGS = {
    ("workflow", "model", "outcome", "service"): workload.MODEL_EXACT_FIELDS,
    ("workflow", "outcome", "service"): workload.EXACT_FIELDS,
    (): workload.EXACT_FIELDS,
}


@pytest.fixture(scope="module")
def generated() -> workload.Workload:
    return workload.generate(SEED, RUNS)


# path -> {"daemon", "answers": {group_by: groups}, "bytes_up", "encodings"}
RESULTS: Dict[str, Dict[str, Any]] = {}


def exporter_factory(path: str, target: str, encodings: List[str]):
    """A callable building a fresh SDK exporter of `path` aimed at `target` (host:port)."""
    if path in ("http_protobuf", "http_gzip"):
        from opentelemetry.exporter.otlp.proto.http import Compression
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        def make():
            session = requests.Session()
            session.trust_env = False
            session.hooks["response"].append(
                lambda r, *a, **k: encodings.append(
                    f"{r.request.headers.get('Content-Type')}|{r.request.headers.get('Content-Encoding', 'identity')}"))
            return OTLPSpanExporter(endpoint=f"http://{target}/v1/traces", timeout=30, session=session,
                                    compression=Compression.Gzip if path == "http_gzip" else Compression.NoCompression)
        return make
    if path.startswith("grpc"):
        from grpc import Compression
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        def make():
            return OTLPSpanExporter(endpoint=f"http://{target}", insecure=True, timeout=30,
                                    compression=Compression.Gzip if path == "grpc_gzip" else Compression.NoCompression,
                                    channel_options=ts.GRPC_CHANNEL_OPTIONS)
        return make
    if path == "http_json":
        return lambda: ts.make_json_exporter(f"http://{target}/v1/traces")
    raise ValueError(path)


@pytest.mark.parametrize("path", PATHS)
def test_path_yields_expected_rollups(daemon_factory, generated, path):
    d = ts.start_daemon(daemon_factory, path)
    target = ts.grpc_target(d) if path.startswith("grpc") else d.listening["otlp_http"]
    relay = ts.CountingRelay(target)
    encodings: List[str] = []
    try:
        sent = ts.export_runs(generated.runs, exporter_factory(path, relay.address, encodings))
    finally:
        relay.close()
    assert sum(sent.values()) == generated.span_count, (sent, generated.span_count)
    if path.startswith("http_") and path != "http_json":
        want = "application/x-protobuf|" + ("gzip" if path == "http_gzip" else "identity")
        assert encodings and set(encodings) == {want}, sorted(set(encodings))

    support.wait_for_runs(d.api_url, RUNS, timeout=60)
    support.settle(d.api_url, ("workflow", "model", "outcome", "service"))
    answers = {}
    for group_by, fields in GROUPINGS.items():
        doc = support.rollups(d.api_url, group_by)
        support.check_groups(doc, generated.groups(group_by), group_by, fields)
        answers[group_by] = doc["groups"]
    RESULTS[path] = {"daemon": d, "answers": answers, "bytes_up": relay.up}

    # Run trees too: the showcase (every feature) and a few runs of each workflow.
    checked = [generated.showcase] + [r for wf in workload.WORKFLOWS
                                      for r in [x for x in generated.runs
                                                if generated.facts_for(x).workflow == wf][:2]]
    for run in checked:
        r = support.get_trace(d.api_url, run.trace_id_hex)
        assert r.status_code == 200, (run.trace_id_hex, r.status_code, r.text[:500])
        support.check_trace(r.json(), run, generated.facts_for(run))


def test_all_paths_identical():
    missing = [p for p in PATHS if p not in RESULTS]
    assert not missing, f"paths that did not complete (see their failures): {missing}"
    base = RESULTS[PATHS[0]]["answers"]
    problems = []
    for p in PATHS[1:]:
        for group_by, groups in RESULTS[p]["answers"].items():
            if groups != base[group_by]:
                problems.append(f"{p} vs {PATHS[0]}, group_by={list(group_by)}:\n"
                                f"  {json.dumps(groups)[:1500]}\n  {json.dumps(base[group_by])[:1500]}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("plain,compressed", [("http_protobuf", "http_gzip"), ("grpc", "grpc_gzip")])
def test_gzip_really_compressed_on_the_wire(plain, compressed):
    missing = [p for p in (plain, compressed) if p not in RESULTS]
    assert not missing, f"paths that did not complete: {missing}"
    a, b = RESULTS[plain]["bytes_up"], RESULTS[compressed]["bytes_up"]
    assert a > 0 and b > 0, (a, b)
    assert b < a / 2, f"{compressed} sent {b} bytes, {plain} {a}: compression not in effect"


def test_grpc_listener_offers_a_batch_sized_window_and_frames(daemon_factory):
    """The gRPC listener's HTTP/2 SETTINGS: a 512-span OTLP batch (about 160 KB) fits a
    stream's initial window and a few frames, so an exporter sends it without waiting for
    stream window updates (the transport's defaults are a 64 KB window and 16 KB frames)."""
    import socket
    import struct

    d = ts.start_daemon(daemon_factory, "grpc_settings")
    host, port = ts.grpc_target(d).split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")  # preface, empty SETTINGS
        settings, buf = None, b""
        while settings is None:
            chunk = s.recv(65536)
            assert chunk, "connection closed before the server's SETTINGS"
            buf += chunk
            while len(buf) >= 9:
                length = int.from_bytes(buf[0:3], "big")
                if len(buf) < 9 + length:
                    break
                ftype, flags = buf[3], buf[4]
                payload, buf = buf[9:9 + length], buf[9 + length:]
                if ftype == 0x4 and not flags & 0x1:
                    settings = {k: v for k, v in (struct.unpack(">HI", payload[i:i + 6]) for i in range(0, len(payload), 6))}
    assert settings.get(0x4, 65535) >= 1 << 20, settings  # SETTINGS_INITIAL_WINDOW_SIZE
    assert settings.get(0x5, 16384) >= 256 << 10, settings  # SETTINGS_MAX_FRAME_SIZE


def test_grpc_calls_in_flight_finish_when_the_daemon_stops(daemon_factory):
    """Many concurrent Export calls on one HTTP/2 connection (one gRPC channel), then
    SIGTERM while they keep coming: the daemon exits cleanly within its grace time, every
    call ends OK or UNAVAILABLE (no reset, no INTERNAL), and every run acknowledged OK is
    in the ledger after a restart."""
    import threading
    import time

    import grpc

    d = ts.start_daemon(daemon_factory, "grpc_stop", ["--log-level", "debug"])
    target = ts.grpc_target(d)
    acked: List[str] = []
    other: List[str] = []
    lock = threading.Lock()
    stop_sending = threading.Event()

    def sender(k: int, channel: grpc.Channel) -> None:
        call = channel.unary_unary(ts.EXPORT_METHOD)
        for i in range(2000):  # bounded; stop_sending ends it much sooner
            if stop_sending.is_set():
                return
            wf = f"stop-{k}-{i}"
            run = support.simple_run(wf, [ts.GOOD_CALL])
            try:
                call(support.export_bytes([(run, run.spans)]), timeout=30)
                with lock:
                    acked.append(wf)
            except grpc.RpcError as e:
                with lock:
                    other.append(f"{wf}: {e.code().name} {e.details()}")
                if e.code() == grpc.StatusCode.UNAVAILABLE:
                    return
                raise

    with grpc.insecure_channel(target, options=ts.GRPC_CHANNEL_OPTIONS) as channel:
        threads = [threading.Thread(target=sender, args=(k, channel)) for k in range(16)]
        for t in threads:
            t.start()
        assert ts.wait_for(lambda: len(acked) >= 200, 30), f"only {len(acked)} calls acknowledged: {other[:5]}"
        started = time.monotonic()
        code = d.stop()
        stopped_in = time.monotonic() - started
        stop_sending.set()
        for t in threads:
            t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "senders did not finish"
    assert code == 0 and stopped_in < 30, (code, stopped_in, d.log_tail())
    assert all(" UNAVAILABLE " in o for o in other), other[:10]
    print(f"[grpc stop] {len(acked)} calls acknowledged, {len(other)} unavailable; stopped in {stopped_in:.2f}s")

    d.start()
    groups = support.rollups(d.api_url, group_by=("workflow",))["groups"]
    recorded = {g["workflow"]: g["runs"] for g in groups}
    missing = [wf for wf in acked if recorded.get(wf) != 1]
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged runs are not in the ledger after the restart: {missing[:10]}"


def test_inflight_byte_budget_is_shared_by_both_receivers(daemon_factory):
    """--max-inflight-bytes bounds the request bytes decoded and logged at once over
    OTLP/HTTP and OTLP/gRPC together. With a budget of one byte, only one request at a time
    is admitted: concurrent senders on both transports get retryable refusals (HTTP 503 +
    Retry-After + RetryInfo, gRPC UNAVAILABLE + RetryInfo) naming the cause, the daemon
    counts exactly the refusals the clients saw, the gauge returns to zero, and every run
    acknowledged is in the ledger once."""
    import threading
    import time

    import grpc

    d = ts.start_daemon(daemon_factory, "inflight", ["--max-inflight-bytes", "1"])
    target = ts.grpc_target(d)
    lock = threading.Lock()
    acked: List[str] = []
    refusals = {"http": 0, "grpc": 0}
    samples: Dict[str, Any] = {}
    failures: List[str] = []
    calls = [dict(ts.GOOD_CALL) for _ in range(3)]

    def body_for(wf: str) -> bytes:
        # 40 runs per request: big enough that decoding overlaps between senders.
        runs = [support.simple_run(wf, calls) for _ in range(40)]
        return support.export_bytes([(r, r.spans) for r in runs])

    def http_sender(n: int, k: int) -> None:
        session = requests.Session()
        for i in range(12):
            wf = f"inflight-http-{n}-{k}-{i}"
            body = body_for(wf)
            for _ in range(400):  # bounded retries
                r = session.post(d.otlp_url + "/v1/traces", data=body, headers={"Content-Type": "application/x-protobuf"}, timeout=30)
                if r.status_code == 200:
                    with lock:
                        acked.append(wf)
                    break
                if r.status_code != 503:
                    with lock:
                        failures.append(f"http {wf}: {r.status_code} {r.content[:200]!r}")
                    return
                with lock:
                    refusals["http"] += 1
                    samples.setdefault("http", r)
                time.sleep(0.01)

    def grpc_sender(n: int, k: int) -> None:
        with grpc.insecure_channel(target, options=ts.GRPC_CHANNEL_OPTIONS) as ch:
            call = ch.unary_unary(ts.EXPORT_METHOD)
            for i in range(12):
                wf = f"inflight-grpc-{n}-{k}-{i}"
                body = body_for(wf)
                for _ in range(400):
                    try:
                        call(body, timeout=30)
                        with lock:
                            acked.append(wf)
                        break
                    except grpc.RpcError as e:
                        if e.code() != grpc.StatusCode.UNAVAILABLE:
                            with lock:
                                failures.append(f"grpc {wf}: {e.code().name} {e.details()}")
                            return
                        with lock:
                            refusals["grpc"] += 1
                            samples.setdefault("grpc", ts.GrpcResult(e.code(), e.details() or "", None,
                                                                     dict(e.trailing_metadata() or ())))
                    time.sleep(0.01)

    # Rounds of 4 + 4 concurrent senders until each transport has seen a refusal (whether
    # a request finds another in flight is a race; one round nearly always suffices).
    rounds = 0
    while rounds < 5 and (refusals["http"] == 0 or refusals["grpc"] == 0):
        threads = [threading.Thread(target=http_sender, args=(rounds, k)) for k in range(4)]
        threads += [threading.Thread(target=grpc_sender, args=(rounds, k)) for k in range(4)]
        rounds += 1
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not any(t.is_alive() for t in threads), "senders did not finish"
        assert not failures, failures[:5]
    requests_sent = rounds * 96
    assert len(acked) == requests_sent, f"{len(acked)} of {requests_sent} requests acknowledged"
    assert refusals["http"] > 0 and refusals["grpc"] > 0, f"no refusal on one transport in {rounds} rounds: {refusals}"

    r = samples["http"]
    assert r.headers.get("Retry-After") == "1", dict(r.headers)
    st = ts.proto_status(r)
    assert st.code == 14 and "in flight" in st.message, st
    assert [ri.retry_delay.seconds for ri in ts.retry_infos(st)] == [1], st
    g = samples["grpc"]
    assert "too many request bytes in flight" in g.details, g.details
    gst = g.status()
    assert gst is not None and gst.code == 14 and [ri.retry_delay.seconds for ri in ts.retry_infos(gst)] == [1], gst

    m = support.metrics(d.api_url)
    assert m["spanledger_requests_over_inflight_total"] == refusals["http"] + refusals["grpc"], (m, refusals)
    assert m["spanledger_inflight_request_bytes"] == 0, m
    assert m["spanledger_grpc_calls_refused_total"] == refusals["grpc"], (m, refusals)
    support.wait_for_runs(d.api_url, requests_sent * 40)
    recorded = {g["workflow"]: g["runs"] for g in support.rollups(d.api_url, group_by=("workflow",))["groups"]}
    wrong = {wf: recorded.get(wf) for wf in acked if recorded.get(wf) != 40}
    assert not wrong, f"acknowledged requests not in the ledger exactly once: {list(wrong.items())[:10]}"
    print(f"[inflight] {requests_sent} requests acknowledged in {rounds} round(s); refusals {refusals}")
    assert d.stop() == 0, d.log_tail()
