"""The replicator's view of each route's direction (DESIGN.md section 8): read from the control
table and trusted for `ttl` seconds (like the phase), marked drained by whoever sees the drain
first, with an optimistic write (the cutover's switch and a drain must not overwrite each
other)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from dualwrite.control import ControlStore
from dualwrite.reverse.direction import Direction, drained

log = logging.getLogger("dualwrite-replicator.directions")


@dataclass
class DirectionBook:
    store: ControlStore
    monotonic: Callable[[], float]
    #: how long a direction read is trusted (0: read once per batch)
    ttl: float = 0.0
    _seen: dict[str, tuple[float, Direction]] = field(default_factory=dict)

    def get(self, route: str) -> Direction:
        seen = self._seen.get(route)
        now = self.monotonic()
        if seen is not None and now - seen[0] < self.ttl:
            return seen[1]
        return self.read(route)

    def read(self, route: str) -> Direction:
        """The route's direction, read now (and cached)."""
        state = self.store.direction(route)
        self._seen[route] = (self.monotonic(), state)
        return state

    def peek(self, route: str) -> Direction | None:
        """The direction last read, without reading (None: never read)."""
        seen = self._seen.get(route)
        return seen[1] if seen is not None else None

    def mark_drained(self, route: str, state: Direction) -> Direction:
        """Saves `drained(state)` if the route is still `state`; returns the route's direction
        now (someone else's newer switch wins: it is read again)."""
        done = drained(state)
        if self.store.save_direction(route, done, expected=state):
            log.info(
                "route %s: the %s direction has drained; %s applies now",
                route,
                state.applying.value,
                state.direction.value,
            )
            self._seen[route] = (self.monotonic(), done)
            return done
        return self.read(route)
