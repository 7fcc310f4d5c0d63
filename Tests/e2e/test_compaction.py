"""Compaction and retention of rollups on disk: minute buckets older than 48 h merge into
hours, hours older than 30 days into days, buckets past --retention go; the compacted
segment is written before what it replaces is removed, so a crash at either step (forced
with the SPANLEDGER_FAULT crash points) neither loses nor double counts a record."""

from __future__ import annotations

import sys
import time
import zlib
from pathlib import Path

import pytest

import support

NS = 1_000_000_000
DAY = 86_400 * NS
CALL = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": 10_000, "gen_ai.usage.output_tokens": 1_000}  # $0.002100


def aged_runs(now_ns: int):
    """2 recent runs, 3 from three days ago (different minutes of one hour), 2 from 40
    days ago, 1 from 500 days ago (past a 400-day retention)."""
    hour3d = (now_ns - 3 * DAY) // (3600 * NS) * 3600 * NS
    starts = [now_ns - 5 * 60 * NS, now_ns - 6 * 60 * NS,
              hour3d + 60 * NS, hour3d + 17 * 60 * NS, hour3d + 42 * 60 * NS,
              now_ns - 40 * DAY, now_ns - 40 * DAY + 3600 * NS,
              now_ns - 500 * DAY]
    return [support.simple_run("aging", [CALL], verdict="accepted", start_ns=s) for s in starts]


def totals(d, since="600d"):
    groups = support.rollups(d.api_url, since=since)["groups"]
    return (groups[0]["runs"], groups[0]["cost_micros"]) if groups else (0, 0)


def compact_segments(d):
    return sorted((d.data_dir / "rollups").glob("compact-*.seg"))


def decode_rollups(path: Path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "SchemaTests"))
    from google.protobuf import message_factory
    from schema_tools import compile_descriptor_set
    Segment = message_factory.GetMessages(compile_descriptor_set(["spanledger/v1/rollup.proto"]).file)["spanledger.v1.RollupSegment"]
    seg = Segment()
    raw = path.read_bytes()
    seg.ParseFromString(zlib.decompress(raw[24:]))
    return seg


def test_compaction_ages_buckets_and_applies_retention(daemon_factory):
    d = daemon_factory.start("compaction", ["--compaction-interval", "2s"])
    now = time.time_ns()
    runs = aged_runs(now)
    assert support.post_otlp(d.otlp_url, support.export_bytes([(r, r.spans) for r in runs])).status_code == 200
    ok, _ = support.wait_until(lambda: support.metric(d.api_url, "spanledger_compactions_total"), lambda n: n >= 2, timeout=30)
    assert ok, support.log_of_last_start(d)
    # The 500-day-old run is past retention; every other run is still counted, once.
    assert totals(d) == (7, 7 * 2_100)
    assert totals(d, since="4d") == (5, 5 * 2_100)
    segs = compact_segments(d)
    assert len(segs) == 1, segs
    through = int(segs[0].stem.split("-")[1])
    assert all(int(p.stem.split("-")[1]) > through for p in (d.data_dir / "rollups").glob("rollup-*.seg"))
    seg = decode_rollups(segs[0])
    assert seg.replaces_through == through
    by_resolution = {}
    for r in seg.records:
        if r.run_level:
            by_resolution[r.resolution_seconds] = by_resolution.get(r.resolution_seconds, 0) + r.runs
    assert by_resolution == {60: 2, 3600: 3, 86400: 2}, by_resolution
    # Restart: the same answers from the compacted segment.
    assert d.stop() == 0
    d.start()
    assert totals(d) == (7, 7 * 2_100) and totals(d, since="4d") == (5, 5 * 2_100)


@pytest.mark.parametrize("point", ["compaction-after-write", "compaction-mid-remove"])
def test_a_crash_mid_compaction_neither_loses_nor_double_counts(daemon_factory, point):
    d = daemon_factory.create("crash-" + point, ["--compaction-interval", "3s", "--retention", "1000d"])
    d.start()
    now = time.time_ns()
    runs = aged_runs(now)
    assert support.post_otlp(d.otlp_url, support.export_bytes([(r, r.spans) for r in runs])).status_code == 200
    ok, got = support.wait_until(lambda: totals(d, since="1000d"), lambda t: t[0] == 8, timeout=30)
    assert ok, got
    time.sleep(1.5)  # flushed
    assert d.stop() == 0
    d.env = {"SPANLEDGER_FAULT": point}
    d.start()
    ok, _ = support.wait_until(lambda: d.proc.poll(), lambda rc: rc is not None, timeout=30)
    assert ok and d.proc.returncode == 86, f"the crash point was not reached\n{support.log_of_last_start(d)}"
    assert f"fault point {point}" in support.log_of_last_start(d)
    assert compact_segments(d), "the compacted segment was not written before the crash"
    d.env = None
    d.start()
    assert totals(d, since="1000d") == (8, 8 * 2_100), "a crash mid-compaction lost or doubled records"
    assert totals(d, since="4d") == (5, 5 * 2_100)
    ok, _ = support.wait_until(lambda: support.metric(d.api_url, "spanledger_compactions_total"), lambda n: n >= 1, timeout=30)
    assert ok
    assert totals(d, since="1000d") == (8, 8 * 2_100)
    assert len(compact_segments(d)) == 1
