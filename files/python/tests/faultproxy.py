"""An HTTP proxy in front of the real influxd that can fail on purpose (status codes, delays).

InfluxDB itself is never mocked: every request that is not failed goes to the real server.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.fail_status: int | None = None
        self.fail_count = 0  # how many more requests get fail_status (-1: all)
        self.delay = 0.0
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                proxy.requests.append((self.command, self.path, dict(self.headers)))
                if proxy.delay:
                    time.sleep(proxy.delay)
                if proxy.fail_status and proxy.fail_count:
                    proxy.fail_count -= 1
                    self.send_response(proxy.fail_status)
                    payload = b'{"error":"injected by the test proxy"}'
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                answer = requests.request(self.command, proxy.upstream + self.path, data=body, headers=headers,
                                          timeout=30)
                self.send_response(answer.status_code)
                for key, value in answer.headers.items():
                    if key.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def fail(self, status: int, count: int = -1) -> None:
        self.fail_status, self.fail_count = status, count

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
