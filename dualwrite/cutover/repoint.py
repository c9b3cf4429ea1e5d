"""Cut over and roll back: apply planned environment changes with the journal around them.

Cutover writes its journal entry before touching any function, records each function as it
is changed, and is all or nothing (functions.apply_all). Rollback restores every function of
every cutover still in effect, newest first, to exactly the environment journaled before it
changed; it carries on past a failing function (it is the emergency path), reports what it
could not restore, and can simply be run again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from dualwrite.cutover.functions import (
    Applied,
    ApplyError,
    Env,
    FunctionChange,
    LambdaFunctions,
    Renames,
    apply_all,
    repoint,
)
from dualwrite.cutover.journal import (
    APPLIED,
    APPLYING,
    CUTOVER,
    FAILED,
    REVERTED,
    ROLLBACK,
    Entry,
    FunctionEntry,
    Journal,
    active_cutovers,
)
from dualwrite.cutover.reverse_journal import DirectionSwitch
from dualwrite.cutover.safeguards import Undone
from dualwrite.errors import DualwriteError, NotFoundError, SafetyGateError
from dualwrite.jsondoc import JsonObject


def changed_variables(before: Env, after: Env) -> tuple[str, ...]:
    return tuple(sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k)))


def run_cutover(
    functions: LambdaFunctions,
    journal: Journal,
    plans: list[FunctionChange],
    renames: Renames,
    *,
    reason: str | None = None,
    forced: bool = False,
    gate_reasons: tuple[str, ...] = (),
) -> Entry:
    """Re-point the planned functions; returns the closed journal entry."""
    entry = journal.begin(
        CUTOVER,
        functions=tuple(
            FunctionEntry(p.function, p.previous, p.updated, tuple(c.variable for c in p.changes))
            for p in plans
        ),
        reason=reason,
        forced=forced,
        gate_reasons=gate_reasons,
    )

    def record(applied: Applied) -> None:
        nonlocal entry
        before, after = dict(applied.previous), dict(applied.updated)
        entry = journal.save(
            entry.with_function(
                FunctionEntry(
                    applied.function,
                    before,
                    after,
                    changed_variables(before, after),
                    applied=applied.changed,
                )
            )
        )

    def transform(env: Env) -> Env:
        return repoint(env, renames)

    try:
        apply_all(functions, [(p.function, transform) for p in plans], on_applied=record)
    except ApplyError as exc:
        journal.save(replace(entry, status=FAILED if exc.stuck else REVERTED, error=str(exc)))
        raise
    return journal.save(replace(entry, status=APPLIED, repointed_at=journal.store.now()))


def close_crashed(functions: LambdaFunctions, journal: Journal, entry: Entry) -> Entry:
    """A cutover killed once every function it planned had been re-pointed (a re-run finds
    nothing left to re-point), before its entry was closed: a function whose environment
    holds its planned values was re-pointed, journaled or not (the kill may have come right
    after the update). Closed as `applied`, re-pointed by now (E after a kill is the re-run's
    time: a longer drain is safe), so that its checks and its switch of direction run."""
    if entry.action != CUTOVER or entry.status != APPLYING:
        return entry
    found = with_repointed(functions, entry)
    return journal.save(replace(found, status=APPLIED, repointed_at=journal.store.now()))


def with_repointed(functions: LambdaFunctions, entry: Entry) -> Entry:
    """A crashed (`applying`) cutover's functions marked applied where the environment holds
    the planned values: the journal may lack the last update (killed right after it)."""
    done = []
    for fe in entry.functions:
        try:
            current = functions.get(fe.name).variables
        except DualwriteError:  # gone, or unreadable: the journal's word stands
            done.append(fe)
            continue
        repointed = fe.applied or all(current.get(v) == fe.updated.get(v) for v in fe.variables)
        done.append(replace(fe, applied=repointed))
    return replace(entry, functions=tuple(done))


def unclosed_rollback(entries: list[Entry]) -> Entry | None:
    """The latest rollback, when a kill came after it marked cutovers rolled back and before
    it closed its own entry (still `applying`): its switch back to forward is still owed."""
    rollbacks = [e for e in entries if e.action == ROLLBACK]
    if not rollbacks or rollbacks[-1].status != APPLYING:
        return None
    latest = rollbacks[-1]
    return latest if any(e.rolled_back_by == latest.sk for e in entries) else None


@dataclass(frozen=True)
class Restored:
    """One function put back, and the variables that changed doing it."""

    function: str
    variables: tuple[str, ...]

    def to_json(self) -> JsonObject:
        return {"function": self.function, "variables": list(self.variables)}


@dataclass(frozen=True)
class RollbackOutcome:
    undone: tuple[Entry, ...] = ()
    restored: tuple[Restored, ...] = ()
    notes: tuple[str, ...] = ()
    already: bool = False
    entry: Entry | None = None
    #: the SSM parameters restored and the alarm clones deleted (rollback.put_back)
    safeguards: Undone = field(default_factory=Undone)
    #: the switch back to forward (section 8), as journaled (None: no control table, or
    #: nothing was left to switch)
    switch: DirectionSwitch | None = None


def _restore(
    fe: FunctionEntry, crashed: bool, restored: dict[str, Restored], notes: dict[str, str]
) -> Callable[[Env], Env]:
    """The transform that puts `fe` back. Keyed by function: set_environment runs it again
    on a retried update, and a function was listed twice in `restored`."""
    previous = dict(fe.previous)
    updated = dict(fe.updated)

    def transform(current: Env) -> Env:
        # a crashed cutover may not have journaled its last change: the environment tells
        if not fe.applied and not (crashed and current == updated):
            return current
        drift = [k for k in changed_variables(updated, current) if k not in fe.variables]
        if drift:
            notes[fe.name] = (
                f"function {fe.name}: {', '.join(drift)} changed since the cutover and "
                "go back to their journaled values too"
            )
        if current != previous:
            restored[fe.name] = Restored(fe.name, changed_variables(current, previous))
        return previous

    return transform


def run_rollback(
    functions: LambdaFunctions,
    journal: Journal,
    undo: Callable[[list[Entry]], Undone] = lambda _active: Undone(),
    before: Callable[[Entry], None] = lambda _entry: None,
    only: frozenset[str] | None = None,
    reverse: DirectionSwitch | None = None,
) -> RollbackOutcome:
    """Restore the functions, then `undo` the rest (SSM parameters, clones) of the active
    cutovers; only then are they marked rolled back and the rollback entry closed, so a
    kill or a failure before leaves them active and a re-run retries everything (each
    step is harmless to repeat). Nothing is marked while `undo` reports a failure.
    `before` runs once the rollback is journaled (its T) and before any function is
    restored (it must not wait, nor stop the rollback). `only`: undo just these cutovers
    (the journal entries' sk), not every active one. `reverse`: the rollback's direction
    switch when it is known from the start (a partial put-back's "no switch"), journaled
    with the entry itself, so that no kill can leave it closed without one."""
    entries = journal.entries()
    active = [e for e in active_cutovers(entries) if only is None or e.sk in only]
    stale = unclosed_rollback(entries) if only is None else None
    if not active and stale is not None:  # killed once it had marked them: close it
        marked = tuple(e for e in entries if e.rolled_back_by == stale.sk)
        return RollbackOutcome(undone=marked, entry=journal.save(replace(stale, status=APPLIED)))
    if not active:
        if any(e.action == CUTOVER and e.rolled_back_by for e in entries):
            return RollbackOutcome(already=True)
        raise SafetyGateError("nothing to roll back: no cutover is recorded in the journal")
    restored: dict[str, Restored] = {}
    notes: dict[str, str] = {}
    # which functions a crashed cutover re-pointed, journaled before they are put back: the
    # switch back carries its new-table writes home and waits for those functions' Timeout
    active = [
        journal.save(with_repointed(functions, e)) if e.status == APPLYING else e for e in active
    ]
    # a killed rollback that marked some of them: this one finishes its switch back too
    half_done = [e.sk for e in entries if stale is not None and e.rolled_back_by == stale.sk]
    rollback = journal.begin(
        ROLLBACK, undoes=tuple(e.sk for e in active) + tuple(half_done), reverse=reverse
    )
    before(rollback)
    failures: list[str] = []
    put_back: list[Entry] = []
    try:
        for cut in reversed(active):
            failed_here = False
            for fe in cut.functions:
                try:
                    functions.set_environment(
                        fe.name,
                        _restore(fe, cut.status == APPLYING, restored, notes),
                    )
                except NotFoundError:
                    # deleted since the cutover: nothing of it can write the new tables, and
                    # it will not come back, so it must not stop the rollback for good
                    notes[fe.name] = f"function {fe.name} no longer exists: nothing to restore"
                except Exception as exc:  # the emergency path carries on with the others
                    failures.append(f"{fe.name} ({exc})")
                    failed_here = True
            if not failed_here:
                put_back.append(cut)
    finally:  # the parameters and clones go back even when a function could not
        undone = undo(active)
    rollback = replace(rollback, parameters=undone.parameters, alarm_clones=undone.clones)
    if not undone.failed:
        for cut in put_back:
            journal.save(replace(cut, rolled_back_by=rollback.sk, rolled_back_at=rollback.at))
    if failures:
        journal.save(replace(rollback, status=FAILED, error="; ".join(failures)))
        raise DualwriteError(
            f"rollback incomplete, could not restore: {'; '.join(failures)} "
            "(run dualwrite rollback again)"
        )
    error = "; ".join(f"could not put back {f}" for f in undone.failed) or None
    return RollbackOutcome(
        undone=tuple(active),
        restored=tuple(restored.values()),
        notes=tuple(notes.values()) + undone.notes,
        entry=journal.save(
            replace(rollback, status=FAILED if undone.failed else APPLIED, error=error)
        ),
        safeguards=undone,
    )
