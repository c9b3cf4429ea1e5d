"""Small HTTP proxies on loopback, in front of an emulator, that answer some requests
themselves instead of forwarding them.

`LoopbackProxy` forwards everything; a proxy overrides one method, `answer`, to choose the
requests it answers (FaultProxy: deterministic throttling and 5xx; DenyOnce, in
tests/ministack/denyproxy.py: one AccessDeniedException). Each counts what it did, so tests
can prove the faults really happened.
"""

from __future__ import annotations

import http.client
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self
from urllib.parse import urlparse

JSON_1_0 = [("Content-Type", "application/x-amz-json-1.0")]
THROTTLE = (
    400,
    b'{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",'
    b'"message":"injected throttling"}',
)
SERVER_ERROR = (
    500,
    b'{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"injected 5xx"}',
)


@dataclass
class LoopbackProxy:
    upstream: str
    _server: ThreadingHTTPServer | None = field(default=None, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def answer(self, operation: str, body: bytes) -> tuple[int, bytes] | None:
        """(status, JSON body) to answer a request with instead of forwarding it, or None."""
        return None

    def forwarded_one(self, operation: str) -> None:
        """Called (under the lock) for each request forwarded upstream."""

    @property
    def endpoint(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

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
                operation = target.rsplit(".", 1)[-1] if target else ""
                answer = proxy.answer(operation, body) if operation else None
                if answer is not None:
                    self._reply(answer[0], JSON_1_0, answer[1])
                    return
                self._forward("POST", body, operation)

            def do_GET(self) -> None:
                self._forward("GET", b"", "GET")

            def _forward(self, method: str, body: bytes, operation: str) -> None:
                conn = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                headers["Host"] = f"{up.hostname}:{up.port}"
                conn.request(method, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
                with proxy._lock:
                    proxy.forwarded_one(operation)
                skip = ("content-length", "transfer-encoding", "connection")
                kept = [(k, v) for k, v in resp.getheaders() if k.lower() not in skip]
                self._reply(resp.status, kept, data)

            def _reply(self, status: int, headers: list[tuple[str, str]], data: bytes) -> None:
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

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@dataclass
class FaultProxy(LoopbackProxy):
    """Every `every`-th DynamoDB / DynamoDB Streams request of a kind it targets is answered
    with a throttling error (400) or a server error (500), alternately."""

    #: X-Amz-Target operations (e.g. "BatchWriteItem") to disturb; empty: every operation
    operations: frozenset[str] = frozenset()
    every: int = 4
    faults: Counter[str] = field(default_factory=Counter)
    forwarded: Counter[str] = field(default_factory=Counter)
    _seen: int = field(default=0, init=False)

    def answer(self, operation: str, body: bytes) -> tuple[int, bytes] | None:
        if self.operations and operation not in self.operations:
            return None
        with self._lock:
            self._seen += 1
            n = self._seen
            if n % self.every:
                return None
            fault = THROTTLE if (n // self.every) % 2 else SERVER_ERROR
            self.faults[f"{operation}:{fault[0]}"] += 1
        return fault

    def forwarded_one(self, operation: str) -> None:
        self.forwarded[operation] += 1
