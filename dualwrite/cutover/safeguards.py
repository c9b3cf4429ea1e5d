"""Everything cutover does around the switch besides re-pointing functions (DESIGN.md
section 10), as three calls for the cutover flow:

1. `precheck` before anything changes: bad smoke tests and watched alarms that do not exist
   raise ConfigError (exit 2); watched alarms already in ALARM come back as refusal reasons
   (the gate refuses, exit 4); the SSM parameters to re-point come back for the dry run.
2. `after_switch` once the functions are re-pointed: SSM parameters re-pointed, alarms on
   old tables cloned, smoke tests run, then the watch. Each change is handed to a callback
   as soon as it is made (the journal), and `AfterSwitch.failure` says why to roll back.
3. `undo` on any failure (and from rollback): parameters restored, clones deleted.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from dualwrite.aws.clients import Clients
from dualwrite.config import Cutover
from dualwrite.cutover.alarms import AlarmClone, AlarmClones
from dualwrite.cutover.functions import Renames, TablePair
from dualwrite.cutover.smoke import SmokeResult, SmokeRunner, check_smoke_tests
from dualwrite.cutover.ssm import ParameterChange, SsmParameters
from dualwrite.cutover.watch import (
    CloudWatchProbe,
    WatchPlan,
    WatchProgress,
    WatchResult,
    check_watch_alarms,
    firing_alarms,
    run_watch,
)
from dualwrite.errors import AwsError, DualwriteError
from dualwrite.jsondoc import JsonObject

# --- before anything changes --------------------------------------------------------------


@dataclass(frozen=True)
class PreCheck:
    refusals: tuple[str, ...]  # gate reasons: watched alarms already in ALARM
    parameters: tuple[ParameterChange, ...]  # what after_switch will re-point
    alarm_states: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> JsonObject:
        return {
            "refusals": list(self.refusals),
            "parameters": [p.to_json() for p in self.parameters],
            "alarm_states": dict(self.alarm_states),
        }


def precheck(
    cutover: Cutover, clients: Clients, pairs: Iterable[TablePair], repointed: Collection[str]
) -> PreCheck:
    """Raises ConfigError for bad configuration; returns refusals and the SSM plan."""
    runner = SmokeRunner(clients.lambda_)
    check_smoke_tests(cutover.smoke_tests, repointed, runner.exists, runner.alias_runs_latest)
    states: dict[str, str] = {}
    if cutover.watch_alarms:
        states = CloudWatchProbe(clients.cloudwatch).alarm_states(cutover.watch_alarms)
        check_watch_alarms(cutover.watch_alarms, states)
    refusals = list(firing_alarms(states))
    try:
        parameters = SsmParameters(clients.client("ssm")).plan(Renames.of(pairs))
    except AwsError as exc:  # a refusal, not a crash: a dry run still reports the rest
        parameters = []
        refusals.append(
            f"SSM parameters could not be read ({exc}): one naming an old table would not be "
            "re-pointed; allow ssm:DescribeParameters and ssm:GetParameters"
        )
    return PreCheck(tuple(refusals), tuple(parameters), states)


# --- after the switch ---------------------------------------------------------------------


@dataclass(frozen=True)
class AfterSwitch:
    parameters: tuple[ParameterChange, ...] = ()
    clones: tuple[AlarmClone, ...] = ()
    smoke: tuple[SmokeResult, ...] = ()
    watch: WatchResult | None = None
    notes: tuple[str, ...] = ()
    error: str | None = None  # a step that could not be done (an AWS error)

    @property
    def failure(self) -> str | None:
        """Why everything must be put back, or None."""
        if self.error is not None:
            return self.error
        for result in self.smoke:
            if not result.passed:
                return f"smoke test of {result.function} failed: {result.reason}"
        if self.watch is not None and not self.watch.ok:
            return f"watch: {self.watch.reason}"
        return None

    def to_json(self) -> JsonObject:
        return {
            "parameters": [p.to_json() for p in self.parameters],
            "alarm_clones": [c.to_json() for c in self.clones],
            "smoke_tests": [s.to_json() for s in self.smoke],
            "watch": None if self.watch is None else self.watch.to_json(),
            "notes": list(self.notes),
            "failure": self.failure,
        }


@dataclass(frozen=True)
class Journaling:
    """Callbacks the cutover flow passes to hear of each change as it is made."""

    parameter: Callable[[ParameterChange], None] = lambda _c: None
    clone: Callable[[AlarmClone], None] = lambda _c: None
    smoke: Callable[[SmokeResult], None] = lambda _r: None
    progress: Callable[[WatchProgress], None] = lambda _p: None


def after_switch(
    cutover: Cutover,
    clients: Clients,
    pairs: Iterable[TablePair],
    parameters: Iterable[ParameterChange],
    repointed: Collection[str],
    switched_at: datetime,
    *,
    now: Callable[[], datetime],
    sleep: Callable[[float], None],
    journal: Journaling = Journaling(),
    poll_seconds: float = 30.0,
) -> AfterSwitch:
    """Re-point the planned parameters, clone the alarms, run the smoke tests, then watch;
    stops at the first failure, which `failure` names. Never raises for an AWS error in a
    step: it becomes the failure, and what was journaled up to it is what `undo` puts back
    (parameters are all or nothing on their own). `switched_at` is the moment the first
    function was about to change, so the span before holds nothing the switch caused."""
    pairs = list(pairs)
    applied: list[ParameterChange] = []
    clones: list[AlarmClone] = []

    def parameter(change: ParameterChange) -> None:
        journal.parameter(change)
        applied.append(change)

    def clone(made: AlarmClone) -> None:
        journal.clone(made)
        clones.append(made)

    def stopped(step: str, exc: Exception) -> AfterSwitch:
        return AfterSwitch(tuple(applied), tuple(clones), error=f"{step} failed: {exc}")

    try:
        SsmParameters(clients.client("ssm")).apply(parameters, on_applied=parameter)
    except DualwriteError as exc:  # ApplyError: the parameters are back as they were
        applied.clear()
        return stopped("re-pointing SSM parameters", exc)
    try:
        cloned = AlarmClones(clients.cloudwatch).clone(pairs, on_cloned=clone)
    except DualwriteError as exc:
        return stopped("cloning alarms", exc)
    smoke = SmokeRunner(clients.lambda_).run(cutover.smoke_tests, on_result=journal.smoke)
    done = AfterSwitch(tuple(applied), tuple(clones), tuple(smoke), notes=cloned.notes)
    if done.failure is not None or cutover.watch_seconds == 0:
        return done
    plan = WatchPlan(
        functions=tuple(sorted(repointed)),
        alarms=tuple(cutover.watch_alarms),
        seconds=cutover.watch_seconds,
        switched_at=switched_at,
        poll_seconds=poll_seconds,
    )
    try:
        watched = run_watch(
            CloudWatchProbe(clients.cloudwatch),
            plan,
            now=now,
            sleep=sleep,
            on_progress=journal.progress,
        )
    except DualwriteError as exc:  # the watch cannot tell: safer to put everything back
        return AfterSwitch(
            done.parameters, done.clones, done.smoke, None, done.notes, f"watch failed: {exc}"
        )
    return AfterSwitch(done.parameters, done.clones, done.smoke, watched, done.notes)


# --- putting it back ----------------------------------------------------------------------


@dataclass(frozen=True)
class Undone:
    parameters: tuple[ParameterChange, ...] = ()
    clones: tuple[AlarmClone, ...] = ()
    notes: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()  # what could not be put back (run rollback again)

    def to_json(self) -> JsonObject:
        return {
            "parameters": [p.to_json() for p in self.parameters],
            "alarm_clones": [c.to_json() for c in self.clones],
            "notes": list(self.notes),
            "failed": list(self.failed),
        }


def undo(
    clients: Clients, parameters: Iterable[ParameterChange], clones: Iterable[AlarmClone]
) -> Undone:
    """Restore the journaled parameters and delete the journaled clones; carries on past a
    failure (the emergency path) and reports it. Running it again is harmless."""
    restored = SsmParameters(clients.client("ssm")).restore(parameters)
    notes, failed = list(restored.notes), list(restored.failed)
    deleted: tuple[AlarmClone, ...] = ()
    try:
        result = AlarmClones(clients.cloudwatch).delete(clones)
        deleted, notes = result.clones, notes + list(result.notes)
    except Exception as exc:  # the parameters are back; say what is left
        failed.append(f"alarm clones ({exc})")
    return Undone(restored.restored, deleted, tuple(notes), tuple(failed))
