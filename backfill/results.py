"""What a local backfill did: per route, counted as its segments finish; JSON at the CLI edge.

`backfill --json` prints BackfillResult.to_json(): {"routes": [{"route", "source", "target",
"mode", "items_read", "items_written", "quarantined", "skipped_existing", "deleted",
"segments", "segments_resumed", "write_requests", "consumed_wcu", "approx_items", "complete",
"phase", "needs_repair", "event_source_mappings"[, "repair_reason", "event_source_error"],
"duration_s"}], "duration_s"}.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from backfill.event_sources import MappingState
from backfill.lifecycle import RouteCompletion, RoutePlan
from backfill.segment import SegmentOutcome
from dualwrite.control import Phase
from dualwrite.jsondoc import JsonObject


@dataclass(frozen=True)
class RouteBackfillResult:
    route: str
    source: str
    target: str
    #: "batch", or "put-if-absent" for a BACKFILLED route's re-run
    mode: str
    items_read: int
    items_written: int
    quarantined: int
    skipped_existing: int
    deleted: int
    segments: int
    segments_resumed: int
    write_requests: int
    consumed_wcu: float
    approx_items: int
    complete: bool
    phase: Phase
    needs_repair: bool
    event_source_mappings: tuple[MappingState, ...]
    repair_reason: str | None
    event_source_error: str | None
    duration_s: float

    def to_json(self) -> JsonObject:
        out: JsonObject = {
            "route": self.route,
            "source": self.source,
            "target": self.target,
            "mode": self.mode,
            "items_read": self.items_read,
            "items_written": self.items_written,
            "quarantined": self.quarantined,
            "skipped_existing": self.skipped_existing,
            "deleted": self.deleted,
            "segments": self.segments,
            "segments_resumed": self.segments_resumed,
            "write_requests": self.write_requests,
            "consumed_wcu": self.consumed_wcu,
            "approx_items": self.approx_items,
            "complete": self.complete,
            "phase": self.phase.value,
            "needs_repair": self.needs_repair,
            "event_source_mappings": [m.to_json() for m in self.event_source_mappings],
        }
        if self.repair_reason:
            out["repair_reason"] = self.repair_reason
        if self.event_source_error is not None:
            out["event_source_error"] = self.event_source_error
        out["duration_s"] = self.duration_s
        return out


@dataclass(frozen=True)
class BackfillResult:
    routes: tuple[RouteBackfillResult, ...]
    duration_s: float

    def route(self, name: str) -> RouteBackfillResult:
        return next(r for r in self.routes if r.route == name)

    def to_json(self) -> JsonObject:
        return {"routes": [r.to_json() for r in self.routes], "duration_s": self.duration_s}


@dataclass
class RouteTally:
    """One route's counts as its segments finish (on the job's thread)."""

    plan: RoutePlan
    items_read: int = 0
    items_written: int = 0
    quarantined: int = 0
    skipped_existing: int = 0
    deleted: int = 0
    write_requests: int = 0
    consumed_wcu: float = 0.0
    resumed: int = 0
    finished: int = 0
    outcome: RouteCompletion | None = None
    started: float = field(default_factory=time.monotonic)
    duration_s: float = 0.0

    def add(self, o: SegmentOutcome) -> None:
        self.items_read += o.items_read
        self.items_written += o.items_written
        self.quarantined += o.quarantined
        self.skipped_existing += o.skipped_existing
        self.deleted += o.deleted
        self.write_requests += o.write_requests
        self.consumed_wcu += o.consumed_wcu
        self.resumed += int(o.resumed)
        self.finished += int(o.done)

    @property
    def complete(self) -> bool:
        return self.finished == len(self.plan.todo)

    def result(self) -> RouteBackfillResult:
        plan, outcome = self.plan, self.outcome
        return RouteBackfillResult(
            route=plan.name,
            source=plan.spec.route.source,
            target=plan.spec.route.target,
            mode="put-if-absent" if plan.conditional else "batch",
            items_read=self.items_read,
            items_written=self.items_written,
            quarantined=self.quarantined,
            skipped_existing=self.skipped_existing,
            deleted=self.deleted,
            segments=plan.total,
            segments_resumed=self.resumed + (plan.total - len(plan.todo)),
            write_requests=self.write_requests,
            consumed_wcu=round(self.consumed_wcu, 1),
            approx_items=plan.spec.approx_items,
            complete=self.complete and outcome is not None,
            # stopped before its end: the stored phase (a re-run of a BACKFILLED route
            # keeps it; this said "backfilling" while status said "backfilled")
            phase=outcome.phase
            if outcome
            else (Phase.BACKFILLED if plan.conditional else Phase.BACKFILLING),
            needs_repair=outcome.needs_repair if outcome else False,
            event_source_mappings=outcome.event_source_mappings if outcome else (),
            repair_reason=outcome.repair_reason if outcome else None,
            event_source_error=outcome.event_source_error if outcome else None,
            duration_s=round(self.duration_s, 3),
        )
