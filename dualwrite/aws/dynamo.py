"""DynamoDB data-plane calls: batched writes with UnprocessedItems retries, scans, queries and
batched reads. Wire format in and out; errors translated to dualwrite's hierarchy."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from dualwrite.aws.errors import aws_call
from dualwrite.backoff import Backoff
from dualwrite.errors import ThrottledError
from dualwrite.wire import Item, Key, key_id

K = TypeVar("K")

BATCH_WRITE_MAX = 25
BATCH_GET_MAX = 100


@dataclass
class RequestCounter:
    """Counts DynamoDB requests by operation (they are what costs money)."""

    counts: dict[str, int] = field(default_factory=dict)
    consumed_wcu: float = 0.0
    consumed_rcu: float = 0.0

    def add(self, operation: str, n: int = 1) -> None:
        self.counts[operation] = self.counts.get(operation, 0) + n

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _consumed(response: Any) -> float:
    total = 0.0
    consumed = response.get("ConsumedCapacity", []) or []
    if isinstance(consumed, dict):  # Scan/Query/GetItem return one object, batches a list
        consumed = [consumed]
    for cc in consumed:
        total += float(cc.get("CapacityUnits", 0) or 0)
    return total


def batch_write(
    client: Any,
    table: str,
    requests: Sequence[dict[str, Any]],
    *,
    backoff: Backoff | None = None,
    max_attempts: int = 12,
    has_time: Callable[[], bool] = lambda: True,
    counter: RequestCounter | None = None,
    on_capacity: Callable[[float], None] | None = None,
) -> list[dict[str, Any]]:
    """Write up to 25 requests to one table, retrying UnprocessedItems with backoff and jitter.

    Returns what is still unprocessed when attempts or time run out (normally nothing).
    """
    if len(requests) > BATCH_WRITE_MAX:
        raise ValueError(f"BatchWriteItem takes at most {BATCH_WRITE_MAX} requests")
    backoff = backoff or Backoff()
    pending = list(requests)
    attempt = 0
    while pending:
        with aws_call("BatchWriteItem"):
            response = client.batch_write_item(
                RequestItems={table: pending}, ReturnConsumedCapacity="TOTAL"
            )
        if counter is not None:
            counter.add("BatchWriteItem")
            counter.consumed_wcu += _consumed(response)
        if on_capacity is not None:
            on_capacity(_consumed(response))
        pending = list(response.get("UnprocessedItems", {}).get(table, []))
        if not pending:
            break
        attempt += 1
        if attempt >= max_attempts or not has_time():
            break
        backoff.wait(attempt)
    return pending


@dataclass(frozen=True)
class ScanPage:
    items: list[Item]
    last_key: Key | None
    consumed: float


def scan_pages(
    client: Any,
    table: str,
    *,
    segment: int | None = None,
    total_segments: int | None = None,
    start_key: Key | None = None,
    limit: int | None = None,
    consistent: bool = False,
    counter: RequestCounter | None = None,
    extra: dict[str, Any] | None = None,
) -> Iterator[ScanPage]:
    """Pages of a (segment of a) table scan, resuming from start_key."""
    kwargs: dict[str, Any] = {"TableName": table, "ReturnConsumedCapacity": "TOTAL"}
    if total_segments is not None and total_segments > 1:
        kwargs["Segment"] = segment
        kwargs["TotalSegments"] = total_segments
    if limit:
        kwargs["Limit"] = limit
    if consistent:
        kwargs["ConsistentRead"] = True
    if extra:
        kwargs.update(extra)
    key = start_key
    while True:
        if key:
            kwargs["ExclusiveStartKey"] = key
        with aws_call("Scan"):
            response = client.scan(**kwargs)
        consumed = _consumed(response)
        if counter is not None:
            counter.add("Scan")
            counter.consumed_rcu += consumed
        key = response.get("LastEvaluatedKey")
        yield ScanPage(list(response.get("Items", [])), key, consumed)
        if not key:
            return


def query_all(
    client: Any,
    table: str,
    key_name: str,
    key_value: dict[str, Any],
    *,
    consistent: bool = True,
    counter: RequestCounter | None = None,
) -> list[Item]:
    """Every item with one hash key value (strongly consistent by default)."""
    kwargs: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "#k = :v",
        "ExpressionAttributeNames": {"#k": key_name},
        "ExpressionAttributeValues": {":v": key_value},
        "ConsistentRead": consistent,
    }
    items: list[Item] = []
    while True:
        with aws_call("Query"):
            response = client.query(**kwargs)
        if counter is not None:
            counter.add("Query")
        items.extend(response.get("Items", []))
        last = response.get("LastEvaluatedKey")
        if not last:
            return items
        kwargs["ExclusiveStartKey"] = last


def batch_get(
    client: Any,
    table: str,
    keys: Sequence[Key],
    *,
    consistent: bool = True,
    backoff: Backoff | None = None,
    counter: RequestCounter | None = None,
    max_attempts: int = 12,
) -> dict[str, Item]:
    """Items by key (key_id -> item; absent keys are absent), 100 keys per call."""
    return batch_get_by(
        client,
        table,
        keys,
        key_id,
        consistent=consistent,
        backoff=backoff,
        counter=counter,
        max_attempts=max_attempts,
    )


def batch_get_by(
    client: Any,
    table: str,
    keys: Sequence[Key],
    identity: Callable[[Key], K],
    *,
    consistent: bool = True,
    backoff: Backoff | None = None,
    counter: RequestCounter | None = None,
    max_attempts: int = 12,
    ids: Sequence[K] = (),
) -> dict[K, Item]:
    """batch_get with the caller's key identity (cheaper than key_id for string keys);
    `ids`: the identity of each key, when the caller has them already."""
    backoff = backoff or Backoff()
    found: dict[K, Item] = {}
    unique = dict(zip(ids, keys, strict=True)) if ids else {identity(k): k for k in keys}
    names = list(next(iter(unique.values())).keys()) if unique else []
    chunks = list(unique.values())
    for start in range(0, len(chunks), BATCH_GET_MAX):
        pending: list[Key] = chunks[start : start + BATCH_GET_MAX]
        attempt = 0
        while pending:
            with aws_call("BatchGetItem"):
                response = client.batch_get_item(
                    RequestItems={table: {"Keys": pending, "ConsistentRead": consistent}}
                )
            if counter is not None:
                counter.add("BatchGetItem")
            for item in response.get("Responses", {}).get(table, []):
                found[identity({n: item[n] for n in names})] = item
            pending = list(response.get("UnprocessedKeys", {}).get(table, {}).get("Keys", []))
            if pending:
                attempt += 1
                if attempt >= max_attempts:
                    raise ThrottledError(
                        f"BatchGetItem on {table}: keys still unprocessed after {attempt} tries"
                    )
                backoff.wait(attempt)
    return found
