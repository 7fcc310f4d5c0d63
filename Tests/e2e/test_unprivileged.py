"""The daemon as an unprivileged user, as the container image, the Kubernetes pods (user
10001) and the systemd unit (`spanledger`) run it: it serves, ingests and stops cleanly."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import List

import requests

import support
import transport_support


def test_the_daemon_serves_as_an_unprivileged_user():
    """The image and the pods run it as user 10001 and the systemd unit as `spanledger`. It
    once set SO_DEBUG (meaning TCP_NODELAY) on every accepted connection, which only root
    may: as anyone else the first connection failed and took the daemon down."""
    import os
    import shutil
    import signal
    import tempfile
    import time
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
    log_path = home / "daemon.log"
    proc = subprocess.Popen(prefix + [str(binary), "serve", "--data", str(data), "--otlp-http", "127.0.0.1:0",
                                      "--api", "127.0.0.1:0", "--otlp-grpc", "127.0.0.1:0", "--trace-wait", "200ms"],
                            stdin=subprocess.DEVNULL, stdout=open(log_path, "wb"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        listening = None
        for _ in range(300):
            assert proc.poll() is None, log_path.read_text()[-2000:]
            try:
                listening = json.loads((data / "listening.json").read_text())
                break
            except (FileNotFoundError, json.JSONDecodeError):
                time.sleep(0.05)
        assert listening, "no listening.json"
        api, otlp = f"http://{listening['api']}", f"http://{listening['otlp_http']}"
        run = support.simple_run("unprivileged", [{"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
                                                   "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 5}])
        by_grpc = support.simple_run("unprivileged", [{"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
                                                       "gen_ai.usage.input_tokens": 20, "gen_ai.usage.output_tokens": 5}])
        assert requests.get(api + "/healthz", timeout=10).status_code == 200
        assert support.post_otlp(otlp, support.export_bytes([(run, run.spans)])).status_code == 200
        assert transport_support.grpc_export(listening["otlp_grpc"], support.export_bytes([(by_grpc, by_grpc.spans)])).code.name == "OK"
        support.wait_for_runs(api, 2)
        assert proc.poll() is None, "the daemon stopped serving:\n" + log_path.read_text()[-2000:]
        if prefix:
            assert all(p.stat().st_uid == 10001 for p in data.rglob("*")), "files written as another user"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log_path.read_text()[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        shutil.rmtree(home, ignore_errors=True)
