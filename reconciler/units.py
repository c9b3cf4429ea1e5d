"""The units of a check: one scan segment of one table each, resumable. Adapter.

- source unit (route, segment): scan the source and compute the expected target items.
- target unit (target table, segment): scan the target once for every route that writes to
  it; each route considers only the items its mapping owns.

`run_units` runs them on a bounded pool (dualwrite.coordinator): the first failure stops the
others after their current page; what each unit did is merged in unit order.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from dualwrite import collector
from dualwrite.aws.dynamo import RequestCounter
from dualwrite.coordinator import BoundedPool, TaskState
from dualwrite.jsondoc import JsonObject
from dualwrite.wire import AttributeValue, Key, from_lambda_json, to_lambda_json
from reconciler.compare import Difference, Tally
from reconciler.digest import Digests
from reconciler.spec import RouteSpec

if TYPE_CHECKING:
    from reconciler.passes import Checker

#: at most this many unit threads, however many units
MAX_WORKERS = 64


SOURCE = "source"
TARGET = "target"


@dataclass(frozen=True)
class Unit:
    """One scan segment of one table, checked for the routes named."""

    kind: str
    table: str
    segment: int
    total: int
    routes: tuple[str, ...]

    @property
    def uid(self) -> str:
        return f"{self.kind}|{self.table}|{self.total}|{self.segment}"


def plan_units(routes: Sequence[RouteSpec], segments: int) -> list[Unit]:
    """Source units per route and segment; target units per target table and segment."""
    if segments < 1:
        raise ValueError("segments must be at least 1")
    units = [
        Unit(SOURCE, r.source, s, segments, (r.name,)) for r in routes for s in range(segments)
    ]
    by_target: dict[str, list[str]] = {}
    for r in routes:
        by_target.setdefault(r.target, []).append(r.name)
    units += [
        Unit(TARGET, table, s, segments, tuple(names))
        for table, names in by_target.items()
        for s in range(segments)
    ]
    return units


@dataclass
class UnitState:
    """Where a unit stands (the checkpoint of the scheduled reconciler)."""

    last_key: Key | None = None
    done: bool = False
    #: a group already derived (by query) before a pause, not to be derived again
    skip_group: AttributeValue | None = None
    tallies: dict[str, Tally] = field(default_factory=dict)

    def tally(self, route: str) -> Tally:
        found = self.tallies.get(route)  # asked for per item: no throwaway Tally per call
        if found is None:
            found = self.tallies[route] = Tally()
        return found

    def to_json(self) -> JsonObject:
        return {
            "last_key": to_lambda_json(self.last_key),
            "done": self.done,
            "skip_group": to_lambda_json(self.skip_group),
            "tallies": {r: t.to_json() for r, t in self.tallies.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> UnitState:
        last_key = data.get("last_key")
        skip = data.get("skip_group")
        return cls(
            last_key=from_lambda_json(last_key) if last_key else None,
            done=bool(data.get("done")),
            skip_group=from_lambda_json(skip) if skip else None,
            tallies={r: Tally.from_json(t) for r, t in (data.get("tallies") or {}).items()},
        )


@dataclass
class UnitOutcome:
    differences: list[Difference]
    requests: RequestCounter
    #: what this run of the unit folded into each route's digests (digest phase)
    digests: dict[str, Digests] = field(default_factory=dict)

    def add_digests(self, more: dict[str, Digests]) -> None:
        for route, d in more.items():
            if route in self.digests:
                self.digests[route].add(d)
            else:
                self.digests[route] = d


def run_units(
    checker: Checker,
    units: Sequence[Unit],
    states: dict[str, UnitState],
    *,
    workers: int | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    merge: Callable[[UnitOutcome], None],
) -> None:
    """Run the units not done yet on a bounded pool, then `merge` what each one did, in unit
    order (on this thread). The first failure stops the others after their page; what the
    units that ended well did is merged before it is raised (their states say done).

    Each unit runs on a copy of its state, kept only when its outcome is merged: a unit that
    fails after some pages has found differences (and folded digests) that are lost with
    it, so its state must stay before those pages, or the scheduled reconciler's next slice
    would resume after them and record parity over a missing item."""
    todo = [u for u in units if not states[u.uid].done]
    if not todo:
        return
    size = max(1, min(workers or len(todo), len(todo), MAX_WORKERS))
    # scanned pages churn through containers (half the CPU otherwise)
    with (
        collector.bulk(),
        BoundedPool[UnitOutcome](size, name="reconcile", stop=should_stop) as pool,
    ):

        def stopping() -> bool:
            return pool.stopping

        work = {u.uid: copy.deepcopy(states[u.uid]) for u in todo}
        futures = [pool.submit(partial(checker.run, u, work[u.uid], stopping)) for u in todo]
        for _ in pool.as_completed():
            pass
    for unit, future in zip(todo, futures, strict=True):
        if future.state is TaskState.SUCCEEDED:
            states[unit.uid] = work[unit.uid]
            merge(future.result())
    if pool.failure is not None:
        raise pool.failure
