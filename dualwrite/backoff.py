"""Exponential backoff with full jitter; the clock, sleep and randomness are injected."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from dualwrite.errors import StopRequested


@dataclass
class Backoff:
    base: float = 0.05
    cap: float = 5.0
    sleep: Callable[[float], None] = time.sleep
    rand: Callable[[], float] = field(default_factory=lambda: random.Random().random)

    def delay(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
        ceiling: float = min(self.cap, self.base * float(1 << min(attempt, 30)))
        return float(self.rand()) * ceiling

    def wait(self, attempt: int) -> float:
        d = self.delay(attempt)
        self.sleep(d)
        return d


#: how long a wait for the budget goes without looking whether the run is stopping
STOP_CHECK_S = 0.25


@dataclass
class RateLimiter:
    """Token bucket for a capacity budget (units per second), with an injectable clock."""

    rate: float
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    #: the run is stopping: a wait for the budget ends (StopRequested) instead of lasting
    #: debt/rate seconds (minutes under a small --max-wcu)
    stopping: Callable[[], bool] = lambda: False
    _tokens: float = 0.0
    _last: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._tokens = self.rate

    def _refill(self) -> None:
        now = self.clock()
        if self._last is not None:
            self._tokens = min(self.rate, self._tokens + (now - self._last) * self.rate)
        self._last = now

    def acquire(self, units: float = 0.0) -> None:
        """Wait until the bucket is not in debt (then spend `units` right away)."""
        while True:
            with self._lock:
                self._refill()
                if self._tokens >= 0:
                    self._tokens -= units
                    return
                debt = -self._tokens
            if self.stopping():
                raise StopRequested("stopping: the capacity budget's wait was cut short")
            self.sleep(min(debt / self.rate, STOP_CHECK_S))

    def spend(self, units: float) -> None:
        """Account for capacity actually consumed (known only after the request)."""
        with self._lock:
            self._refill()
            self._tokens -= units
