"""Listing a stream's shards and the Lambda event source mappings that read it: the replicator's
runner, status, the cutover gate and the backfill's completion all need both."""

from __future__ import annotations

from typing import Any

from dualwrite.aws.errors import aws_call


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
