"""A real HTTP receiver for alert webhooks, run as its own process by the alert tests.

Every POST is recorded (path, headers, JSON body, the status answered, time). The answer
for a path follows a plan the test sets at run time: `POST /_control/plan` with
{"path": "/hook", "statuses": [500, 500]} makes the next two requests to /hook answer 500,
then 200 again. `GET /_control/requests` returns everything recorded; `POST
/_control/reset` forgets it. The port is written to --port-file once bound.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

LOCK = threading.Lock()
PLANS: dict = {}
REQUESTS: list = []


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet
        pass

    def _answer(self, status: int, body: bytes = b"", content_type: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        if self.path == "/_control/requests":
            with LOCK:
                data = json.dumps(REQUESTS).encode()
            self._answer(200, data, "application/json")
        else:
            self._answer(404, b"no such path")

    def do_POST(self):
        raw = self._body()
        if self.path == "/_control/plan":
            plan = json.loads(raw)
            with LOCK:
                PLANS[plan["path"]] = list(plan["statuses"])
            self._answer(200, b"ok")
            return
        if self.path == "/_control/reset":
            with LOCK:
                REQUESTS.clear()
                PLANS.clear()
            self._answer(200, b"ok")
            return
        with LOCK:
            queue = PLANS.get(self.path) or []
            status = queue.pop(0) if queue else 200
            try:
                body = json.loads(raw)
            except ValueError:
                body = {"_unparsable": raw.decode(errors="replace")}
            REQUESTS.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                             "body": body, "status": status, "time": time.time()})
        self._answer(status, b"ok" if status < 300 else b"planned failure")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    args = ap.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    tmp = Path(args.port_file + ".tmp")
    tmp.write_text(str(server.server_address[1]))
    tmp.rename(args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
