"""The benchmark's CI gate (`bench --min-e2e-ratio`, `--gate-attempts`), on a tiny workload
against the real daemon: a floor the run cannot reach fails after measuring OTLP/HTTP
again as many times as allowed; a floor it reaches passes on the first attempt. (The
ratios of this debug build mean nothing; the gate's decisions are what is checked.)"""

from __future__ import annotations

import re
import subprocess

import support


def bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(support.spanledger_bin()), "bench", "--runs", "300", "--batch-spans", "256", "--scenarios", "decode,http",
                           "--connections", "1", "--repeats", "1", *args],
                          capture_output=True, text=True, timeout=600)


def test_an_unreachable_floor_fails_after_every_attempt():
    p = bench("--min-e2e-ratio", "50", "--gate-attempts", "2")
    assert p.returncode == 1, p.stdout + p.stderr
    assert "attempt 2 of 2" in p.stdout, p.stdout
    assert "attempt 3" not in p.stdout, p.stdout
    m = re.search(r"FAIL: best end-to-end ratio ([\d.]+) is below 50\.000 \(2 attempts\)", p.stdout)
    assert m and 0 < float(m.group(1)) < 50, p.stdout
    # The repeated measurement is a real run: its own row, with spans rolled up.
    assert len(re.findall(r"^http ×1 fsync\s+\d+", p.stdout, re.M)) == 2, p.stdout


def test_a_reachable_floor_passes_on_the_first_attempt():
    p = bench("--min-e2e-ratio", "0.0001", "--gate-attempts", "3")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "attempt 2" not in p.stdout, p.stdout
    assert re.search(r"ok: best end-to-end ratio [\d.]+ ≥ 0\.000 \(1 attempt\)", p.stdout), p.stdout


def test_repeated_scenarios_report_the_median_run_and_every_runs_figure():
    p = subprocess.run([str(support.spanledger_bin()), "bench", "--runs", "300", "--batch-spans", "256", "--scenarios", "decode,http,paced",
                        "--connections", "1", "--repeats", "1", "--e2e-repeats", "3"], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    # One row per scenario (the median run), and the three runs' figures ascending below:
    # the rolled-up ratio, or for the paced run (a fixed rate) its p99 latency.
    rows = re.findall(r"^http ×1 fsync\s+\d+\s+[\d.]+%\s+\d+\s+([\d.]+)%", p.stdout, re.M)
    assert len(rows) == 1, p.stdout
    spread = re.search(r"^  http ×1 fsync: ([\d.]+)%, ([\d.]+)%, ([\d.]+)%$", p.stdout, re.M)
    assert spread, p.stdout
    ratios = [float(x) for x in spread.groups()]
    assert ratios == sorted(ratios) and float(rows[0]) == ratios[1], (rows, ratios)
    paced_row = re.search(r"^http ×1 fsync @\S+\s+(?:\S+\s+){8}([\d.]+)\s", p.stdout, re.M)  # ACK p99 ms column
    paced = re.search(r"^  http ×1 fsync @\S+: ([\d.]+) ms, ([\d.]+) ms, ([\d.]+) ms$", p.stdout, re.M)
    assert paced_row and paced, p.stdout
    p99s = [float(x) for x in paced.groups()]
    assert p99s == sorted(p99s) and float(paced_row.group(1)) == p99s[1], (paced_row.group(1), p99s)
    assert p.stdout.count("Each scenario ran 3 times") == 1
    bad = bench("--e2e-repeats", "0")
    assert bad.returncode != 0 and "at least 1" in bad.stderr, bad.stderr
