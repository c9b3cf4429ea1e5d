"""Progress for long work when stderr is not a terminal (CI, nohup, `2>log`): the progress
bars are off there, and a backfill of hours printed nothing until it ended. One line every
`interval` seconds instead, from whichever worker thread reports."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

#: seconds between two lines: often enough to show the work is alive, rare enough for a log
INTERVAL_S = 15.0


@dataclass
class ProgressLines:
    """Counts per name (a route, or the whole run) and, every interval, one line."""

    what: str
    say: Callable[[str], None]
    enabled: bool = True
    interval: float = INTERVAL_S
    clock: Callable[[], float] = time.monotonic
    _done: dict[str, int] = field(default_factory=dict)
    _total: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _started: float | None = None
    _next: float = 0.0

    def add(self, name: str, items: int, approx_total: int = 0) -> None:
        if not self.enabled:
            return
        with self._lock:
            now = self.clock()
            if self._started is None:
                self._started, self._next = now, now + self.interval
            self._done[name] = self._done.get(name, 0) + items
            if approx_total:
                self._total[name] = approx_total
            if now < self._next:
                return
            self._next = now + self.interval
            line = self._line(now)
        self.say(line)

    def _line(self, now: float) -> str:
        parts = []
        for name, done in self._done.items():
            total = self._total.get(name)
            parts.append(f"{name} {done:,}" + (f" of ~{total:,}" if total else "") + " items")
        return f"{self.what}: {', '.join(parts)} ({now - (self._started or now):.0f} s)"
