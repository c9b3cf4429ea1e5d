"""Pure parts around the adapter: the Powertools processor's response, metric values, and
how a quarantined record is cut to fit a control-table item."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from stream_replicator.processor import KeyOrderedBatchProcessor
from stream_replicator.quarantine import fit_record
from stream_replicator.results import (
    APPLIED,
    FAILED,
    HELD,
    QUARANTINED,
    BatchResult,
    Outcome,
    RouteCounts,
    first_failure,
    metric_values,
    settle,
)


def records(n: int) -> list[dict[str, Any]]:
    return [
        {
            "eventID": str(i),
            "eventName": "INSERT",
            "eventSourceARN": "arn:aws:dynamodb:us-east-1:1:table/T/stream/L",
            "dynamodb": {"SequenceNumber": str(100 + i), "Keys": {"id": {"S": str(i)}}},
        }
        for i in range(n)
    ]


def handler_with(outcomes: list[str]) -> Callable[..., BatchResult]:
    def handle(batch: Sequence[dict[str, Any]], _remaining: Any) -> BatchResult:
        return BatchResult(
            [r["dynamodb"]["SequenceNumber"] for r in batch],
            list(outcomes),
            [None] * len(outcomes),
        )

    return handle


def test_processor_reports_failed_and_held_records_by_sequence_number() -> None:
    processor = KeyOrderedBatchProcessor()
    outcomes = [APPLIED, FAILED, QUARANTINED, HELD]
    with processor(records=records(4), handler=handler_with(outcomes)):
        processor.process()
    assert processor.response() == {
        "batchItemFailures": [{"itemIdentifier": "101"}, {"itemIdentifier": "103"}]
    }
    assert len(processor.success_messages) == 2


def test_processor_reports_a_batch_that_failed_entirely_instead_of_raising() -> None:
    processor = KeyOrderedBatchProcessor()
    with processor(records=records(2), handler=handler_with([FAILED, FAILED])):
        processor.process()
    assert [f["itemIdentifier"] for f in processor.response()["batchItemFailures"]] == [
        "100",
        "101",
    ]


def test_metric_values_count_held_records_as_failures() -> None:
    values = metric_values(RouteCounts(records=9, applied=5, failed=1, held=2, quarantined=1))
    assert values == {
        "ReplicatedRecords": 5,
        "ReplicationFailures": 3,
        "Quarantined": 1,
        "UnknownRole": 0,
        "TtlDeletes": 0,
    }
    assert metric_values(RouteCounts(lag_ms=250))["ReplicationLagMs"] == 250


def test_fit_record_keeps_what_fits_and_says_what_it_left_out() -> None:
    small = {
        "eventID": "1",
        "dynamodb": {"Keys": {"id": {"S": "a"}}, "NewImage": {"x": {"S": "y"}}},
    }
    assert fit_record(small) is small
    big = {
        "eventID": "2",
        "dynamodb": {
            "Keys": {"id": {"S": "a"}},
            "NewImage": {"x": {"S": "n" * 500}},
            "OldImage": {"x": {"S": "o" * 500}},
        },
    }
    no_old = fit_record(big, limit=800)
    assert no_old["omitted"] == ["OldImage"] and "NewImage" in no_old["dynamodb"]
    keys_only = fit_record(big, limit=300)
    assert keys_only["omitted"] == ["OldImage", "NewImage"]
    assert keys_only["dynamodb"] == {"Keys": {"id": {"S": "a"}}}
    assert len(json.dumps(keys_only)) <= 300
    assert "OldImage" in big["dynamodb"]  # the record itself is left alone


def settled_result(outcomes: list[str], streams: list[str] | None = None) -> BatchResult:
    n = len(outcomes)
    return BatchResult(
        [str(100 + i) for i in range(n)],
        [Outcome(o) for o in outcomes],
        [None] * n,
        routes={"servers": RouteCounts(records=n, lag_ms=40)},
        unknown_roles=[False] * n,
        ttl_deletes=[i == 0 for i in range(n)],
        route_names=["servers"] * n,
        streams=streams or ["arn:a"] * n,
    )


def test_settle_counts_only_records_before_the_lowest_failed_one_of_their_stream() -> None:
    # the middle record failed: the one after it was applied but will be redelivered
    result = settled_result([APPLIED, FAILED, APPLIED, QUARANTINED])
    (counts,) = settle(result, ["101"]).values()
    assert counts == RouteCounts(records=1, applied=1, failed=1, ttl_deletes=1, lag_ms=40)
    # redelivered from the failed record on, everything settles: apply's counts are final
    again = settled_result([APPLIED, APPLIED, QUARANTINED])
    applied = RouteCounts(records=3, applied=2, quarantined=1, ttl_deletes=1, lag_ms=40)
    again.routes = {"servers": applied}
    settled = settle(again, [])
    assert settled == {"servers": applied} and settled["servers"] is not applied


def test_settle_cuts_each_stream_at_its_own_lowest_failure() -> None:
    result = settled_result([APPLIED, HELD, APPLIED, APPLIED], ["arn:a", "arn:b", "arn:a", "arn:b"])
    counts = settle(result, ["101"])["servers"]
    assert (counts.records, counts.applied, counts.held) == (2, 2, 1)


def test_first_failure_is_the_position_of_the_lowest_failed_sequence_number() -> None:
    seqs = ["9", "10", "11", "100"]
    assert first_failure(seqs, []) == 4
    assert first_failure(seqs, ["100", "10"]) == 1  # numeric order, not text order
