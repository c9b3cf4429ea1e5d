"""A loopback HTTP proxy in front of ministack that denies one chosen DynamoDB request once
(AccessDeniedException, as a missing table permission would), forwarding everything else.
It counts what it denied, so a test can prove the failure really happened."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlparse

DENIED = json.dumps(
    {
        "__type": "com.amazon.coral.service#AccessDeniedException",
        "message": "injected: not authorized to perform dynamodb:Scan",
    }
).encode()


@dataclass
class DenyOnce:
    upstream: str
    #: (operation, request body) -> whether to deny this request
    matches: Callable[[str, dict[str, Any]], bool]
    denied: int = 0
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def endpoint(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def _deny(self, operation: str, body: bytes) -> bool:
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            return False
        with self._lock:
            if self.denied or not isinstance(request, dict) or not self.matches(operation, request):
                return False
            self.denied += 1
            return True

    def start(self) -> str:
        up = urlparse(self.upstream)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # quiet
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                target = self.headers.get("X-Amz-Target", "")
                if target and proxy._deny(target.rsplit(".", 1)[-1], body):
                    self._answer(400, [("Content-Type", "application/x-amz-json-1.0")], DENIED)
                    return
                self._forward("POST", body)

            def do_GET(self) -> None:
                self._forward("GET", b"")

            def _forward(self, method: str, body: bytes) -> None:
                conn = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                headers["Host"] = f"{up.hostname}:{up.port}"
                conn.request(method, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
                skip = ("content-length", "transfer-encoding", "connection")
                self._answer(
                    resp.status,
                    [(k, v) for k, v in resp.getheaders() if k.lower() not in skip],
                    data,
                )

            def _answer(self, status: int, headers: list[tuple[str, str]], data: bytes) -> None:
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self.endpoint

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> DenyOnce:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
