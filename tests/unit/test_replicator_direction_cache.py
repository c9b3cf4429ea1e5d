"""The replicator's cached direction (stream_replicator.directions): trusted for `ttl`, but
only for records made well before it was read; a newer record gets a fresh read."""

from __future__ import annotations

from typing import Any

from dualwrite.reverse.direction import Direction, Flow
from stream_replicator.directions import FRESH_S, DirectionBook

SWITCHED = Direction(Flow.REVERSE, switched_at=1_000.0, overlap_s=3.0)


class Store:
    def __init__(self) -> None:
        self.state = Direction()
        self.reads = 0

    def direction(self, route: str) -> Direction:
        self.reads += 1
        return self.state


def book(store: Any, now: list[float]) -> DirectionBook:
    return DirectionBook(store, monotonic=lambda: now[0], ttl=60.0, clock=lambda: now[0])


def test_records_made_well_before_the_read_use_it_newer_ones_read_again() -> None:
    store, now = Store(), [1_000.0]
    directions = book(store, now)
    assert directions.get("r", newest=900.0) == Direction() and store.reads == 1
    store.state = SWITCHED  # a cutover, just after the read
    now[0] = 1_001.0
    assert directions.get("r", newest=1_000.0 - FRESH_S - 1) == Direction()  # the backlog
    assert store.reads == 1
    assert directions.get("r", newest=1_000.0 - FRESH_S) == SWITCHED  # may be the switch's
    assert store.reads == 2


def test_unknown_times_and_an_expired_ttl_read_again() -> None:
    store, now = Store(), [1_000.0]
    directions = book(store, now)
    directions.get("r", newest=0.0)
    directions.get("r", newest=None)
    assert store.reads == 2  # no time: no way to know the read still holds
    now[0] += 61.0
    directions.get("r", newest=0.0)
    assert store.reads == 3
