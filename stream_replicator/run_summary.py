"""What a run of the local runner did: the record `replicate --json` prints (to_json) and the
demo reads, and the tally it is made from."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field

from dualwrite.config import Migration
from dualwrite.jsondoc import JsonObject
from stream_replicator.cursor import ShardCursor
from stream_replicator.results import RouteCounts


@dataclass(frozen=True)
class RouteSummary:
    route: str
    held: bool
    #: the route's phase while held, else "backfilled"
    phase: str
    records: int
    applied: int
    quarantined: int
    unknown_role: int
    shards: int


@dataclass(frozen=True)
class RunSummary:
    """records: read and checkpointed in this run, each once, when its outcome is final;
    applied and quarantined: their outcomes; failed: the failure reports (each is redelivered;
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
        self, route: str, settled: Iterable[RouteCounts], failures: int, lag_ms: int | None
    ) -> None:
        counts = self.counts.setdefault(route, RouteCounts())
        for part in settled:
            part.lag_ms = lag_ms
            counts.add(part)
        if lag_ms is not None:
            self.max_lag_ms = lag_ms if self.max_lag_ms is None else max(self.max_lag_ms, lag_ms)
        self.failed += failures

    def summary(
        self,
        migration: Migration,
        cursors: Mapping[str, Sequence[ShardCursor]],
        held: Mapping[str, str],
        *,
        duration_s: float,
        caught_up: bool,
    ) -> RunSummary:
        """cursors: per route; held: route -> its phase, for routes not backfilled yet."""
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
                    applied=counts.applied,
                    quarantined=counts.quarantined,
                    unknown_role=counts.unknown_role,
                    shards=len(cursors.get(route.name, ())),
                )
            )
        return RunSummary(
            records=total.records,
            applied=total.applied,
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
        )
