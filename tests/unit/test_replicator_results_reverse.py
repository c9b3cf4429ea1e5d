"""What a batch decided by a switched direction counts (DESIGN.md section 8): reverse
applications, skips, foreign writes, unrepresentable changes and records waiting for a drain,
each once when final; and the metrics they give."""

from __future__ import annotations

from dualwrite import metrics as names
from stream_replicator.results import (
    APPLIED,
    FAILED,
    HELD,
    QUARANTINED,
    SKIPPED,
    BatchResult,
    Mark,
    Outcome,
    RouteCounts,
    metric_values,
    settle,
)


def result(outcomes: list[Outcome], marks: list[Mark | None]) -> BatchResult:
    n = len(outcomes)
    return BatchResult(
        [str(100 + i) for i in range(n)],
        list(outcomes),
        [None] * n,
        unknown_roles=[False] * n,
        ttl_deletes=[False] * n,
        route_names=["r"] * n,
        streams=["s"] * n,
        marks=list(marks),
    )


def test_settle_counts_each_kind_once_and_only_before_the_lowest_failure() -> None:
    r = result(
        [APPLIED, SKIPPED, QUARANTINED, SKIPPED, APPLIED, HELD, APPLIED, FAILED],
        [Mark.REVERSE, Mark.FOREIGN, Mark.UNREPRESENTABLE, None, None, Mark.WAITING, None, None],
    )
    got = settle(r, ["105", "107"])["r"]
    assert (got.records, got.reverse_replicated, got.applied) == (5, 1, 1)
    assert (got.skipped, got.foreign_writes) == (2, 1)
    assert (got.quarantined, got.unrepresentable) == (1, 1)
    # the waiting record is reported (redelivered), but not as a failure or a hold
    assert (got.waiting, got.held, got.failed) == (1, 0, 1)


def test_reverse_metrics_appear_once_a_route_has_switched() -> None:
    forward = metric_values(RouteCounts(records=3, applied=3))
    assert names.REVERSE_REPLICATED_RECORDS not in forward
    assert names.FOREIGN_WRITES not in forward and names.UNREPRESENTABLE not in forward
    waiting = metric_values(RouteCounts(records=2, waiting=2))
    assert waiting[names.REPLICATION_FAILURES] == 0
    assert waiting[names.REVERSE_REPLICATED_RECORDS] == 0
    both = metric_values(
        RouteCounts(
            records=6,
            reverse_replicated=3,
            skipped=2,
            foreign_writes=1,
            quarantined=1,
            unrepresentable=1,
        )
    )
    assert both[names.REVERSE_REPLICATED_RECORDS] == 3
    assert both[names.FOREIGN_WRITES] == 1 and both[names.UNREPRESENTABLE] == 1
    assert both[names.REPLICATED_RECORDS] == 0 and both[names.QUARANTINED] == 1


def test_counts_add_and_subtract_the_reverse_fields() -> None:
    a = RouteCounts(records=4, reverse_replicated=2, skipped=1, foreign_writes=1, waiting=3)
    b = RouteCounts(records=1, reverse_replicated=1, unrepresentable=1, quarantined=1)
    total = RouteCounts()
    total.add(a)
    total.add(b)
    assert (total.reverse_replicated, total.skipped, total.foreign_writes) == (3, 1, 1)
    assert (total.unrepresentable, total.waiting) == (1, 3)
    assert total.minus(a) == RouteCounts(
        records=1, reverse_replicated=1, unrepresentable=1, quarantined=1
    )
