"""Gather what the gates decide on: the routes' tables as they are now, and the facts of
cutover (reconcile, replication, quarantine) and decommission (functions, writes).

Adapters: they only read, and hand the pure gates (gate.py) typed records.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from dualwrite.aws import tables
from dualwrite.aws.clients import Clients
from dualwrite.aws.tables import TableInfo
from dualwrite.config import Migration
from dualwrite.control import ControlStore
from dualwrite.cutover.functions import (
    LambdaFunctions,
    Renames,
    TablePair,
    VariableChange,
    candidates,
    plan_changes,
    table_arn,
)
from dualwrite.cutover.gate import DecommissionFacts, ForeignFact, RouteFacts, TableFacts
from dualwrite.cutover.journal import Entry, latest_cutover
from dualwrite.cutover.lag import replication_fact
from dualwrite.cutover.writes import writes_since
from dualwrite.reverse.direction import Flow
from dualwrite.wire import key_text


@dataclass(frozen=True)
class RouteTables:
    """A route's tables as described now (None: the table does not exist)."""

    route: str
    source: str
    target: str
    source_table: TableInfo | None
    target_table: TableInfo | None

    def pair(self) -> TablePair | None:
        """Names and ARNs; an ARN that cannot be read is derived from the other one."""
        s_arn = self.source_table.arn if self.source_table else ""
        t_arn = self.target_table.arn if self.target_table else ""
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
            tables.info(clients.dynamodb, r.source),
            tables.info(clients.dynamodb, r.target),
        )
        for r in migration.routes
    ]


def table_pairs(routes: Iterable[RouteTables]) -> list[TablePair]:
    return [p for p in (r.pair() for r in routes) if p is not None]


def renames_of(routes: Iterable[RouteTables]) -> Renames:
    return Renames.of(table_pairs(routes))


def gather_cutover(
    migration: Migration,
    clients: Clients,
    store: ControlStore,
    routes: list[RouteTables],
    now: float,
) -> list[RouteFacts]:
    quarantined = Counter(e.route for e in store.quarantined())
    phases = {r.route: store.phase(r.route) for r in routes}
    return [
        RouteFacts(
            route=r.route,
            target=r.target,
            target_exists=r.target_table is not None,
            reconcile=store.last_reconcile(r.route),
            replication=replication_fact(
                r.route, r.source_table, clients, store, migration.metrics_namespace, now
            ),
            quarantined=quarantined.get(r.route, 0),
            phase=phases[r.route].phase,
            needs_repair=phases[r.route].needs_repair,
            switching=store.direction(r.route).next_at is not None,
        )
        for r in routes
    ]


def source_streams(routes: Iterable[RouteTables]) -> list[str]:
    """The routes' source streams (the forward direction's), where enabled."""
    return [
        r.source_table.stream_arn for r in routes if r.source_table and r.source_table.stream_arn
    ]


def target_streams(routes: Iterable[RouteTables]) -> list[str]:
    """The routes' target streams (the reverse direction's), where enabled."""
    return [
        r.target_table.stream_arn for r in routes if r.target_table and r.target_table.stream_arn
    ]


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
    store: ControlStore | None = None,
) -> DecommissionFacts:
    """`store` adds the facts of section 8 (directions, foreign writes)."""
    latest = latest_cutover(entries)
    directions = {r.route: store.direction(r.route) for r in routes} if store else {}
    foreign = tuple(foreign_fact(store, r) for r in routes) if store else ()
    renames = renames_of(routes)
    naming_old = names_of_old_tables(functions, migration, renames)
    facts: list[TableFacts] = []
    seen: set[str] = set()
    for r in routes:
        if r.source in seen:
            continue
        seen.add(r.source)
        info = r.source_table
        if info is None:
            facts.append(TableFacts(r.source, exists=False))
            continue
        reverse = bool(directions) and all(
            directions[x.route].direction is Flow.REVERSE and directions[x.route].old_drained
            for x in routes
            if x.source == r.source
        )
        writes = (
            writes_since(info, clients, latest.at, now)
            if latest is not None and not reverse
            else None
        )
        facts.append(
            TableFacts(
                r.source,
                exists=True,
                deletion_protection=info.deletion_protection,
                writes=writes,
                reverse=reverse,
                # forward too: a change made before the switch that never reached the new
                # table lives on only in the backup once the old table is deleted
                unread=unread_changes(migration, clients, store, r.route, info, now)
                if store is not None
                else None,
                targets_missing=tuple(
                    dict.fromkeys(
                        x.target for x in routes if x.source == r.source and x.target_table is None
                    )
                ),
            )
        )
    switching = tuple(r for r, d in directions.items() if d.next_at is not None)
    return DecommissionFacts(latest, naming_old, tuple(facts), foreign, switching)


FOREIGN_NAMED = 5


def unread_changes(
    migration: Migration,
    clients: Clients,
    store: ControlStore,
    route: str,
    info: TableInfo,
    now: float,
) -> str | None:
    """Why the replicator may not have read every change of an old table: in reverse the
    foreign-write list holds only what it has read; forward, a change made before the switch
    reaches the new table only once read. Read locally: every shard read to its end; on AWS
    (event source mappings): enabled, within the lag the cutover allowed."""
    fact = replication_fact(route, info, clients, store, migration.metrics_namespace, now)
    if fact.problem is not None:
        return (
            f"its stream cannot be judged read ({fact.problem}): a change to it may not have "
            "been replicated, or a foreign write listed"
        )
    age = fact.pending_age_s
    if age is None or (fact.method != "stream" and age <= migration.cutover.max_lag_seconds):
        return None
    return (
        f"the replicator has not read every change of it yet ({fact.detail}): a change may "
        "not have been replicated, or a foreign write listed; run dualwrite replicate "
        "--until-caught-up (or let the deployed replicator catch up)"
    )


def read_through(
    migration: Migration,
    clients: Clients,
    store: ControlStore,
    route: str,
    info: TableInfo | None,
    since: float,
    now: float,
) -> str | None:
    """Why the replicator may not have read every change made to an old table before
    `since` (a reverse repair's reads: a foreign write made before them and not listed yet
    would be deleted or overwritten), or None. Read locally: no unread change older than
    `since`; on AWS (event source mappings): within the lag the cutover allowed."""
    fact = replication_fact(route, info, clients, store, migration.metrics_namespace, now)
    if fact.problem is not None:
        return f"its stream cannot be judged read ({fact.problem})"
    age = fact.pending_age_s
    if age is None:
        return None
    if fact.method == "stream" and now - age > since:
        return None  # only changes made after the reads are unread
    if fact.method != "stream" and age <= migration.cutover.max_lag_seconds:
        return None
    return (
        f"the replicator has not read every change of it yet ({fact.detail}): run dualwrite "
        "replicate --until-caught-up (or let the deployed replicator catch up) and repair again"
    )


def foreign_fact(store: ControlStore, r: RouteTables) -> ForeignFact:
    writes = store.foreign_writes(r.route, unresolved_only=True)
    keys = tuple(key_text(w.key) for w in writes[:FOREIGN_NAMED])
    return ForeignFact(r.route, r.source, len(writes), keys)
