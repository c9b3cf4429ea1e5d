"""The replicator's Lambda event source mappings on a source stream: the template creates
them disabled, and a route's completed backfill enables them (found by the stream ARN)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dualwrite.aws.errors import aws_call
from dualwrite.aws.streams import list_event_source_mappings, replicators

ENABLED_STATES = ("Enabled", "Enabling")


@dataclass(frozen=True)
class MappingState:
    """One event source mapping after the backfill looked at it."""

    uuid: str
    function: str
    state: str
    #: this run enabled it
    changed: bool

    @property
    def enabled(self) -> bool:
        return self.state in ENABLED_STATES

    def to_json(self) -> dict[str, str | bool]:
        return {
            "uuid": self.uuid,
            "function": self.function,
            "state": self.state,
            "changed": self.changed,
        }


def _summary(esm: Mapping[str, Any], changed: bool) -> MappingState:
    return MappingState(
        uuid=str(esm.get("UUID", "")),
        function=str(esm.get("FunctionArn", "")).rsplit(":", 1)[-1],
        state=str(esm.get("State", "")),
        changed=changed,
    )


def enable_mappings(
    lambda_client: Any, stream_arn: str, replicator: str | None = None
) -> tuple[MappingState, ...]:
    """Enable the replicator's event source mappings on the stream (streams.replicators:
    `replicator` names it, else its handler tells); returns each one's state after."""
    out = []
    mappings = list_event_source_mappings(lambda_client, stream_arn)
    ours = replicators(lambda_client, {str(m.get("FunctionArn", "")) for m in mappings}, replicator)
    for esm in mappings:
        if str(esm.get("FunctionArn", "")) not in ours:
            continue  # another consumer's: enabled or not as its owner left it
        if esm.get("State") in ENABLED_STATES:
            out.append(_summary(esm, False))
            continue
        with aws_call("UpdateEventSourceMapping"):
            updated = lambda_client.update_event_source_mapping(UUID=esm["UUID"], Enabled=True)
        out.append(_summary({**esm, **updated}, True))
    return tuple(out)
