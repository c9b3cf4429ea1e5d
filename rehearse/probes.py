"""What several steps read back from the deployed stack, and how they poll and show it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from rehearse import adapt
from rehearse.context import STACK, Rehearsal

TARGET = "CoreTable"
REVERSE_MAPPING = "ReverseStreamMapping"


def stack_mappings(r: Rehearsal) -> dict[str, dict[str, Any]]:
    """Logical id -> the event source mapping CloudFormation made for it, as read now."""
    cfn = r.clients.client("cloudformation")
    lam = r.clients.lambda_
    found = {}
    for res in cfn.list_stack_resources(StackName=STACK)["StackResourceSummaries"]:
        if res["ResourceType"] == adapt.EVENT_SOURCE_MAPPING:
            uuid = res["PhysicalResourceId"]
            found[res["LogicalResourceId"]] = dict(lam.get_event_source_mapping(UUID=uuid))
    return found


def counting(check: Callable[[], Any]) -> Callable[[], int]:
    """check() made to return how many calls it took (0 while it fails)."""
    calls = 0

    def counted() -> int:
        nonlocal calls
        calls += 1
        return calls if check() else 0

    return counted


def short(value: Any, limit: int = 100) -> str:
    text = json.dumps(value, separators=(",", ":"), default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def failure_queue_depth(r: Rehearsal) -> int:
    """Batches of stream records the mappings gave up on (the failure queue)."""
    attrs = r.clients.client("sqs").get_queue_attributes(
        QueueUrl=r.outputs["ReplicationFailureQueueUrl"],
        AttributeNames=["ApproximateNumberOfMessages"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"])
