"""The adapter that applies a batch of stream records (the I/O around planning).

A record's table is a route's source (side SOURCE) or a route's target (side TARGET; a target
shared by routes, such as CoreTable, is dispatched by key: the route whose mapping owns it).
Per route:
1. hold: a route whose backfill is not complete is not written; its source records are
   reported failed (the stream keeps them) - DESIGN.md section 2, step 3;
2. direction (DESIGN.md section 8): per record `decide(direction, side, created_at)`: apply
   forward (forward_apply) or in reverse (reverse_apply), wait for the old direction's drain
   (HELD), skip, or check a source write for a foreign one. The Lambda, which cannot see the
   old direction's shards, counts a drain done by time (drained_by_time); the local runner
   marks it exactly. After a rollback's drain, forward re-maps the foreign writes (remap).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dualwrite.aws import tables
from dualwrite.aws.clients import Clients
from dualwrite.aws.cognito import CognitoNames, user_pool
from dualwrite.aws.dynamo import RequestCounter
from dualwrite.backoff import Backoff
from dualwrite.config import Migration, Route
from dualwrite.control import ControlStore
from dualwrite.errors import ConfigError, DualwriteError
from dualwrite.mapping import DeclarativeSpec, checked_mapping
from dualwrite.mapping.base import Mapping
from dualwrite.reverse.direction import (
    Direction,
    Flow,
    Side,
    Verdict,
    decide,
    drained_by_time,
    flow_of,
)
from dualwrite.wire import AttributeValue
from stream_replicator import forward_apply, reverse_apply
from stream_replicator.directions import DirectionBook
from stream_replicator.quarantine import quarantine_record
from stream_replicator.records import Change, StreamRecord, parse
from stream_replicator.remap import remap_foreign
from stream_replicator.results import (
    APPLIED,
    FAILED,
    HELD,
    QUARANTINED,
    SKIPPED,
    BatchResult,
    Mark,
    RouteCounts,
)
from stream_replicator.routing import KeyRouter

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

    apply(records, remaining_ms) -> BatchResult: per record APPLIED, QUARANTINED, FAILED,
    HELD (route not backfilled, or waiting for a drain) or SKIPPED, per route counts.
    remaining_ms is the Lambda context's get_remaining_time_in_millis: every write is tried
    once, and UnprocessedItems are retried with backoff only while more than `time_margin_ms`
    is left; what is still unprocessed then fails (and is redelivered) instead of timing the
    invocation out.

    phase_ttl: how long a route seen as backfilled, and a route's direction, are trusted
    without reading them again (0, the Lambda default: read once per batch). drain_by_time:
    count an old direction drained by the clock (Lambda); the local runner, which sees the
    shards, sets it False and marks drains itself. dynamodb: a client to use instead of
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
        self._routers: dict[tuple[str, tuple[str, ...]], KeyRouter] = {}
        self.directions = DirectionBook(store, monotonic, phase_ttl, clock)
        self.drain_by_time = True
        #: route -> switched_at of the rollback whose foreign writes this process re-mapped
        self._remapped: dict[str, float] = {}

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

    def routes_for_target(self, table: str, changes: Sequence[Change]) -> list[Route]:
        """The route of each target-stream record of a table (routing.route_of_key)."""
        routes = [r for r in self.migration.routes if r.target == table]
        if not routes:
            self.route_for_table(table)  # raises: no route reads or writes this table
        if len(routes) == 1:
            return [routes[0]] * len(changes)
        mappings = [(r, ctx.mapping) for r in routes if (ctx := self.live_context(r))]
        if not mappings:
            return [routes[0]] * len(changes)
        live = (table, tuple(r.name for r, _ in mappings))
        router = self._routers.get(live) or self._routers.setdefault(
            live, KeyRouter(mappings, routes[0])
        )
        return [router.route(c.body.get("Keys")) for c in changes]

    def context(self, route: Route) -> RouteContext:
        ctx = self._contexts.get(route.name)
        if ctx is None:
            desc = tables.describe(self.dynamodb, route.source)
            if desc is None:
                raise ConfigError(f"route {route.name}: source table {route.source} does not exist")
            # the target's key orders a declarative `key:` (only it: no DescribeTable more at
            # a cold start for the other mappings)
            target_key = (
                tables.key_schema_or_none(tables.describe(self.dynamodb, route.target))
                if isinstance(route.mapping, DeclarativeSpec)
                else None
            )
            # a mapping that cannot work on the source (a mistyped placeholder) fails the batch,
            # kept in the stream: quarantined, every live change would block the cutover
            mapping = checked_mapping(
                route.name, route.mapping, tables.key_schema_of(desc), target_key
            )
            ctx = RouteContext(route, mapping, mapping.target_key.names)
            self._contexts[route.name] = ctx
        return ctx

    def live_context(self, route: Route) -> RouteContext | None:
        """The route's context; None once its source table was decommissioned (deleted on
        purpose, recorded in the control table): reverse replication has nowhere to write."""
        try:
            return self.context(route)
        except ConfigError:
            if self.store.get("DECOMMISSION", route.source) is None:
                raise
            return None

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

    def direction(
        self, ctx: RouteContext, has_time: Callable[[], bool], newest: float | None = None
    ) -> Direction:
        """The route's direction for records made up to `newest` (None: now); a drain the
        clock says is over is marked (Lambda), and after a rollback's drain the foreign
        writes are re-mapped once per process."""
        route = ctx.route.name
        state = self.directions.get(route, newest)
        if self.drain_by_time and not state.old_drained and drained_by_time(state, self.clock()):
            try:
                state = self.directions.mark_drained(route, state)
            except DualwriteError as exc:
                log.warning("route %s: could not record the drain (%s)", route, exc)
        if (
            state.direction is Flow.FORWARD
            and state.switched_at is not None
            and state.old_drained
            and self._remapped.get(route) != state.switched_at
        ):
            self.remap(ctx, state, has_time)
        return state

    def remap(self, ctx: RouteContext, state: Direction, has_time: Callable[[], bool]) -> int:
        """Re-map the route's foreign writes into its target (after a rollback's drain)."""
        try:
            done, left = remap_foreign(self, ctx, has_time)
        except DualwriteError as exc:
            log.warning("route %s: re-mapping foreign writes failed (%s)", ctx.route.name, exc)
            return 0
        if not left and state.switched_at is not None:
            self._remapped[ctx.route.name] = state.switched_at
        return done

    def name_for(self, group: AttributeValue) -> str | None:
        if self._names is None:
            self._names = user_pool(self.clients, self.migration.cognito_user_pool_id)
            if self._names is None:
                return None
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
        work: dict[tuple[str, Side], list[Change]] = {}
        owner: dict[int, str] = {}
        for table, table_changes in by_table.items():
            route = self.migration.route_for_source(table)
            if route is not None:
                work[(route.name, Side.SOURCE)] = table_changes
                owner.update((c.index, route.name) for c in table_changes)
                continue
            for c, target_route in zip(
                table_changes, self.routes_for_target(table, table_changes), strict=True
            ):
                work.setdefault((target_route.name, Side.TARGET), []).append(c)
                owner[c.index] = target_route.name
        n = len(changes)
        result = BatchResult(
            [c.sequence_number for c in changes],
            [APPLIED] * n,
            [None] * n,
            unknown_roles=[False] * n,
            ttl_deletes=[False] * n,
            route_names=[owner[c.index] for c in changes],
            streams=[c.raw["eventSourceARN"] for c in changes],
            marks=[None] * n,
        )

        def has_time() -> bool:
            if remaining_ms is None:
                return True
            left = remaining_ms()
            # a context that does not know (a test double) does not stop anything
            return not isinstance(left, int | float) or left > self.time_margin_ms

        for (route_name, side), route_changes in work.items():
            counts = result.routes.setdefault(route_name, RouteCounts())
            counts.records += len(route_changes)
            if side is Side.SOURCE and not self.is_backfilled(route_name):
                log.warning(
                    "route %s is not backfilled yet: %d record(s) held for redelivery",
                    route_name,
                    len(route_changes),
                )
                for c in route_changes:
                    result.outcomes[c.index] = HELD
                    result.reasons[c.index] = "route not backfilled yet"
                counts.held += len(route_changes)
                continue
            ctx = self.live_context(self.migration.route(route_name))
            if ctx is None:  # decommissioned: what is left in the target's stream is moot
                for c in route_changes:
                    result.mark(c.index, SKIPPED, None, None)
                counts.skipped += len(route_changes)
                continue
            times = [c.created_at for c in route_changes if c.created_at is not None]
            state = self.direction(ctx, has_time, max(times) if times else None)
            if state.switched_at is None and side is Side.SOURCE:  # forward, never switched
                forward_apply.apply_forward(self, ctx, route_changes, result, counts, has_time)
                continue
            self._follow(ctx, state, side, route_changes, result, counts, has_time)
        return result

    def _late(self, state: Direction, side: Side, c: Change) -> bool:
        """An old-direction record made before T+O, delivered after the drain was counted
        done: by the clock (the Lambda's rule: it cannot see the shards), so it kept failing
        past the grace or is a redelivery; or by the local runner, which read the stream to
        what looked like its end (GetRecords may answer empty pages before a portion that
        holds records). The new direction applies now, so it must not be applied over what
        that wrote; nor may it be acknowledged unseen."""
        until = state.drain_until
        return (
            state.old_drained
            and flow_of(side) is not state.direction
            and until is not None
            and c.created_at is not None
            and c.created_at < until
        )

    def _quarantine_late(
        self,
        ctx: RouteContext,
        state: Direction,
        side: Side,
        c: Change,
        result: BatchResult,
        counts: RouteCounts,
    ) -> None:
        old, new = flow_of(side).value, state.direction.value
        reason = (
            f"late: a {old} record made before the switch to {new} drained the {old} "
            f"direction, delivered after it; not applied, so as not to overwrite what {new} "
            "replication has written since (an earlier delivery may have applied it): "
            "check the key on both sides"
        )
        if quarantine_record(self.store, ctx.route.name, c, reason, now=self.clock()):
            result.mark(c.index, QUARANTINED, None, reason)
            counts.quarantined += 1
        else:
            result.mark(c.index, FAILED, None, "could not write the quarantine entry")
            counts.failed += 1

    def _follow(
        self,
        ctx: RouteContext,
        state: Direction,
        side: Side,
        changes: Sequence[Change],
        result: BatchResult,
        counts: RouteCounts,
        has_time: Callable[[], bool],
    ) -> None:
        """Each record as the route's direction says (reverse-wiring decision 5)."""
        now: list[Change] = []
        check: list[Change] = []
        late = 0
        for c in changes:
            verdict = decide(state, side, c.created_at)
            if verdict is Verdict.APPLY:
                now.append(c)
            elif verdict is Verdict.WAIT:
                why = (
                    f"waiting for the {state.applying.value} direction to drain"
                    if flow_of(side) is state.direction
                    else f"waiting for the switch to {flow_of(side).value} being made"
                )
                result.mark(c.index, HELD, Mark.WAITING, why)
                counts.waiting += 1
            elif verdict is Verdict.CHECK_FOREIGN and side is Side.SOURCE:
                check.append(c)
            elif verdict is Verdict.SKIP and self._late(state, side, c):
                self._quarantine_late(ctx, state, side, c, result, counts)
            else:  # SKIP; or a target-stream record after a rollback's drain: forward owns it
                result.mark(c.index, SKIPPED, None, None)
                counts.skipped += 1
                late += verdict is Verdict.CHECK_FOREIGN
        if late:
            log.info(
                "route %s: %d write(s) to %s after the rollback's drain left to forward",
                ctx.route.name,
                late,
                ctx.route.target,
            )
        if now and side is Side.SOURCE:
            forward_apply.apply_forward(self, ctx, now, result, counts, has_time)
        elif now:
            reverse_apply.apply_target(self, ctx, now, result, counts, has_time)
        if check:
            reverse_apply.check_foreign(self, ctx, state, check, result, counts)
