"""What a run of the local runner did: the record `replicate --json` prints (to_json) and the
demo reads, and the tally it is made from."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

from dualwrite.config import Migration
from dualwrite.jsondoc import JsonObject
from dualwrite.reverse.direction import Direction
from stream_replicator.cursor import ShardCursor
from stream_replicator.results import RouteCounts


@dataclass(frozen=True)
class RouteSummary:
    route: str
    held: bool
    #: the route's phase while held, else "backfilled"
    phase: str
    records: int
    #: forward and reverse (reverse_replicated is the reverse share)
    applied: int
    quarantined: int
    unknown_role: int
    shards: int
    #: the route's direction as last read ("forward" / "reverse")
    direction: str = "forward"
    #: a switch's old direction still drains
    drain_pending: bool = False
    reverse_replicated: int = 0
    foreign_writes: int = 0
    unrepresentable: int = 0
    waiting: int = 0
    skipped: int = 0


@dataclass(frozen=True)
class RunSummary:
    """records: read and checkpointed in this run, each once, when its outcome is final;
    applied and quarantined: their outcomes (applied in the live direction, forward or
    reverse: after a cutover `replicate --json` said "0 applied" of 22 records it wrote back;
    reverse_replicated is the reverse share); failed: the failure reports (each is redelivered;
    a record failing twice counts twice); lag_ms: now - ApproximateCreationDateTime of the
    newest record applied, max_lag_ms the largest such lag (both None when nothing was)."""

    records: int = 0
    applied: int = 0
    failed: int = 0
    quarantined: int = 0
    lag_ms: int | None = None
    max_lag_ms: int | None = None
    held_routes: list[str] = field(default_factory=list)
    routes: list[RouteSummary] = field(default_factory=list)
    shards: int = 0
    shards_done: int = 0
    trimmed_shards: list[str] = field(default_factory=list)
    renewed_iterators: int = 0
    stuck_shards: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    #: every shard of every backfilled route drained (until_caught_up runs)
    caught_up: bool = False
    #: of `applied`, those applied in reverse (target streams -> sources)
    reverse_replicated: int = 0
    #: source writes listed as foreign writes in this run
    foreign_writes: int = 0
    #: target changes the old schema cannot hold (quarantined; also in `quarantined`)
    unrepresentable: int = 0
    #: records settled without a write (the other direction's, or applied already)
    skipped: int = 0
    #: reports of records held until the old direction drains (not in `failed`)
    waiting: int = 0
    #: routes whose switch's drain this run completed
    drained_routes: list[str] = field(default_factory=list)
    #: routes whose switch still owes a drain
    drain_pending_routes: list[str] = field(default_factory=list)

    def to_json(self) -> JsonObject:
        return asdict(self)


@dataclass
class RunTally:
    """What a run has counted so far (per route, final records only: results.settle)."""

    counts: dict[str, RouteCounts] = field(default_factory=dict)
    failed: int = 0
    max_lag_ms: int | None = None
    trimmed: list[str] = field(default_factory=list)
    renewed: int = 0

    def add_batch(
        self, settled: Mapping[str, RouteCounts], failures: int, lag_ms: int | None
    ) -> None:
        """settled: per route (a target stream shared by two routes carries both)."""
        for route, part in settled.items():
            part.lag_ms = lag_ms
            self.counts.setdefault(route, RouteCounts()).add(part)
        if lag_ms is not None:
            self.max_lag_ms = lag_ms if self.max_lag_ms is None else max(self.max_lag_ms, lag_ms)
        self.failed += failures

    def summary(
        self,
        migration: Migration,
        cursors: Mapping[str, Sequence[ShardCursor]],
        held: Mapping[str, str],
        directions: Mapping[str, Direction],
        drained: Sequence[str],
        *,
        duration_s: float,
        caught_up: bool,
    ) -> RunSummary:
        """cursors: per stream (a source stream by its route's name); held: route -> its
        phase, for routes not backfilled yet; directions: route -> as last read; drained:
        routes whose drain this run marked."""
        total = RouteCounts()
        for counts in self.counts.values():
            total.add(counts)
        every = [c for route in cursors.values() for c in route]
        lags = [c.run_lag_ms for c in every if c.run_lag_ms is not None]
        routes: list[RouteSummary] = []
        for route in migration.routes:
            counts = self.counts.get(route.name) or RouteCounts()
            routes.append(
                RouteSummary(
                    route=route.name,
                    held=route.name in held,
                    phase=held.get(route.name, "backfilled"),
                    records=counts.records,
                    applied=counts.applied + counts.reverse_replicated,
                    quarantined=counts.quarantined,
                    unknown_role=counts.unknown_role,
                    shards=len(cursors.get(route.name, ())),
                    direction=directions.get(route.name, Direction()).direction.value,
                    drain_pending=not directions.get(route.name, Direction()).old_drained,
                    reverse_replicated=counts.reverse_replicated,
                    foreign_writes=counts.foreign_writes,
                    unrepresentable=counts.unrepresentable,
                    waiting=counts.waiting,
                    skipped=counts.skipped,
                )
            )
        return RunSummary(
            records=total.records,
            applied=total.applied + total.reverse_replicated,
            failed=self.failed,
            quarantined=total.quarantined,
            lag_ms=max(lags) if lags else None,
            max_lag_ms=self.max_lag_ms,
            held_routes=sorted(held),
            routes=routes,
            shards=len(every),
            shards_done=sum(1 for c in every if c.done),
            trimmed_shards=list(self.trimmed),
            renewed_iterators=self.renewed,
            stuck_shards=[f"{c.route}:{c.shard_id}" for c in every if c.stuck],
            duration_s=round(duration_s, 3),
            caught_up=caught_up,
            reverse_replicated=total.reverse_replicated,
            foreign_writes=total.foreign_writes,
            unrepresentable=total.unrepresentable,
            skipped=total.skipped,
            waiting=total.waiting,
            drained_routes=list(drained),
            drain_pending_routes=[r.route for r in routes if r.drain_pending],
        )
