"""`rollback`: the decision to put every re-pointed function back, and doing it.

Refused (nothing changes) without a control table, when no cutover is recorded, and once a
source table was decommissioned: rolling back would point functions at a table that no
longer exists (restore it from its backup first). Otherwise `put_back` restores the
journaled environments (repoint.run_rollback), then the journaled SSM parameters, and
deletes the journaled alarm clones (safeguards.undo); a second run finds nothing left and
says so.
"""

from __future__ import annotations

from dataclasses import replace

from dualwrite.aws import tables
from dualwrite.control import QuarantineEntry, iso
from dualwrite.cutover import decommission
from dualwrite.cutover.context import CutoverContext
from dualwrite.cutover.facts import describe_routes
from dualwrite.cutover.journal import APPLIED, CUTOVER, ROLLBACK, Entry, Journal, active_cutovers
from dualwrite.cutover.repoint import RollbackOutcome, run_rollback
from dualwrite.cutover.results import RollbackResult, Status
from dualwrite.cutover.reversal import check_mappings
from dualwrite.cutover.reverse_journal import DirectionSwitch
from dualwrite.cutover.safeguards import Undone, undo
from dualwrite.cutover.switch_direction import before_rollback, carry_back, rollback_switch
from dualwrite.errors import DualwriteError, SafetyGateError
from dualwrite.reverse.direction import Flow


def deleted_tables(ctx: CutoverContext) -> list[str]:
    """Tables decommission deleted that are still gone."""
    if ctx.store is None:
        return []
    return [
        r.table
        for r in decommission.records(ctx.store)
        if tables.describe(ctx.clients.dynamodb, r.table) is None
    ]


def rollback(ctx: CutoverContext) -> RollbackResult:
    journal = ctx.journal
    if journal is None:
        return refused(
            "nothing to roll back: there is no control table, so no cutover was recorded"
        )
    check_mappings(ctx.migration, describe_routes(ctx.migration, ctx.clients))
    deleted = deleted_tables(ctx)
    if deleted:
        return refused(
            f"rollback refused: {', '.join(deleted)} were decommissioned (deleted after a "
            "backup); rolling back would point functions at tables that no longer exist. "
            "Restore them from their backups first (see the DECOMMISSION records in the "
            "control table)"
        )
    try:
        outcome = put_back(ctx, journal)
    except SafetyGateError as exc:
        return refused(str(exc))
    except DualwriteError as exc:  # a function could not be restored: say so, as JSON too
        return RollbackResult(Status.FAILED, failure=str(exc))
    pending = outcome.switch is not None and any(r.pending for r in outcome.switch.routes)
    failed = bool(outcome.safeguards.failed) or pending
    notes = tuple(
        f"journal entry {sk} could not be read (skipped): {why}" for sk, why in journal.unreadable
    )
    if any(e.reverse is not None and not e.reverse.reverse for e in outcome.undone):
        notes += (
            "reverse replication was off for this cutover (cutover.reverse: false): the writes "
            "made to the new tables since are not in the old tables",
        )
    return RollbackResult(
        Status.FAILED if failed else Status.DONE,
        replace(outcome, notes=outcome.notes + notes),
        unrepresentable=unrepresentable_since(ctx, journal, outcome),
        draining=draining(ctx),
    )


def draining(ctx: CutoverContext) -> tuple[str, ...]:
    """Routes forward again whose reverse direction still drains."""
    store = ctx.store
    if store is None:
        return ()
    states = {r.name: store.direction(r.name) for r in ctx.migration.routes}
    return tuple(
        name
        for name, state in states.items()
        if state.direction is Flow.FORWARD and not state.old_drained
    )


def unrepresentable_since(
    ctx: CutoverContext, journal: Journal, outcome: RollbackOutcome
) -> tuple[QuarantineEntry, ...]:
    """Quarantined target changes the old schema cannot hold, since the cutover(s) rolled
    back (DESIGN.md section 8: rollback names them)."""
    if ctx.store is None:
        return ()
    undone = (
        outcome.undone
        or tuple(e for e in journal.entries() if e.action == CUTOVER and e.rolled_back_by)[-1:]
    )
    if not undone:
        return ()
    since = iso(min(e.at for e in undone))
    return tuple(
        q
        for q in ctx.store.quarantined()
        if q.reason.startswith("unrepresentable") and (q.at or "") >= since
    )


def put_back(
    ctx: CutoverContext, journal: Journal, only: frozenset[str] | None = None
) -> RollbackOutcome:
    """Undo every cutover in effect: the one way back, for `rollback` and for a cutover whose
    post-switch check failed. Functions first, then the SSM parameters and alarm clones the
    cutovers journaled (those too when a function could not be restored: the emergency path
    puts back all it can); the rollback entry records what was restored. The cutovers are
    marked rolled back only once all of it is done (repoint.run_rollback), so a re-run
    retries what a kill or a failure left."""

    def undo_rest(active: list[Entry]) -> Undone:
        parameters = [p for e in active for p in e.parameters]
        clones = [c for e in active for c in e.alarm_clones]
        if not (parameters or clones):
            return Undone()
        return undo(ctx.clients, parameters, clones)

    def before(rollback: Entry) -> None:
        before_rollback(ctx, journal, rollback)

    if only is not None and any(e.sk not in only for e in active_cutovers(journal.entries())):
        # a later cutover (a straggler re-pointed days after the first) failed its checks:
        # put back just its changes. The earlier cutover stays in effect, and so does its
        # direction (before, every active cutover was undone, the healthy first one too)
        kept = DirectionSwitch(
            reverse=False,
            overlap_s=0.0,
            note="a later cutover's changes only: the earlier cutover and its direction stay",
        )
        return run_rollback(ctx.functions, journal, undo_rest, only=only, reverse=kept)
    outcome = run_rollback(ctx.functions, journal, undo_rest, before)
    if ctx.store is None:
        return outcome
    # then the direction (section 8): FORWARD from the rollback's T, journaled; a re-run
    # of a rollback killed before it finishes here
    target = outcome.entry or latest_rollback(journal.entries())
    if target is None or target.status != APPLIED:
        return outcome
    if target.reverse is not None and target.reverse.complete:
        return replace(outcome, switch=target.reverse) if outcome.entry else outcome
    entry, notes = switch_back(ctx, journal, target)
    return replace(
        outcome, entry=outcome.entry and entry, switch=entry.reverse, notes=outcome.notes + notes
    )


def switch_back(
    ctx: CutoverContext, journal: Journal, target: Entry
) -> tuple[Entry, tuple[str, ...]]:
    """A closed rollback's switch back to FORWARD, made or finished: the writes of a cutover
    whose own switch never finished carried back first. Returns the entry and notes."""
    notes = carry_back(ctx, journal, target)
    return rollback_switch(ctx, journal, target), notes


def owed_switch_back(entries: list[Entry]) -> Entry | None:
    """The latest rollback, when it is closed but its switch back to FORWARD is not complete
    (a route was left pending, or a kill came first): a cutover must not switch over it."""
    target = latest_rollback(entries)
    if target is None or target.status != APPLIED:
        return None
    if target.reverse is not None and target.reverse.complete:
        return None
    if any(e.action == CUTOVER and e.at > target.at for e in entries):
        return None  # a later cutover took over (its own switch says where it stands)
    return target


def latest_rollback(entries: list[Entry]) -> Entry | None:
    rollbacks = [e for e in entries if e.action == ROLLBACK]
    return rollbacks[-1] if rollbacks else None


def refused(reason: str) -> RollbackResult:
    return RollbackResult(Status.REFUSED, refusal=reason)
