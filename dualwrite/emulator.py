"""The embedded AWS emulator: moto's server on 127.0.0.1, in its own process.

A separate process, not a thread, so the emulator does not share a GIL with the tool
(backfill workers and the replicator would otherwise slow the server they talk to).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from types import TracebackType

from dualwrite.errors import ConfigError, DualwriteError

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((HOST, port)) == 0


@dataclass
class Emulator:
    """moto server on loopback. Use as a context manager, or start() / stop()."""

    port: int = 0
    quiet: bool = True
    startup_timeout: float = 30.0
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> str:
        try:
            import moto.server  # noqa: F401  (checked here for a clear message)
        except ImportError:
            raise ConfigError(
                "the embedded emulator needs moto's server: pip install 'dualwrite[local]'"
            ) from None
        if not self.port:
            self.port = free_port()
        elif _listening(self.port):
            raise ConfigError(f"port {self.port} on {HOST} is already in use")
        out = subprocess.DEVNULL if self.quiet else None
        self._process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(self.port)],
            stdout=out,
            stderr=out,
        )
        deadline = time.monotonic() + self.startup_timeout
        while not _listening(self.port):
            if self._process.poll() is not None:
                raise DualwriteError(
                    f"the emulator exited at start (code {self._process.returncode})"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise DualwriteError(f"the emulator did not listen on port {self.port} in time")
            time.sleep(0.05)
        return self.endpoint

    def wait(self) -> int:
        assert self._process is not None
        return self._process.wait()

    def stop(self) -> None:
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def __enter__(self) -> Emulator:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
