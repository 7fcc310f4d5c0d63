"""A machine kept busy by other processes (another tenant, the agents themselves).

The daemon writes a flush on idle CPU time (SCHED_IDLE) when it has cores to spare, so
requests sent meanwhile do not wait behind it. Judged by the daemon's own CPU use alone,
a machine whose cores other processes keep busy looked idle: the flush started at idle
priority and then got almost no CPU, and the clock, which waits for the last flush before
the next, held release (and through it ingest) as long. Here real busy-loop processes,
one per CPU the test may use, keep the machine busy while runs arrive: every flush must
be written at normal priority, and flushes must keep coming. Without them, with the
daemon idle, flushes go back to idle CPU time."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import support
import transport_support as ts

HOG = "import time\nend = time.monotonic() + float(__import__('sys').argv[1])\nwhile time.monotonic() < end: pass\n"


def send_run(d: support.Daemon, workflow: str) -> None:
    run = support.simple_run(workflow, [ts.GOOD_CALL])
    r = support.post_otlp(d.otlp_url, support.export_bytes([(run, run.spans)]))
    assert r.status_code == 200, (r.status_code, r.content[:300])


def flushes(d: support.Daemon) -> tuple[float, float]:
    m = support.metrics(d.api_url)
    return m["spanledger_flushes_total"], m["spanledger_flushes_idle_total"]


def flushes_while_sending(d: support.Daemon, workflow: str, more: int, timeout: float) -> tuple[float, float]:
    """Sends a run every 0.3 s until `more` flushes have been written (bounded by `timeout`);
    returns the counters then."""
    start = flushes(d)
    deadline = time.monotonic() + timeout
    n = 0
    while time.monotonic() < deadline:
        n += 1
        send_run(d, f"{workflow}-{n}")
        time.sleep(0.3)
        now = flushes(d)
        if now[0] >= start[0] + more:
            return now
    return flushes(d)


def test_a_machine_kept_busy_by_others_gets_normal_priority_flushes(daemon_factory):
    d = ts.start_daemon(daemon_factory, "busy-machine", ["--flush-interval", "1s", "--trace-wait", "100ms"])
    try:
        # Idle machine, idle daemon: flushes are written on idle CPU time.
        total, idle = flushes_while_sending(d, "quiet", 2, timeout=30)
        assert total >= 2 and idle >= 1, f"flushes {total}, of them idle {idle}: an idle machine should flush on idle time"

        cpus = len(os.sched_getaffinity(0))
        hogs = [subprocess.Popen([sys.executable, "-c", HOG, "40"]) for _ in range(cpus)]
        try:
            time.sleep(2.0)  # the clock follows about the last second of CPU use
            before_total, before_idle = flushes(d)
            total, idle = flushes_while_sending(d, "busy", 3, timeout=30)
            assert total >= before_total + 3, f"only {total - before_total} flushes in 30 s with {cpus} CPUs kept busy"
            assert idle == before_idle, f"{idle - before_idle} of {total - before_total} flushes went to idle CPU time on a busy machine"
        finally:
            for h in hogs:
                h.kill()
            for h in hogs:
                h.wait()
        ts.assert_alive(d)
        support.wait_for_runs(d.api_url, 1, workflow="busy-1")
    finally:
        d.kill()
