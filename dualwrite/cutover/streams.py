"""Reading a table's stream for the gates: shards, records after a position, record times.

Only reads; never moves a checkpoint. In AWS a stream keeps 24 hours of records; moto keeps
everything, writes records for writes that change nothing, and gives every table one shard
with the same id (so positions are always keyed by stream ARN and shard).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from dualwrite.aws.errors import aws_call

#: an open shard can answer an empty page before the tip; a few in a row means the tip
MAX_EMPTY_PAGES = 3


def records(
    streams: Any,
    stream_arn: str,
    shard_id: str,
    *,
    after: str | None = None,
    limit: int = 1000,
) -> Iterator[dict[str, Any]]:
    """The shard's records after sequence number `after` (from the trim horizon if None),
    in order, until the shard's end or its current tip."""
    kwargs: dict[str, Any] = {"StreamArn": stream_arn, "ShardId": shard_id}
    if after:
        kwargs.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=after)
    else:
        kwargs["ShardIteratorType"] = "TRIM_HORIZON"
    with aws_call("GetShardIterator"):
        iterator = streams.get_shard_iterator(**kwargs).get("ShardIterator")
    empty = 0
    while iterator:
        with aws_call("GetRecords"):
            page = streams.get_records(ShardIterator=iterator, Limit=limit)
        batch = page.get("Records", [])
        yield from batch
        empty = 0 if batch else empty + 1
        if empty >= MAX_EMPTY_PAGES:
            return
        iterator = page.get("NextShardIterator")


def record_time(record: Mapping[str, Any]) -> float:
    """ApproximateCreationDateTime as epoch seconds (boto3 gives a datetime, Lambda a number)."""
    value = (record.get("dynamodb") or {}).get("ApproximateCreationDateTime")
    if isinstance(value, datetime):
        return value.timestamp()
    return float(value or 0.0)


def is_ttl_expiry(record: Mapping[str, Any]) -> bool:
    """A delete made by DynamoDB's TTL, not by an application (it is no write to watch for)."""
    identity = record.get("userIdentity") or {}
    return bool(
        identity.get("type") == "Service"
        and identity.get("principalId") == "dynamodb.amazonaws.com"
    )
