"""The replicator's view of each route's direction (DESIGN.md section 8): read from the control
table and trusted for `ttl` seconds (like the phase), marked drained by whoever sees the drain
first, with an optimistic write (the cutover's switch and a drain must not overwrite each
other).

Trusted for records made well before the read only. A switch made just after the read at
time r has T >= r, and the old direction applies every change made before T+O, so a cached
view is right for any record made before r + O; a newer record is decided on a direction
read for it. O is at least a second, clocks differ by up to the margin, and
ApproximateCreationDateTime is rounded down to the second: FRESH_S covers all three. So a
runner catching up a backlog reads once a `ttl`, and one tailing live changes reads once a
batch, as the Lambda does."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from dualwrite.control import ControlStore
from dualwrite.reverse.direction import DEFAULT_MARGIN_S, Direction, drained

log = logging.getLogger("dualwrite-replicator.directions")


#: records made later than this before a read are decided on a fresh one (see above): at
#: least the margin, so that no record a later switch's new direction applies (made at or
#: after T minus the margin, T >= the read) is decided on the view from before it
FRESH_S = max(5.0, DEFAULT_MARGIN_S)


@dataclass(frozen=True)
class _Seen:
    monotonic: float
    #: wall-clock time of the read (epoch seconds), to compare with records' times
    at: float
    state: Direction


@dataclass
class DirectionBook:
    store: ControlStore
    monotonic: Callable[[], float]
    #: how long a direction read is trusted (0: read once per batch)
    ttl: float = 0.0
    clock: Callable[[], float] = time.time
    _seen: dict[str, _Seen] = field(default_factory=dict)

    def get(self, route: str, newest: float | None = None) -> Direction:
        """The route's direction for records made up to `newest` (ApproximateCreationDateTime
        of the batch's newest record; None: unknown)."""
        seen = self._seen.get(route)
        if (
            seen is not None
            and self.monotonic() - seen.monotonic < self.ttl
            and newest is not None
            and newest < seen.at - FRESH_S
        ):
            return seen.state
        return self.read(route)

    def read(self, route: str) -> Direction:
        """The route's direction, read now (and cached)."""
        at = self.clock()
        state = self.store.direction(route)
        self._seen[route] = _Seen(self.monotonic(), at, state)
        return state

    def peek(self, route: str) -> Direction | None:
        """The direction last read, without reading (None: never read)."""
        seen = self._seen.get(route)
        return seen.state if seen is not None else None

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
            self._seen[route] = _Seen(self.monotonic(), self.clock(), done)
            return done
        return self.read(route)
