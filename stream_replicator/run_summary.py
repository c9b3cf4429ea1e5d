"""What a run of the local runner did: the record `replicate --json` prints (to_json) and the
demo reads."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


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

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
