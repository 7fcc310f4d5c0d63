"""The daemon as an unprivileged user, as the container image, the Kubernetes pods (user
10001) and the systemd unit (`spanledger`) run it: it serves, ingests and stops cleanly."""

from __future__ import annotations

from pathlib import Path
from typing import List

import requests

import support
import transport_support
import workload


def test_the_daemon_serves_as_an_unprivileged_user():
    """The image and the pods run it as user 10001 and the systemd unit as `spanledger`. It
    once set SO_DEBUG (meaning TCP_NODELAY) on every accepted connection, which only root
    may: as anyone else the first connection failed and took the daemon down."""
    import os
    import shutil
    import tempfile
    # A directory of its own that user 10001 can reach (pytest's is root's alone), with a
    # copy of the binary (the checkout may be under a directory only root can enter).
    home = Path(tempfile.mkdtemp(prefix="spanledger-unprivileged-"))
    binary, data = home / "spanledger", home / "data"
    shutil.copy2(support.spanledger_bin(), binary)
    data.mkdir()
    prefix: List[str] = []
    if os.geteuid() == 0:
        assert shutil.which("setpriv"), "setpriv (util-linux) is needed to drop root"
        prefix = ["setpriv", "--reuid", "10001", "--regid", "10001", "--clear-groups"]
        for p in (home, data):
            os.chown(p, 10001, 10001)
        os.chmod(home, 0o755)
    prices = home / "prices.json"
    prices.write_text(workload.price_file_json())
    d = support.Daemon(binary, data, prices, home / "daemon.log", ["--trace-wait", "200ms"])
    d.prefix = prefix
    try:
        d.start()
        run = support.simple_run("unprivileged", [{"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
                                                   "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 5}])
        by_grpc = support.simple_run("unprivileged", [{"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
                                                       "gen_ai.usage.input_tokens": 20, "gen_ai.usage.output_tokens": 5}])
        assert requests.get(d.api_url + "/healthz", timeout=10).status_code == 200
        assert support.post_otlp(d.otlp_url, support.export_bytes([(run, run.spans)])).status_code == 200
        assert transport_support.grpc_export(d.listening["otlp_grpc"], support.export_bytes([(by_grpc, by_grpc.spans)])).code.name == "OK"
        support.wait_for_runs(d.api_url, 2)
        assert d.running, "the daemon stopped serving:\n" + d.log_tail()
        if prefix:
            assert all(p.stat().st_uid == 10001 for p in data.rglob("*")), "files written as another user"
        assert d.stop() == 0, d.log_tail()
    finally:
        d.kill()
        shutil.rmtree(home, ignore_errors=True)
