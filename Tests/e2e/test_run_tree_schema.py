"""Run trees on disk decode with Schemas/spanledger/v1/rollup.proto as documented there:
each run a TraceShape (deflated) and a stored part (trace ID, span IDs, times, outside
parents) kept in stored deflate blocks, so its bytes appear in the file as they are."""

from __future__ import annotations

import sys
import zlib
from pathlib import Path

import support
from workload import NS_PER_MS, SpanSpec


def varints(data: bytes, pos: int = 0):
    """Yields (value, next position) for a run of varints."""
    while pos < len(data):
        value = shift = 0
        while True:
            b = data[pos]
            pos += 1
            value |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                break
        yield value, pos


def unzigzag(v: int) -> int:
    return (v >> 1) ^ -(v & 1)


def test_run_trees_on_disk_match_the_documented_schema(daemon_factory):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "SchemaTests"))
    from google.protobuf import message_factory
    from schema_tools import compile_descriptor_set  # noqa: E402

    d = daemon_factory.start("tree-schema")
    call = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": 1234, "gen_ai.usage.output_tokens": 56}
    run = support.simple_run("tree-schema", [call, dict(call, **{"gen_ai.usage.input_tokens": 99})])
    root = run.root
    missing_parent = support.new_span_id()
    orphan = SpanSpec(support.new_span_id(), missing_parent, "execute_tool search", run.service, root.start_ns + 7 * NS_PER_MS + 123,
                      root.start_ns + 9 * NS_PER_MS + 4567, {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"},
                      error=True)
    run.spans.append(orphan)
    assert support.post_otlp(d.otlp_url, support.export_bytes([(run, run.spans)])).status_code == 200
    support.wait_for_runs(d.api_url, 1)
    assert d.stop() == 0  # the last flush writes the tree

    classes = message_factory.GetMessages(compile_descriptor_set(["spanledger/v1/rollup.proto"]).file)
    Segment, Shape = classes["spanledger.v1.TraceDetailSegment"], classes["spanledger.v1.TraceShape"]
    found = []
    for path in sorted((d.data_dir / "traces").glob("traces-*.seg")):
        raw = path.read_bytes()
        assert raw[:4] == b"SLSG", path
        seg = Segment()
        seg.ParseFromString(zlib.decompress(raw[24:]))
        assert seg.format_version == 2 and len(seg.shapes) == len(seg.stored) and not seg.traces
        for shape, stored in zip(seg.shapes, seg.stored):
            if stored[:16] == run.trace_id.to_bytes(16, "big"):
                found.append((raw, shape, stored))
    assert len(found) == 1, "one tree for the run"
    raw, shape, stored = found[0]
    assert bytes(stored) in raw, "the stored part is kept as it is, not deflated"

    n = shape.span_count
    sent = {s.span_id: s for s in run.spans}
    assert n == len(sent) and shape.outside_parents == 1
    ids = [int.from_bytes(stored[16 + 8 * i:24 + 8 * i], "big") for i in range(n)]
    assert sorted(ids) == sorted(sent)
    times, pos = [], 16 + 8 * n
    it = varints(bytes(stored), pos)
    for _ in range(2 * n):
        v, pos = next(it)
        times.append(v)
    outside = [int.from_bytes(stored[pos + 8 * k:pos + 8 * k + 8], "big") for k in range(shape.outside_parents)]
    assert pos + 8 * len(outside) == len(stored) and outside == [missing_parent]
    fields = [v for v, _ in varints(shape.span_fields)]
    assert len(fields) == 10 * n and len(shape.parents) == n
    names = [""] + list(shape.strings)
    root_offset = times[2 * ids.index(root.span_id)]
    for i, span_id in enumerate(ids):
        s = sent[span_id]
        ref = shape.parents[i]
        parent = None if ref == 0 else (ids[ref - 1] if ref <= n else outside[ref - n - 1])
        assert parent == s.parent_id, s.name
        assert times[2 * i] - root_offset == s.start_ns - root.start_ns and times[2 * i + 1] == s.end_ns - s.start_ns
        flags, name, model, _agent, inp, _cr, _cw, out, _rs, cost = fields[i::n]  # ten columns of n values
        assert names[name] == s.name
        assert bool(flags & 1 << 4) == s.error
        if s.attributes.get("gen_ai.operation.name") == "chat":
            assert flags & 7 == 1 and names[model] == "gpt-4o-mini"
            assert (unzigzag(inp), unzigzag(out)) == (s.attributes["gen_ai.usage.input_tokens"], 56)
            assert unzigzag(cost) > 0 and flags & 1 << 3, "priced"
        elif s is orphan:
            assert flags & 7 == 2 and unzigzag(cost) == 0
