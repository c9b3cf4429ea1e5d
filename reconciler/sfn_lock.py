"""Never two reconcile executions at once: a lock item in the control table. Adapter.

Why a lock item rather than listing the state machine's running executions: ListExecutions
is eventually consistent (two executions started together may each miss the other), while
a conditional write on one item is not. The lock (pk RECONCILE, sk SFN-LOCK) names the
execution holding it; it is released by the execution's last step, on success or on
failure (the state machine catches every error into that step). A holder that ended
without releasing it (stopped by an operator, timed out) no longer blocks anyone: the
next execution asks Step Functions whether the holder still runs (DescribeExecution,
strongly consistent) and takes the lock over when it does not; the takeover is
conditional on the item being unchanged since it was read.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dualwrite.aws.errors import aws_call
from dualwrite.control import ControlStore
from dualwrite.control.table import PK, SK
from dualwrite.errors import AwsError, ConditionFailedError
from dualwrite.wire import Item

LOCK_PK = "RECONCILE"
LOCK_SK = "SFN-LOCK"
ATTEMPTS = 3

#: whether an execution (by ARN) is still running
IsRunning = Callable[[str], bool]


@dataclass(frozen=True)
class LockHolder:
    execution: str
    run_id: str
    at: float


def holder(store: ControlStore) -> LockHolder | None:
    rec = store.get(LOCK_PK, LOCK_SK)
    if rec is None:
        return None
    data = rec.data
    return LockHolder(
        str(data.get("execution", "")), str(data.get("run_id", "")), float(rec.updated_at)
    )


def _put(store: ControlStore, execution: str, run_id: str, previous: float | None) -> None:
    item: Item = {
        PK: {"S": LOCK_PK},
        SK: {"S": LOCK_SK},
        "data": {"S": json.dumps({"execution": execution, "run_id": run_id})},
        "updated_at": {"N": repr(store.now())},
    }
    kwargs: dict[str, Any] = {"TableName": store.table, "Item": item}
    if previous is None:
        kwargs["ConditionExpression"] = "attribute_not_exists(pk)"
    else:  # take over only the lock as it was read
        kwargs["ConditionExpression"] = "updated_at = :seen"
        kwargs["ExpressionAttributeValues"] = {":seen": {"N": repr(previous)}}
    with aws_call(f"PutItem {store.table}"):
        store.client.put_item(**kwargs)


def acquire(store: ControlStore, execution: str, run_id: str, is_running: IsRunning) -> str | None:
    """Take the lock for `execution`: None when taken (or already held by it), else the ARN
    of the running execution that holds it."""
    for _ in range(ATTEMPTS):
        current = holder(store)
        if current is not None:
            if current.execution == execution:
                return None  # the plan step retried after taking it
            if current.execution and is_running(current.execution):
                return current.execution
        try:
            _put(store, execution, run_id, None if current is None else current.at)
            return None
        except ConditionFailedError:
            continue  # another execution moved first (or our own put's reply was lost)
    current = holder(store)
    if current is not None and current.execution == execution:
        return None  # the last put did land: its reply was lost
    if current is not None and current.execution:
        return current.execution
    # free again after every attempt was lost: others keep taking and dropping it. Failing
    # (the state machine releases nothing it does not hold) beats naming ourselves the holder
    raise ConditionFailedError(
        f"the reconcile lock changed hands {ATTEMPTS} times while {execution} tried to take "
        "it; the next scheduled run tries again",
        code="ConditionalCheckFailedException",
    )


def release(store: ControlStore, execution: str) -> bool:
    """Drop the lock if `execution` holds it (a retried release finds it gone: fine)."""
    current = holder(store)
    if current is None or current.execution != execution:
        return False
    with aws_call(f"DeleteItem {store.table}"):
        try:
            store.client.delete_item(
                TableName=store.table,
                Key={PK: {"S": LOCK_PK}, SK: {"S": LOCK_SK}},
                ConditionExpression="updated_at = :seen",
                ExpressionAttributeValues={":seen": {"N": repr(current.at)}},
            )
        except store.client.exceptions.ConditionalCheckFailedException:
            return False
    return True


def execution_running(sfn: Any) -> IsRunning:
    """DescribeExecution: running, or not (ended, or unknown to Step Functions)."""

    def is_running(arn: str) -> bool:
        try:
            with aws_call("DescribeExecution"):
                status = sfn.describe_execution(executionArn=arn)["status"]
        except AwsError as exc:
            if exc.code in ("ExecutionDoesNotExist", "InvalidArn"):
                return False
            raise
        return str(status) in ("RUNNING", "PENDING_REDRIVE")

    return is_running
