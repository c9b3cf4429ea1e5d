"""The switch of direction that a cutover or rollback makes (DESIGN.md section 8).

A switch starts at T, the `at` of its journal entry, written before any function is
re-pointed; the functions are re-pointed by E (the entry's `repointed_at`; after a kill,
the time of the re-run: a longer drain is safe). Every route's Direction is then saved with
switched_at = T and overlap_s = (E - T) + O, O being cutover.overlap_seconds or the longest
Timeout of the re-pointed functions: the old direction drains every change made before
E + O, the new one applies from T minus the margin. Each route is journaled as saved (a
re-run skips it; `switch` is idempotent anyway), and `drain_grace_s` is
cutover.max_lag_seconds (the Lambda's drain rule).

The cutover gate refuses a route whose mapping has no inverse unless cutover.reverse is
false; with it false no direction changes, and the gate and the journal say that a rollback
loses the writes made to the new tables.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace

from dualwrite.config import Migration
from dualwrite.control import ControlStore
from dualwrite.cutover.facts import RouteTables
from dualwrite.cutover.functions import LambdaFunctions
from dualwrite.cutover.gate import Check
from dualwrite.cutover.reverse_journal import ROLLBACK_LOSES_WRITES, DirectionSwitch, RouteSwitch
from dualwrite.errors import DualwriteError, NotFoundError
from dualwrite.mapping import checked_mapping
from dualwrite.mapping.base import Mapping as RouteMapping
from dualwrite.reverse.direction import Flow, SwitchPendingError, overlap_seconds, switch
from dualwrite.reverse.plan import planner_for


def route_mapping(migration: Migration, r: RouteTables) -> RouteMapping | None:
    """The route's mapping on its source's key schema (None: the source is gone)."""
    route = next(x for x in migration.routes if x.name == r.route)
    if r.source_table is None:
        return None
    target_key = r.target_table.key if r.target_table is not None else None
    return checked_mapping(r.route, route.mapping, r.source_table.key, target_key)


def check_mappings(migration: Migration, routes: Sequence[RouteTables]) -> None:
    """ConfigError (exit 2, before anything changes) for a route whose mapping cannot work
    on its tables: a cutover or rollback run with a mistyped migration file would switch
    reverse replication onto a mapping every other command refuses."""
    for r in routes:
        route_mapping(migration, r)


def has_inverse(migration: Migration, r: RouteTables) -> bool | None:
    mapping = route_mapping(migration, r)
    return None if mapping is None else planner_for(mapping) is not None


def inverse_checks(migration: Migration, routes: Sequence[RouteTables]) -> tuple[Check, ...]:
    """Gate checks: reverse replication can run on every route (or is off, and says so)."""
    if not migration.cutover.reverse:
        return (Check("reverse replication", "cutover.reverse", True, ROLLBACK_LOSES_WRITES),)
    out = []
    for r in routes:
        inverse = has_inverse(migration, r)
        if inverse is False:
            out.append(
                Check(
                    "reverse replication",
                    r.route,
                    False,
                    f"mapping {r.route} has no inverse, so a rollback would lose the writes "
                    "made to the new tables: give the mapping an `inverse`, or set "
                    "cutover.reverse: false to cut over without reverse replication",
                )
            )
        elif inverse:
            out.append(Check("reverse replication", r.route, True, "the mapping has an inverse"))
    return tuple(out)


def drain_checks(pending: dict[str, str], routes: Sequence[RouteTables]) -> tuple[Check, ...]:
    """Gate checks: the previous switch of each route has drained."""
    return tuple(
        Check("direction", r.route, r.route not in pending, pending.get(r.route, "drained"))
        for r in routes
    )


def function_timeouts(functions: LambdaFunctions, names: Iterable[str]) -> list[float]:
    out = []
    for name in sorted(set(names)):
        try:
            timeout = functions.config(name).get("Timeout")
        except NotFoundError:  # deleted since: no invocation of it can still be running
            continue
        if isinstance(timeout, int | float):
            out.append(float(timeout))
    return out


def plan_switch(
    migration: Migration,
    to: Flow,
    at: float,
    repointed_at: float,
    timeouts: Iterable[float],
    routes: Iterable[str],
) -> DirectionSwitch:
    """The switch to journal: T = `at`, E = `repointed_at` (never before T)."""
    o = overlap_seconds(migration.cutover.overlap_seconds, timeouts)
    if to is Flow.REVERSE and not migration.cutover.reverse:
        return DirectionSwitch(reverse=False, overlap_s=o, note=ROLLBACK_LOSES_WRITES)
    overlap = max(0.0, repointed_at - at) + o
    return DirectionSwitch(
        reverse=True,
        overlap_s=o,
        routes=tuple(RouteSwitch(r, to.value, at, overlap) for r in routes),
    )


def save_directions(
    store: ControlStore,
    plan: DirectionSwitch,
    grace_s: float,
    journal: Callable[[DirectionSwitch], DirectionSwitch],
    why: Mapping[str, str] | None = None,
    next_at: float | None = None,
) -> DirectionSwitch:
    """Save every route's direction not yet saved; a route whose previous switch still
    drains stays pending (journaled with the reason, `why` when known; a re-run saves it).
    `next_at`: a rollback's T already under way (saved with it: Direction.next_at)."""
    for rs in plan.routes:
        if rs.saved:
            continue
        to = Flow(rs.direction)
        for _ in range(5):  # optimistic: the replicator may save `drained` in between
            state = store.direction(rs.route)
            try:
                new = switch(state, to, rs.switched_at, rs.overlap_s, drain_grace_s=grace_s)
                if next_at is not None:
                    new = replace(new, next_at=next_at)
            except SwitchPendingError as exc:
                reason = (why or {}).get(rs.route) or str(exc)
                plan = journal(plan.with_route(replace(rs, pending=reason)))
                break
            if new == state or store.save_direction(rs.route, new, expected=state):
                plan = journal(plan.with_route(replace(rs, saved=True, pending=None)))
                break
        else:
            raise DualwriteError(
                f"route {rs.route}: its direction kept changing while being saved: run again"
            )
    return plan
