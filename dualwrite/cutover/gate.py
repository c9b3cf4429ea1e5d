"""The safety gates of cutover and decommission: pure decisions from gathered facts.

A gate is a list of checks; it passes when every check passes, and otherwise its reasons say
what to do. The facts are typed records gathered by the adapters in `facts.py`, which only
read; the decisions here read their fields and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from dualwrite.config import Migration
from dualwrite.control import Phase, ReconcileRecord, iso
from dualwrite.cutover.functions import VariableChange
from dualwrite.cutover.journal import APPLYING, Entry
from dualwrite.cutover.lag import ReplicationFact
from dualwrite.cutover.writes import WritesFact
from dualwrite.jsondoc import JsonObject

DAY_S = 86400.0


@dataclass(frozen=True)
class Check:
    name: str
    subject: str
    ok: bool
    detail: str

    def to_json(self) -> JsonObject:
        return {"check": self.name, "subject": self.subject, "ok": self.ok, "detail": self.detail}


@dataclass(frozen=True)
class Decision:
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def reasons(self) -> list[str]:
        return [f"{c.subject}: {c.detail}" for c in self.checks if not c.ok]

    def to_json(self) -> JsonObject:
        return {
            "ok": self.ok,
            "reasons": self.reasons,
            "checks": [c.to_json() for c in self.checks],
        }


# --- cutover (pure) -----------------------------------------------------------------------


@dataclass(frozen=True)
class CutoverLimits:
    max_reconcile_age_s: float
    max_lag_s: float

    @classmethod
    def of(cls, migration: Migration) -> CutoverLimits:
        return cls(
            max_reconcile_age_s=migration.cutover.max_reconcile_age_minutes * 60,
            max_lag_s=migration.cutover.max_lag_seconds,
        )


@dataclass(frozen=True)
class RouteFacts:
    route: str
    target: str
    target_exists: bool
    reconcile: ReconcileRecord | None
    replication: ReplicationFact
    quarantined: int
    #: replication applies a route's changes only once its backfill is complete
    phase: Phase = Phase.BACKFILLED
    #: the backfill outlived the stream's retention: changes made during it may never have
    #: been replicated, and no repair pass has reached parity since (DESIGN.md section 2)
    needs_repair: bool = False
    #: a switch of direction was begun and not saved (a cutover or rollback stopped midway):
    #: replication holds the changes it must order until it is finished
    switching: bool = False


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def reconcile_check(
    route: str, reconcile: ReconcileRecord | None, now: float, max_age_s: float
) -> Check:
    if reconcile is None:
        return Check("reconcile", route, False, "no reconcile recorded: run dualwrite reconcile")
    if reconcile.at <= 0:
        return Check("reconcile", route, False, "the latest reconcile has no time: run it again")
    age = max(0.0, now - reconcile.at)
    if not reconcile.parity:
        counts = ", ".join(f"{k} {n}" for k, n in reconcile.counts().items())
        return Check(
            "reconcile",
            route,
            False,
            f"the latest reconcile ({_minutes(age)} ago) found no parity"
            + f" ({counts})"
            + ": repair and reconcile again",
        )
    if age > max_age_s:
        return Check(
            "reconcile",
            route,
            False,
            f"the latest reconcile is {_minutes(age)} old (limit {_minutes(max_age_s)}): "
            "run dualwrite reconcile again",
        )
    return Check("reconcile", route, True, f"parity, {_minutes(age)} ago")


def replication_check(fact: ReplicationFact, max_lag_s: float, switching: bool = False) -> Check:
    if fact.problem:
        return Check("replication", fact.route, False, fact.problem)
    if fact.pending_age_s is not None and fact.pending_age_s > max_lag_s:
        advice = (
            # replicate holds the changes for the switch: it cannot catch up before it
            "a switch of direction was begun and not finished: run dualwrite rollback again "
            "(or let the running one finish)"
            if switching
            else "run dualwrite replicate --until-caught-up"
        )
        return Check(
            "replication",
            fact.route,
            False,
            f"replication has not caught up: {fact.detail} (limit {max_lag_s:.0f}s): {advice}",
        )
    if fact.pending_age_s is None or fact.method != "stream":
        return Check("replication", fact.route, True, f"caught up ({fact.method}: {fact.detail})")
    # unprocessed records younger than the limit: with live traffic some changes are always
    # in flight, and the switch's drain applies them
    return Check(
        "replication",
        fact.route,
        True,
        f"within the {max_lag_s:.0f}s lag limit ({fact.method}: {fact.detail}); the switch "
        "drains what is still unprocessed (dualwrite replicate, or the deployed replicator)",
    )


def backfill_check(route: str, phase: Phase, needs_repair: bool = False) -> Check:
    """A route not backfilled has no replication applying its changes (a repair may have
    given it parity, but nothing carries the next change), so neither a drain nor a
    rollback could finish. One whose backfill outlived the stream's retention needs its
    repair pass first (reconcile --repair at parity clears it)."""
    if phase is Phase.BACKFILLED and needs_repair:
        return Check(
            "backfill",
            route,
            False,
            "complete, but it outlived the stream's retention, so changes made during it may "
            "be missing: run dualwrite reconcile --repair (at parity it clears this)",
        )
    if phase is not Phase.BACKFILLED:
        return Check(
            "backfill",
            route,
            False,
            f"the route is {phase.value}, and replication applies its changes only once its "
            f"backfill is complete: run dualwrite backfill --route {route}",
        )
    return Check("backfill", route, True, "complete")


def quarantine_check(route: str, unresolved: int) -> Check:
    if unresolved:
        return Check(
            "quarantine",
            route,
            False,
            f"{unresolved} unresolved quarantined item(s): fix and resolve them first "
            "(dualwrite quarantine lists them)",
        )
    return Check("quarantine", route, True, "nothing quarantined")


def decide_cutover(routes: Iterable[RouteFacts], now: float, limits: CutoverLimits) -> Decision:
    checks: list[Check] = []
    for r in routes:
        if not r.target_exists:
            checks.append(
                Check("target", r.route, False, f"target {r.target} does not exist: run prepare")
            )
        checks.append(backfill_check(r.route, r.phase, r.needs_repair))
        checks.append(reconcile_check(r.route, r.reconcile, now, limits.max_reconcile_age_s))
        checks.append(replication_check(r.replication, limits.max_lag_s, r.switching))
        checks.append(quarantine_check(r.route, r.quarantined))
    return Decision(tuple(checks))


# --- decommission (pure) ------------------------------------------------------------------


@dataclass(frozen=True)
class TableFacts:
    table: str
    exists: bool
    deletion_protection: bool = False
    writes: WritesFact | None = None
    #: every route from it replicates in reverse (section 8): reverse replication writes it,
    #: so the foreign-write list, not the stream, tells whether anyone else still does
    reverse: bool = False
    #: why the replicator may not have read every change of the table's stream (reverse:
    #: the foreign-write list may miss a write; forward: a change made before the switch
    #: may never have reached the new table); None: read up to the lag bound
    unread: str | None = None
    #: the new tables its routes write that do not exist (then it holds the only copy)
    targets_missing: tuple[str, ...] = ()


@dataclass(frozen=True)
class ForeignFact:
    """A route's listed foreign writes (DESIGN.md section 8): keys as text, a few."""

    route: str
    table: str
    count: int
    keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class DecommissionFacts:
    latest: Entry | None
    naming_old: tuple[VariableChange, ...]
    tables: tuple[TableFacts, ...]
    foreign: tuple[ForeignFact, ...] = ()
    #: routes whose switch of direction a cutover or rollback began and did not save
    switching: tuple[str, ...] = ()


def foreign_checks(foreign: Iterable[ForeignFact]) -> list[Check]:
    """Decommission is refused while any route lists foreign writes, named."""
    checks = [
        Check(
            "foreign writes",
            f.route,
            False,
            f"{f.count} key(s) of {f.table} written after the cutover by something other than "
            f"reverse replication (a writer nobody re-pointed): {', '.join(f.keys)}"
            + (", ..." if f.count > len(f.keys) else "")
            + " (`dualwrite foreign` lists them; `dualwrite foreign --resolve KEY --reason TEXT` "
            "once each is handled)",
        )
        for f in foreign
        if f.count
    ]
    return checks or [Check("foreign writes", "routes", True, "no foreign write listed")]


def observation_check(latest: Entry | None, now: float, observation_days: float) -> Check:
    if latest is None:
        return Check("cutover", "cutover", False, "no cutover recorded: run dualwrite cutover")
    if latest.rolled_back_by is not None:
        return Check(
            "cutover",
            "cutover",
            False,
            f"the latest cutover ({iso(latest.at)}) was rolled back: cut over again first",
        )
    if latest.status == APPLYING:
        return Check(
            "cutover",
            "cutover",
            False,
            f"the latest cutover ({iso(latest.at)}) did not finish: roll back, then cut over",
        )
    window = observation_days * DAY_S
    elapsed = now - latest.at
    if elapsed < window:
        return Check(
            "observation",
            "cutover",
            False,
            f"the observation window is not over: {elapsed / DAY_S:.2f} of {observation_days:g} "
            f"day(s) since the cutover at {iso(latest.at)}; decommission from "
            f"{iso(latest.at + window)}",
        )
    return Check(
        "observation",
        "cutover",
        True,
        f"{elapsed / DAY_S:.2f} day(s) since the cutover at {iso(latest.at)}",
    )


def switch_check(switching: Sequence[str]) -> Check:
    return Check(
        "switch",
        ", ".join(switching),
        False,
        "a switch of direction was begun and not finished (a cutover or rollback stopped "
        "midway): run `dualwrite rollback` (or `dualwrite cutover`) again to finish it",
    )


def decide_decommission(
    facts: DecommissionFacts, now: float, observation_days: float, *, yes: bool
) -> Decision:
    checks = [observation_check(facts.latest, now, observation_days)]
    if facts.switching:
        checks.append(switch_check(facts.switching))
    if facts.latest is not None and facts.latest.rolled_back_by is not None:
        # the old tables are the live ones again: their writes (reverse replication's, then
        # the application's) are no stray writer's, as the checks below would say
        return Decision(tuple(checks))
    by_function: dict[str, list[VariableChange]] = {}
    for v in facts.naming_old:
        by_function.setdefault(v.function, []).append(v)
    for function, variables in by_function.items():
        named = ", ".join(f"{v.variable}={v.old}" for v in variables)
        checks.append(
            Check(
                "functions", function, False, f"still names an old table ({named}): cut over again"
            )
        )
    if not facts.naming_old:
        checks.append(Check("functions", "functions", True, "no function names an old table"))
    checks.extend(foreign_checks(facts.foreign))
    for t in facts.tables:
        if not t.exists:
            continue
        w = t.writes
        if t.targets_missing:
            checks.append(
                Check(
                    "new tables",
                    t.table,
                    False,
                    f"{', '.join(t.targets_missing)} does not exist: {t.table} holds the only "
                    "copy of the data",
                )
            )
        if t.unread is not None:
            checks.append(Check("writes", t.table, False, t.unread))
        elif t.reverse:
            detail = "written by reverse replication since the cutover (foreign writes: above)"
            checks.append(Check("writes", t.table, True, detail))
        elif w is None or w.problem:
            detail = w.problem if w and w.problem else "writes since the cutover were not checked"
            checks.append(Check("writes", t.table, False, detail))
        elif w.first_write_after is not None:
            checks.append(
                Check(
                    "writes",
                    t.table,
                    False,
                    f"written at {iso(w.first_write_after)}, after the cutover: a writer still "
                    "uses it",
                )
            )
        elif w.cloudwatch_units:
            checks.append(
                Check(
                    "writes",
                    t.table,
                    False,
                    f"CloudWatch shows {w.cloudwatch_units:g} write capacity units consumed "
                    "since the cutover",
                )
            )
        else:
            checks.append(Check("writes", t.table, True, "no writes since the cutover"))
        if t.deletion_protection:
            checks.append(
                Check(
                    "deletion protection",
                    t.table,
                    yes,
                    "deletion protection is on: --yes turns it off before deleting"
                    if yes
                    else "deletion protection is on: pass --yes to turn it off and delete",
                )
            )
    return Decision(tuple(checks))
