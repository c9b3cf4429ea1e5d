"""The replicator's Lambda event source mappings on a source stream: the template creates
them disabled, and a route's completed backfill enables them (found by the stream ARN)."""

from __future__ import annotations

from typing import Any

from dualwrite.aws.errors import aws_call
from dualwrite.aws.streams import list_event_source_mappings

ENABLED_STATES = ("Enabled", "Enabling")


def _summary(esm: dict[str, Any], changed: bool) -> dict[str, Any]:
    return {
        "uuid": str(esm.get("UUID", "")),
        "function": str(esm.get("FunctionArn", "")).rsplit(":", 1)[-1],
        "state": str(esm.get("State", "")),
        "changed": changed,
    }


def enable_mappings(lambda_client: Any, stream_arn: str) -> list[dict[str, Any]]:
    """Enable every event source mapping on the stream; returns each one's state after."""
    out = []
    for esm in list_event_source_mappings(lambda_client, stream_arn):
        if esm.get("State") in ENABLED_STATES:
            out.append(_summary(esm, False))
            continue
        with aws_call("UpdateEventSourceMapping"):
            updated = lambda_client.update_event_source_mapping(UUID=esm["UUID"], Enabled=True)
        out.append(_summary({**esm, **updated}, True))
    return out
