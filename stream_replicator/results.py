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
    #: the route is not backfilled yet, or its direction waits for a drain: reported
    #: failed, the stream keeps the record
    HELD = "held"
    #: the other direction owns it (or applied it already): settled, nothing written
    SKIPPED = "skipped"


APPLIED = Outcome.APPLIED
QUARANTINED = Outcome.QUARANTINED
FAILED = Outcome.FAILED
HELD = Outcome.HELD
SKIPPED = Outcome.SKIPPED


class Mark(StrEnum):
    """What else a record's outcome means (counted apart, DESIGN.md section 8)."""

    #: APPLIED in reverse (target stream -> source)
    REVERSE = "reverse"
    #: QUARANTINED because the old schema cannot hold it
    UNREPRESENTABLE = "unrepresentable"
    #: SKIPPED, and listed as a foreign write
    FOREIGN = "foreign"
    #: HELD until the old direction has drained (not a failure)
    WAITING = "waiting"


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
    #: applied in reverse (not in `applied`, which is forward)
    reverse_replicated: int = 0
    #: settled without a write (the other direction's, or applied already)
    skipped: int = 0
    #: source-stream records listed as foreign writes (also in `skipped`)
    foreign_writes: int = 0
    #: quarantined because the old schema cannot hold them (also in `quarantined`)
    unrepresentable: int = 0
    #: held until the old direction drains (reported failed, not counted in `held`)
    waiting: int = 0
    #: now - ApproximateCreationDateTime of the newest applied record, when applied
    lag_ms: int | None = None

    @property
    def switched(self) -> bool:
        """Whether any record was decided by a switched direction (reverse, waiting, skipped,
        or checked for foreign writes)."""
        return bool(
            self.reverse_replicated
            or self.skipped
            or self.foreign_writes
            or self.unrepresentable
            or self.waiting
        )

    def add(self, other: RouteCounts) -> None:
        self.records += other.records
        self.applied += other.applied
        self.quarantined += other.quarantined
        self.failed += other.failed
        self.held += other.held
        self.unknown_role += other.unknown_role
        self.ttl_deletes += other.ttl_deletes
        self.reverse_replicated += other.reverse_replicated
        self.skipped += other.skipped
        self.foreign_writes += other.foreign_writes
        self.unrepresentable += other.unrepresentable
        self.waiting += other.waiting
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
            reverse_replicated=self.reverse_replicated - before.reverse_replicated,
            skipped=self.skipped - before.skipped,
            foreign_writes=self.foreign_writes - before.foreign_writes,
            unrepresentable=self.unrepresentable - before.unrepresentable,
            waiting=self.waiting - before.waiting,
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
    if counts.switched:
        # only once a route has switched: a forward-only route's metrics stay as they were
        values[metric_names.REVERSE_REPLICATED_RECORDS] = counts.reverse_replicated
        values[metric_names.FOREIGN_WRITES] = counts.foreign_writes
        values[metric_names.UNREPRESENTABLE] = counts.unrepresentable
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
    #: per record: what else its outcome means (None: nothing)
    marks: list[Mark | None] = field(default_factory=list)

    def mark(self, index: int, outcome: Outcome, mark: Mark | None, reason: str | None) -> None:
        self.outcomes[index] = outcome
        self.marks[index] = mark
        if reason is not None:
            self.reasons[index] = reason


def first_failure(sequence_numbers: list[str], failed: Collection[str]) -> int:
    """How many records come before the lowest failed one (all of them when none failed)."""
    if not failed:
        return len(sequence_numbers)
    lowest = min(failed, key=sequence_order)
    return next((i for i, s in enumerate(sequence_numbers) if s == lowest), 0)


def settle(result: BatchResult, failed: Collection[str]) -> dict[str, RouteCounts]:
    """Per route, the records of this batch whose outcome is final, and the failure reports.

    failed: the batch item failures reported (sequence numbers). records, applied,
    quarantined, unknown_role, ttl_deletes and the reverse counts count only records before
    the lowest failed one of their stream; failed, held and waiting count every report (a
    record failing twice counts twice); lag_ms is the one apply measured."""
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
        mark = result.marks[i] if result.marks else None
        if outcome == FAILED:
            counts.failed += 1
        elif outcome == HELD:
            if mark is Mark.WAITING:
                counts.waiting += 1
            else:
                counts.held += 1
        cut = lowest.get(result.streams[i])
        if cut is not None and sequence_order(result.sequence_numbers[i]) >= cut:
            continue  # redelivered: counted when it is final
        counts.records += 1
        if outcome == APPLIED:
            if mark is Mark.REVERSE:
                counts.reverse_replicated += 1
                continue
            counts.applied += 1
            counts.unknown_role += int(result.unknown_roles[i])
            counts.ttl_deletes += int(result.ttl_deletes[i])
        elif outcome == QUARANTINED:
            counts.quarantined += 1
            counts.unrepresentable += int(mark is Mark.UNREPRESENTABLE)
        elif outcome == SKIPPED:
            counts.skipped += 1
            counts.foreign_writes += int(mark is Mark.FOREIGN)
    return out
