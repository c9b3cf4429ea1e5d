"""SIGTERM stops a long-running command the way Ctrl-C does.

Python's default for SIGTERM ends the process at once: no `finally`, no context manager's
exit, so the embedded emulator's moto server (a child process) is left running. systemd,
Docker, CI runners and a test's `terminate()` all send SIGTERM; turning it into
KeyboardInterrupt in the main thread makes the command stop as on Ctrl-C (children stopped,
no traceback, the same exit code)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
