"""A route's backfill lifecycle: PENDING -> BACKFILLING -> BACKFILLED.

A route goes PENDING -> BACKFILLING (backfill_started_at) -> BACKFILLED (backfill_completed_at,
needs_repair, repair_reason) once every segment is done; the replicator applies a route only
from BACKFILLED on. A route already BACKFILLED is copied again only with put-if-absent writes
(see backfill.writer) and stays BACKFILLED.

The transitions (`began`, `completed`) are pure: they take the route's RoutePhase and its
checkpoints and return the phase to record. `plan_route` and `complete_route` read and write
them through the control store; the local job (backfill.job) and the Step Functions workers
(backfill.worker) both call them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from backfill.event_sources import MappingState, enable_mappings
from backfill.retention import backfill_started_at, retention_problem, stream_created_at
from backfill.route import RouteSpec
from backfill.sizing import DEFAULT_WORKERS, default_segments
from dualwrite.control import ControlStore, Phase
from dualwrite.control.phases import RoutePhase
from dualwrite.control.segments import SegmentState
from dualwrite.errors import BackfillIncompleteError, ConfigError
from dualwrite.jsondoc import JsonObject

Warn = Callable[[str], None]


def stderr_warning(message: str) -> None:
    sys.stderr.write(f"WARNING: {message}\n")
    sys.stderr.flush()


@dataclass(frozen=True)
class RoutePlan:
    spec: RouteSpec
    total: int
    conditional: bool
    checkpoints: dict[int, SegmentState]

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def todo(self) -> list[int]:
        return [
            i for i in range(self.total) if not (i in self.checkpoints and self.checkpoints[i].done)
        ]

    @property
    def already_read(self) -> int:
        return sum(cp.items_read for cp in self.checkpoints.values())


@dataclass(frozen=True)
class RouteCompletion:
    """What completing a route recorded (and the event source mappings it enabled)."""

    route: str
    phase: Phase
    needs_repair: bool
    repair_reason: str | None = None
    event_source_mappings: tuple[MappingState, ...] = ()
    #: the copy is complete; only enabling the replicator's mappings failed
    event_source_error: str | None = None

    def to_json(self) -> JsonObject:
        out: JsonObject = {
            "route": self.route,
            "phase": self.phase.value,
            "needs_repair": self.needs_repair,
            "event_source_mappings": [m.to_json() for m in self.event_source_mappings],
        }
        if self.repair_reason:
            out["repair_reason"] = self.repair_reason
        return out


# --- the transitions (pure) -----------------------------------------------------------------
def checkpointed_total(
    route: str, checkpoints: Sequence[SegmentState], segments: int | None
) -> int | None:
    """The segment count of a route's checkpoints (None: none), refusing another count for
    an unfinished backfill. A complete one keeps its count: there is nothing left to resume,
    so the re-run finds it complete whatever `segments` says."""
    totals = sorted({cp.total for cp in checkpoints})
    if len(totals) > 1:
        raise ConfigError(
            f"route {route} has checkpoints for {' and '.join(map(str, totals))} segments: "
            "run the backfill with --restart"
        )
    unfinished = bool(totals) and bool(missing_segments(checkpoints, totals[0]))
    if unfinished and segments is not None and segments != totals[0]:
        raise ConfigError(
            f"route {route} has checkpoints of a backfill with {totals[0]} segments: pass "
            f"--segments {totals[0]} to resume it, or --restart to start over"
        )
    return totals[0] if totals else None


def began(phase: RoutePhase, *, total: int, restart: bool, now: float) -> RoutePhase | None:
    """The phase a (re)started backfill records, or None when the record stays: a BACKFILLED
    route (a put-if-absent re-run) or a resumed BACKFILLING one."""
    if phase.backfilled:
        return None
    if not restart and phase.phase is Phase.BACKFILLING and phase.backfill_started_at:
        return None
    return phase.entered(
        Phase.BACKFILLING,
        now,
        backfill_started_at=now,
        backfill_completed_at=None,
        needs_repair=False,
        repair_reason=None,
        total_segments=total,
    )


def missing_segments(checkpoints: Sequence[SegmentState], total: int) -> list[int]:
    done = {cp.segment for cp in checkpoints if cp.total == total and cp.done}
    return [i for i in range(total) if i not in done]


def completed(
    phase: RoutePhase, *, total: int, problem: str | None, now: float, record: bool
) -> RoutePhase | None:
    """The phase a completed copy records (None: nothing to record). A re-run of a BACKFILLED
    route stays as the replicator knows it, with the time it completed."""
    if phase.backfilled:
        return replace(phase, rerun_completed_at=now) if record else None
    return phase.entered(
        Phase.BACKFILLED,
        now,
        backfill_completed_at=now,
        needs_repair=problem is not None,
        repair_reason=problem or phase.repair_reason,
        total_segments=total,
    )


# --- through the control store --------------------------------------------------------------
def plan_route(
    store: ControlStore,
    spec: RouteSpec,
    *,
    segments: int | None = None,
    restart: bool = False,
    warn: Warn = stderr_warning,
    workers: int = DEFAULT_WORKERS,
) -> RoutePlan:
    """Settle a route's segment count and mode, and mark it BACKFILLING (unless it is
    BACKFILLED already: then the copy is a put-if-absent re-run)."""
    name = spec.name
    phase = store.phase(name)
    if restart:
        store.clear_segments(name)
    checkpoints = store.segments(name)
    total = (
        checkpointed_total(name, checkpoints, segments)
        or segments
        or default_segments(spec.approx_items, spec.size_bytes, workers)
    )
    now = store.now()
    if not phase.backfilled:
        started = began(phase, total=total, restart=restart, now=now)
        if started is not None:
            phase = store.save_phase(name, started)
        problem = retention_problem(
            backfill_started_at(phase, checkpoints), now, stream_created_at(spec.stream_label)
        )
        if problem:
            warn(f"route {name}: {problem}. It will be marked as needing a repair pass.")
    return RoutePlan(spec, total, phase.backfilled, {cp.segment: cp for cp in checkpoints})


def complete_route(
    store: ControlStore,
    spec: RouteSpec,
    total: int,
    *,
    lambda_client: Any | None = None,
    warn: Warn = stderr_warning,
    record: bool = True,
    replicator: str | None = None,
) -> RouteCompletion:
    """Mark a route BACKFILLED once every segment is done (else BackfillIncompleteError),
    with the retention guard, then enable its event source mappings (lambda_client given)."""
    name = spec.name
    checkpoints = [cp for cp in store.segments(name) if cp.total == total]
    missing = missing_segments(checkpoints, total)
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
        raise BackfillIncompleteError(
            f"route {name}: {len(missing)} of {total} segment(s) not done yet ({shown})"
        )
    phase = store.phase(name)
    now = store.now()
    problem = None
    if not phase.backfilled:
        problem = retention_problem(
            backfill_started_at(phase, checkpoints), now, stream_created_at(spec.stream_label)
        )
        if problem:
            warn(
                f"route {name}: {problem}. The route is marked as needing a repair pass: run "
                f"`dualwrite reconcile --route {name} --repair` once replication has caught up."
            )
    done = completed(phase, total=total, problem=problem, now=now, record=record)
    if done is not None:
        phase = store.save_phase(name, done)
    mappings: tuple[MappingState, ...] = ()
    if lambda_client is not None and spec.stream_arn:
        mappings = enable_mappings(lambda_client, spec.stream_arn, replicator)
    return RouteCompletion(
        route=name,
        phase=phase.phase,
        needs_repair=phase.needs_repair,
        repair_reason=phase.repair_reason,
        event_source_mappings=mappings,
    )
