"""Durability of the real daemon: acknowledged batches survive SIGKILL at any moment
(write-ahead log, replay deduplicated against flushed trees), damaged log records and
segments are skipped without stopping startup, a flood of traces that never complete
is refused with 503 + Retry-After instead of exhausting memory, and a full disk is
refused (503) and recovered from without losing or doubling anything — also when it
strikes between a flush's segments and its log checkpoint, and a SIGKILL during the
replay itself loses nothing either.

Every batch sent carries its own workflow name, so the rollups grouped by workflow show,
batch by batch, whether it was recorded exactly once, completely."""

from __future__ import annotations

import collections
import errno
import os
import random
import re
import subprocess
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest
import requests
import urllib3
from google.rpc.error_details_pb2 import RetryInfo
from google.rpc.status_pb2 import Status

import support
import workload

EXACT = workload.EXACT_FIELDS
RPC_UNAVAILABLE = 14

# The write-ahead log record frame (Sources/WriteAheadLog/WALRecord.swift): u16 magic,
# u32 payload length, u64 sequence, u32 payload CRC-32, u32 header CRC-32 over the
# first 18 bytes; little-endian; then the payload.
WAL_HEADER = 22
WAL_MAGIC = 0x534C
# Segment files (Sources/LedgerStore/SegmentFile.swift): 24-byte header, "SLSG" first.
SEGMENT_HEADER = 24


# --------------------------------------------------------------------------------------
# Batches: each its own workflow, with exact expected totals.
# --------------------------------------------------------------------------------------

def llm_call(input_tokens: int, output_tokens: int) -> Dict[str, Any]:
    return {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": input_tokens, "gen_ai.usage.output_tokens": output_tokens}


@dataclass
class Batch:
    workflow: str
    body: bytes
    expected: Dict[str, int]  # the workflow group's exact fields
    spans: int


def make_batch(workflow: str, n: int, runs: int = 5) -> Batch:
    """`runs` complete runs (root + 2 LLM calls each) of one workflow, token counts
    depending on n so that every batch's totals differ."""
    specs = [support.simple_run(workflow, [llm_call(1000 + n, 100 + i), llm_call(2000 + i, 50 + n % 7)])
             for i in range(runs)]
    groups = workload.expected_groups([workload.interpret_run(r) for r in specs], ("workflow",))
    assert list(groups) == [(workflow,)], groups
    g = groups[(workflow,)]
    assert g["runs"] == runs and g["llm_calls"] == 2 * runs and g["accepted"] == runs, g
    assert g["cost_micros"] > 0, g
    return Batch(workflow, support.export_bytes([(r, r.spans) for r in specs]), {f: g[f] for f in EXACT},
                 sum(len(r.spans) for r in specs))


ACKED, UNKNOWN = "acked", "unknown"  # anything else (refused-503, not-delivered, destroyed…) must be absent


def judge(groups: List[Dict[str, Any]], batches: Dict[str, Batch], status: Dict[str, str]) \
        -> Tuple[List[str], collections.Counter]:
    """Problems of a group_by=workflow answer against what each batch's fate allows:
    acknowledged → present with exactly its totals; unknown → absent or exactly complete;
    anything else → absent; no other workflow."""
    problems: List[str] = []
    counts: collections.Counter = collections.Counter()
    got: Dict[str, Dict[str, Any]] = {}
    for g in groups:
        wf = g.get("workflow")
        if wf in got:
            problems.append(f"workflow {wf!r} appears twice")
        got[wf] = g
    for wf, st in sorted(status.items()):
        counts[st] += 1
        g = got.get(wf)
        want = batches[wf].expected
        diff = None if g is None else {f: (g.get(f), want[f]) for f in EXACT if g.get(f) != want[f]}
        if g is not None:
            counts["recorded"] += 1
            counts[f"recorded_{st}"] += 1
        if st == ACKED:
            if g is None:
                problems.append(f"{wf}: acknowledged (200) but ABSENT; expected {want}")
            elif diff:
                problems.append(f"{wf}: acknowledged but WRONG (got, expected): {diff}")
        elif st == UNKNOWN:
            if g is not None and diff:
                problems.append(f"{wf}: outcome unknown, present but PARTIAL/DOUBLED (got, expected): {diff}")
        elif g is not None:
            problems.append(f"{wf}: {st} (never acknowledged) but PRESENT: {_exact(g)}")
    for wf in sorted(set(got) - set(status), key=str):
        problems.append(f"unexpected workflow {wf!r}: {_exact(got[wf])}")
    return problems, counts


def _exact(g: Dict[str, Any]) -> Dict[str, Any]:
    return {f: g.get(f) for f in EXACT}


def assert_judged(groups, batches, status, what: str) -> collections.Counter:
    problems, counts = judge(groups, batches, status)
    print(f"[{what}] {dict(counts)}")
    assert not problems, (f"{what}: {len(problems)} problem(s) (batch fates {dict(counts)}):\n  "
                          + "\n  ".join(problems[:60]))
    return counts


def workflow_groups(api_url: str) -> List[Dict[str, Any]]:
    return support.rollups(api_url, ("workflow",))["groups"]


def wait_released(d: support.Daemon, timeout: float = 30.0, quiet: float = 1.5, pending: int = 0) -> List[Dict[str, Any]]:
    """Waits until assembly holds `pending` traces, then until the workflow answer stays put."""
    ok, m = support.wait_until(lambda: support.metrics(d.api_url),
                               lambda m: m.get("spanledger_pending_traces") == pending, timeout=timeout, interval=0.1)
    assert ok, f"pending traces not {pending} after {timeout}s: pending_traces={m.get('spanledger_pending_traces')}"
    return support.settle(d.api_url, ("workflow",), quiet=quiet, timeout=timeout)["groups"]


def post(session: requests.Session, otlp_url: str, body: bytes, timeout: float = 10.0) -> requests.Response:
    return session.request("POST", otlp_url + "/v1/traces", data=body, timeout=timeout,
                           headers={"Content-Type": "application/x-protobuf"})


def new_session() -> requests.Session:
    s = requests.Session()
    s.trust_env = False  # loopback only, never a proxy
    return s


def connect_refused(e: Exception) -> bool:
    """True when the request provably never reached a server (the TCP connect failed)."""
    reason = getattr(e.args[0], "reason", None) if e.args else None
    return isinstance(reason, urllib3.exceptions.NewConnectionError) and "refused" in str(reason).lower()


def check_retryable_503(r: requests.Response, what: str) -> Tuple[int, Status]:
    """A 503 must carry Retry-After and a google.rpc.Status (UNAVAILABLE, RetryInfo)."""
    assert r.status_code == 503, (what, r.status_code, r.content[:300])
    ra = r.headers.get("Retry-After")
    assert ra is not None and re.fullmatch(r"[1-9]\d*", ra), f"{what}: Retry-After {ra!r}; headers {dict(r.headers)}"
    assert r.headers.get("Content-Type", "").startswith("application/x-protobuf"), (what, dict(r.headers))
    status = Status.FromString(r.content)
    assert status.code == RPC_UNAVAILABLE and status.message, f"{what}: google.rpc.Status {status}"
    infos = [d for d in status.details if d.type_url.endswith("google.rpc.RetryInfo")]
    assert len(infos) == 1, f"{what}: no RetryInfo detail in {status}"
    info = RetryInfo.FromString(infos[0].value)
    assert info.retry_delay.seconds == int(ra), f"{what}: RetryInfo {info} vs Retry-After {ra}"
    return int(ra), status


# --------------------------------------------------------------------------------------
# The write-ahead log on disk.
# --------------------------------------------------------------------------------------

@dataclass
class WalFrame:
    offset: int
    length: int
    sequence: int
    payload: bytes
    intact: bool  # payload CRC matches


def parse_wal(path: Path) -> Tuple[List[WalFrame], int]:
    """The records of a segment with a sound header, and the offset where parsing stopped."""
    data = path.read_bytes()
    frames: List[WalFrame] = []
    off = 0
    while len(data) - off >= WAL_HEADER:
        h = data[off:off + WAL_HEADER]
        magic, length, seq, pcrc, hcrc = (int.from_bytes(h[0:2], "little"), int.from_bytes(h[2:6], "little"),
                                          int.from_bytes(h[6:14], "little"), int.from_bytes(h[14:18], "little"),
                                          int.from_bytes(h[18:22], "little"))
        if magic != WAL_MAGIC or hcrc != zlib.crc32(h[:18]) or off + WAL_HEADER + length > len(data):
            break
        payload = data[off + WAL_HEADER:off + WAL_HEADER + length]
        frames.append(WalFrame(off, length, seq, payload, zlib.crc32(payload) == pcrc))
        off += WAL_HEADER + length
    return frames, off


def wal_segments(data_dir: Path) -> List[Path]:
    return sorted((data_dir / "wal").glob("wal-*.log"))


def zero_tail(path: Path, end: int) -> bool:
    """Whether everything after `end` is zeros: the unwritten rest of a preallocated
    segment (nothing at all for a segment the log grew as it wrote)."""
    with open(path, "rb") as fh:
        fh.seek(end)
        while chunk := fh.read(1 << 20):
            if chunk.count(0) != len(chunk):
                return False
    return True


def replay_log_line(d: support.Daemon) -> Dict[str, str]:
    text = support.log_of_last_start(d)
    lines = [l for l in text.splitlines() if "write-ahead log replayed" in l]
    assert len(lines) == 1, f"expected one 'write-ahead log replayed' line since the last start, found {lines}"
    return dict(re.findall(r"(\w+)=(\S+)", lines[0]))


# --------------------------------------------------------------------------------------
# 1. SIGKILL loop.
# --------------------------------------------------------------------------------------

KILLS = 24
# One trace without a root, sent first: it stays open (trace max age 10 min), so the log
# checkpoint stays at its record and every restart replays records whose runs were
# already flushed: replay must skip exactly those spans.
ANCHOR = "crash-anchor"
ANCHOR_TOKENS = (777, 55)
CRASH_ARGS = ["--trace-wait", "300ms", "--flush-interval", "400ms"]
CLIENTS = 2
MAX_BATCHES = 20000  # bound of the client loop (the kill loop ends it much earlier)


def anchor_body() -> bytes:
    run = support.simple_run(ANCHOR, [llm_call(*ANCHOR_TOKENS)])
    child = run.spans[1]
    child.attributes["gen_ai.workflow.name"] = ANCHOR
    return support.export_bytes([(run, [child])])  # the child alone: the root never comes


class Target:
    """The current daemon's OTLP URL (None while it is down), with a generation count."""

    def __init__(self):
        self.cond = threading.Condition()
        self.url: Optional[str] = None
        self.generation = 0
        self.stopped = False

    def set(self, url: Optional[str]) -> None:
        with self.cond:
            self.url = url
            self.generation += 1
            self.cond.notify_all()

    def stop(self) -> None:
        with self.cond:
            self.stopped = True
            self.cond.notify_all()

    def wait(self, not_generation: int) -> Optional[Tuple[str, int]]:
        with self.cond:
            self.cond.wait_for(lambda: self.stopped or (self.url is not None and self.generation != not_generation),
                               timeout=5.0)
            if self.stopped or self.url is None or self.generation == not_generation:
                return None
            return self.url, self.generation


def test_crash_loop_loses_nothing_acknowledged(daemon_factory):
    seed = int(os.environ.get("SPANLEDGER_CRASH_SEED") or random.randrange(1, 2**31))  # kill timing; printed
    rng = random.Random(seed)
    print(f"\n[crash loop] kill timing seed: SPANLEDGER_CRASH_SEED={seed}")
    d = daemon_factory.create("crash", extra_args=CRASH_ARGS)
    target = Target()
    lock = threading.Lock()
    batches: Dict[str, Batch] = {}
    status: Dict[str, str] = {}
    counter = iter(range(MAX_BATCHES))
    client_errors: List[str] = []

    def client() -> None:
        session = new_session()
        failed_generation = -1
        try:
            while True:
                current = target.wait(failed_generation)
                if current is None:
                    if target.stopped:
                        return
                    continue
                url, generation = current
                with lock:
                    n = next(counter, None)
                if n is None:
                    return
                b = make_batch(f"crash-b{n:04d}", n)
                with lock:
                    batches[b.workflow] = b
                try:
                    r = post(session, url, b.body, timeout=10)
                    st = ACKED if r.status_code == 200 else f"refused-{r.status_code}"
                except requests.exceptions.ConnectionError as e:
                    st = "not-delivered" if connect_refused(e) else UNKNOWN
                    failed_generation = generation
                except requests.exceptions.RequestException:  # timeout, a response cut short…
                    st = UNKNOWN
                    failed_generation = generation
                with lock:
                    status[b.workflow] = st
        except Exception as e:  # reported by the test, never silently lost
            client_errors.append(repr(e))

    threads = [threading.Thread(target=client, name=f"crash-client-{i}", daemon=True) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    kill_log: List[str] = []
    sent_at_kill: List[int] = []
    t0 = time.monotonic()
    try:
        for i in range(KILLS):
            d.start()
            if i == 0:
                r = post(new_session(), d.otlp_url, anchor_body())
                assert r.status_code == 200, (r.status_code, r.content[:300])
            target.set(d.otlp_url)
            delay = rng.uniform(0.2, 1.2)
            time.sleep(delay)
            assert d.running, f"daemon died by itself during cycle {i}\n{d.log_tail()}"
            d.kill()  # SIGKILL
            target.set(None)
            with lock:
                sent_at_kill.append(len(status))
                kill_log.append(f"cycle {i}: killed after {delay:.2f}s; batches so far {len(status)}")
    finally:
        target.stop()
        for t in threads:
            t.join(timeout=30)
    loop_seconds = time.monotonic() - t0
    assert not any(t.is_alive() for t in threads), "client threads did not stop"
    assert not client_errors, client_errors
    counts_sent = collections.Counter(status.values())
    print(f"[crash loop] kills={KILLS} in {loop_seconds:.1f}s; batches sent={len(status)} "
          f"fates={dict(counts_sent)}")
    assert counts_sent[ACKED] >= 3 * KILLS, (f"too few batches acknowledged for a meaningful test: {dict(counts_sent)}\n"
                                             + "\n".join(kill_log))
    idle = [i for i in range(1, KILLS) if sent_at_kill[i] == sent_at_kill[i - 1]]
    assert len(status) < MAX_BATCHES and len(idle) <= KILLS // 4, \
        f"the clients were idle during cycles {idle} (batch cap {MAX_BATCHES})\n" + "\n".join(kill_log)
    replays = [dict(re.findall(r"(\w+)=(\S+)", l)) for l in d.log_path.read_text(errors="replace").splitlines()
               if "write-ahead log replayed" in l]
    print(f"[crash loop] {len(replays)} starts replayed {sum(int(r['records']) for r in replays)} records, "
          f"{sum(int(r['spans']) for r in replays)} spans, skipped {sum(int(r['already_flushed_spans']) for r in replays)} "
          f"already flushed spans; starts with a replay: {sum(1 for r in replays if r['records'] != '0')}, "
          f"with skipped spans: {sum(1 for r in replays if r['already_flushed_spans'] != '0')}")

    d.start()
    groups = wait_released(d, pending=1)  # the anchor stays open
    replay = support.metrics(d.api_url)
    print(f"[crash loop] final start replayed records={replay['spanledger_wal_replayed_records_total']:.0f} "
          f"spans={replay['spanledger_wal_replayed_spans_total']:.0f} "
          f"skipped={replay['spanledger_wal_replay_skipped_spans_total']:.0f} "
          f"quarantined={replay['spanledger_wal_quarantined_records_total']:.0f} "
          f"corrupt={replay['spanledger_wal_corrupt_records_total']:.0f}")
    counts = assert_judged(groups, batches, status, "crash loop, after the kills")
    print(f"[crash loop] ACKNOWLEDGED {counts[ACKED]} -> recorded {counts['recorded_acked']}; "
          f"UNKNOWN {counts[UNKNOWN]} -> recorded (complete) {counts['recorded_unknown']}; "
          f"not delivered {counts['not-delivered']}; refused {sum(v for k, v in counts.items() if k.startswith('refused-'))}; "
          f"workflows recorded {counts['recorded']}")
    assert replay["spanledger_wal_quarantined_records_total"] == 0, \
        "a record was quarantined although no replay crashed (the kills land after listening.json)"

    assert sum(int(r["already_flushed_spans"]) for r in replays) > 0, \
        "no restart ever skipped an already flushed span: the deduplicating replay was not exercised"

    # A graceful stop (which releases the anchor as an incomplete run), then a start that
    # has nothing to replay and the same answer plus the anchor.
    assert d.stop() == 0, d.log_tail()
    d.start()
    m = support.metrics(d.api_url)
    assert m["spanledger_wal_replayed_records_total"] == 0, \
        f"replayed {m['spanledger_wal_replayed_records_total']} records after a graceful stop"
    assert m["spanledger_wal_replayed_spans_total"] == 0, m
    assert m["spanledger_pending_traces"] == 0, m
    again = workflow_groups(d.api_url)
    anchor = [g for g in again if g.get("workflow") == ANCHOR]
    assert len(anchor) == 1, f"the anchor run is not in the answer after the graceful stop: {anchor}"
    got = {f: anchor[0].get(f) for f in ("runs", "incomplete_runs", "llm_calls", "input_tokens", "output_tokens")}
    assert got == {"runs": 1, "incomplete_runs": 1, "llm_calls": 1, "input_tokens": ANCHOR_TOKENS[0],
                   "output_tokens": ANCHOR_TOKENS[1]}, f"anchor run: {anchor[0]}"
    again = [g for g in again if g.get("workflow") != ANCHOR]
    assert again == groups, "the answer changed across a graceful restart"
    assert d.stop() == 0, d.log_tail()
    offline = support.cli_query(["--data", str(d.data_dir)], ("workflow",))["groups"]
    assert [g for g in offline if g.get("workflow") != ANCHOR] == groups, \
        "`spanledger query --data` disagrees with the API answer"


# --------------------------------------------------------------------------------------
# 2. Torn tail, a bit flip in the log, a bit flip in a rollup segment.
# --------------------------------------------------------------------------------------

TORN_BATCHES = 8
SHORT_ARGS = ["--trace-wait", "300ms", "--flush-interval", "1s"]


def test_torn_tail_and_bit_flips(daemon_factory):
    # (a) Everything sits in the log (nothing is released or flushed within 60 s).
    d = daemon_factory.create("torn", extra_args=["--trace-wait", "60s", "--flush-interval", "60s"])
    d.start()
    session = new_session()
    batches = {b.workflow: b for b in (make_batch(f"torn-b{n}", n) for n in range(TORN_BATCHES))}
    order = list(batches)
    for wf in order:  # one at a time: record k holds batch k
        r = post(session, d.otlp_url, batches[wf].body)
        assert r.status_code == 200, (wf, r.status_code, r.content[:300])
    m = support.metrics(d.api_url)
    assert m["spanledger_pending_traces"] == 5 * TORN_BATCHES and m["spanledger_flushes_total"] == 0, m
    assert m["spanledger_wal_records_total"] == TORN_BATCHES, m
    d.kill()

    # The log may have started in a segment it grows and moved into a preallocated
    # (zero-filled) one once that was ready: records are read across the segments.
    segs = wal_segments(d.data_dir)
    assert 1 <= len(segs) <= 2, segs
    located = []
    for seg in segs:
        seg_frames, end = parse_wal(seg)
        assert zero_tail(seg, end), f"{seg.name}: unparsable bytes after {len(seg_frames)} records at {end}"
        located += [(seg, f) for f in seg_frames]
    frames = [f for _, f in located]
    assert all(f.intact for f in frames), [f.sequence for f in frames if not f.intact]
    assert [f.sequence for f in frames] == list(range(frames[0].sequence, frames[0].sequence + TORN_BATCHES)), \
        [f.sequence for f in frames]
    for f, wf in zip(frames, order):
        assert wf.encode() in f.payload, f"record {f.sequence} does not hold batch {wf}"
    (middle_seg, middle), (seg, last) = located[TORN_BATCHES // 2 - 1], located[-1]
    flip_at = middle.offset + WAL_HEADER + middle.length // 2
    cut = last.offset + WAL_HEADER + last.length // 2
    extent_end = last.offset + WAL_HEADER + last.length
    with open(middle_seg, "r+b") as fh:
        fh.seek(flip_at)
        byte = fh.read(1)
        fh.seek(flip_at)
        fh.write(bytes([byte[0] ^ 0x20]))
    # A write torn by a crash: into a preallocated segment the rest of the record's extent
    # is still zeros; at the end of a growing one the file stops partway.
    preallocated = seg.stat().st_size > extent_end
    size_before = seg.stat().st_size
    if preallocated:
        with open(seg, "r+b") as fh:
            fh.seek(cut)
            fh.write(bytes(extent_end - cut))
        expected_torn = extent_end - last.offset
    else:
        os.truncate(seg, cut)
        expected_torn = cut - last.offset
    print(f"\n[torn] {middle_seg.name}: flipped byte {flip_at} (record {middle.sequence}); {seg.name} "
          f"({'preallocated' if preallocated else 'grown'}): record {last.sequence} at {last.offset} cut at {cut} "
          f"({last.length} payload bytes)")

    d.extra_args = SHORT_ARGS
    d.start()
    line = replay_log_line(d)
    print(f"[torn] replay log line: {line}")
    assert line.get("torn_bytes_truncated") == str(expected_torn), \
        f"torn_bytes_truncated={line.get('torn_bytes_truncated')}, expected {expected_torn} (the cut record)"
    assert line.get("corrupt_records") == "1", line
    if preallocated:
        assert seg.stat().st_size == size_before and zero_tail(seg, last.offset), \
            "the torn record was not cleared, or the segment no longer preallocated"
    else:
        assert seg.stat().st_size == last.offset, f"log not truncated at the torn record: {seg.stat().st_size}"
    m = support.metrics(d.api_url)
    intact = [wf for f, wf in zip(frames, order) if f is not middle and f is not last]
    expect = {name: m.get(name) for name in ("spanledger_wal_corrupt_records_total", "spanledger_wal_replayed_records_total",
                                             "spanledger_wal_replayed_spans_total", "spanledger_wal_quarantined_records_total")}
    assert expect == {"spanledger_wal_corrupt_records_total": 1, "spanledger_wal_replayed_records_total": len(intact),
                      "spanledger_wal_replayed_spans_total": 15 * len(intact),
                      "spanledger_wal_quarantined_records_total": 0}, expect
    status = {wf: ACKED if wf in intact else "destroyed-by-test" for wf in order}
    groups = wait_released(d)
    assert_judged(groups, batches, status, "torn tail + flipped record")

    # The repaired log takes new records after the cut: one more batch, SIGKILL, replay.
    extra = make_batch("torn-after-repair", 99)
    batches[extra.workflow] = extra
    r = post(session, d.otlp_url, extra.body)
    assert r.status_code == 200, (r.status_code, r.content[:300])
    status[extra.workflow] = ACKED
    d.kill()
    segs2 = wal_segments(d.data_dir)
    frames2, end2 = parse_wal(segs2[-1])
    assert zero_tail(segs2[-1], end2), f"the log has a damaged tail after a clean append: {segs2}"
    assert frames2 and frames2[-1].intact and extra.workflow.encode() in frames2[-1].payload, \
        f"the last record is not the batch appended after the repair: {[(f.sequence, f.intact) for f in frames2]}"
    d.start()
    groups = wait_released(d)
    assert_judged(groups, batches, status, "after a further append and SIGKILL")
    assert d.stop() == 0, d.log_tail()

    # (b) Three flushes (one per round, each ended by a graceful stop), then a flipped
    # byte inside the second round's rollup segment.
    d2 = daemon_factory.create("flip", extra_args=["--trace-wait", "300ms", "--flush-interval", "60s"])
    rounds: List[List[str]] = []
    batches2: Dict[str, Batch] = {}
    for rnd in range(3):
        d2.start()
        names = []
        for k in range(3):
            b = make_batch(f"flip-r{rnd}-b{k}", 10 * rnd + k)
            r = post(session, d2.otlp_url, b.body)
            assert r.status_code == 200, (b.workflow, r.status_code, r.content[:300])
            batches2[b.workflow] = b
            names.append(b.workflow)
        rounds.append(names)
        assert d2.stop() == 0, d2.log_tail()
    rollup_files = sorted((d2.data_dir / "rollups").glob("rollup-*.seg"))
    assert len(rollup_files) == 3, f"expected one rollup segment per round: {[p.name for p in rollup_files]}"
    victim = rollup_files[1]
    raw = bytearray(victim.read_bytes())
    assert raw[:4] == b"SLSG" and len(raw) > SEGMENT_HEADER + 8, victim
    pos = SEGMENT_HEADER + (len(raw) - SEGMENT_HEADER) // 2
    raw[pos] ^= 0x01
    victim.write_bytes(bytes(raw))
    print(f"[flip] flipped byte {pos} of {victim.name} ({len(raw)} bytes; round 1 of 0..2)")

    d2.start()
    m = support.metrics(d2.api_url)
    assert m["spanledger_damaged_segments"] == 1, f"spanledger_damaged_segments={m['spanledger_damaged_segments']}"
    log = support.log_of_last_start(d2)
    assert "skipped damaged segment" in log and victim.name in log, log[-3000:]
    groups = wait_released(d2)
    # Rounds 0 and 2 exactly; round 1's rollups are gone with its segment — never partial.
    status2 = {wf: ACKED for names in (rounds[0], rounds[2]) for wf in names}
    status2.update({wf: UNKNOWN for wf in rounds[1]})
    counts = assert_judged(groups, batches2, status2, "flipped rollup segment")
    print(f"[flip] round 1 workflows present after the flip: {counts['recorded_unknown']} of {len(rounds[1])}")
    assert d2.stop() == 0, d2.log_tail()


# --------------------------------------------------------------------------------------
# 3. A flood of traces that never complete.
# --------------------------------------------------------------------------------------

FLOOD_ARGS = ["--max-pending-bytes", "8388608", "--max-pending-traces", "20000", "--trace-wait", "5s",
              "--trace-max-age", "10m"]
FLOOD_SECONDS = 8.0
FLOOD_THREADS = 3
FLOOD_SPANS = 200          # spans per request, each of its own trace
FLOOD_NAME = "orphan-" + "x" * 393  # ~520 approximate bytes per buffered span
RSS_BOUND_MIB = 250
EARLY_CHECK_SECONDS = 4.0


def rootless_body(n: int) -> bytes:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.trace.v1.trace_pb2 import Span
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.extend(support.key_values({"service.name": "flooder"}))
    ss = rs.scope_spans.add()
    now = time.time_ns()
    for _ in range(n):
        ss.spans.append(Span(trace_id=os.urandom(15) + b"\x01", span_id=os.urandom(7) + b"\x01",
                             parent_span_id=os.urandom(7) + b"\x01", name=FLOOD_NAME,
                             start_time_unix_nano=now - 10_000_000, end_time_unix_nano=now,
                             attributes=support.key_values(llm_call(10, 5))))
    return req.SerializeToString()


def test_flood_of_unfinished_traces_is_refused_not_fatal(daemon_factory):
    d = daemon_factory.start("flood", extra_args=FLOOD_ARGS)
    pid = d.proc.pid
    problems: List[str] = []  # expectations checked to the end, so one run reports all of them
    rss: List[int] = []
    stop_sampling = threading.Event()

    def sampler() -> None:
        while not stop_sampling.is_set():
            v = support.rss_kib(pid)
            if v is not None:
                rss.append(v)
            stop_sampling.wait(0.1)

    sampling = threading.Thread(target=sampler, name="rss-sampler", daemon=True)
    sampling.start()

    lock = threading.Lock()
    statuses: collections.Counter = collections.Counter()
    first_503: List[requests.Response] = []
    errors: List[str] = []
    flood_start = time.monotonic()
    deadline = flood_start + FLOOD_SECONDS

    def flooder() -> None:
        session = new_session()
        for _ in range(5000):  # bounded in count as well as in time
            if time.monotonic() >= deadline:
                return
            try:
                r = post(session, d.otlp_url, rootless_body(FLOOD_SPANS), timeout=30)
            except requests.RequestException as e:
                with lock:
                    errors.append(repr(e))
                return
            with lock:
                statuses[r.status_code] += 1
                if r.status_code == 503 and not first_503:
                    first_503.append(r)

    threads = [threading.Thread(target=flooder, name=f"flooder-{i}", daemon=True) for i in range(FLOOD_THREADS)]
    for t in threads:
        t.start()
    # Every trace is younger than the 5 s wait window until 5 s after the flood began:
    # none may be evicted before then (the buffer full of live traces must refuse instead).
    time.sleep(max(0.0, flood_start + EARLY_CHECK_SECONDS - time.monotonic()))
    m_early = support.metrics(d.api_url)
    early_at = time.monotonic() - flood_start
    for t in threads:
        t.join(timeout=FLOOD_SECONDS + 60)
    assert not any(t.is_alive() for t in threads), "flood threads hung"
    m_flood = support.metrics(d.api_url)

    def summary(m):
        return (f"pending_traces={m['spanledger_pending_traces']:.0f} pending_bytes={m['spanledger_pending_bytes']:.0f} "
                f"evicted={m['spanledger_traces_evicted_total']:.0f} refused_batches={m['spanledger_batches_refused_total']:.0f} "
                f"over_inflight={m['spanledger_requests_over_inflight_total']:.0f}")
    print(f"\n[flood] at {early_at:.1f}s: {summary(m_early)}")
    print(f"[flood] after {FLOOD_SECONDS:.0f}s: answers {dict(statuses)}; {summary(m_flood)}")
    assert not errors, f"requests failed during the flood (daemon alive: {d.running}): {errors[:5]}\n{d.log_tail()}"
    assert d.running, f"the daemon died during the flood\n{d.log_tail()}"
    assert set(statuses) <= {200, 503}, dict(statuses)
    assert statuses[200] >= 1, f"nothing accepted during the flood: {dict(statuses)}"
    if m_early["spanledger_traces_evicted_total"] != 0:
        problems.append(f"{m_early['spanledger_traces_evicted_total']:.0f} traces evicted within {early_at:.1f}s of the "
                        f"flood's start, all inside their 5s wait window (expected 0: refuse with 503 instead); "
                        f"{summary(m_early)}")
    if statuses[503] == 0:
        problems.append(f"no 503 during the flood: answers {dict(statuses)}; {summary(m_flood)}")
    else:
        ra, st = check_retryable_503(first_503[0], "flood 503")
        print(f"[flood] first 503: Retry-After {ra}, status message {st.message!r}")
    limit = 8388608
    if m_flood["spanledger_pending_bytes"] > limit:
        problems.append(f"pending bytes {m_flood['spanledger_pending_bytes']:.0f} over --max-pending-bytes {limit}")

    # A good client after the flood: complete runs, honouring Retry-After, within 30 s.
    good = make_batch("after-flood", 7, runs=3)
    session = new_session()
    good_answers = []
    until = time.monotonic() + 30
    while True:
        r = post(session, d.otlp_url, good.body, timeout=30)
        good_answers.append(r.status_code)
        if r.status_code == 200:
            break
        wait, _ = check_retryable_503(r, "good client 503")
        assert time.monotonic() + wait <= until, f"no 200 within 30 s: answers {good_answers}"
        time.sleep(wait)
    statuses[503] += good_answers.count(503)
    print(f"[flood] good client answers {good_answers}")
    ok, g = support.wait_until(lambda: support.total(d.api_url, "after-flood"), lambda g: g.get("runs") == 3,
                               timeout=30)
    assert ok, f"the good client's runs never appeared: {g}"
    support.check_groups(support.rollups(d.api_url, ("workflow",), workflow="after-flood"),
                         {("after-flood",): {**good.expected, **_floats(good.expected)}}, ("workflow",))
    stop_sampling.set()
    sampling.join(timeout=5)
    m = support.metrics(d.api_url)
    refused = m["spanledger_batches_refused_total"] + m["spanledger_requests_over_inflight_total"]
    if refused != statuses[503]:
        problems.append(f"daemon counted {refused:.0f} refusals (batches_refused + over_inflight), "
                        f"clients saw {statuses[503]} 503s")
    max_rss = max(rss) / 1024 if rss else float("nan")
    print(f"[flood] max RSS {max_rss:.1f} MiB over {len(rss)} samples (bound {RSS_BOUND_MIB} MiB)")
    assert len(rss) >= 50, f"only {len(rss)} RSS samples"
    if not max_rss < RSS_BOUND_MIB:
        problems.append(f"RSS reached {max_rss:.1f} MiB (bound {RSS_BOUND_MIB} MiB)")
    assert d.running
    assert d.stop() == 0, d.log_tail()
    assert not problems, f"{len(problems)} problem(s) under the flood:\n  " + "\n  ".join(problems)


def _floats(g: Dict[str, int]) -> Dict[str, Any]:
    decided = g["accepted"] + g["edited"] + g["rejected"] + g["escalated"]
    ok = g["accepted"] + g["edited"]
    return {"acceptance_rate": None if decided == 0 else ok / decided, "cost_usd": g["cost_micros"] / 1e6,
            "cost_per_accepted_usd": None if ok == 0 else g["cost_micros"] / 1e6 / ok}


# --------------------------------------------------------------------------------------
# 4. A full disk.
# --------------------------------------------------------------------------------------

@pytest.fixture
def small_tmpfs(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a 6 MiB tmpfs (not running as root)")
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mnt)], capture_output=True, timeout=30)
    if p.returncode != 0:
        err = (p.stderr + p.stdout).decode(errors="replace")
        if "permission denied" in err.lower() or "not permitted" in err.lower():
            pytest.skip(f"cannot mount a tmpfs here: {err.strip()}")
        pytest.fail(f"mount -t tmpfs failed ({p.returncode}): {err}")
    try:
        yield mnt
    finally:
        u = subprocess.run(["umount", str(mnt)], capture_output=True, timeout=30)
        if u.returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True, timeout=30)


def fill(path: Path) -> int:
    """Writes `path` until the filesystem is full; returns its size."""
    chunk = b"\0" * 65536
    written = 0
    with open(path, "wb", buffering=0) as fh:
        for _ in range(10_000):  # far more than 6 MiB
            try:
                written += fh.write(chunk)
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
                break
        else:
            raise AssertionError("the filesystem never filled up")
    for small in (4096, 512, 1):  # the last partial pages too
        with open(path, "ab", buffering=0) as fh:
            for _ in range(200):
                try:
                    written += fh.write(b"\0" * small)
                except OSError as e:
                    assert e.errno == errno.ENOSPC, e
                    break
    return written


def test_disk_full_refuses_then_recovers(daemon_factory, small_tmpfs):
    data = small_tmpfs / "data"
    d = support.Daemon(support.spanledger_bin(), data, daemon_factory.prices,
                       daemon_factory.tmp / "diskfull.log", [])
    daemon_factory.daemons.append(d)
    support.DAEMONS.setdefault(daemon_factory.module, []).append(d)
    filler = small_tmpfs / "filler"
    session = new_session()
    batches: Dict[str, Batch] = {}
    status: Dict[str, str] = {}

    def send(b: Batch) -> requests.Response:
        batches[b.workflow] = b
        r = post(session, d.otlp_url, b.body)
        status[b.workflow] = ACKED if r.status_code == 200 else f"refused-{r.status_code}"
        return r

    try:
        d.start()
        for k in range(3):
            r = send(make_batch(f"disk-pre-{k}", k))
            assert r.status_code == 200, (r.status_code, r.content[:300])
        ok, m = support.wait_until(lambda: support.metrics(d.api_url),
                                   lambda m: m["spanledger_runs_released_total"] == 15 and
                                   m["spanledger_flushes_total"] >= 1 and m["spanledger_pending_traces"] == 0,
                                   timeout=20)
        assert ok, f"the first batches were not released and flushed: {m}"

        filled = fill(filler)
        df = os.statvfs(small_tmpfs)
        print(f"\n[disk] filler {filled} bytes; free {df.f_bavail * df.f_frsize} bytes")
        refusal: Optional[requests.Response] = None
        for k in range(200):
            r = send(make_batch(f"disk-full-{k}", 100 + k))
            if r.status_code == 503:
                refusal = r
                break
            assert r.status_code == 200, (r.status_code, r.content[:300])
        assert refusal is not None, f"no 503 after 200 batches on a full disk: {collections.Counter(status.values())}"
        ra, st = check_retryable_503(refusal, "disk-full 503")
        assert "disk" in st.message.lower(), f"the 503 does not mention the disk: {st.message!r}"
        print(f"[disk] 503 after {k} accepted batch(es) on the full disk: Retry-After {ra}, {st.message!r}")
        # Refused again while still full; queries keep answering; the daemon stays up.
        for j in range(3):
            r = send(make_batch(f"disk-full-again-{j}", 300 + j))
            assert r.status_code == 503, (r.status_code, r.content[:300])
        q = support.http("GET", support.rollups_url(d.api_url, group_by=("workflow",)), timeout=10)
        assert q.status_code == 200, (q.status_code, q.text[:500])
        time.sleep(1.5)  # a flush interval on the full disk
        m = support.metrics(d.api_url)
        refused_now = sum(1 for s in status.values() if s == "refused-503")
        print(f"[disk] while full: wal_disk_full_total={m['spanledger_wal_disk_full_total']:.0f} "
              f"append_failures={m['spanledger_wal_append_failures_total']:.0f} "
              f"flush_failures={m['spanledger_flush_failures_total']:.0f}; 503s seen {refused_now}")
        assert m["spanledger_wal_disk_full_total"] == refused_now, m["spanledger_wal_disk_full_total"]
        assert d.running, d.log_tail()

        filler.unlink()
        recovered = []
        until = time.monotonic() + 20
        for k in range(3):
            b = make_batch(f"disk-after-{k}", 200 + k)
            while True:
                r = send(b)
                recovered.append(r.status_code)
                if r.status_code == 200:
                    break
                wait, _ = check_retryable_503(r, "503 after freeing space")
                assert time.monotonic() + min(wait, 1) <= until, f"no 200 within 20 s of freeing space: {recovered}"
                time.sleep(min(wait, 1))
        print(f"[disk] answers after freeing space: {recovered}")
        groups = wait_released(d)
        assert_judged(groups, batches, status, "disk full, then freed")
        assert d.running, d.log_tail()
        assert d.stop() == 0, d.log_tail()
        litter = [str(p.relative_to(data)) for p in data.rglob("*") if p.name.endswith(".tmp")]
        assert not litter, f".tmp files left after a graceful stop: {litter}"
        d.start()
        m = support.metrics(d.api_url)
        assert m["spanledger_wal_replayed_records_total"] == 0, m["spanledger_wal_replayed_records_total"]
        again = wait_released(d)
        assert again == groups, "the answer changed across a graceful restart"
        assert d.stop() == 0, d.log_tail()
    finally:
        d.kill()


# --------------------------------------------------------------------------------------
# 5. A full disk between a flush's segments and its log checkpoint.
# --------------------------------------------------------------------------------------

PAGE = 4096


def test_disk_full_between_flush_and_checkpoint_never_doubles(daemon_factory, small_tmpfs):
    """The flush's three segment files fit (one page each) but the checkpoint does not:
    the flush has committed (its run-tree file exists), so writing its rollups again
    when the flush is retried would count them twice after a restart."""
    data = small_tmpfs / "data"
    d = support.Daemon(support.spanledger_bin(), data, daemon_factory.prices,
                       daemon_factory.tmp / "checkpoint-full.log", ["--flush-interval", "3s"])
    daemon_factory.daemons.append(d)
    support.DAEMONS.setdefault(daemon_factory.module, []).append(d)
    session = new_session()
    filler = small_tmpfs / "filler"
    try:
        d.start()
        first = make_batch("ckpt-first", 1)
        assert post(session, d.otlp_url, first.body).status_code == 200
        flushes = support.metric(d.api_url, "spanledger_flushes_total")
        ok, _ = support.wait_until(lambda: support.metric(d.api_url, "spanledger_flushes_total"),
                                   lambda v: v > flushes, timeout=10, interval=0.05)
        assert ok, "no flush within 10 s"
        # Right after a flush: 3 s until the next one.
        second = make_batch("ckpt-second", 2)
        assert post(session, d.otlp_url, second.body).status_code == 200
        fill(filler)
        pages = -(-filler.stat().st_size // PAGE)
        os.truncate(filler, (pages - 3) * PAGE)
        st = os.statvfs(small_tmpfs)
        assert st.f_bavail * st.f_frsize == 3 * PAGE, f"free bytes {st.f_bavail * st.f_frsize}, expected 3 pages"
        before = support.metrics(d.api_url)
        ok, m = support.wait_until(lambda: support.metrics(d.api_url),
                                   lambda m: m["spanledger_flush_failures_total"] > before["spanledger_flush_failures_total"]
                                   or m["spanledger_flushes_total"] > before["spanledger_flushes_total"],
                                   timeout=10, interval=0.05)
        assert ok, "no flush attempt within 10 s"
        log = support.log_of_last_start(d)
        committed = sorted(p.name for p in (data / "traces").glob("traces-*.seg"))
        print(f"\n[checkpoint full] flush failures {m['spanledger_flush_failures_total']:.0f}, "
              f"committed flushes {committed}")
        assert m["spanledger_flush_failures_total"] == 1 and "checkpoint.tmp" in log and len(committed) == 2, \
            (f"scenario not reached (the flush should write its segments, then fail on the checkpoint): "
             f"{committed}\n{log[-2000:]}")
        filler.unlink()
        expected = {("ckpt-first",): {**first.expected, **_floats(first.expected)},
                    ("ckpt-second",): {**second.expected, **_floats(second.expected)}}
        after = support.metrics(d.api_url)
        ok, _ = support.wait_until(lambda: support.metric(d.api_url, "spanledger_flushes_total"),
                                   lambda v: v > after["spanledger_flushes_total"], timeout=10, interval=0.05)
        print(f"[checkpoint full] flush retried within 10 s of freeing space: {ok}")
        support.check_groups(support.rollups(d.api_url, ("workflow",)), expected, ("workflow",))
        assert d.stop() == 0, d.log_tail()
        d.start()
        wait_released(d)
        doc = support.rollups(d.api_url, ("workflow",))
        print(f"[checkpoint full] after restart: {[(g['workflow'], g['runs']) for g in doc['groups']]}; segments "
              f"{sorted(p.name for p in (data / 'traces').glob('traces-*.seg'))}")
        support.check_groups(doc, expected, ("workflow",))
        assert d.stop() == 0, d.log_tail()
    finally:
        d.kill()


# --------------------------------------------------------------------------------------
# 6. SIGKILL during replay.
# --------------------------------------------------------------------------------------

def test_kill_during_replay_loses_nothing_acknowledged(daemon_factory):
    """A daemon killed from outside (OOM killer, a stop timeout) while it replays the log
    did not crash on the record it was replaying: that acknowledged record must still
    count after the next start."""
    d = daemon_factory.create("replaykill", extra_args=["--trace-wait", "60s", "--flush-interval", "60s"])
    d.start()
    session = new_session()
    batches: Dict[str, Batch] = {}
    for n in range(400):
        b = make_batch(f"replay-b{n:03d}", n)
        batches[b.workflow] = b
        r = post(session, d.otlp_url, b.body)
        assert r.status_code == 200, (r.status_code, r.content[:300])
    d.kill()
    marker = d.data_dir / "wal" / "replaying"
    killed_at: Optional[str] = None
    for attempt in range(3):
        d.listening_file.unlink(missing_ok=True)
        with open(d.log_path, "ab") as log:
            log.write(f"\n=== start (to be killed during replay): {' '.join(d.command())}\n".encode())
            log.flush()
            p = subprocess.Popen(d.command(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True)
        try:
            until = time.monotonic() + 20
            while time.monotonic() < until and p.poll() is None and not d.listening_file.exists():
                try:
                    text = marker.read_text().strip()
                except FileNotFoundError:
                    text = ""
                # The marker reads "<sequence> <attempts>".
                first = text.split()[0] if text.split() else ""
                if first.isdigit():
                    p.kill()
                    killed_at = first
                    break
                time.sleep(0.0002)
        finally:
            p.kill()
            p.wait(timeout=10)
        if killed_at is not None:
            break
    assert killed_at is not None, "could not SIGKILL the daemon during its replay in 3 attempts"
    print(f"\n[replay kill] killed while replaying record {killed_at}")
    d.extra_args = ["--trace-wait", "300ms"]
    d.start()
    m = support.metrics(d.api_url)
    quarantine = sorted(p.name for p in (d.data_dir / "wal" / "quarantine").iterdir())
    print(f"[replay kill] next start: quarantined={m['spanledger_wal_quarantined_records_total']:.0f} {quarantine}, "
          f"replayed={m['spanledger_wal_replayed_records_total']:.0f}")
    groups = wait_released(d)
    assert_judged(groups, batches, {wf: ACKED for wf in batches}, "killed during replay")
    assert d.stop() == 0, d.log_tail()
