"""What the local runner needs to mimic Lambda's DynamoDB event source (pure).

- lambda_record: a GetRecords record (as boto3 returns it: datetimes, bytes) -> the record
  Lambda would put in an event (epoch seconds, base64, eventSourceARN = the stream ARN).
- Shard / ready_shards: shard lineage; a child shard is read only once its parent is drained
  (or the parent has left the stream, trimmed after 24 hours).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dualwrite.wire import to_lambda_json
from stream_replicator.records import StreamBody, StreamRecord

EVENT_VERSION = "1.1"
EVENT_SOURCE = "aws:dynamodb"


def _epoch(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.timestamp()
    return value


def lambda_record(record: Mapping[str, Any], stream_arn: str, region: str) -> StreamRecord:
    """The Lambda event record for a GetRecords record."""
    body = record.get("dynamodb") or {}
    out_body: StreamBody = {}
    if "ApproximateCreationDateTime" in body:
        out_body["ApproximateCreationDateTime"] = _epoch(body["ApproximateCreationDateTime"])
    for name in ("Keys", "NewImage", "OldImage"):
        if name in body:
            out_body[name] = to_lambda_json(body[name])
    for name in ("SequenceNumber", "SizeBytes", "StreamViewType"):
        if name in body:
            out_body[name] = body[name]
    out: StreamRecord = {
        "eventID": record.get("eventID", ""),
        "eventName": record.get("eventName", ""),
        "eventVersion": EVENT_VERSION,
        "eventSource": EVENT_SOURCE,
        "awsRegion": record.get("awsRegion") or region,
        "dynamodb": out_body,
        "eventSourceARN": stream_arn,
    }
    identity = record.get("userIdentity")
    if isinstance(identity, Mapping):
        # GetRecords says {"PrincipalId", "Type"}; Lambda events say {"principalId", "type"}
        out["userIdentity"] = {
            "type": identity.get("Type", identity.get("type")),
            "principalId": identity.get("PrincipalId", identity.get("principalId")),
        }
    return out


@dataclass(frozen=True)
class Shard:
    shard_id: str
    parent_id: str | None
    #: set when the shard is closed (no more records will be added)
    ending_sequence_number: str | None = None

    @classmethod
    def from_describe(cls, shard: Mapping[str, Any]) -> Shard:
        rng = shard.get("SequenceNumberRange") or {}
        return cls(
            shard_id=str(shard["ShardId"]),
            parent_id=shard.get("ParentShardId") or None,
            ending_sequence_number=rng.get("EndingSequenceNumber") or None,
        )


def ready_shards(shards: Iterable[Shard], done: Iterable[str]) -> list[Shard]:
    """Shards that may be read now: not drained, and whose parent is drained or gone."""
    shards = list(shards)
    listed = {s.shard_id for s in shards}
    finished = set(done)
    return [
        s
        for s in shards
        if s.shard_id not in finished
        and (s.parent_id is None or s.parent_id not in listed or s.parent_id in finished)
    ]
