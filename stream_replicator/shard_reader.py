"""The DynamoDB Streams calls of the local runner: shards, iterators and reads, with the
errors that mean something to it translated into what it should do."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from dualwrite.aws import tables
from dualwrite.aws.errors import aws_call
from dualwrite.aws.streams import list_shards
from dualwrite.config import Migration
from dualwrite.errors import AwsError, ConfigError, NotFoundError, ThrottledError
from stream_replicator.events import Shard, lambda_record
from stream_replicator.records import StreamRecord

#: GetRecords errors after which a new iterator is taken from the checkpoint
RENEW = {"ExpiredIteratorException", "TrimmedDataAccessException"}
#: streams errors that only mean "slow down" (botocore's own retries spent): the shard is
#: read again later, with backoff (DESIGN.md section 7: throttling and 5xx are retried)
SLOW_DOWN = {
    "LimitExceededException",
    "InternalServerError",
    "InternalFailure",
    "ServiceUnavailable",
    "ServiceUnavailableException",
}


def passing(exc: AwsError) -> bool:
    """A throttle or a server-side failure (a 5xx, named or only numbered)."""
    return isinstance(exc, ThrottledError) or exc.code in SLOW_DOWN or exc.code.startswith("5")


class ReadProblem(StrEnum):
    #: the iterator expired or its records were trimmed: take a new one
    RENEW = "renew"
    #: throttled: read this shard again later
    SLOW_DOWN = "slow_down"


@dataclass(frozen=True)
class Read:
    """One GetRecords: the records as Lambda would deliver them, or the problem."""

    records: list[StreamRecord] = field(default_factory=list)
    next_iterator: str | None = None
    problem: ReadProblem | None = None


@dataclass(frozen=True)
class Start:
    """One GetShardIterator: the iterator (None: nothing more to read, or the shard is gone);
    trimmed when the checkpoint was older than the stream's retention."""

    iterator: str | None
    trimmed: bool = False
    gone: bool = False
    #: throttled or a 5xx: no iterator yet, take one again later
    slow: bool = False


@dataclass
class ShardReader:
    """`streams` is a DynamoDB Streams client (boto3, or a fake in tests)."""

    streams: Any
    stream_arn: str
    region: str
    notify: Callable[[str], None] = field(default=lambda _message: None)

    def shards(self) -> list[Shard]:
        return [Shard.from_describe(s) for s in list_shards(self.streams, self.stream_arn)]

    def start(self, shard_id: str, after: str | None) -> Start:
        """An iterator just after `after` (or at the trim horizon without it)."""
        kwargs: dict[str, str] = {"StreamArn": self.stream_arn, "ShardId": shard_id}
        if after:
            kwargs["ShardIteratorType"] = "AFTER_SEQUENCE_NUMBER"
            kwargs["SequenceNumber"] = after
        else:
            kwargs["ShardIteratorType"] = "TRIM_HORIZON"
        trimmed = False
        try:
            try:
                with aws_call("GetShardIterator"):
                    response = self.streams.get_shard_iterator(**kwargs)
            except AwsError as exc:
                if exc.code != "TrimmedDataAccessException":
                    raise
                # the checkpoint is older than the stream's 24 h retention: the records in
                # between are gone; the runner says so loudly and goes on from what is left
                trimmed = True
                kwargs = {
                    "StreamArn": self.stream_arn,
                    "ShardId": shard_id,
                    "ShardIteratorType": "TRIM_HORIZON",
                }
                with aws_call("GetShardIterator"):
                    response = self.streams.get_shard_iterator(**kwargs)
        except NotFoundError:
            # the shard left the stream (older than 24 h): nothing more can be read from it
            return Start(None, trimmed=trimmed, gone=True)
        except AwsError as exc:
            if passing(exc):
                return Start(None, slow=True)
            raise
        iterator = response.get("ShardIterator")
        return Start(str(iterator) if iterator else None, trimmed=trimmed)

    def read(self, iterator: str, limit: int) -> Read:
        try:
            with aws_call("GetRecords"):
                response = self.streams.get_records(ShardIterator=iterator, Limit=limit)
        except AwsError as exc:
            if exc.code in RENEW:
                return Read(problem=ReadProblem.RENEW)
            if passing(exc):
                return Read(problem=ReadProblem.SLOW_DOWN)
            raise
        records = response.get("Records") or []
        return Read(
            records=[lambda_record(r, self.stream_arn, self.region) for r in records],
            next_iterator=response.get("NextShardIterator"),
        )


def discover(migration: Migration, dynamodb: Any, streams: Any) -> dict[str, ShardReader]:
    """A reader for each route's stream, from DescribeTable's LatestStreamArn (checked first:
    a route without a NEW_AND_OLD_IMAGES stream is a configuration error)."""
    readers: dict[str, ShardReader] = {}
    for route in migration.routes:
        desc = tables.describe(dynamodb, route.source)
        if desc is None:
            raise ConfigError(f"route {route.name}: source table {route.source} does not exist")
        view = tables.stream_view(desc)
        arn = desc.get("LatestStreamArn")
        if view is None or not arn:
            raise ConfigError(
                f"route {route.name}: {route.source} has no stream; run `dualwrite prepare`"
            )
        if view != tables.STREAM_VIEW:
            raise ConfigError(
                f"route {route.name}: the stream on {route.source} has view type {view}; "
                f"dualwrite needs {tables.STREAM_VIEW} (run `dualwrite prepare`)"
            )
        region = arn.split(":")[3] if arn.count(":") >= 5 else ""
        readers[route.name] = ShardReader(streams, arn, region)
    return readers


def discover_target(dynamodb: Any, streams: Any, table: str) -> tuple[ShardReader | None, str]:
    """A reader for a target table's stream (reverse replication reads it after a switch),
    or None and why not (no table, no stream, or not NEW_AND_OLD_IMAGES)."""
    desc = tables.describe(dynamodb, table)
    if desc is None:
        return None, f"target table {table} does not exist"
    view = tables.stream_view(desc)
    arn = desc.get("LatestStreamArn")
    if view is None or not arn:
        return None, f"target table {table} has no stream"
    if view != tables.STREAM_VIEW:
        return None, f"the stream on {table} has view type {view}, not {tables.STREAM_VIEW}"
    region = arn.split(":")[3] if arn.count(":") >= 5 else ""
    return ShardReader(streams, arn, region), ""
