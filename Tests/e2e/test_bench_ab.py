"""`scripts/bench-ab`, the alternating comparison of two builds, on a tiny workload with
real bench runs of the real daemon: every round runs both builds (A first in odd rounds,
B first in even ones), and the summary's medians and win count are those of the rounds it
printed. (A debug build's figures mean nothing here; the pairing is what is checked.)"""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import sys

import support

SCRIPT = support.REPO_ROOT / "scripts" / "bench-ab"


def bench_ab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=900)


def test_rounds_alternate_and_the_summary_pairs_them(tmp_path):
    # Two paths to the same build, so the output can tell them apart.
    a = tmp_path / "a-spanledger"
    shutil.copy(support.spanledger_bin(), a)
    b = support.spanledger_bin()
    p = bench_ab("--rounds", "2", str(a), str(b), "--", "--runs", "300", "--batch-spans", "256", "--scenarios", "http,paced",
                 "--connections", "1", "--repeats", "1", "--e2e-repeats", "1")
    assert p.returncode == 0, p.stdout + p.stderr
    rounds = re.findall(r"^round (\d) ([AB]) (http ×1 \S+(?: paced)?): daemon CPU ([\d.]+) s/M, rolled up (\d+) spans/s", p.stdout, re.M)
    # Per round and build: durability fsync, none, and the paced run (its rate in the name
    # replaced, so rounds compare).
    assert [(r[0], r[1]) for r in rounds[::3]] == [("1", "A"), ("1", "B"), ("2", "B"), ("2", "A")], p.stdout
    assert {r[2] for r in rounds} == {"http ×1 fsync", "http ×1 none", "http ×1 fsync paced"}, p.stdout
    for scenario in ("http ×1 fsync", "http ×1 none", "http ×1 fsync paced"):
        cpu = {(r[0], r[1]): float(r[3]) for r in rounds if r[2] == scenario}
        m = re.search(rf"^{re.escape(scenario)}: daemon CPU s/M median A ([\d.]+), B ([\d.]+); paired B/A median ([\d.]+); "
                      rf"B used less in (\d) of 2 rounds$", p.stdout, re.M)
        assert m, p.stdout
        assert float(m.group(1)) == round(statistics.median([cpu["1", "A"], cpu["2", "A"]]), 2)
        assert float(m.group(2)) == round(statistics.median([cpu["1", "B"], cpu["2", "B"]]), 2)
        ratio = statistics.median([cpu[n, "B"] / cpu[n, "A"] for n in ("1", "2")])
        assert abs(float(m.group(3)) - ratio) < 0.0011, (m.group(3), ratio)
        assert int(m.group(4)) == sum(1 for n in ("1", "2") if cpu[n, "B"] < cpu[n, "A"])


def test_a_missing_build_or_a_failing_bench_is_an_error(tmp_path):
    missing = bench_ab("--rounds", "1", str(tmp_path / "nothing"), str(support.spanledger_bin()))
    assert missing.returncode == 2 and "no such build" in missing.stderr, missing.stderr
    # A real build with a bench argument it refuses: the bench's own message comes through.
    refused = bench_ab("--rounds", "1", str(support.spanledger_bin()), str(support.spanledger_bin()), "--", "--e2e-repeats", "0")
    assert refused.returncode == 2 and "bench exited" in refused.stderr and "at least 1" in refused.stderr, refused.stderr
