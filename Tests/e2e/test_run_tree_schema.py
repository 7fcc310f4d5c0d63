"""Run trees on disk decode with Schemas/spanledger/v1/rollup.proto as documented there:
each run a TraceShape (deflated) and a stored part (trace ID, span IDs, times, outside
parents) kept in stored deflate blocks, so its bytes appear in the file as they are."""

from __future__ import annotations

import support
from workload import NS_PER_MS, SpanSpec


def test_run_trees_on_disk_match_the_documented_schema(daemon_factory):
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

    found = []
    for raw, seg in support.decoded_segments(d.data_dir / "traces", "traces-*.seg", "TraceDetailSegment"):
        assert seg.format_version == 2 and len(seg.shapes) == len(seg.stored) and not seg.traces
        for shape, stored in zip(seg.shapes, seg.stored):
            if stored[:16] == run.trace_id.to_bytes(16, "big"):
                found.append((raw, shape, stored))
    assert len(found) == 1, "one tree for the run"
    raw, shape, stored = found[0]
    assert bytes(stored) in raw, "the stored part is kept as it is, not deflated"

    # Blocked: the block table names the run's block, which inflates on its own (raw
    # deflate from a full-flush point) and holds its tree, checked by its CRC.
    import zlib
    starts, crcs, trees = support.block_table(raw)
    high = run.trace_id >> 64
    blocks = [b for h, b in trees if h == high]
    assert len(blocks) == 1 and [h for h, _ in trees] == sorted(h for h, _ in trees)
    piece = raw[24 + starts[blocks[0]]:24 + starts[blocks[0] + 1]]
    assert zlib.crc32(piece) == crcs[blocks[0]]
    block = zlib.decompressobj(-15).decompress(piece)
    assert bytes(stored) in block and block.index(bytes(stored)) > 0

    n = shape.span_count
    sent = {s.span_id: s for s in run.spans}
    assert n == len(sent) and shape.outside_parents == 1
    ids = [int.from_bytes(stored[16 + 8 * i:24 + 8 * i], "big") for i in range(n)]
    assert sorted(ids) == sorted(sent)
    times, pos = [], 16 + 8 * n
    for _ in range(2 * n):
        v, pos = support.varint(stored, pos)
        times.append(v)
    outside = [int.from_bytes(stored[pos + 8 * k:pos + 8 * k + 8], "big") for k in range(shape.outside_parents)]
    assert pos + 8 * len(outside) == len(stored) and outside == [missing_parent]
    fields, at = [], 0
    while at < len(shape.span_fields):
        v, at = support.varint(shape.span_fields, at)
        fields.append(v)
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
            assert (support.unzigzag(inp), support.unzigzag(out)) == (s.attributes["gen_ai.usage.input_tokens"], 56)
            assert support.unzigzag(cost) > 0 and flags & 1 << 3, "priced"
        elif s is orphan:
            assert flags & 7 == 2 and support.unzigzag(cost) == 0
