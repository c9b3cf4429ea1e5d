"""A small fault-injecting HTTP proxy on loopback, in front of the emulator.

Deterministic: every `every`-th DynamoDB / DynamoDB Streams request of a kind it targets is
answered with a throttling error (400) or a server error (500) instead of being forwarded.
Counts what it did, so tests can prove faults really happened.
"""

from __future__ import annotations

import http.client
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlparse

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
class FaultProxy:
    upstream: str
    #: X-Amz-Target operations (e.g. "BatchWriteItem") to disturb; empty: every operation
    operations: frozenset[str] = frozenset()
    every: int = 4
    faults: Counter[str] = field(default_factory=Counter)
    forwarded: Counter[str] = field(default_factory=Counter)
    _server: ThreadingHTTPServer | None = None
    _seen: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def endpoint(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def _decide(self, operation: str) -> tuple[int, bytes] | None:
        if self.operations and operation not in self.operations:
            return None
        with self._lock:
            self._seen += 1
            n = self._seen
        if n % self.every:
            return None
        # alternate throttling and server errors
        fault = THROTTLE if (n // self.every) % 2 else SERVER_ERROR
        with self._lock:
            self.faults[f"{operation}:{fault[0]}"] += 1
        return fault

    def start(self) -> str:
        up = urlparse(self.upstream)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # quiet
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                target = self.headers.get("X-Amz-Target", "")
                operation = target.rsplit(".", 1)[-1] if target else ""
                fault = proxy._decide(operation) if operation else None
                if fault is not None:
                    status, payload = fault
                    self.send_response(status)
                    self.send_header("Content-Type", "application/x-amz-json-1.0")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
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
                    proxy.forwarded[operation] += 1
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection"):
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

    def __enter__(self) -> FaultProxy:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
