"""`cutover` as one sequence of steps, each a function here:

    plan -> (already cut over: done) -> gate -> (dry run: done) -> (refused) -> journal +
    switch (repoint.run_cutover) -> post-switch checks -> done (entry `checked`), or rolled back

A re-run after a kill between the switch and the end of its checks (an applied entry not
`checked`, or one still `applying` whose functions were all re-pointed: closed first) runs
the checks again on it instead of saying "already cut over".

The rules are here, not in the CLI: a re-run with nothing left to re-point is a no-op
whatever the gate would say now; a refusing gate changes nothing unless forced (with a
reason, journaled); without a control table there is no journal, so no switch.

The safeguards of DESIGN.md section 10 (switch_guards.py) are part of the sequence: before
anything changes (dry run too) the smoke tests and watched alarms are validated (exit 2), a
watched alarm already in ALARM joins the gate (refused), the SSM parameters to re-point are
planned and, for a dry run, every other reference to an old table is listed. Right after
the switch the parameters are re-pointed, the alarms cloned, the smoke tests run, then the
watch. More post-switch checks plug in as `PostSwitchCheck`s (tests pass their own to
`cutover(...)`); each sees the switch (`Switched`) and returns Checks. Any failing check, or
one that raises, puts every change back (rollback.put_back, the one way back: functions,
parameters, clones) and the result is `rolled_back` (exit 4).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Protocol

from dualwrite.control import iso
from dualwrite.cutover.context import CutoverContext
from dualwrite.cutover.drain import settle_drains
from dualwrite.cutover.facts import (
    RouteTables,
    describe_routes,
    gather_cutover,
    renames_of,
    source_streams,
    target_streams,
)
from dualwrite.cutover.facts import table_pairs as pairs_of
from dualwrite.cutover.functions import (
    ApplyError,
    FunctionChange,
    FunctionEnv,
    Renames,
    TablePair,
    candidates,
    plan_changes,
)
from dualwrite.cutover.gate import Check, CutoverLimits, Decision, decide_cutover
from dualwrite.cutover.iam import AccessWarning, RoleChecker
from dualwrite.cutover.journal import Entry, Journal, active_cutovers, unchecked_cutovers
from dualwrite.cutover.references import discover_references
from dualwrite.cutover.repoint import close_crashed, run_cutover
from dualwrite.cutover.results import ApplyFailure, CutoverResult, Status
from dualwrite.cutover.reversal import check_mappings, drain_checks, inverse_checks
from dualwrite.cutover.reverse_mappings import missing_reverse
from dualwrite.cutover.rollback import owed_switch_back, put_back, switch_back
from dualwrite.cutover.safeguards import PreCheck
from dualwrite.cutover.switch_direction import (
    before_cutover,
    cutover_not_made,
    cutover_switch,
    forget_unjournaled,
    reverse_since,
)
from dualwrite.cutover.switch_guards import (
    Observer,
    after_checks,
    alarm_checks,
    guard_switch,
    precheck_plan,
)
from dualwrite.errors import ConfigError, DualwriteError


@dataclass(frozen=True)
class CutoverRequest:
    dry_run: bool = False
    force: bool = False
    reason: str | None = None

    def __post_init__(self) -> None:
        if self.force and not (self.reason or "").strip():
            raise ConfigError("--force needs --reason TEXT (the reason is recorded in the journal)")


@dataclass(frozen=True)
class CutoverPlan:
    """The routes' tables, the renames they imply, the functions considered and the changes."""

    routes: tuple[RouteTables, ...]
    renames: Renames
    found: tuple[FunctionEnv, ...]
    plans: tuple[FunctionChange, ...]

    @property
    def pairs(self) -> list[TablePair]:
        return pairs_of(self.routes)

    @property
    def repointed(self) -> frozenset[str]:
        return frozenset(p.function for p in self.plans)


@dataclass(frozen=True)
class Switched:
    """What a post-switch check sees: the plan, the journal and the entry of the switch (a
    check that changes something, e.g. SSM parameters, records it there so that the way back
    can undo it)."""

    context: CutoverContext
    plan: CutoverPlan
    journal: Journal
    entry: Entry


class PostSwitchCheck(Protocol):
    def __call__(self, switched: Switched, /) -> Sequence[Check]: ...


# --- the steps ----------------------------------------------------------------------------


def plan_cutover(ctx: CutoverContext) -> CutoverPlan:
    routes = describe_routes(ctx.migration, ctx.clients)
    check_mappings(ctx.migration, routes)
    renames = renames_of(routes)
    found = candidates(
        ctx.functions, ctx.migration.cutover.functions, ctx.migration.cutover.discover
    )
    return CutoverPlan(tuple(routes), renames, tuple(found), tuple(plan_changes(found, renames)))


def already_cut_over(journal: Journal | None, plan: CutoverPlan) -> bool:
    """Nothing left to re-point and a cutover in effect: a re-run is a no-op."""
    return journal is not None and not plan.plans and bool(active_cutovers(journal.entries()))


def configured_gate_checks(
    ctx: CutoverContext, plan: CutoverPlan, pre: PreCheck
) -> tuple[Check, ...]:
    """Checks the migration file adds to the gate, before anything changes: a watched alarm
    already in ALARM refuses."""
    return alarm_checks(pre)


def reverse_gate_checks(ctx: CutoverContext, plan: CutoverPlan, *, wait: bool) -> tuple[Check, ...]:
    """Section 8: a route without an inverse refuses (unless cutover.reverse is false), and
    so does one whose previous switch (a rollback) still drains (settled first: drain.py)."""
    checks = inverse_checks(ctx.migration, plan.routes)
    journal = ctx.journal
    if journal is None or ctx.store is None:
        return checks
    entries = journal.entries()
    owed = owed_switch_back(entries)
    if owed is not None and wait:  # the rollback's switch back, left pending: finish it
        with suppress(DualwriteError):  # still owed: the check below says so
            switch_back(ctx, journal, owed)
        entries = journal.entries()
        owed = owed_switch_back(entries)
    if owed is not None:
        checks += (
            Check(
                "direction",
                "rollback",
                False,
                f"the rollback at {iso(owed.at)} has not switched every route back to "
                "forward yet: run dualwrite rollback again (then cut over)",
            ),
        )
    since = reverse_since(entries)
    pending = settle_drains(ctx, plan.routes, reverse_since=since, wait=wait)
    return (*checks, *drain_checks(pending, plan.routes), *reverse_mapping_checks(ctx, plan))


def reverse_mapping_checks(ctx: CutoverContext, plan: CutoverPlan) -> tuple[Check, ...]:
    """In AWS (the replicator reads the source streams through event source mappings), each
    target stream needs the replicator's reverse mapping, or reverse replication would not
    start and a rollback would lose the new tables' writes (a stale stream ARN in the stack)."""
    if not ctx.migration.cutover.reverse:
        return ()
    lacking = missing_reverse(
        ctx.clients.lambda_, source_streams(plan.routes), target_streams(plan.routes)
    )
    return tuple(
        Check(
            "reverse mapping",
            arn,
            False,
            "the replicator has no event source mapping on this stream: reverse replication "
            "could not start (deploy the stack with the table's current stream ARN)",
        )
        for arn in lacking
    )


def gate(
    ctx: CutoverContext, plan: CutoverPlan, at: float, pre: PreCheck, *, wait: bool = False
) -> Decision:
    extra = (*reverse_gate_checks(ctx, plan, wait=wait), *configured_gate_checks(ctx, plan, pre))
    if ctx.store is None:
        return Decision(
            (
                Check(
                    "control table",
                    ctx.migration.control_table,
                    False,
                    "the control table does not exist: run dualwrite prepare, backfill, reconcile",
                ),
                *extra,
            )
        )
    facts = gather_cutover(ctx.migration, ctx.clients, ctx.store, list(plan.routes), at)
    decision = decide_cutover(facts, at, CutoverLimits.of(ctx.migration))
    return Decision((*decision.checks, *extra))


def access_warnings(roles: RoleChecker, plan: CutoverPlan) -> tuple[AccessWarning, ...]:
    """Can each re-pointed function's role do on the new tables what it did on the old?"""
    pairs = pairs_of(plan.routes)
    out: list[AccessWarning] = []
    for p in plan.plans:
        olds = {c.old for c in p.changes}
        renamed = {
            t.source_arn: t.target_arn for t in pairs if t.source in olds or t.source_arn in olds
        }
        out.extend(roles.check(p.function, p.role, renamed))
    return tuple(out)


def configured_checks(ctx: CutoverContext) -> tuple[PostSwitchCheck, ...]:
    """Post-switch checks besides the safeguards, which always run (switch_guards)."""
    return ()


def post_switch_checks(checks: Sequence[PostSwitchCheck], switched: Switched) -> tuple[Check, ...]:
    out: list[Check] = []
    for check in checks:
        try:
            out.extend(check(switched))
        except Exception as exc:  # a check that cannot run must not leave an unchecked switch
            name = getattr(check, "__name__", type(check).__name__)
            out.append(Check("post-switch", name, False, f"the check failed to run: {exc}"))
    return tuple(out)


# --- the sequence -------------------------------------------------------------------------


def cutover(
    ctx: CutoverContext,
    request: CutoverRequest,
    *,
    roles: RoleChecker | None = None,
    post_switch: Sequence[PostSwitchCheck] | None = None,
    observer: Observer = Observer(),
) -> CutoverResult:
    """The whole sequence; `post_switch` None runs the configured checks."""
    plan = plan_cutover(ctx)
    journal = ctx.journal
    active = active_cutovers(journal.entries()) if journal is not None else []
    if not request.dry_run and journal is not None and already_cut_over(journal, plan):
        active = [close_crashed(ctx.functions, journal, e) for e in active]
        pending = unchecked_cutovers(active)
        if not pending:
            return CutoverResult(
                Status.DONE, already_cut_over=True, functions_checked=len(plan.found)
            )
        # killed after the switch, before its checks finished: run them now (each step
        # is harmless to repeat), with the switch's own moment as the watch's baseline
        repointed = plan.repointed | applied_functions(active)
        pre = precheck_plan(ctx, plan.pairs, repointed)
        resumed = CutoverResult(
            Status.DONE,
            functions_checked=len(plan.found),
            reason=request.reason,
            observation_days=ctx.migration.cutover.observation_days,
            precheck=pre,
        )
        at = datetime.fromtimestamp(pending[-1].at, UTC)
        return check_switch(
            ctx, journal, plan, pending, pre, repointed, at, resumed, post_switch, observer
        )
    if not request.dry_run and journal is not None:
        forget_unjournaled(ctx, journal.entries())
    # a smoke test may name a function a killed cutover re-pointed before this run
    repointed = plan.repointed | applied_functions(active)
    pre = precheck_plan(ctx, plan.pairs, repointed)  # ConfigError: nothing changed
    decision = gate(ctx, plan, ctx.clock(), pre, wait=not request.dry_run)
    result = CutoverResult(
        Status.DONE,
        dry_run=request.dry_run,
        gate=decision,
        plans=plan.plans,
        functions_checked=len(plan.found),
        warnings=access_warnings(roles, plan) if roles is not None else (),
        reason=request.reason,
        observation_days=ctx.migration.cutover.observation_days,
        precheck=pre,
    )
    if request.dry_run:
        found = discover_references(ctx.clients, plan.pairs, plan.repointed)
        return replace(
            result,
            references=found.references,
            references_skipped=found.skipped,
            would_cut_over=bool(plan.plans) and (decision.ok or request.force),
        )
    if not decision.ok and not request.force:
        return replace(result, status=Status.REFUSED)
    if journal is None:
        return CutoverResult(
            Status.REFUSED,
            refusal=f"the control table {ctx.migration.control_table} does not exist, so there "
            "is no journal to record the cutover in: run dualwrite prepare",
        )
    # the span before this moment holds nothing the switch caused (the watch's baseline)
    switched_at = datetime.fromtimestamp(ctx.clock(), UTC)
    routes = [r.route for r in plan.routes]
    marked = before_cutover(ctx, routes)
    try:
        entry = run_cutover(
            ctx.functions,
            journal,
            list(plan.plans),
            plan.renames,
            reason=request.reason,
            forced=request.force and not decision.ok,
            gate_reasons=tuple(decision.reasons),
        )
    except ApplyError as exc:
        if not exc.stuck:  # every function is as it was: nothing reached the new tables
            cutover_not_made(ctx, routes, marked)
        failure = ApplyFailure(str(exc), tuple(exc.put_back), tuple(exc.stuck))
        return replace(result, status=Status.FAILED, failure=failure)
    return check_switch(
        ctx, journal, plan, [entry], pre, repointed, switched_at, result, post_switch, observer
    )


def applied_functions(active: Sequence[Entry]) -> frozenset[str]:
    return frozenset(f.name for e in active for f in e.functions if f.applied)


def check_switch(
    ctx: CutoverContext,
    journal: Journal,
    plan: CutoverPlan,
    entries: Sequence[Entry],
    pre: PreCheck,
    repointed: frozenset[str],
    switched_at: datetime,
    result: CutoverResult,
    post_switch: Sequence[PostSwitchCheck] | None,
    observer: Observer,
) -> CutoverResult:
    """The checks after the switch on the latest of `entries` (applied cutovers): all pass,
    and each entry is marked `checked`; one fails, and every change is put back."""
    after, entry = guard_switch(
        ctx, journal, entries[-1], plan.pairs, pre, repointed, switched_at, observer
    )
    steps = configured_checks(ctx) if post_switch is None else post_switch
    checks = after_checks(after)
    if after.failure is None:  # a failed safeguard rolls back anyway
        checks += post_switch_checks(steps, Switched(ctx, plan, journal, entry))
    if all(c.ok for c in checks):
        try:  # the checks passed: reverse replication takes over (section 8)
            entry = cutover_switch(ctx, journal, entry, plan.routes)
        except DualwriteError as exc:  # not `checked`: a re-run finishes it
            failure = ApplyFailure(f"{exc} (run dualwrite cutover again)", (), ())
            return replace(result, status=Status.FAILED, entry=entry, failure=failure)
        for earlier in entries[:-1]:
            journal.save(replace(earlier, checked=True))
        entry = journal.save(replace(entry, checked=True))
        return replace(result, entry=entry, post_switch=checks, safeguards=after)
    result = replace(result, entry=entry, post_switch=checks, safeguards=after)
    if after.failure is None:
        journal.save(replace(entry, error=failed_checks(checks)))
    try:
        back = put_back(ctx, journal, only=frozenset(e.sk for e in entries))
    except DualwriteError as exc:  # a function could not be restored: say so, as JSON too
        return replace(result, status=Status.FAILED, failure=ApplyFailure(str(exc), (), ()))
    status = Status.FAILED if back.safeguards.failed else Status.ROLLED_BACK
    return replace(result, status=status, rollback=back)


def failed_checks(checks: Sequence[Check]) -> str:
    return "; ".join(f"{c.subject}: {c.detail}" for c in checks if not c.ok)
