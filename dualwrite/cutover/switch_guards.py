"""The safeguards (DESIGN.md section 10) as steps of the cutover sequence (switch.py):

- before anything changes, also for a dry run: `precheck_plan` (bad smoke tests and watched
  alarms that do not exist raise ConfigError, exit 2) and `alarm_checks`, the gate checks
  of the watched alarms (one already in ALARM refuses, exit 4; --force goes past it);
- after the switch: `guard_switch` re-points the SSM parameters, clones the alarms, runs the
  smoke tests and the watch, journaling each parameter and clone in the cutover's entry as
  soon as it is made, so that rollback.put_back finds everything to put back;
  `after_checks` turns the outcome into Checks (a failing one rolls everything back).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from dualwrite.cutover.alarms import AlarmClone
from dualwrite.cutover.context import CutoverContext
from dualwrite.cutover.functions import TablePair
from dualwrite.cutover.gate import Check
from dualwrite.cutover.journal import Entry, Journal
from dualwrite.cutover.safeguards import AfterSwitch, Journaling, PreCheck, after_switch, precheck
from dualwrite.cutover.smoke import SmokeResult
from dualwrite.cutover.ssm import ParameterChange
from dualwrite.cutover.watch import ALARM_STATE, WatchProgress

POLL_MAX_S = 30.0  # CloudWatch keeps Lambda metrics per minute: more often tells nothing new
POLLS = 20  # a short watch is still checked this many times (the progress bar moves)


@dataclass(frozen=True)
class Observer:
    """What the caller (the CLI) hears while the checks after the switch run."""

    smoke: Callable[[SmokeResult], None] = lambda _r: None
    progress: Callable[[WatchProgress], None] = lambda _p: None


def poll_seconds(watch_seconds: float) -> float:
    return min(POLL_MAX_S, max(1.0, watch_seconds / POLLS))


def precheck_plan(
    ctx: CutoverContext, pairs: list[TablePair], repointed: frozenset[str]
) -> PreCheck:
    return precheck(ctx.migration.cutover, ctx.clients, pairs, repointed)


def alarm_checks(pre: PreCheck) -> tuple[Check, ...]:
    """One gate check per watched alarm: out of ALARM passes, in ALARM refuses."""
    return tuple(
        Check(
            "watch alarm",
            f"alarm {name}",
            state != ALARM_STATE,
            "already in ALARM (watched by cutover.watch_alarms)"
            if state == ALARM_STATE
            else f"state {state}",
        )
        for name, state in sorted(pre.alarm_states.items())
    )


def now_of(ctx: CutoverContext) -> datetime:
    return datetime.fromtimestamp(ctx.clock(), UTC)


def guard_switch(
    ctx: CutoverContext,
    journal: Journal,
    entry: Entry,
    pairs: list[TablePair],
    pre: PreCheck,
    repointed: frozenset[str],
    switched_at: datetime,
    observer: Observer,
) -> tuple[AfterSwitch, Entry]:
    """after_switch with the journal listening; returns the outcome and the entry as last
    saved (parameters and clones in it)."""
    current = entry

    # a re-run (checks resumed after a kill) may journal the same change again
    def parameter(change: ParameterChange) -> None:
        nonlocal current
        if change not in current.parameters:
            current = journal.save(replace(current, parameters=(*current.parameters, change)))

    def clone(made: AlarmClone) -> None:
        nonlocal current
        if all(c.name != made.name for c in current.alarm_clones):
            current = journal.save(replace(current, alarm_clones=(*current.alarm_clones, made)))

    config = ctx.migration.cutover
    after = after_switch(
        config,
        ctx.clients,
        pairs,
        pre.parameters,
        repointed,
        switched_at,
        now=lambda: now_of(ctx),
        sleep=ctx.sleep,
        journal=Journaling(
            parameter=parameter, clone=clone, smoke=observer.smoke, progress=observer.progress
        ),
        poll_seconds=poll_seconds(config.watch_seconds),
    )
    failure = after.failure
    if failure is not None:
        current = journal.save(replace(current, error=failure))
    return after, current


def after_checks(after: AfterSwitch) -> tuple[Check, ...]:
    """The outcome as post-switch Checks: each smoke test, the watch, a step that failed."""
    checks = [Check("smoke test", s.function, s.passed, s.reason or "passed") for s in after.smoke]
    if after.error is not None:
        checks.append(Check("post-switch", "safeguards", False, after.error))
    if after.watch is not None:
        w = after.watch
        detail = w.reason if not w.ok else f"{w.watched_seconds:g} s, {w.checks} check(s)"
        checks.append(Check("watch", "watch", w.ok, detail))
    return tuple(checks)
