"""Helpers shared by the transport, JSON, conformance and hostile-input end-to-end tests:
daemons with an OTLP/gRPC listener, raw gRPC calls and their status details, OTLP JSON
built from the SDK's own protobuf encoding, the workload exported through any SDK
exporter, and a byte-counting loopback relay (to see what really went over the wire)."""

from __future__ import annotations

import base64
import gzip
import json
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import grpc
import requests
from google.rpc import error_details_pb2, status_pb2

import support
import workload
from workload import RunSpec, SpanSpec

EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
GRPC_ARGS = ("--otlp-grpc", "127.0.0.1:0")
# Never through a proxy from the environment: every daemon is on loopback.
GRPC_CHANNEL_OPTIONS = (("grpc.enable_http_proxy", 0),)

# --------------------------------------------------------------------------------------
# Daemons.
# --------------------------------------------------------------------------------------


def start_daemon(factory, name: str, extra_args: Sequence[str] = ()) -> support.Daemon:
    """A daemon of the module's factory with its OTLP/gRPC listener on a free loopback
    port (support.Daemon leaves --otlp-grpc at its default 127.0.0.1:4317, which two
    daemons cannot share)."""
    d = factory.start(name, [*GRPC_ARGS, *extra_args])
    assert "otlp_grpc" in d.listening, f"listening.json lacks 'otlp_grpc': {d.listening}"
    assert re.fullmatch(r"127\.0\.0\.1:[1-9]\d*", d.listening["otlp_grpc"]), d.listening
    return d


def grpc_target(d: support.Daemon) -> str:
    return d.listening["otlp_grpc"]


def log_text(d: support.Daemon) -> str:
    try:
        return d.log_path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


rss_kib = support.rss_kib


def assert_alive(d: support.Daemon) -> None:
    assert d.running, f"the daemon exited with {d.proc.returncode}\n{d.log_tail()}"
    r = support.http("GET", d.api_url + "/healthz", timeout=10)
    assert r.status_code == 200, (r.status_code, r.text[:300])


# --------------------------------------------------------------------------------------
# HTTP.
# --------------------------------------------------------------------------------------

def post(d_or_url, body: bytes, content_type: Optional[str] = "application/x-protobuf",
         headers: Optional[Dict[str, str]] = None, path: str = "/v1/traces", method: str = "POST",
         timeout: float = 30) -> requests.Response:
    url = d_or_url if isinstance(d_or_url, str) else d_or_url.otlp_url
    h: Dict[str, str] = {}
    if content_type is not None:
        h["Content-Type"] = content_type
    h.update(headers or {})
    return support.http(method, url + path, data=body, headers=h, timeout=timeout)


def gzip_bytes(data: bytes, level: int = 9) -> bytes:
    return gzip.compress(data, compresslevel=level, mtime=0)


def json_status(r: requests.Response) -> Dict[str, Any]:
    """The JSON google.rpc.Status of an error answer."""
    assert r.headers.get("Content-Type", "").split(";")[0].strip() == "application/json", \
        (r.status_code, r.headers, r.content[:300])
    doc = r.json()
    assert isinstance(doc, dict) and isinstance(doc.get("code"), int) and doc["code"] != 0, doc
    assert isinstance(doc.get("message"), str) and doc["message"], doc
    return doc


def proto_status(r: requests.Response) -> status_pb2.Status:
    assert r.headers.get("Content-Type", "").split(";")[0].strip() == "application/x-protobuf", \
        (r.status_code, r.headers, r.content[:300])
    st = status_pb2.Status.FromString(r.content)
    assert st.code != 0 and st.message, f"google.rpc.Status without code or message: {st}"
    return st


def retry_infos(st: status_pb2.Status) -> List[error_details_pb2.RetryInfo]:
    out = []
    for d in st.details:
        ri = error_details_pb2.RetryInfo()
        if d.Is(error_details_pb2.RetryInfo.DESCRIPTOR) and d.Unpack(ri):
            out.append(ri)
    return out


# --------------------------------------------------------------------------------------
# Raw gRPC.
# --------------------------------------------------------------------------------------

@dataclass
class GrpcResult:
    code: grpc.StatusCode
    details: str
    response: Optional[bytes]
    trailing: Dict[str, Any] = field(default_factory=dict)

    def status(self) -> Optional[status_pb2.Status]:
        raw = self.trailing.get("grpc-status-details-bin")
        return None if raw is None else status_pb2.Status.FromString(raw)


def grpc_export(target: str, body: bytes, compression: Optional[grpc.Compression] = None,
                timeout: float = 30.0, metadata: Sequence[Tuple[str, str]] = ()) -> GrpcResult:
    """One unary Export call with raw request bytes (so undecodable messages can be sent)."""
    with grpc.insecure_channel(target, options=GRPC_CHANNEL_OPTIONS) as ch:
        call = ch.unary_unary(EXPORT_METHOD)  # bytes in, bytes out
        try:
            resp, c = call.with_call(body, timeout=timeout, compression=compression, metadata=list(metadata) or None)
            return GrpcResult(grpc.StatusCode.OK, "", resp, dict(c.trailing_metadata() or ()))
        except grpc.RpcError as e:
            return GrpcResult(e.code(), e.details() or "", None, dict(e.trailing_metadata() or ()))


# --------------------------------------------------------------------------------------
# OTLP JSON from the SDK's protobuf encoding.
# --------------------------------------------------------------------------------------

_ID_FIELDS = ("traceId", "spanId", "parentSpanId")
_INT64_FIELDS = ("startTimeUnixNano", "endTimeUnixNano", "timeUnixNano", "intValue")


def request_to_otlp_json(req, *, upper_ids: Callable[[int], bool] = lambda i: i % 2 == 1,
                         int64_as_number: Callable[[int], bool] = lambda i: i % 2 == 0) -> Dict[str, Any]:
    """ExportTraceServiceRequest → OTLP/JSON document (lowerCamelCase, enums as integers,
    trace/span IDs hex — lower and upper case alternating, int64 values as strings and as
    numbers alternating). Counters make the mix deterministic."""
    from google.protobuf import json_format
    doc = json.loads(json_format.MessageToJson(req, use_integers_for_enums=True, preserving_proto_field_name=False))
    counters = {"id": 0, "int": 0}

    def fix(node: Any) -> Any:
        if isinstance(node, dict):
            out = {}
            for k, v in node.items():
                if k in _ID_FIELDS and isinstance(v, str):
                    raw = base64.b64decode(v)
                    h = raw.hex()
                    if upper_ids(counters["id"]):
                        h = h.upper()
                    counters["id"] += 1
                    out[k] = h
                elif k in _INT64_FIELDS and isinstance(v, str):
                    n = int(v)
                    out[k] = n if int64_as_number(counters["int"]) else str(n)
                    counters["int"] += 1
                else:
                    out[k] = fix(v)
            return out
        if isinstance(node, list):
            return [fix(x) for x in node]
        return node

    return fix(doc)


def make_json_exporter(endpoint: str):
    """An SDK SpanExporter that sends OTLP/HTTP JSON (there is no official Python one):
    the SDK's own encode_spans, converted by request_to_otlp_json."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    class JsonHttpExporter(SpanExporter):
        def __init__(self):
            self.session = requests.Session()
            self.session.trust_env = False
            self.problems: List[str] = []

        def export(self, spans):
            doc = request_to_otlp_json(encode_spans(spans))
            r = self.session.post(endpoint, data=json.dumps(doc).encode(),
                                  headers={"Content-Type": "application/json"}, timeout=30)
            if r.status_code != 200:
                self.problems.append(f"{r.status_code}: {r.content[:300]!r}")
                return SpanExportResult.FAILURE
            if not r.headers.get("Content-Type", "").startswith("application/json"):
                self.problems.append(f"200 answered with Content-Type {r.headers.get('Content-Type')!r}")
                return SpanExportResult.FAILURE
            body = r.json()
            rejected = int((body.get("partialSuccess") or {}).get("rejectedSpans", 0) or 0)
            if rejected:
                self.problems.append(f"partial success: {body}")
                return SpanExportResult.FAILURE
            return SpanExportResult.SUCCESS

        def shutdown(self):
            self.session.close()

    return JsonHttpExporter()


# --------------------------------------------------------------------------------------
# The workload through any SDK exporter (workload.export_with_sdk is HTTP/protobuf only).
# --------------------------------------------------------------------------------------

# The general exporter loop lives in workload.py; kept here under its old name.
export_runs = workload.export_runs


# --------------------------------------------------------------------------------------
# A loopback TCP relay that counts the bytes each way.
# --------------------------------------------------------------------------------------

class CountingRelay:
    """Listens on 127.0.0.1:0 and forwards every connection to `target` ("host:port"),
    counting client→server bytes (`up`) and server→client bytes (`down`)."""

    def __init__(self, target: str):
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.up = 0
        self.down = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.2)
        self._threads: List[threading.Thread] = []
        self._conns: List[socket.socket] = []
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self._threads.append(t)

    @property
    def address(self) -> str:
        return "127.0.0.1:%d" % self._sock.getsockname()[1]

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                c, _ = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                s = socket.create_connection(self.target, timeout=10)
            except OSError:
                c.close()
                continue
            for sock in (c, s):
                sock.settimeout(0.2)
            self._conns += [c, s]
            for src, dst, up in ((c, s, True), (s, c, False)):
                t = threading.Thread(target=self._pump, args=(src, dst, up), daemon=True)
                t.start()
                self._threads.append(t)

    def _pump(self, src: socket.socket, dst: socket.socket, up: bool) -> None:
        while not self._stop.is_set():
            try:
                data = src.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                break
            if not data:
                break
            with self._lock:
                if up:
                    self.up += len(data)
                else:
                    self.down += len(data)
            try:
                dst.sendall(data)
            except OSError:
                break
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        self._stop.set()
        self._sock.close()
        for t in self._threads:
            t.join(timeout=2)
        for c in self._conns:
            try:
                c.close()
            except OSError:
                pass


# --------------------------------------------------------------------------------------
# A good client, after each bad one.
# --------------------------------------------------------------------------------------

GOOD_CALL = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
             "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
             "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 200}
GOOD_COST_MICROS = 270  # 1000 × 0.15 + 200 × 0.60 per million, in micro-dollars


def good_export_lands(d: support.Daemon, workflow: str, via: str = "http") -> None:
    """A valid one-call run exported over `via` ("http" or "grpc") is accepted and shows
    up in the query with exactly its numbers."""
    run = support.simple_run(workflow, [GOOD_CALL])
    body = support.export_bytes([(run, run.spans)])
    if via == "http":
        r = support.post_otlp(d.otlp_url, body)
        assert r.status_code == 200, (r.status_code, r.content[:500])
    else:
        res = grpc_export(grpc_target(d), body)
        assert res.code == grpc.StatusCode.OK, (res.code, res.details)
    support.wait_for_runs(d.api_url, 1, workflow=workflow)
    facts = workload.interpret_run(run)
    assert facts.cost_micros == GOOD_COST_MICROS
    support.check_groups(support.rollups(d.api_url, workflow=workflow), workload.expected_groups([facts]), ())


def wait_for(cond: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(interval)
    return cond()


# --------------------------------------------------------------------------------------
# Memory of the daemon while something happens.
# --------------------------------------------------------------------------------------

class RssSampler:
    """Samples a process's VmRSS every few milliseconds in a thread: `peak` in KiB."""

    def __init__(self, pid: int, interval: float = 0.005):
        self.pid, self.interval = pid, interval
        self.before = rss_kib(pid)
        assert self.before is not None, f"no /proc/{pid}/status"
        self.peak = self.before
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            v = rss_kib(self.pid)
            if v is None:
                return
            self.peak = max(self.peak, v)
            time.sleep(self.interval)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.after = rss_kib(self.pid)


# --------------------------------------------------------------------------------------
# Hand-encoded protobuf (python protobuf refuses to build or parse deep nesting).
# --------------------------------------------------------------------------------------

def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def ld(field_no: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return varint(field_no << 3 | 2) + varint(len(payload)) + payload


def nested_any_value(depth: int, kind: str = "array") -> bytes:
    """An AnyValue (encoded) holding `depth` AnyValues in a chain: depth-1 arrays
    (AnyValue.array_value=5 → ArrayValue.values=1) or key-value lists
    (AnyValue.kvlist_value=6 → KeyValueList.values=1 → KeyValue.value=2) around a string."""
    v = ld(1, b"x")  # AnyValue.string_value
    for _ in range(depth - 1):
        if kind == "array":
            v = ld(5, ld(1, v))
        else:
            v = ld(6, ld(1, ld(1, b"k") + ld(2, v)))
    return v


def key_value(key: str, encoded_any_value: bytes) -> bytes:
    return ld(1, key.encode()) + ld(2, encoded_any_value)


def nested_json_any_value(depth: int, kind: str = "array") -> str:
    """The OTLP JSON text of nested_any_value (built as text: json.dumps recurses)."""
    if kind == "array":
        return '{"arrayValue":{"values":[' * (depth - 1) + '{"stringValue":"x"}' + "]}}" * (depth - 1)
    return '{"kvlistValue":{"values":[{"key":"k","value":' * (depth - 1) + '{"stringValue":"x"}' + "}]}}" * (depth - 1)
