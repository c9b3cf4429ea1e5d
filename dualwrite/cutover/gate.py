"""The safety gates of cutover and decommission: pure decisions from gathered facts.

A gate is a list of checks; it passes when every check passes, and otherwise its reasons say
what to do. The facts are gathered by the adapters at the bottom (`gather_cutover`,
`gather_decommission`), which only read.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from dualwrite.aws import tables
from dualwrite.aws.clients import Clients
from dualwrite.config import Migration
from dualwrite.control import ControlStore, ReconcileRecord, iso
from dualwrite.cutover.functions import (
    LambdaFunctions,
    Renames,
    TablePair,
    VariableChange,
    candidates,
    plan_changes,
    table_arn,
)
from dualwrite.cutover.journal import APPLYING, Entry, latest_cutover
from dualwrite.cutover.lag import ReplicationFact, replication_fact
from dualwrite.cutover.writes import WritesFact, writes_since

DAY_S = 86400.0


@dataclass(frozen=True)
class Check:
    name: str
    subject: str
    ok: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
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

    def to_json(self) -> dict[str, Any]:
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


@dataclass(frozen=True)
class RouteFacts:
    route: str
    target: str
    target_exists: bool
    reconcile: ReconcileRecord | None
    replication: ReplicationFact
    quarantined: int


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


def replication_check(fact: ReplicationFact, max_lag_s: float) -> Check:
    if fact.problem:
        return Check("replication", fact.route, False, fact.problem)
    if fact.pending_age_s is not None and fact.pending_age_s > max_lag_s:
        return Check(
            "replication",
            fact.route,
            False,
            f"replication has not caught up: {fact.detail} (limit {max_lag_s:.0f}s): "
            "run dualwrite replicate --until-caught-up",
        )
    return Check("replication", fact.route, True, f"caught up ({fact.method}: {fact.detail})")


def quarantine_check(route: str, unresolved: int) -> Check:
    if unresolved:
        return Check(
            "quarantine",
            route,
            False,
            f"{unresolved} unresolved quarantined item(s): fix and resolve them first "
            "(dualwrite status lists them)",
        )
    return Check("quarantine", route, True, "nothing quarantined")


def decide_cutover(routes: Iterable[RouteFacts], now: float, limits: CutoverLimits) -> Decision:
    checks: list[Check] = []
    for r in routes:
        if not r.target_exists:
            checks.append(
                Check("target", r.route, False, f"target {r.target} does not exist: run prepare")
            )
        checks.append(reconcile_check(r.route, r.reconcile, now, limits.max_reconcile_age_s))
        checks.append(replication_check(r.replication, limits.max_lag_s))
        checks.append(quarantine_check(r.route, r.quarantined))
    return Decision(tuple(checks))


# --- decommission (pure) ------------------------------------------------------------------


@dataclass(frozen=True)
class TableFacts:
    table: str
    exists: bool
    deletion_protection: bool = False
    writes: WritesFact | None = None


@dataclass(frozen=True)
class DecommissionFacts:
    latest: Entry | None
    naming_old: tuple[VariableChange, ...]
    tables: tuple[TableFacts, ...]


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


def decide_decommission(
    facts: DecommissionFacts, now: float, observation_days: float, *, yes: bool
) -> Decision:
    checks = [observation_check(facts.latest, now, observation_days)]
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
    for t in facts.tables:
        if not t.exists:
            continue
        w = t.writes
        if w is None or w.problem:
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


# --- adapters: gather the facts -----------------------------------------------------------


@dataclass(frozen=True)
class RouteTables:
    """A route's tables as described now (None: the table does not exist)."""

    route: str
    source: str
    target: str
    source_desc: dict[str, Any] | None
    target_desc: dict[str, Any] | None

    def pair(self) -> TablePair | None:
        """Names and ARNs; an ARN that cannot be read is derived from the other one."""
        s_arn = (self.source_desc or {}).get("TableArn")
        t_arn = (self.target_desc or {}).get("TableArn")
        if s_arn and not t_arn:
            t_arn = table_arn(s_arn, self.source, self.target)
        if t_arn and not s_arn:
            s_arn = table_arn(t_arn, self.target, self.source)
        if not s_arn or not t_arn:
            return None
        return TablePair(self.source, self.target, s_arn, t_arn)


def describe_routes(migration: Migration, clients: Clients) -> list[RouteTables]:
    return [
        RouteTables(
            r.name,
            r.source,
            r.target,
            tables.describe(clients.dynamodb, r.source),
            tables.describe(clients.dynamodb, r.target),
        )
        for r in migration.routes
    ]


def renames_of(routes: Iterable[RouteTables]) -> Renames:
    pairs = [p for p in (r.pair() for r in routes) if p is not None]
    return Renames.of(pairs)


def gather_cutover(
    migration: Migration,
    clients: Clients,
    store: ControlStore,
    routes: list[RouteTables],
    now: float,
) -> list[RouteFacts]:
    quarantined = Counter(e.route for e in store.quarantined())
    return [
        RouteFacts(
            route=r.route,
            target=r.target,
            target_exists=r.target_desc is not None,
            reconcile=store.last_reconcile(r.route),
            replication=replication_fact(
                r.route, r.source_desc, clients, store, migration.metrics_namespace, now
            ),
            quarantined=quarantined.get(r.route, 0),
        )
        for r in routes
    ]


def cutover_limits(migration: Migration) -> CutoverLimits:
    return CutoverLimits(
        max_reconcile_age_s=migration.cutover.max_reconcile_age_minutes * 60,
        max_lag_s=migration.cutover.max_lag_seconds,
    )


def names_of_old_tables(
    functions: LambdaFunctions, migration: Migration, renames: Renames
) -> tuple[VariableChange, ...]:
    """Re-scan: every function (and every listed one) with a variable equal to an old table
    name or ARN, whatever `discover` says."""
    found = candidates(functions, migration.cutover.functions, discover=True)
    return tuple(c for p in plan_changes(found, renames) for c in p.changes)


def gather_decommission(
    migration: Migration,
    clients: Clients,
    functions: LambdaFunctions,
    routes: list[RouteTables],
    entries: list[Entry],
    now: float,
) -> DecommissionFacts:
    latest = latest_cutover(entries)
    renames = renames_of(routes)
    naming_old = names_of_old_tables(functions, migration, renames)
    facts: list[TableFacts] = []
    seen: set[str] = set()
    for r in routes:
        if r.source in seen:
            continue
        seen.add(r.source)
        desc = r.source_desc
        if desc is None:
            facts.append(TableFacts(r.source, exists=False))
            continue
        writes = writes_since(desc, clients, latest.at, now) if latest is not None else None
        facts.append(
            TableFacts(
                r.source,
                exists=True,
                deletion_protection=bool(desc.get("DeletionProtectionEnabled")),
                writes=writes,
            )
        )
    return DecommissionFacts(latest, naming_old, tuple(facts))
