"""What a batch did to its records, and what of it is final (pure).

apply() says, per record, APPLIED, QUARANTINED, FAILED or HELD. A record's outcome is final
only when the stream will not deliver it again: Lambda (and the local runner, which does what
Lambda does) reads a shard again from its lowest failed sequence number, so a record after
that one is redelivered even when apply wrote it. `settle` counts each record once, when its
outcome is final (DESIGN.md section 6), in the Lambda handler and the local runner alike.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field, replace
from enum import StrEnum

from dualwrite import metrics as metric_names
from stream_replicator.records import sequence_order


class Outcome(StrEnum):
    APPLIED = "applied"
    QUARANTINED = "quarantined"
    FAILED = "failed"
    #: the route is not backfilled yet: reported failed, the stream keeps the record
    HELD = "held"


APPLIED = Outcome.APPLIED
QUARANTINED = Outcome.QUARANTINED
FAILED = Outcome.FAILED
HELD = Outcome.HELD


@dataclass
class RouteCounts:
    """What happened to one route's records in one batch (or, summed, in a run)."""

    records: int = 0
    applied: int = 0
    quarantined: int = 0
    failed: int = 0
    held: int = 0
    unknown_role: int = 0
    ttl_deletes: int = 0
    #: now - ApproximateCreationDateTime of the newest applied record, when applied
    lag_ms: int | None = None

    def add(self, other: RouteCounts) -> None:
        self.records += other.records
        self.applied += other.applied
        self.quarantined += other.quarantined
        self.failed += other.failed
        self.held += other.held
        self.unknown_role += other.unknown_role
        self.ttl_deletes += other.ttl_deletes
        if other.lag_ms is not None:
            self.lag_ms = other.lag_ms

    def minus(self, before: RouteCounts) -> RouteCounts:
        """What happened since `before` (the lag is the latest, not a difference)."""
        return RouteCounts(
            records=self.records - before.records,
            applied=self.applied - before.applied,
            quarantined=self.quarantined - before.quarantined,
            failed=self.failed - before.failed,
            held=self.held - before.held,
            unknown_role=self.unknown_role - before.unknown_role,
            ttl_deletes=self.ttl_deletes - before.ttl_deletes,
            lag_ms=self.lag_ms,
        )


def metric_values(counts: RouteCounts) -> dict[str, float]:
    """The metrics (DESIGN.md section 6) of one route's counts, for EMF or PutMetricData."""
    values: dict[str, float] = {
        metric_names.REPLICATED_RECORDS: counts.applied,
        # a held record counts as a failure: records should not reach a route before its
        # backfill completes, so it deserves the failure alarm
        metric_names.REPLICATION_FAILURES: counts.failed + counts.held,
        metric_names.QUARANTINED: counts.quarantined,
        metric_names.UNKNOWN_ROLE: counts.unknown_role,
        metric_names.TTL_DELETES: counts.ttl_deletes,
    }
    if counts.lag_ms is not None:
        values[metric_names.REPLICATION_LAG_MS] = counts.lag_ms
    return values


@dataclass
class BatchResult:
    """Per record outcome and reason, per route counts of what apply did (final or not)."""

    sequence_numbers: list[str]
    outcomes: list[Outcome]
    reasons: list[str | None]
    routes: dict[str, RouteCounts] = field(default_factory=dict)
    #: per record: an applied membership with a role we do not know (UnknownRole metric)
    unknown_roles: list[bool] = field(default_factory=list)
    #: per record: an applied TTL expiry (TtlDeletes metric)
    ttl_deletes: list[bool] = field(default_factory=list)
    #: per record: its route, and its stream (eventSourceARN: one shard per Lambda batch)
    route_names: list[str] = field(default_factory=list)
    streams: list[str] = field(default_factory=list)


def first_failure(sequence_numbers: list[str], failed: Collection[str]) -> int:
    """How many records come before the lowest failed one (all of them when none failed)."""
    if not failed:
        return len(sequence_numbers)
    lowest = min(failed, key=sequence_order)
    return next((i for i, s in enumerate(sequence_numbers) if s == lowest), 0)


def settle(result: BatchResult, failed: Collection[str]) -> dict[str, RouteCounts]:
    """Per route, the records of this batch whose outcome is final, and the failure reports.

    failed: the batch item failures reported (sequence numbers). records, applied,
    quarantined, unknown_role and ttl_deletes count only records before the lowest failed one
    of their stream; failed and held count every report (a record failing twice counts
    twice); lag_ms is the one apply measured."""
    if not failed:  # the common case: every record is final, apply's counts are the counts
        return {route: replace(counts) for route, counts in result.routes.items()}
    lowest: dict[str, tuple[int, int, str]] = {}
    reported = set(failed)
    for seq, stream in zip(result.sequence_numbers, result.streams, strict=True):
        if seq in reported:
            order = sequence_order(seq)
            if stream not in lowest or order < lowest[stream]:
                lowest[stream] = order
    out: dict[str, RouteCounts] = {}
    for i, outcome in enumerate(result.outcomes):
        route = result.route_names[i]
        counts = out.get(route)
        if counts is None:
            applied = result.routes.get(route)
            counts = out[route] = RouteCounts(lag_ms=applied.lag_ms if applied else None)
        if outcome == FAILED:
            counts.failed += 1
        elif outcome == HELD:
            counts.held += 1
        cut = lowest.get(result.streams[i])
        if cut is not None and sequence_order(result.sequence_numbers[i]) >= cut:
            continue  # redelivered: counted when it is final
        counts.records += 1
        if outcome == APPLIED:
            counts.applied += 1
            counts.unknown_role += int(result.unknown_roles[i])
            counts.ttl_deletes += int(result.ttl_deletes[i])
        elif outcome == QUARANTINED:
            counts.quarantined += 1
    return out
