"""Listing a stream's shards and the Lambda event source mappings that read it: the replicator's
runner, status, the cutover gate and the backfill's completion all need both."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from dualwrite.aws.errors import aws_call
from dualwrite.errors import DualwriteError
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


#: the replicator's entry point: a function that runs it is the replicator
REPLICATOR_HANDLER = "stream_replicator.handler.lambda_handler"


def function_name(arn: str) -> str:
    """A function's name from its ARN (arn:aws:lambda:region:account:function:name[:q])."""
    parts = arn.split(":")
    return parts[6] if len(parts) > 6 else arn


def replicators(
    lambda_client: Any, function_arns: Iterable[str], named: str | None = None
) -> set[str]:
    """Of the functions reading a stream, the replicator: the one `named` (the stack's
    DUALWRITE_REPLICATOR_FUNCTION), else those running REPLICATOR_HANDLER. Another consumer
    of the same stream (a search indexer, the application's own) is left alone: its mapping
    is not enabled, nor its filter replaced. When none can be told apart (no permission to
    read a configuration, a wrapping handler), all of them, as before."""
    arns = set(function_arns)
    if named:
        return {a for a in arns if named in (a, function_name(a))}
    ours = set()
    for arn in arns:
        try:
            with aws_call(f"GetFunctionConfiguration {arn}"):
                config = lambda_client.get_function_configuration(FunctionName=arn)
        except DualwriteError:
            return arns
        if config.get("Handler") == REPLICATOR_HANDLER:
            ours.add(arn)
    return ours or arns


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
