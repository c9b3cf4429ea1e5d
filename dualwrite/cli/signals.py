"""Signals for long-running commands.

`stop_on_signals`: the first SIGINT or SIGTERM asks the work to stop at its next checkpoint
(the runner after its batch, the backfill after each segment's page); a second SIGINT
aborts at once.

`sigterm_as_interrupt`: SIGTERM stops a command the way Ctrl-C does.

Python's default for SIGTERM ends the process at once: no `finally`, no context manager's
exit, so the embedded emulator's moto server (a child process) is left running. systemd,
Docker, CI runners and a test's `terminate()` all send SIGTERM; turning it into
KeyboardInterrupt in the main thread makes the command stop as on Ctrl-C (children stopped,
no traceback, the same exit code)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
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


@contextmanager
def stop_on_signals(stop: threading.Event, on_stop: Callable[[], None]) -> Iterator[None]:
    """First SIGINT/SIGTERM sets `stop` and calls `on_stop` (to say so); a second SIGINT
    raises KeyboardInterrupt."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()
        on_stop()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
