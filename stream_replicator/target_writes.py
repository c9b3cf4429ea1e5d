"""The writes of a batch to its target table: 25 per BatchWriteItem, UnprocessedItems retried
with backoff and jitter while the invocation has time left; an item the target refuses as
invalid is found with one request per write and reported as rejected (it is quarantined,
never retried)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dualwrite.aws.dynamo import BATCH_WRITE_MAX, RequestCounter, batch_write
from dualwrite.aws.errors import aws_call
from dualwrite.backoff import Backoff
from dualwrite.errors import AwsError, DualwriteError
from dualwrite.wire import Item, key_of
from stream_replicator.planning import TargetWrite, WriteRequest, fast_key_id


@dataclass
class Written:
    """What could not be written: lost (retried by redelivery) and rejected (quarantined),
    each with its reason."""

    lost: list[tuple[TargetWrite, str]] = field(default_factory=list)
    rejected: list[tuple[TargetWrite, str]] = field(default_factory=list)


@dataclass(frozen=True)
class TargetWriter:
    backoff: Backoff
    max_attempts: int
    counter: RequestCounter | None = None

    def write(
        self,
        dynamodb: Any,
        table: str,
        names: Sequence[str],
        writes: Sequence[TargetWrite],
        has_time: Callable[[], bool],
    ) -> Written:
        out = Written()
        for start in range(0, len(writes), BATCH_WRITE_MAX):
            chunk = list(writes[start : start + BATCH_WRITE_MAX])
            # every chunk gets one attempt; only its retries depend on the time left
            lost: list[TargetWrite] = []
            why = ""
            try:
                left = batch_write(
                    dynamodb,
                    table,
                    [w.to_wire() for w in chunk],
                    backoff=self.backoff,
                    max_attempts=self.max_attempts,
                    has_time=has_time,
                    counter=self.counter,
                )
            except AwsError as exc:
                if exc.code == "ValidationException":
                    lost, rejected = self._write_singly(dynamodb, table, chunk)
                    why = "single write failed"
                    out.rejected.extend(rejected)
                else:
                    lost, why = chunk, f"{type(exc).__name__}: {exc.code or exc}"
            except DualwriteError as exc:
                lost, why = chunk, f"{type(exc).__name__}: {exc}"
            else:
                if left:
                    by_kid = {fast_key_id(w.key, names): w for w in chunk}
                    lost = [by_kid[fast_key_id(_request_key(r, names), names)] for r in left]
                    why = "UnprocessedItems still left after retries"
            out.lost.extend((write, why) for write in lost)
        return out

    def _write_singly(
        self, dynamodb: Any, table: str, chunk: list[TargetWrite]
    ) -> tuple[list[TargetWrite], list[tuple[TargetWrite, str]]]:
        """One request per write, to find the item(s) the target refuses (bad data)."""
        lost: list[TargetWrite] = []
        rejected: list[tuple[TargetWrite, str]] = []
        for write in chunk:
            operation = "PutItem" if write.item is not None else "DeleteItem"
            try:
                with aws_call(operation):
                    if write.item is not None:
                        dynamodb.put_item(TableName=table, Item=write.item)
                    else:
                        dynamodb.delete_item(TableName=table, Key=write.key)
                if self.counter is not None:
                    self.counter.add(operation)
            except AwsError as exc:
                if exc.code == "ValidationException":
                    rejected.append((write, f"the target table rejected the item: {exc}"))
                else:
                    lost.append(write)
            except DualwriteError:
                lost.append(write)
        return lost, rejected


def _request_key(request: WriteRequest, names: Sequence[str]) -> Item:
    """The key of a BatchWriteItem WriteRequest (AWS's shape)."""
    if "PutRequest" in request:
        return key_of(request["PutRequest"]["Item"], names)
    key: Item = request["DeleteRequest"]["Key"]
    return key
