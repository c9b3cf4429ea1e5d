"""Delete the old tables once the gate allows it: back up every one first, then delete.

Every backup is taken and waited for before any table is deleted, so a failed backup
deletes nothing. Deletion protection is respected: the gate refuses without --yes; with
--yes it is turned off explicitly, table by table, and the result says so. What was done is
recorded in the control table (pk "DECOMMISSION", sk the table), which is also how a second
run knows the tables are already gone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from dualwrite.aws import tables
from dualwrite.aws.errors import aws_call
from dualwrite.control import ControlTable, iso
from dualwrite.cutover import reverse_mappings
from dualwrite.cutover.context import CutoverContext
from dualwrite.cutover.facts import (
    RouteTables,
    describe_routes,
    gather_decommission,
    source_streams,
)
from dualwrite.cutover.gate import decide_decommission
from dualwrite.cutover.journal import Journal
from dualwrite.cutover.lag import event_source_mappings
from dualwrite.cutover.results import DecommissionResult, Removed, Status
from dualwrite.errors import DualwriteError, NotFoundError
from dualwrite.jsondoc import JsonObject

PK = "DECOMMISSION"


@dataclass(frozen=True)
class DecommissionRecord:
    """DECOMMISSION / <table>: a table decommission backed up and deleted."""

    table: str
    backup_arn: str
    deleted_at: str  # ISO 8601
    deletion_protection_disabled: bool
    cutover: str  # the journal entry (sk) of the cutover it followed
    #: the replicator's functions, read while the sources' streams still existed: a re-run
    #: after a kill disables their reverse mappings from these
    replicator: tuple[str, ...] = ()

    @property
    def pending(self) -> bool:
        """Written just before DeleteTable: a run killed then left the table maybe deleted."""
        return not self.deleted_at

    def to_json(self) -> JsonObject:
        return {
            "table": self.table,
            "backup_arn": self.backup_arn,
            "deleted_at": self.deleted_at,
            "deletion_protection_disabled": self.deletion_protection_disabled,
            "cutover": self.cutover,
            "replicator": list(self.replicator),
        }

    @classmethod
    def from_json(cls, table: str, data: Mapping[str, Any]) -> DecommissionRecord:
        return cls(
            table=str(data.get("table") or table),
            backup_arn=str(data.get("backup_arn") or ""),
            deleted_at=str(data.get("deleted_at") or ""),
            deletion_protection_disabled=bool(data.get("deletion_protection_disabled")),
            cutover=str(data.get("cutover") or ""),
            replicator=tuple(str(f) for f in data.get("replicator") or ()),
        )


def record_of(store: ControlTable, table: str) -> DecommissionRecord | None:
    rec = store.get(PK, table)
    return DecommissionRecord.from_json(rec.sk, rec.data) if rec else None


def records(store: ControlTable) -> list[DecommissionRecord]:
    """Every table decommission deleted (after a backup)."""
    return [DecommissionRecord.from_json(r.sk, r.data) for r in store.query(PK)]


def disable_deletion_protection(client: Any, table: str) -> None:
    with aws_call(f"UpdateTable {table} (deletion protection off)"):
        client.update_table(TableName=table, DeletionProtectionEnabled=False)
    tables.wait_active(client, table)


def delete_table(client: Any, table: str, timeout: float = 600.0) -> None:
    try:
        with aws_call(f"DeleteTable {table}"):
            client.delete_table(TableName=table)
    except NotFoundError:
        return
    tables.wait_until(
        lambda: tables.describe(client, table) is None,
        f"table {table} to be deleted",
        timeout=timeout,
    )


class DecommissionFailed(DualwriteError):
    """A step failed after some tables were already deleted: `result` says which (and
    where their backups are), so that the failure does not hide what was done."""

    def __init__(self, cause: Exception, result: DecommissionResult) -> None:
        super().__init__(
            f"{cause} (deleted before the failure: "
            f"{', '.join(r.table for r in result.removed) or 'none'}; run decommission again)"
        )
        self.exit_code = getattr(cause, "exit_code", 1)
        self.result = result


def decommission(
    client: Any,
    store: ControlTable,
    doomed: list[tuple[str, bool]],
    *,
    cutover_sk: str,
    replicator: tuple[str, ...] = (),
    say: Callable[[str], None] = lambda _m: None,
    removed: list[Removed] | None = None,
) -> list[Removed]:
    """Back up, then delete, each (table, deletion protection on) the gate allowed. Each
    table's record is written before its DeleteTable (and completed after): a run killed in
    between left a deleted table with no record, and then rollback re-pointed the functions
    at it and the replicator failed every batch of the new table's stream."""
    backups: dict[str, str] = {}
    for table, _protected in doomed:
        say(f"backing up {table} (on-demand backup, waiting until AVAILABLE)")
        label = f"dualwrite-decommission-{table}-{int(store.now())}"[:255]
        backups[table] = tables.backup(client, table, label)
    removed = [] if removed is None else removed
    for table, protected in doomed:
        if protected:
            say(f"turning deletion protection off on {table} (--yes)")
            disable_deletion_protection(client, table)
        pending = DecommissionRecord(table, backups[table], "", protected, cutover_sk, replicator)
        store.put(PK, table, pending.to_json())
        say(f"deleting {table}")
        delete_table(client, table)
        store.put(PK, table, replace(pending, deleted_at=iso(store.now())).to_json())
        removed.append(Removed(table, backups[table], protected))
    return removed


def finish_killed(
    store: ControlTable, gone: tuple[str, ...]
) -> tuple[tuple[str, ...], tuple[Removed, ...]]:
    """Complete the records of tables a killed run deleted (their DeleteTable returned, the
    record was not completed); returns the replicator functions those records name, and
    the tables so finished (reported as this run's: nothing else tells where their backups
    are)."""
    functions: dict[str, None] = {}
    finished: list[Removed] = []
    for table in gone:
        record = record_of(store, table)
        if record is None:
            continue  # deleted by someone else: not ours to record
        functions.update(dict.fromkeys(record.replicator))
        if record.pending:
            store.put(PK, table, replace(record, deleted_at=iso(store.now())).to_json())
            finished.append(Removed(table, record.backup_arn, record.deletion_protection_disabled))
    return tuple(functions), tuple(finished)


# --- the decision -------------------------------------------------------------------------


def run_decommission(
    ctx: CutoverContext, *, yes: bool, say: Callable[[str], None] = lambda _m: None
) -> DecommissionResult:
    """Gate, then back up and delete every old table still there. Tables already gone make
    a re-run a no-op; the gate's refusal changes nothing."""
    if ctx.store is None:
        return DecommissionResult(
            Status.REFUSED, refusal="no cutover recorded: there is no control table"
        )
    routes = describe_routes(ctx.migration, ctx.clients)
    sources = list(dict.fromkeys(r.source for r in routes))
    gone = tuple(s for s in sources if all(r.source_table is None for r in routes if r.source == s))
    killed, finished = finish_killed(ctx.store, gone)
    gone = tuple(t for t in gone if t not in {f.table for f in finished})
    if not any(r.source_table is not None for r in routes):
        # a re-run: what a killed run left undone, nothing else
        stopped = stop_reverse(ctx, routes, set(killed), say) if killed else ()
        return DecommissionResult(
            Status.DONE, already_gone=gone, removed=finished, warnings=stopped
        )
    at = ctx.clock()
    entries = Journal(ctx.store).entries()
    facts = gather_decommission(
        ctx.migration, ctx.clients, ctx.functions, routes, entries, at, ctx.store
    )
    decision = decide_decommission(facts, at, ctx.migration.cutover.observation_days, yes=yes)
    if not decision.ok:
        return DecommissionResult(Status.REFUSED, already_gone=gone, gate=decision)
    warnings = tuple(
        f"event source mapping {m.uuid} ({m.function_arn}) reads the stream of {r.source}: "
        "remove it (it fails once the table is gone)"
        for r in routes
        if r.source_table is not None and r.source_table.stream_arn
        for m in event_source_mappings(ctx.clients.lambda_, r.source_table.stream_arn)
    )
    assert facts.latest is not None  # the gate passed
    doomed = [(t.table, t.deletion_protection) for t in facts.tables if t.exists]
    # read before the sources (and their streams) are gone: which function replicates
    replicator = reverse_mappings.replicator_functions(
        ctx.clients.lambda_,
        source_streams(routes),
    )
    removed: list[Removed] = list(finished)
    try:
        decommission(
            ctx.clients.dynamodb,
            ctx.store,
            doomed,
            cutover_sk=facts.latest.sk,
            replicator=tuple(sorted(replicator | set(killed))),
            say=say,
            removed=removed,
        )
        stopped = stop_reverse(ctx, routes, replicator | set(killed), say)
    except DualwriteError as exc:
        partial = DecommissionResult(
            Status.DONE, already_gone=gone, gate=decision, removed=tuple(removed)
        )
        raise DecommissionFailed(exc, partial) from exc
    return DecommissionResult(
        Status.DONE,
        already_gone=gone,
        gate=decision,
        removed=tuple(removed),
        warnings=(*warnings, *stopped),
    )


def stop_reverse(
    ctx: CutoverContext,
    routes: list[RouteTables],
    replicator: set[str],
    say: Callable[[str], None],
) -> tuple[str, ...]:
    """Reverse replication has nowhere to write once the old tables are gone: disable the
    replicator's mappings on each target stream whose routes' sources are all deleted (the
    replicator also skips those records itself, so a mapping left enabled only costs reads)."""
    gone = {r.source for r in routes if tables.describe(ctx.clients.dynamodb, r.source) is None}
    streams = [
        r.target_table.stream_arn
        for r in routes
        if r.target_table is not None
        and r.target_table.stream_arn
        and all(o.source in gone for o in routes if o.target == r.target)
    ]
    notes = []
    for m in reverse_mappings.reverse_candidates(ctx.clients.lambda_, streams, replicator):
        if str(m.get("State")) not in ("Enabled", "Enabling"):
            continue
        uuid = str(m["UUID"])
        say(f"disabling reverse replication's event source mapping {uuid}")
        with aws_call(f"UpdateEventSourceMapping {uuid}"):
            ctx.clients.lambda_.update_event_source_mapping(UUID=uuid, Enabled=False)
        notes.append(
            f"event source mapping {uuid} (reverse replication from {m.get('EventSourceArn')}) "
            "disabled: the tables it wrote are decommissioned"
        )
    return tuple(notes)
