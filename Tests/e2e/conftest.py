"""Fixtures for the end-to-end tests: a price file and real `spanledger serve` daemons
in a fresh temporary directory per test module; daemon logs attached to failures."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import List

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import support  # noqa: E402
import workload  # noqa: E402

# The SDK reads OTEL_* variables (exporter headers, sampler, limits, SDK disabled); the
# tests configure it explicitly, so none from the environment may interfere.
for _name in [n for n in os.environ if n.startswith("OTEL_")]:
    del os.environ[_name]


class DaemonFactory:
    """Starts daemons in one module's temporary directory; stops them at the end."""

    def __init__(self, module: str, tmp: Path):
        self.module, self.tmp = module, tmp
        self.prices = tmp / "prices.json"
        self.prices.write_text(workload.price_file_json())
        self.daemons: List[support.Daemon] = []

    def create(self, name: str = "daemon", extra_args=()) -> support.Daemon:
        d = support.Daemon(support.spanledger_bin(), self.tmp / f"{name}-data", self.prices,
                           self.tmp / f"{name}.log", extra_args)
        self.daemons.append(d)
        support.DAEMONS.setdefault(self.module, []).append(d)
        return d

    def start(self, name: str = "daemon", extra_args=()) -> support.Daemon:
        return self.create(name, extra_args).start()

    def stop_all(self) -> List[str]:
        problems = []
        for d in self.daemons:
            if d.running:
                try:
                    rc = d.stop()
                except AssertionError as e:
                    problems.append(str(e))
                    continue
                if rc != 0:
                    problems.append(f"{d.log_path.name}: exit code {rc} after SIGTERM, expected 0\n{d.log_tail()}")
        return problems


@pytest.fixture(scope="module")
def daemon_factory(request, tmp_path_factory):
    module = request.module.__name__
    factory = DaemonFactory(module, tmp_path_factory.mktemp(module.rsplit(".", 1)[-1]))
    yield factory
    problems = factory.stop_all()
    assert not problems, "graceful shutdown failed:\n" + "\n".join(problems)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for d in support.DAEMONS.get(item.module.__name__, []):
            report.sections.append((f"spanledger log ({d.log_path})", d.log_tail()))
