"""The reverse direction's event source mappings in AWS (DESIGN.md section 8). Adapter.

infra/template.yaml gives the replicator a second, disabled mapping per target stream. The
switch to reverse enables it with a FilterCriteria on ApproximateCreationDateTime (DynamoDB
Streams has no timestamp iterator), so the Lambda sees the target stream from T minus the
margin. The replicator is the function reading a route's source stream; its mappings whose
EventSourceArn is a target table's stream are the reverse ones. Each change is journaled
before it is made, with the state read before, so a re-run after a kill repeats it
exactly. Locally (no mapping) there is nothing to do.

A rollback leaves them enabled: the reverse direction must drain every change made before
T+O, and after the drain the replicator skips target-stream records itself.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

from dualwrite.aws.errors import aws_call
from dualwrite.aws.streams import list_event_source_mappings, replicators
from dualwrite.cutover.reverse_journal import DirectionSwitch, MappingChange
from dualwrite.errors import DualwriteError, NotFoundError


def filter_criteria(starts_at: float) -> dict[str, list[dict[str, str]]]:
    """The reverse mapping's filter: records made at or after T minus the margin (whole
    seconds, rounded down: ApproximateCreationDateTime is)."""
    since = [{"numeric": [">=", math.floor(starts_at)]}]
    pattern = {"dynamodb": {"ApproximateCreationDateTime": since}}
    return {"Filters": [{"Pattern": json.dumps(pattern, separators=(",", ":"))}]}


def _mappings(lambda_client: Any, stream_arn: str) -> list[Mapping[str, Any]]:
    try:
        return list(list_event_source_mappings(lambda_client, stream_arn))
    except NotFoundError:
        return []


def replicator_functions(lambda_client: Any, source_streams: Iterable[str]) -> set[str]:
    """The forward replicator: of the functions that read a route's source stream, the one
    running the replicator's handler (streams.replicators; an application consumer of both
    streams keeps its own mapping and filter)."""
    readers = {
        str(m.get("FunctionArn"))
        for arn in source_streams
        for m in _mappings(lambda_client, arn)
        if m.get("FunctionArn")
    }
    return replicators(lambda_client, readers) if readers else set()


def missing_reverse(
    lambda_client: Any, source_streams: Iterable[str], target_streams: Iterable[str]
) -> list[str]:
    """The target streams the replicator has no event source mapping on, when it runs in
    AWS (it has mappings on the source streams): reverse replication could not start there,
    and a rollback would lose what the application writes to that table."""
    functions = replicator_functions(lambda_client, source_streams)
    if not functions:
        return []  # the local runner reads the streams itself
    targets = list(target_streams)
    return _uncovered(targets, reverse_candidates(lambda_client, targets, functions))


def _uncovered(targets: Iterable[str], found: Iterable[Mapping[str, Any]]) -> list[str]:
    covered = {str(m.get("EventSourceArn")) for m in found}
    return [arn for arn in dict.fromkeys(targets) if arn not in covered]


def reverse_candidates(
    lambda_client: Any, target_streams: Iterable[str], functions: set[str]
) -> list[Mapping[str, Any]]:
    """The replicator's mappings on the target streams."""
    return [
        m
        for arn in dict.fromkeys(target_streams)
        for m in _mappings(lambda_client, arn)
        if str(m.get("FunctionArn")) in functions and m.get("UUID")
    ]


def enable_reverse(
    lambda_client: Any,
    switch: DirectionSwitch,
    starts_at: float,
    source_streams: Iterable[str],
    target_streams: Iterable[str],
    journal: Callable[[DirectionSwitch], DirectionSwitch],
) -> DirectionSwitch:
    """Enable each reverse mapping with the filter from `starts_at`; `journal` saves the
    switch before and after each update (and returns it as saved)."""
    functions = replicator_functions(lambda_client, source_streams)
    targets = list(target_streams)
    found = reverse_candidates(lambda_client, targets, functions)
    lacking = _uncovered(targets, found)
    if functions and lacking:  # AWS, and a target stream nobody would read in reverse
        raise DualwriteError(
            f"the replicator has no event source mapping on {', '.join(lacking)}: reverse "
            "replication cannot start (is the stack's target stream ARN parameter the "
            "table's current stream?)"
        )
    for m in found:
        uuid = str(m["UUID"])
        known = switch.mapping(uuid)
        if known is not None and known.done:
            continue
        if known is None:  # as read before our first update (a re-run keeps the first read)
            known = MappingChange(
                uuid=uuid,
                function_arn=str(m.get("FunctionArn") or ""),
                stream_arn=str(m.get("EventSourceArn") or ""),
                starts_at=starts_at,
                was_enabled=str(m.get("State")) in ("Enabled", "Enabling"),
                previous_filter=m.get("FilterCriteria") or None,
            )
            switch = journal(switch.with_mapping(known))
        with aws_call(f"UpdateEventSourceMapping {uuid}"):
            lambda_client.update_event_source_mapping(
                UUID=uuid, Enabled=True, FilterCriteria=filter_criteria(known.starts_at)
            )
        switch = journal(switch.with_mapping(replace(known, done=True)))
    return switch
