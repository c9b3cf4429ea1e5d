"""The runner's pure parts: Lambda-shaped events from GetRecords records, shard lineage."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from stream_replicator.events import Shard, lambda_record, ready_shards

STREAM = "arn:aws:dynamodb:eu-west-1:123456789012:table/ServersTable/stream/2024-01-01T00:00:00.000"


def test_lambda_record_is_what_lambda_would_deliver() -> None:
    when = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    got = lambda_record(
        {
            "eventID": "abc",
            "eventName": "REMOVE",
            "eventVersion": "1.0",
            "eventSource": "aws:dynamodb",
            "awsRegion": "eu-west-1",
            "dynamodb": {
                "ApproximateCreationDateTime": when,
                "Keys": {"id": {"B": b"\x01\x02"}},
                "OldImage": {"id": {"B": b"\x01\x02"}, "tags": {"BS": [b"\xff"]}},
                "SequenceNumber": "111",
                "SizeBytes": 26,
                "StreamViewType": "NEW_AND_OLD_IMAGES",
            },
            "userIdentity": {"PrincipalId": "dynamodb.amazonaws.com", "Type": "Service"},
        },
        STREAM,
        "eu-west-1",
    )
    assert got == {
        "eventID": "abc",
        "eventName": "REMOVE",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "eu-west-1",
        "eventSourceARN": STREAM,
        "dynamodb": {
            "ApproximateCreationDateTime": when.timestamp(),
            "Keys": {"id": {"B": base64.b64encode(b"\x01\x02").decode()}},
            "OldImage": {
                "id": {"B": base64.b64encode(b"\x01\x02").decode()},
                "tags": {"BS": [base64.b64encode(b"\xff").decode()]},
            },
            "SequenceNumber": "111",
            "SizeBytes": 26,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
        "userIdentity": {"type": "Service", "principalId": "dynamodb.amazonaws.com"},
    }


def test_children_wait_for_their_parent_and_orphans_do_not() -> None:
    parent = Shard("p", None, "900")
    left, right = Shard("l", "p"), Shard("r", "p")
    orphan = Shard("o", "trimmed-away")
    shards = [parent, left, right, orphan]
    assert [s.shard_id for s in ready_shards(shards, done=[])] == ["p", "o"]
    assert [s.shard_id for s in ready_shards(shards, done=["p"])] == ["l", "r", "o"]
    assert ready_shards(shards, done=["p", "l", "r", "o"]) == []


def test_shard_from_describe_stream() -> None:
    shard = Shard.from_describe(
        {
            "ShardId": "c",
            "ParentShardId": "p",
            "SequenceNumberRange": {"StartingSequenceNumber": "1", "EndingSequenceNumber": "9"},
        }
    )
    assert shard == Shard("c", "p", "9")
