"""The pure parts of `status`: checkpoint summaries and metric read-back."""

from __future__ import annotations

from datetime import UTC, datetime

from dualwrite.control import QuarantineEntry, Record
from dualwrite.status import (
    READ_BACK,
    latest_values,
    metric_queries,
    quarantine_entry,
    summarize_segments,
    summarize_shards,
)


def test_segments_of_the_latest_segmentation_count() -> None:
    old = [{"segment": 0, "total": 2, "done": True, "items_written": 50, "updated_at": 1}]
    new = [
        {
            "segment": s,
            "total": 3,
            "done": s != 1,
            "items_read": 5,
            "items_written": 4,
            "quarantined": s,
            "updated_at": 10 + s,
        }
        for s in (2, 0, 1)
    ]
    summary = summarize_segments(old + new)
    assert (summary.segments, summary.segments_done) == (3, 2)
    assert (summary.items_read, summary.items_written, summary.quarantined) == (15, 12, 3)
    assert [c.segment for c in summary.checkpoints] == [0, 1, 2]
    assert summary.to_json()["checkpoints"][1] == {
        "segment": 1,
        "done": False,
        "items_read": 5,
        "items_written": 4,
        "quarantined": 1,
        "updated_at": 11,
    }
    assert summarize_segments([]).to_json() == {
        "segments": 0,
        "segments_done": 0,
        "items_read": 0,
        "items_written": 0,
        "quarantined": 0,
        "checkpoints": [],
    }


def test_shards_lag_and_position_come_from_open_shards() -> None:
    shards = [
        {
            "shard_id": "b",
            "parent_shard_id": "a",
            "sequence_number": "20",
            "done": False,
            "records": 2,
            "lag_ms": 40,
            "caught_up_at": 5.0,
        },
        {"shard_id": "a", "sequence_number": "10", "done": True, "records": 3, "lag_ms": 9000},
        {"shard_id": "c", "sequence_number": None, "done": False, "records": 0, "lag_ms": None},
    ]
    s = summarize_shards("arn:stream", shards)
    assert s.lag_ms == 40
    assert s.position == {"b": "20", "c": None}
    assert s.records == 5
    assert [x.shard_id for x in s.shards] == ["a", "b", "c"]
    assert s.to_json()["shards"][0] == {
        "shard_id": "a",
        "parent_shard_id": None,
        "sequence_number": "10",
        "done": True,
        "records": 3,
        "lag_ms": 9000,
        "caught_up_at": None,
    }
    assert s.to_json()["caught_up_at"] == 5.0
    assert summarize_shards(None, []).lag_ms is None


def test_one_query_per_route_and_metric_with_ids_mapping_back() -> None:
    queries, index = metric_queries("NS", ["servers", "memberships"])
    assert len(queries) == 2 * len(READ_BACK)
    assert len({q["Id"] for q in queries}) == len(queries)
    for q in queries:
        route, name = index[q["Id"]]
        metric = q["MetricStat"]["Metric"]
        assert metric["MetricName"] == name and metric["Namespace"] == "NS"
        assert metric["Dimensions"] == [{"Name": "Route", "Value": route}]
        assert q["Id"][0].islower()


def test_latest_values_take_the_newest_datapoint() -> None:
    t1 = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
    t2 = datetime(2026, 1, 1, 10, 1, tzinfo=UTC)
    results = [
        {"Id": "r0m0", "Timestamps": [t1, t2], "Values": [90.0, 100.0]},
        {"Id": "r0m1", "Timestamps": [], "Values": []},
        {"Id": "unknown", "Timestamps": [t1], "Values": [1.0]},
    ]
    out = latest_values(results, {"r0m0": ("servers", "ParityPercent"), "r0m1": ("servers", "X")})
    assert out == {"servers": {"ParityPercent": (100.0, t2)}}


def test_quarantine_entries_leave_the_record_out() -> None:
    rec = Record(
        "QUARANTINE",
        "r#t#1",
        {"route": "r", "reason": "why", "at": "t", "record": {"email": {"S": "a@b.c"}}},
        0.0,
    )
    entry = quarantine_entry(QuarantineEntry.from_record(rec))
    assert entry["id"] == "r#t#1" and entry["reason"] == "why"
    assert "a@b.c" not in repr(entry)


def test_a_target_stream_record_in_quarantine_is_named_by_its_target_key() -> None:
    """Reverse replication quarantines target-stream records: they hold no source key, so
    the entry names the target key (the record itself, with its emails, stays out)."""
    target_record = {
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:1:table/CoreTable/stream/x",
        "dynamodb": {
            "Keys": {"PK": {"S": "USER#u1"}, "SK": {"S": "METADATA"}},
            "NewImage": {"PK": {"S": "USER#u1"}, "SK": {"S": "METADATA"}, "email": {"S": "a@b.c"}},
        },
    }
    source_record = {
        "dynamodb": {"Keys": {"userId": {"S": "u1"}, "serverId": {"S": "s1"}}},
    }

    def entry(record: dict[str, object]) -> dict[str, object]:
        rec = Record(
            "QUARANTINE", "r#t#1", {"route": "r", "reason": "why", "at": "t", "record": record}, 0.0
        )
        return quarantine_entry(QuarantineEntry.from_record(rec), ("userId", "serverId"))

    assert entry(target_record)["key"] == {"PK": {"S": "USER#u1"}, "SK": {"S": "METADATA"}}
    assert "a@b.c" not in repr(entry(target_record))
    assert entry(source_record)["key"] == {"userId": {"S": "u1"}, "serverId": {"S": "s1"}}
    assert entry({"item": {"email": {"S": "a@b.c"}}})["key"] is None  # no key anywhere
