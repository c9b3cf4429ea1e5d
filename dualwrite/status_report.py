"""What `dualwrite status` reports, as typed records, and the pure summaries that build them.

`StatusReport.to_json()` is the `status --json` object (DESIGN.md section 4); every record's
`to_json` gives exactly the keys status showed before it was typed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dualwrite.aws.streams import EventSourceMapping
from dualwrite.control import ReconcileRecord
from dualwrite.jsondoc import JsonObject


@dataclass(frozen=True)
class SegmentRow:
    segment: int
    done: bool
    items_read: int
    items_written: int
    quarantined: int
    updated_at: Any  # as the checkpoint holds it (epoch seconds, or None)

    def to_json(self) -> JsonObject:
        return {
            "segment": self.segment,
            "done": self.done,
            "items_read": self.items_read,
            "items_written": self.items_written,
            "quarantined": self.quarantined,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True)
class BackfillSummary:
    segments: int = 0
    segments_done: int = 0
    items_read: int = 0
    items_written: int = 0
    quarantined: int = 0
    checkpoints: tuple[SegmentRow, ...] = ()

    def to_json(self) -> JsonObject:
        return {
            "segments": self.segments,
            "segments_done": self.segments_done,
            "items_read": self.items_read,
            "items_written": self.items_written,
            "quarantined": self.quarantined,
            "checkpoints": [c.to_json() for c in self.checkpoints],
        }


@dataclass(frozen=True)
class ShardRow:
    shard_id: Any
    parent_shard_id: Any
    sequence_number: Any
    done: bool
    records: int
    lag_ms: Any
    caught_up_at: Any

    def to_json(self) -> JsonObject:
        return {
            "shard_id": self.shard_id,
            "parent_shard_id": self.parent_shard_id,
            "sequence_number": self.sequence_number,
            "done": self.done,
            "records": self.records,
            "lag_ms": self.lag_ms,
            "caught_up_at": self.caught_up_at,
        }


@dataclass(frozen=True)
class ReplicationSummary:
    stream_arn: str | None
    shards: tuple[ShardRow, ...] = ()
    records: int = 0
    lag_ms: float | None = None
    position: Mapping[str, Any] = field(default_factory=dict)
    caught_up_at: Any = None

    def to_json(self) -> JsonObject:
        return {
            "stream_arn": self.stream_arn,
            "shards": [s.to_json() for s in self.shards],
            "records": self.records,
            "lag_ms": self.lag_ms,
            "position": dict(self.position),
            "caught_up_at": self.caught_up_at,
        }


@dataclass(frozen=True)
class QuarantineView:
    """A quarantine entry with its source key but never the record (it may hold personal
    data such as emails)."""

    id: str
    route: Any
    key: Any  # the source key as Lambda JSON, or None
    reason: Any
    source: Any
    at: Any
    resolved: bool
    resolved_at: Any
    resolution: Any

    def to_json(self) -> JsonObject:
        return {
            "id": self.id,
            "route": self.route,
            "key": self.key,
            "reason": self.reason,
            "source": self.source,
            "at": self.at,
            "resolved": self.resolved,
            "resolved_at": self.resolved_at,
            "resolution": self.resolution,
        }


@dataclass(frozen=True)
class RouteStatus:
    route: str
    source: str
    target: str
    mapping: str
    source_exists: bool
    phase: Any
    phase_detail: Mapping[str, Any]  # the phase record as the control table holds it
    backfill: BackfillSummary
    replication: ReplicationSummary
    event_source_mappings: tuple[EventSourceMapping, ...]
    quarantined: int
    last_reconcile: ReconcileRecord | None
    reconcile_age_s: float | None  # None: no reconcile, or one without a time
    metrics: Mapping[str, float | None]
    metrics_at: Mapping[str, str]
    #: DESIGN.md section 8: the live direction and its latest switch
    direction: str = "forward"
    switched_at: float | None = None
    #: the old direction of the latest switch still drains
    drain_pending: bool = False
    #: T of a rollback's switch back that is being made (not saved yet: run rollback again
    #: if no rollback is running)
    switching_back_at: float | None = None
    #: T of a cutover being made after an earlier rollback (not saved yet: it re-points the
    #: functions and runs its checks; run cutover again if none is running)
    cutting_over_at: float | None = None
    #: reverse replication's position on the target's stream (checkpoints of the local
    #: runner, shared by the routes of one target table); None before the first switch
    reverse_replication: ReplicationSummary | None = None
    #: writes to the old table nobody re-pointed (all of them counted, a few listed)
    foreign_writes: int = 0
    foreign_keys: tuple[JsonObject, ...] = ()
    #: when `dualwrite decommission` deleted the source (after its backup); None: it did not
    source_decommissioned_at: str | None = None

    def last_reconcile_json(self) -> JsonObject | None:
        if self.last_reconcile is None:
            return None
        last = {k: v for k, v in self.last_reconcile.to_json().items() if k != "differences"}
        if self.reconcile_age_s is not None:
            last["age_s"] = self.reconcile_age_s
        return last

    def to_json(self) -> JsonObject:
        return {
            "route": self.route,
            "source": self.source,
            "target": self.target,
            "mapping": self.mapping,
            "source_exists": self.source_exists,
            "source_decommissioned_at": self.source_decommissioned_at,
            "phase": self.phase,
            "phase_detail": dict(self.phase_detail),
            "backfill": self.backfill.to_json(),
            "replication": self.replication.to_json(),
            "event_source_mappings": [m.to_json() for m in self.event_source_mappings],
            "quarantined": self.quarantined,
            "last_reconcile": self.last_reconcile_json(),
            "metrics": dict(self.metrics),
            "metrics_at": dict(self.metrics_at),
            "direction": self.direction,
            "switched_at": self.switched_at,
            "drain_pending": self.drain_pending,
            "switching_back_at": self.switching_back_at,
            "cutting_over_at": self.cutting_over_at,
            "reverse_replication": (
                self.reverse_replication.to_json() if self.reverse_replication else None
            ),
            "foreign_writes": self.foreign_writes,
            "foreign_keys": [dict(k) for k in self.foreign_keys],
        }


@dataclass(frozen=True)
class StatusReport:
    quarantined: int
    quarantine: tuple[QuarantineView, ...]
    routes: tuple[RouteStatus, ...]
    metrics_namespace: str
    at: str  # ISO 8601
    notes: tuple[str, ...]

    def to_json(self) -> JsonObject:
        return {
            "quarantined": self.quarantined,
            "quarantine": [q.to_json() for q in self.quarantine],
            "routes": [r.to_json() for r in self.routes],
            "metrics_namespace": self.metrics_namespace,
            "at": self.at,
            "notes": list(self.notes),
        }


# --- pure summaries -------------------------------------------------------------------------
def summarize_segments(checkpoints: Sequence[Mapping[str, Any]]) -> BackfillSummary:
    """Backfill progress from segment checkpoints (the most recent segmentation counts)."""
    if not checkpoints:
        return BackfillSummary()
    latest = max(checkpoints, key=lambda c: float(c.get("updated_at") or 0))
    total = int(latest.get("total") or 0)
    rows = sorted(
        (
            SegmentRow(
                segment=int(c.get("segment") or 0),
                done=bool(c.get("done")),
                items_read=int(c.get("items_read") or 0),
                items_written=int(c.get("items_written") or 0),
                quarantined=int(c.get("quarantined") or 0),
                updated_at=c.get("updated_at"),
            )
            for c in checkpoints
            if int(c.get("total") or 0) == total
        ),
        key=lambda r: r.segment,
    )
    return BackfillSummary(
        segments=total,
        segments_done=sum(1 for r in rows if r.done),
        items_read=sum(r.items_read for r in rows),
        items_written=sum(r.items_written for r in rows),
        quarantined=sum(r.quarantined for r in rows),
        checkpoints=tuple(rows),
    )


def summarize_shards(
    stream_arn: str | None, checkpoints: Sequence[Mapping[str, Any]]
) -> ReplicationSummary:
    """Replication position and lag from shard checkpoints.

    lag_ms is the largest lag of the shards still open (a finished parent has no lag); None
    when nothing has been replicated yet. position maps each open shard to its sequence number.
    """
    shards = sorted(
        (
            ShardRow(
                shard_id=c.get("shard_id"),
                parent_shard_id=c.get("parent_shard_id"),
                sequence_number=c.get("sequence_number"),
                done=bool(c.get("done")),
                records=int(c.get("records") or 0),
                lag_ms=c.get("lag_ms"),
                caught_up_at=c.get("caught_up_at"),
            )
            for c in checkpoints
        ),
        key=lambda s: str(s.shard_id),
    )
    open_shards = [s for s in shards if not s.done]
    lags = [float(s.lag_ms) for s in open_shards if s.lag_ms is not None]
    caught = [s.caught_up_at for s in shards if s.caught_up_at is not None]
    return ReplicationSummary(
        stream_arn=stream_arn,
        shards=tuple(shards),
        records=sum(s.records for s in shards),
        lag_ms=max(lags) if lags else None,
        position={str(s.shard_id): s.sequence_number for s in open_shards},
        caught_up_at=max(caught, key=str) if caught else None,
    )
