"""The adapter that applies a batch of stream records to the targets (the I/O around planning).

Per route, in this order:
1. hold: a route whose backfill is not complete is not written; its records are reported
   failed (the stream keeps them) - DESIGN.md section 2, step 3;
2. quarantine: records the mapping cannot migrate go to the control table with the full
   record and the reason (once per record, even when the stream delivers it again);
3. derived items: each affected group (user) is recomputed once from a strongly consistent
   Query of the source, and deleted when no member remains;
4. writes: one write per target key, 25 per BatchWriteItem, UnprocessedItems retried with
   backoff and jitter while the invocation has time left;
5. failures: whatever could not be done fails its records and every later record of the same
   source key, and nothing of those is written.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dualwrite.aws import tables
from dualwrite.aws.clients import Clients
from dualwrite.aws.cognito import CognitoNames
from dualwrite.aws.dynamo import RequestCounter, query_all
from dualwrite.backoff import Backoff
from dualwrite.config import Migration, Route
from dualwrite.control import ControlStore
from dualwrite.errors import ConfigError, DualwriteError
from dualwrite.mapping import build_mapping
from dualwrite.mapping.base import Mapping
from dualwrite.wire import AttributeValue
from stream_replicator.planning import (
    QUARANTINE,
    KeyIdentity,
    TargetWrite,
    classify,
    close_failures,
    coalesce,
    fast_key_id,
)
from stream_replicator.quarantine import quarantine_record
from stream_replicator.records import Change, StreamRecord, parse
from stream_replicator.results import (
    APPLIED,
    FAILED,
    HELD,
    QUARANTINED,
    BatchResult,
    RouteCounts,
)
from stream_replicator.target_writes import TargetWriter

log = logging.getLogger("dualwrite-replicator.apply")


@dataclass(frozen=True)
class RouteContext:
    route: Route
    mapping: Mapping
    target_key_names: tuple[str, ...]


class Replicator:
    """Applies batches of Lambda-shaped stream records; one per process (Lambda container or
    local runner). Clients, mappings and source key schemas (DescribeTable) are resolved lazily
    and cached.

    apply(records, remaining_ms) -> BatchResult: per record APPLIED, QUARANTINED, FAILED or
    HELD (route not backfilled), per route counts. remaining_ms is the Lambda context's
    get_remaining_time_in_millis: every write is tried once, and UnprocessedItems are retried
    with backoff only while more than `time_margin_ms` is left; what is still unprocessed then
    fails (and is redelivered) instead of timing the invocation out.

    phase_ttl: how long a route seen as backfilled is trusted without reading its phase again
    (0, the Lambda default: read once per batch). dynamodb: a client to use instead of
    clients.dynamodb (tests inject faults, the benchmark an in-memory table).
    """

    def __init__(
        self,
        migration: Migration,
        clients: Clients,
        store: ControlStore,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        backoff: Backoff | None = None,
        counter: RequestCounter | None = None,
        phase_ttl: float = 0.0,
        time_margin_ms: int = 2000,
        max_write_attempts: int = 12,
        dynamodb: Any = None,
    ) -> None:
        self.migration = migration
        self.clients = clients
        self.store = store
        self.clock = clock
        self.monotonic = monotonic
        # short waits: UnprocessedItems are retried only while the invocation has time left
        self.backoff = backoff or Backoff(base=0.05, cap=1.0)
        self.counter = counter
        self.phase_ttl = phase_ttl
        self.time_margin_ms = time_margin_ms
        self.max_write_attempts = max_write_attempts
        self._dynamodb = dynamodb
        self._contexts: dict[str, RouteContext] = {}
        self._backfilled_at: dict[str, float] = {}
        self._tables: dict[str, str] = {}
        self._names: CognitoNames | None = None

    # --- configuration ------------------------------------------------------------------
    @property
    def dynamodb(self) -> Any:
        return self._dynamodb if self._dynamodb is not None else self.clients.dynamodb

    def route_for_table(self, table: str) -> Route:
        route = self.migration.route_for_source(table)
        if route is None:
            raise ConfigError(
                f"stream record from table {table}, which no route of the migration file reads "
                f"(sources: {', '.join(r.source for r in self.migration.routes)})"
            )
        return route

    def context(self, route: Route) -> RouteContext:
        ctx = self._contexts.get(route.name)
        if ctx is None:
            desc = tables.describe(self.dynamodb, route.source)
            if desc is None:
                raise ConfigError(f"route {route.name}: source table {route.source} does not exist")
            mapping = build_mapping(route.mapping, tables.key_schema_of(desc))
            ctx = RouteContext(route, mapping, mapping.target_key.names)
            self._contexts[route.name] = ctx
        return ctx

    def is_backfilled(self, route: str) -> bool:
        seen = self._backfilled_at.get(route)
        now = self.monotonic()
        if seen is not None and now - seen < self.phase_ttl:
            return True
        if self.store.is_backfilled(route):
            self._backfilled_at[route] = now
            return True
        self._backfilled_at.pop(route, None)
        return False

    def _name_for(self, group: AttributeValue) -> str | None:
        pool = self.migration.cognito_user_pool_id
        if not pool:
            return None
        if self._names is None:
            self._names = CognitoNames(self.clients.client("cognito-idp"), pool)
        return self._names.name_for(group)

    # --- one batch ----------------------------------------------------------------------
    def apply(
        self,
        records: Sequence[StreamRecord],
        remaining_ms: Callable[[], int] | None = None,
    ) -> BatchResult:
        """Apply one batch (a Lambda event's Records). Raises for a record of an unknown table
        or without a sequence number: the whole batch fails, loudly."""
        changes = [parse(r, i, self._tables) for i, r in enumerate(records)]
        by_table: dict[str, list[Change]] = {}
        for change in changes:
            by_table.setdefault(change.table, []).append(change)
        # every table is resolved before anything is applied: an unknown one fails the batch
        routes = {table: self.route_for_table(table) for table in by_table}
        result = BatchResult(
            [c.sequence_number for c in changes],
            [APPLIED] * len(changes),
            [None] * len(changes),
            unknown_roles=[False] * len(changes),
            ttl_deletes=[False] * len(changes),
            route_names=[routes[c.table].name for c in changes],
            streams=[c.raw["eventSourceARN"] for c in changes],
        )

        def has_time() -> bool:
            if remaining_ms is None:
                return True
            left = remaining_ms()
            # a context that does not know (a test double) does not stop anything
            return not isinstance(left, int | float) or left > self.time_margin_ms

        for table, route_changes in by_table.items():
            route = routes[table]
            route_name = route.name
            counts = RouteCounts(records=len(route_changes))
            result.routes[route_name] = counts
            if not self.is_backfilled(route_name):
                log.warning(
                    "route %s is not backfilled yet: %d record(s) held for redelivery",
                    route_name,
                    len(route_changes),
                )
                for c in route_changes:
                    result.outcomes[c.index] = HELD
                    result.reasons[c.index] = "route not backfilled yet"
                counts.held = len(route_changes)
                continue
            self._apply_route(self.context(route), route_changes, result, counts, has_time)
        return result

    def _apply_route(
        self,
        ctx: RouteContext,
        changes: Sequence[Change],
        result: BatchResult,
        counts: RouteCounts,
        has_time: Callable[[], bool],
    ) -> None:
        items = [classify(ctx.mapping, c, ctx.target_key_names) for c in changes]
        failed: set[int] = set()
        quarantined: set[int] = set()

        # 2. quarantine first: a record whose quarantine cannot be written must fail, and then
        # later records of its key must not be applied either
        for c in items:
            if c.kind != QUARANTINE:
                continue
            if self._quarantine(ctx, c.change, c.reason or "unmappable"):
                quarantined.add(c.change.index)
            else:
                failed.add(c.change.index)
                result.reasons[c.change.index] = "could not write the quarantine entry"

        # 3. derived items from the source's current state (a consistent Query per group)
        plan = coalesce(items, failed, ctx.target_key_names)
        derived: dict[KeyIdentity, TargetWrite] = {}
        for gkid, work in plan.groups.items():
            try:
                members = query_all(
                    self.dynamodb,
                    ctx.route.source,
                    ctx.mapping.group_attr or "",
                    work.value,
                    consistent=True,
                    counter=self.counter,
                )
                name = self._name_for(work.value) if members else None
            except DualwriteError as exc:
                log.warning(
                    "route %s: recomputing a derived item failed (%s); %d record(s) retried",
                    ctx.route.name,
                    type(exc).__name__,
                    len(work.contributors),
                )
                failed.update(work.contributors)
                for i in work.contributors:
                    result.reasons[i] = f"derived item: {exc}"
                continue
            key = ctx.mapping.derived_key(work.value)
            derived[gkid] = TargetWrite(key, ctx.mapping.derive(work.value, members, name))

        # 4. the writes of everything still standing
        if failed:
            plan = coalesce(items, failed, ctx.target_key_names)
        writes: dict[KeyIdentity, TargetWrite] = dict(plan.writes)
        for gkid, work in plan.groups.items():
            write = derived.get(gkid)
            if write is None:
                continue
            write.contributors = list(work.contributors)
            dkid = fast_key_id(write.key, ctx.target_key_names)
            clash = writes.get(dkid)
            if clash is not None:  # a custom mapping may derive onto a direct key
                write.contributors = sorted({*clash.contributors, *write.contributors})
            writes[dkid] = write
        writer = TargetWriter(self.backoff, self.max_write_attempts, self.counter)
        written = writer.write(
            self.dynamodb, ctx.route.target, ctx.target_key_names, list(writes.values()), has_time
        )
        for write, why in written.lost:
            failed.update(write.contributors)
            for i in write.contributors:
                result.reasons[i] = why
        for write, reason in written.rejected:
            culprit = max(write.contributors)
            item = next(c for c in items if c.change.index == culprit)
            if self._quarantine(ctx, item.change, reason):
                quarantined.add(culprit)
            else:
                failed.update(write.contributors)

        # 5. outcomes
        final_failed = close_failures(items, failed | plan.blocked)
        now_ms = self.clock() * 1000.0
        newest: float | None = None
        for c in items:
            index = c.change.index
            if index in final_failed:
                result.outcomes[index] = FAILED
                if result.reasons[index] is None:
                    result.reasons[index] = "an earlier record of the same key failed"
                counts.failed += 1
            elif index in quarantined:
                result.outcomes[index] = QUARANTINED
                counts.quarantined += 1
            else:
                result.outcomes[index] = APPLIED
                counts.applied += 1
                counts.unknown_role += int(c.unknown_role)
                result.unknown_roles[index] = c.unknown_role
                counts.ttl_deletes += int(c.change.ttl_delete)
                result.ttl_deletes[index] = c.change.ttl_delete
                created = c.change.created_at
                if created is not None and (newest is None or created > newest):
                    newest = created
        if newest is not None:
            counts.lag_ms = max(0, int(now_ms - newest * 1000.0))
        if counts.failed:
            log.warning(
                "route %s: %d of %d record(s) failed and will be redelivered",
                ctx.route.name,
                counts.failed,
                counts.records,
            )

    def _quarantine(self, ctx: RouteContext, change: Change, reason: str) -> bool:
        return quarantine_record(self.store, ctx.route.name, change, reason, now=self.clock())
