"""Listing a stream's shards and the Lambda event source mappings that read it: the replicator's
runner, status, the cutover gate and the backfill's completion all need both."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dualwrite.aws.errors import aws_call
from dualwrite.jsondoc import JsonObject


def list_shards(streams: Any, stream_arn: str) -> list[dict[str, Any]]:
    """Every shard of the stream (DescribeStream, following ExclusiveStartShardId)."""
    out: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"StreamArn": stream_arn}
    while True:
        with aws_call("DescribeStream"):
            desc = streams.describe_stream(**kwargs)["StreamDescription"]
        out.extend(desc.get("Shards", []) or [])
        last = desc.get("LastEvaluatedShardId")
        if not last:
            return out
        kwargs["ExclusiveStartShardId"] = last


def list_event_source_mappings(lambda_client: Any, stream_arn: str) -> list[dict[str, Any]]:
    """Every event source mapping reading the stream (ListEventSourceMappings, paginated)."""
    out: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"EventSourceArn": stream_arn}
    while True:
        with aws_call("ListEventSourceMappings"):
            response = lambda_client.list_event_source_mappings(**kwargs)
        out.extend(response.get("EventSourceMappings", []))
        marker = response.get("NextMarker")
        if not marker:
            return out
        kwargs["Marker"] = marker


@dataclass(frozen=True)
class EventSourceMapping:
    """What status, the cutover gate and decommission read of one event source mapping."""

    uuid: str | None
    function_arn: str | None
    state: str | None
    state_reason: str | None = None
    last_processing_result: str | None = None
    batch_size: int | None = None
    starting_position: str | None = None

    @classmethod
    def of(cls, m: Mapping[str, Any]) -> EventSourceMapping:
        return cls(
            uuid=m.get("UUID"),
            function_arn=m.get("FunctionArn"),
            state=m.get("State"),
            state_reason=m.get("StateTransitionReason"),
            last_processing_result=m.get("LastProcessingResult"),
            batch_size=m.get("BatchSize"),
            starting_position=m.get("StartingPosition"),
        )

    @property
    def function_name(self) -> str:
        return str(self.function_arn or "").split(":function:")[-1].split(":")[0]

    def to_json(self) -> JsonObject:
        return {
            "uuid": self.uuid,
            "function_arn": self.function_arn,
            "state": self.state,
            "state_reason": self.state_reason,
            "last_processing_result": self.last_processing_result,
            "batch_size": self.batch_size,
            "starting_position": self.starting_position,
        }


def event_source_mappings(lambda_client: Any, stream_arn: str) -> list[EventSourceMapping]:
    """The mappings reading the stream, typed."""
    return [EventSourceMapping.of(m) for m in list_event_source_mappings(lambda_client, stream_arn)]
