"""The direction steps of `cutover` and `rollback` (DESIGN.md section 8; reversal.py has
the rules): after a cutover's checks passed, REVERSE on every route and the reverse event
source mappings enabled; after a rollback re-pointed the functions, FORWARD on every route
(once the cutover's own drain is over). Everything is journaled in the entry's "reverse"
as it is done, so a re-run after a kill finishes exactly what is left, with the journaled T.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from dualwrite.control import ControlStore, iso
from dualwrite.cutover.context import CutoverContext
from dualwrite.cutover.drain import settle_drains
from dualwrite.cutover.facts import RouteTables, describe_routes, source_streams, target_streams
from dualwrite.cutover.journal import CUTOVER, ROLLBACK, Entry, Journal, active_cutovers
from dualwrite.cutover.reversal import function_timeouts, plan_switch, save_directions
from dualwrite.cutover.reverse_journal import DirectionSwitch
from dualwrite.cutover.reverse_mappings import enable_reverse
from dualwrite.errors import DualwriteError
from dualwrite.reverse.direction import DEFAULT_MARGIN_S, Direction, Flow


class _Journaling:
    """Saves the entry each time its switch changes; `entry` is the latest saved."""

    def __init__(self, journal: Journal, entry: Entry) -> None:
        self.journal, self.entry = journal, entry

    def __call__(self, switch: DirectionSwitch) -> DirectionSwitch:
        self.entry = self.journal.save(replace(self.entry, reverse=switch))
        return switch


def reverse_since(entries: Sequence[Entry]) -> float | None:
    """Where the reverse direction of the latest cutover started (T minus the margin)."""
    cutovers = [e for e in entries if e.action == CUTOVER and e.reverse and e.reverse.routes]
    if not cutovers:
        return None
    switch = cutovers[-1].reverse
    assert switch is not None
    return min(r.switched_at for r in switch.routes) - DEFAULT_MARGIN_S


def cutover_switch(
    ctx: CutoverContext,
    journal: Journal,
    entry: Entry,
    routes: Sequence[RouteTables],
    next_at: float | None = None,
) -> Entry:
    """REVERSE on every route from T (the earliest cutover still in effect: a killed one
    re-pointed functions from its own T), then the reverse mappings; returns the entry.
    `next_at`: the T of a rollback that already put the functions back (carry_back)."""
    store = ctx.store
    assert store is not None
    saving = _Journaling(journal, entry)
    plan = entry.reverse
    if plan is None:
        active = active_cutovers(journal.entries()) or [entry]
        applied = {f.name for e in active for f in e.functions if f.applied}
        plan = saving(
            plan_switch(
                ctx.migration,
                Flow.REVERSE,
                min(e.at for e in active),
                entry.repointed_at if entry.repointed_at is not None else ctx.clock(),
                function_timeouts(ctx.functions, applied),
                [r.route for r in routes],
            )
        )
    if not plan.reverse:
        return saving.entry
    plan = save_directions(
        store, plan, ctx.migration.cutover.max_lag_seconds, saving, next_at=next_at
    )
    pending = [f"{r.route}: {r.pending}" for r in plan.routes if r.pending]
    if pending:
        raise DualwriteError(f"reverse replication could not be switched on: {'; '.join(pending)}")
    starts = min(r.switched_at for r in plan.routes) - store.direction(routes[0].route).margin_s
    enable_reverse(
        ctx.clients.lambda_,
        plan,
        starts,
        source_streams(routes),
        target_streams(routes),
        saving,
    )
    return saving.entry


def rollback_start(entries: Sequence[Entry], rollback: Entry) -> float:
    """T of a rollback: its first attempt's (a killed attempt re-pointed functions from then)."""
    undoes = set(rollback.undoes)
    attempts = [e.at for e in entries if e.action == ROLLBACK and undoes & set(e.undoes)]
    return min([rollback.at, *attempts])


def _mark(store: ControlStore, route: str, edit: Callable[[Direction], Direction | None]) -> None:
    """Save `edit(state)` on the route's direction; None: leave it. Optimistic: the
    replicator may save `drained` in between, and then it is read and edited again."""
    for _ in range(5):
        state = store.direction(route)
        new = edit(state)
        if new is None or store.save_direction(route, new, expected=state):
            return


def before_rollback(ctx: CutoverContext, journal: Journal, rollback: Entry) -> None:
    """Once a rollback is journaled and before it puts any function back: every REVERSE
    route records the rollback's T as the switch back being made (Direction.next_at), so
    that the application's writes to the old tables, once it is re-pointed back, wait for
    forward replication instead of being taken for foreign writes. Never waits."""
    store = ctx.store
    if store is None:
        return
    at = rollback_start(journal.entries(), rollback)

    def edit(state: Direction) -> Direction | None:
        if state.direction is not Flow.REVERSE or state.next_at is not None:
            return None
        return replace(state, next_at=at)

    for route in ctx.migration.routes:
        _mark(store, route.name, edit)


def before_cutover(ctx: CutoverContext, routes: Sequence[str]) -> float | None:
    """Before a cutover re-points any function: every FORWARD route switched before (after
    a rollback its target stream is still read, and reverse's event source mapping stays
    on) records the cutover's T as the switch being made (Direction.next_at). The
    application's writes to the new tables while the cutover's checks run then wait for
    the switch to REVERSE, which applies them, instead of being taken for the old
    direction's and acknowledged. The switch clears it; so does cutover_not_made. Returns
    the T recorded (None: nothing to record)."""
    store = ctx.store
    if store is None or not ctx.migration.cutover.reverse:
        return None
    at = store.now()  # the journal's clock: the cutover's entry is made after this

    def edit(state: Direction) -> Direction | None:
        if state.direction is not Flow.FORWARD or state.switched_at is None:
            return None
        if state.next_at is not None:  # a killed cutover's, earlier: it covers more
            return None
        return replace(state, next_at=at)

    for route in routes:
        _mark(store, route, edit)
    return at


def forget_unjournaled(ctx: CutoverContext, entries: Sequence[Entry]) -> None:
    """A cutover killed after before_cutover marked the routes and before it journaled its
    entry re-pointed nothing: its mark goes (else the target-stream records it holds would
    wait for a switch that never comes). A mark with a cutover journaled at or after it
    stays: that cutover may have re-pointed functions."""
    store = ctx.store
    if store is None:
        return
    journaled = [e.at for e in entries if e.action == CUTOVER]

    def edit(state: Direction) -> Direction | None:
        if state.direction is not Flow.FORWARD or state.next_at is None:
            return None
        if any(at >= state.next_at for at in journaled):
            return None
        return replace(state, next_at=None)

    for route in ctx.migration.routes:
        _mark(store, route.name, edit)


def cutover_not_made(ctx: CutoverContext, routes: Sequence[str], at: float | None) -> None:
    """A cutover that re-pointed nothing in the end (a function update failed and the rest
    were put back) takes back what before_cutover recorded: forward stays as it was."""
    store = ctx.store
    if store is None or at is None:
        return

    def edit(state: Direction) -> Direction | None:
        # only its own mark: an earlier one is a killed cutover's, which may have
        # re-pointed functions that still write the new tables
        if state.direction is not Flow.FORWARD or state.next_at != at:
            return None
        return replace(state, next_at=None)

    for route in routes:
        _mark(store, route, edit)


def carry_back(ctx: CutoverContext, journal: Journal, rollback: Entry) -> tuple[str, ...]:
    """After a rollback put the functions back and before it switches forward: a cutover it
    undid whose own switch to REVERSE never finished (killed, or its checks after the switch
    failed) had re-pointed functions from its T, and the application wrote the new tables
    since. That switch is finished now, with the cutover's journaled T and the rollback's T
    as the switch back under way, so the rollback's drain carries those writes back to the
    old tables. Returns notes: what could not be carried back, and why."""
    store = ctx.store
    if store is None or not ctx.migration.cutover.reverse:
        return ()
    entries = journal.entries()
    undone = [e for e in entries if e.sk in set(rollback.undoes)]
    todo = [
        cut
        for cut in undone
        if any(f.applied for f in cut.functions)  # else nothing reached the new tables
        and not (cut.reverse is not None and cut.reverse.complete)
    ]
    if not todo:
        return ()
    routes = describe_routes(ctx.migration, ctx.clients)
    at = rollback_start(entries, rollback)
    notes = []
    for cut in todo:
        try:
            # an earlier rollback's drain first (bounded), as the cutover's gate would have
            settle_drains(ctx, routes, reverse_since=reverse_since(entries), wait=True)
            cutover_switch(ctx, journal, cut, routes, next_at=at)
        except DualwriteError as exc:
            notes.append(
                f"the writes made to the new tables since the cutover at {iso(cut.at)} could "
                f"not be carried back to the old tables: {exc} (run dualwrite rollback again)"
            )
    return tuple(notes)


def rollback_switch(ctx: CutoverContext, journal: Journal, rollback: Entry) -> Entry:
    """FORWARD on every route, after the rollback re-pointed the functions: waits (bounded)
    for the cutover's drain, else leaves the route pending (journaled: run it again)."""
    store = ctx.store
    assert store is not None
    saving = _Journaling(journal, rollback)
    entries = journal.entries()
    plan = rollback.reverse
    if plan is None:
        undone = [e for e in entries if e.sk in set(rollback.undoes)]
        functions = {f.name for e in undone for f in e.functions if f.applied}
        at = rollback_start(entries, rollback)
        plan = saving(
            plan_switch(
                ctx.migration,
                Flow.FORWARD,
                at,
                ctx.clock(),
                function_timeouts(ctx.functions, functions),
                [r.name for r in ctx.migration.routes],
            )
        )
    todo = {r.route for r in plan.routes if not r.saved}
    if not todo:
        return saving.entry
    routes = [r for r in describe_routes(ctx.migration, ctx.clients) if r.route in todo]
    why = settle_drains(ctx, routes, reverse_since=reverse_since(entries), wait=True)
    save_directions(store, plan, ctx.migration.cutover.max_lag_seconds, saving, why)
    return saving.entry
