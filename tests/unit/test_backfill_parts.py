"""Pure parts of the backfill: sizing, checkpoints, the retention guard, the target writer."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from backfill.checkpoint import SegmentState
from backfill.retention import (
    STREAM_RETENTION_S,
    backfill_started_at,
    retention_problem,
    stream_created_at,
)
from backfill.sizing import MAX_SEGMENTS, default_segments, default_workers
from backfill.writer import TargetWriter, write_units
from dualwrite.backoff import Backoff, RateLimiter
from dualwrite.control.phases import RoutePhase
from dualwrite.errors import ThrottledError
from dualwrite.wire import Item


def test_default_segments_follow_the_table_size() -> None:
    assert default_segments(0, 0) == 1
    assert default_segments(9_999, 10_000_000) == 1
    assert default_segments(40_000, 0, workers=8) == 4  # one per 10k items up to the workers
    assert default_segments(40_000, 0, workers=2) == 2
    assert default_segments(1_000_000, 0) == 10  # one per 100k items
    assert default_segments(10, 5 * (1 << 30)) == 5  # or one per GB
    assert default_segments(10**12, 0) == MAX_SEGMENTS
    assert default_workers(0) == 1 and default_workers(3) == 3 and default_workers(50) == 8


def test_a_checkpoint_survives_the_json_round_trip_with_binary_keys() -> None:
    state = SegmentState(
        "r",
        2,
        4,
        last_key={"id": {"B": b"\x00\xff"}, "n": {"N": "7"}},
        items_read=1000,
        items_written=990,
        quarantined=1,
        started_at=1.5,
        updated_at=2.5,
        carry_group={"S": "user-1"},
    )
    data = state.to_json()
    assert data["last_key"] == {"id": {"B": "AP8="}, "n": {"N": "7"}}
    assert SegmentState.from_json(data) == state
    assert state.resumed and not SegmentState("r", 0, 1).resumed
    assert SegmentState.from_json(SegmentState("r", 0, 1).to_json()).last_key is None


def test_retention_is_measured_from_the_earliest_start() -> None:
    cps = [SegmentState("r", 0, 2, started_at=500.0), SegmentState("r", 1, 2, started_at=900.0)]
    assert backfill_started_at(RoutePhase(backfill_started_at=700.0), cps) == 500.0
    assert backfill_started_at(RoutePhase(), []) is None
    start = 1_000_000.0
    assert retention_problem(start, start + STREAM_RETENTION_S - 1, start - 10) is None
    late = retention_problem(start, start + STREAM_RETENTION_S + 3600, start - 10)
    assert late is not None and "25.0 h" in late and "24 h retention" in late
    after = retention_problem(start, start + 60, start + 3600)
    assert after is not None and "created" in after
    assert retention_problem(None, start, None) is None


def test_stream_labels_are_utc_times() -> None:
    expected = datetime(2024, 5, 1, 12, 30, 15, 250000, tzinfo=UTC).timestamp()
    assert stream_created_at("2024-05-01T12:30:15.250") == expected
    assert stream_created_at("not a time") is None and stream_created_at(None) is None


class FakeDynamo:
    """Records BatchWriteItem/PutItem calls; can leave items unprocessed or refuse puts."""

    def __init__(self, unprocessed: int = 0, existing: set[str] | None = None) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.unprocessed = unprocessed
        self.existing = existing or set()
        self.puts: list[Item] = []

    def batch_write_item(self, **kwargs: Any) -> dict[str, Any]:
        ((table, requests),) = kwargs["RequestItems"].items()
        self.batches.append(requests)
        if self.unprocessed:
            self.unprocessed -= 1
            return {"UnprocessedItems": {table: requests[-1:]}, "ConsumedCapacity": []}
        return {"UnprocessedItems": {}, "ConsumedCapacity": [{"CapacityUnits": 1.0}]}

    def put_item(self, **kwargs: Any) -> dict[str, Any]:
        pk = kwargs["Item"]["PK"]["S"]
        assert kwargs["ConditionExpression"] == "attribute_not_exists(#k)"
        if pk in self.existing:
            raise ClientError(
                {"Error": {"Code": "ConditionalCheckFailedException", "Message": "x"}}, "PutItem"
            )
        self.puts.append(kwargs["Item"])
        return {"ConsumedCapacity": {"CapacityUnits": 1.0}}


def item(i: int, extra: str = "") -> Item:
    return {"PK": {"S": f"P{i}"}, "SK": {"S": "S"}, "v": {"S": extra or str(i)}}


def writer(client: Any, **kw: Any) -> TargetWriter:
    sleeps: list[float] = []
    return TargetWriter(
        client, "T", ("PK", "SK"), backoff=Backoff(sleep=sleeps.append, rand=lambda: 0.5), **kw
    )


def test_full_batches_only_and_one_request_per_25_items() -> None:
    client = FakeDynamo()
    w = writer(client)
    for i in range(60):
        w.put(item(i))
    w.flush(everything=False)
    assert [len(b) for b in client.batches] == [25, 25]
    assert w.watermark == 50 and w.seq == 60
    for i in range(60, 100):
        w.put(item(i))
    w.flush(everything=True)
    assert [len(b) for b in client.batches] == [25, 25, 25, 25]
    assert w.watermark == 100 and w.issued == 100
    assert w.counter.counts["BatchWriteItem"] == 4


def test_a_key_written_twice_is_coalesced_and_the_later_write_wins() -> None:
    client = FakeDynamo()
    w = writer(client)
    w.put(item(1, "old"))
    w.put(item(2))
    w.put(item(1, "new"))
    w.delete({"PK": {"S": "P2"}, "SK": {"S": "S"}})
    w.flush(everything=True)
    (batch,) = client.batches
    assert batch == [
        {"PutRequest": {"Item": item(1, "new")}},
        {"DeleteRequest": {"Key": {"PK": {"S": "P2"}, "SK": {"S": "S"}}}},
    ]
    assert w.issued == 1 and w.deleted == 1


def test_unprocessed_items_are_retried_and_never_dropped() -> None:
    client = FakeDynamo(unprocessed=2)
    w = writer(client)
    for i in range(25):
        w.put(item(i))
    w.flush(everything=True)
    assert [len(b) for b in client.batches] == [25, 1, 1]
    assert w.watermark == 25

    stuck = FakeDynamo(unprocessed=10**6)
    w = writer(stuck, attempts=2)
    for i in range(3):
        w.put(item(i))
    with pytest.raises(ThrottledError, match="not checkpointed"):
        w.flush(everything=True)
    assert w.watermark == 0  # nothing acknowledged, so nothing may be checkpointed


def test_put_if_absent_skips_what_exists() -> None:
    client = FakeDynamo(existing={"P1"})
    w = writer(client, conditional=True)
    w.put(item(1))
    w.put(item(2))
    w.delete({"PK": {"S": "P3"}, "SK": {"S": "S"}})
    assert [i["PK"]["S"] for i in client.puts] == ["P2"]
    assert w.issued == 1 and w.skipped_existing == 2 and w.watermark == 3
    assert client.batches == []


def test_capacity_is_never_counted_below_the_documented_cost() -> None:
    now = [0.0]
    limiter = RateLimiter(1000.0, clock=lambda: now[0], sleep=lambda s: None)
    client = FakeDynamo()  # reports 1 unit for the whole batch, like moto
    w = writer(client, limiter=limiter)
    big = {"PK": {"S": "P"}, "SK": {"S": "S"}, "blob": {"S": "x" * 3000}}
    assert write_units({"PutRequest": {"Item": big}}) == 3
    w.put(big)
    for i in range(24):
        w.put(item(i))
    w.flush(everything=True)
    assert w.consumed == 3 + 24
