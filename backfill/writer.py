"""Target writes of one segment: 25-item BatchWriteItem, or put-if-absent once replication is
live, under a shared capacity budget.

Batched mode buffers writes in order, coalescing a key written twice (BatchWriteItem refuses
duplicate keys; the later write wins), and sends only full batches until told to send
everything, so a segment makes exactly one request per 25 items. Every write gets a sequence
number; `watermark` is the highest number up to which every write is acknowledged, which is
what lets the copier checkpoint a page only after that page's writes are acknowledged.

Put-if-absent mode (a backfill re-run after the route is BACKFILLED, when the replicator owns
the target) writes each item with PutItem on attribute_not_exists(hash key), so it never
overwrites a newer replicated change; an item that already exists is skipped (counted), and
so is a derived User item that exists; deletes of derived items are left to the replicator.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dualwrite.aws.dynamo import BATCH_WRITE_MAX, RequestCounter, batch_write
from dualwrite.aws.errors import aws_call
from dualwrite.backoff import Backoff, RateLimiter
from dualwrite.conditions import UnsafeRepair, still_holds
from dualwrite.errors import AwsError, ConditionFailedError, ThrottledError
from dualwrite.wire import Item, Key, item_size, key_id, key_of

#: transient server-side failures worth our own retries on top of botocore's
TRANSIENT_CODES = {"InternalServerError", "ServiceUnavailable", "InternalFailure"}
#: a write the table refuses whatever the retries
VALIDATION = "ValidationException"


def transient(exc: AwsError) -> bool:
    """Throttling or a 5xx: worth another try later."""
    return isinstance(exc, ThrottledError) or exc.code in TRANSIENT_CODES


def retrying(
    call: Callable[[], Any],
    *,
    backoff: Backoff,
    attempts: int,
    has_time: Callable[[], bool] = lambda: True,
) -> Any:
    """Run a call, retrying throttling and transient 5xx with backoff (after botocore's own
    adaptive retries gave up on them)."""
    attempt = 0
    while True:
        try:
            return call()
        except AwsError as exc:
            attempt += 1
            if not transient(exc) or attempt >= attempts or not has_time():
                raise
            backoff.wait(attempt)


def write_units(request: dict[str, Any]) -> float:
    """The documented write cost of one request: 1 WCU per started KB (a delete: 1)."""
    if "PutRequest" in request:
        return float(max(1, math.ceil(item_size(request["PutRequest"]["Item"]) / 1024)))
    return 1.0


@dataclass
class TargetWriter:
    client: Any
    table: str
    key_names: Sequence[str]
    conditional: bool = False
    limiter: RateLimiter | None = None
    backoff: Backoff = field(default_factory=Backoff)
    has_time: Callable[[], bool] = lambda: True
    attempts: int = 8
    counter: RequestCounter = field(default_factory=RequestCounter)
    #: called after every acknowledged batch (the copier saves checkpoints it unblocks)
    on_ack: Callable[[], None] | None = None
    #: called with a write the table refuses for good (ValidationException: a key over a
    #: limit, an empty string a secondary index keys on) and why: quarantined by the copier,
    #: so that one item does not stop the segment on every run. None: raise
    on_refused: Callable[[dict[str, Any], str], None] | None = None
    refused: int = 0
    #: puts acknowledged or queued (a coalesced duplicate counts once)
    issued: int = 0
    deleted: int = 0
    skipped_existing: int = 0
    #: put-if-absent items that landed, not yet checked against the source again (a re-run
    #: after replication went live: _Pages.settle_landed)
    landed: list[Item] = field(default_factory=list)
    #: landed items taken back: their source item was deleted after the Scan read it
    taken_back: int = 0
    consumed: float = 0.0
    _seq: int = 0
    _buffer: OrderedDict[str, tuple[int, dict[str, Any]]] = field(default_factory=OrderedDict)

    @property
    def seq(self) -> int:
        """The number of the latest write handed to the writer."""
        return self._seq

    @property
    def watermark(self) -> int:
        """Every write numbered up to this is acknowledged (or superseded by a later one)."""
        if not self._buffer:
            return self._seq
        first_seq, _ = next(iter(self._buffer.values()))
        return first_seq - 1

    @property
    def unsent_puts(self) -> int:
        """Puts queued and not sent (a stop cut the page short: it is redone next run)."""
        return sum(1 for _, request in self._buffer.values() if "PutRequest" in request)

    def put(self, item: Item) -> None:
        self._seq += 1
        if self.conditional:
            self._put_if_absent(item)
            return
        self._queue(key_of(item, self.key_names), {"PutRequest": {"Item": item}}, put=True)

    def delete(self, key: Key) -> None:
        self._seq += 1
        if self.conditional:
            self.skipped_existing += 1  # the replicator owns deletes once it is live
            return
        self._queue(key, {"DeleteRequest": {"Key": key}}, put=False)

    def flush(self, *, everything: bool) -> None:
        """Send full batches; with everything, the last partial one too."""
        while len(self._buffer) >= BATCH_WRITE_MAX or (everything and self._buffer):
            batch = [req for _, req in list(self._buffer.values())[:BATCH_WRITE_MAX]]
            self._send(batch)
            for _ in batch:
                self._buffer.popitem(last=False)
            if self.on_ack is not None:
                self.on_ack()

    # --- batched ------------------------------------------------------------------------
    def _queue(self, key: Key, request: dict[str, Any], *, put: bool) -> None:
        kid = key_id(key)
        old = self._buffer.pop(kid, None)
        if old is not None and "PutRequest" in old[1]:
            self.issued -= 1
        if put:
            self.issued += 1
        else:
            self.deleted += 1
        self._buffer[kid] = (self._seq, request)

    def _send(self, batch: list[dict[str, Any]]) -> None:
        if self.limiter is not None:
            self.limiter.acquire()
        reported = [0.0]

        def capacity(units: float) -> None:
            reported[0] += units

        def call() -> list[dict[str, Any]]:
            return batch_write(
                self.client,
                self.table,
                batch,
                backoff=self.backoff,
                has_time=self.has_time,
                counter=self.counter,
                on_capacity=capacity,
            )

        try:
            left = self._retrying(call)
        except AwsError as exc:
            if not self._refusable(exc):
                raise
            # the whole batch is refused for one write's sake: each alone, to find it
            self._send_singly(batch)
            return
        documented = 0.0
        if self.limiter is not None:  # sizing every item costs time; only a budget needs it
            written = batch if not left else [r for r in batch if r not in left]
            documented = sum(write_units(r) for r in written)
        self._spend(reported[0], documented)
        if left:
            raise ThrottledError(
                f"BatchWriteItem on {self.table}: {len(left)} write(s) still unprocessed after "
                "every retry; this page is not checkpointed, run the backfill again to resume",
                "UnprocessedItems",
                "BatchWriteItem",
            )

    def _send_singly(self, batch: list[dict[str, Any]]) -> None:
        for request in batch:
            if self.limiter is not None:
                self.limiter.acquire()
            put = request.get("PutRequest")
            op = "PutItem" if put is not None else "DeleteItem"
            args = {"Item": put["Item"]} if put is not None else request["DeleteRequest"]
            send = self.client.put_item if put is not None else self.client.delete_item

            def call(send: Any = send, args: Any = args, op: str = op) -> Any:
                with aws_call(f"{op} {self.table}"):
                    return send(TableName=self.table, ReturnConsumedCapacity="TOTAL", **args)

            self.counter.add(op)
            try:
                response = self._retrying(call)
            except AwsError as exc:
                if not self._refusable(exc):
                    raise
                self._refuse(request, str(exc))
                continue
            capacity = (response.get("ConsumedCapacity") or {}).get("CapacityUnits", 0)
            self._spend(float(capacity or 0), write_units(request))

    def _retrying(self, call: Callable[[], Any]) -> Any:
        return retrying(call, backoff=self.backoff, attempts=self.attempts, has_time=self.has_time)

    def _refusable(self, exc: AwsError) -> bool:
        """Refused for good, and the copier takes refusals (quarantined)."""
        return exc.code == VALIDATION and self.on_refused is not None

    def _refuse(self, request: dict[str, Any], why: str) -> None:
        assert self.on_refused is not None
        if "PutRequest" in request:
            self.issued -= 1  # not written
        else:
            self.deleted -= 1
        self.refused += 1
        self.on_refused(request, why)

    def _spend(self, reported: float, documented: float) -> None:
        # Emulators under-report (moto says 1 unit per call): under a budget, never count
        # less than the documented cost of what was written (in AWS the reported figure is
        # at least that)
        units = max(reported, documented)
        self.consumed += units
        if self.limiter is not None:
            self.limiter.spend(units)

    # --- put-if-absent ------------------------------------------------------------------
    def _put_if_absent(self, item: Item) -> None:
        if self.limiter is not None:
            self.limiter.acquire()
        hash_name = self.key_names[0]

        def call() -> Any:
            with aws_call(f"PutItem {self.table}"):
                return self.client.put_item(
                    TableName=self.table,
                    Item=item,
                    ConditionExpression="attribute_not_exists(#k)",
                    ExpressionAttributeNames={"#k": hash_name},
                    ReturnConsumedCapacity="TOTAL",
                )

        try:
            response = self._retrying(call)
        except ConditionFailedError:
            self.counter.add("PutItem")
            self.skipped_existing += 1
            self._spend(0.0, 1.0)
            return
        except AwsError as exc:
            if not self._refusable(exc):
                raise
            self.counter.add("PutItem")
            self.issued += 1  # _refuse takes it back
            self._refuse({"PutRequest": {"Item": item}}, str(exc))
            return
        self.counter.add("PutItem")
        reported = float((response.get("ConsumedCapacity") or {}).get("CapacityUnits", 0) or 0)
        self._spend(reported, write_units({"PutRequest": {"Item": item}}))
        self.issued += 1
        self.landed.append(item)

    def take_back(self, item: Item) -> None:
        """Delete a landed put-if-absent item if it is still exactly as put (a newer write,
        the replicator's, is left alone)."""
        try:
            condition = still_holds(item, self.key_names)
        except UnsafeRepair:  # too many attributes to condition on: reconcile will see it
            return
        if self.limiter is not None:
            self.limiter.acquire()

        def call() -> Any:
            with aws_call(f"DeleteItem {self.table}"):
                return self.client.delete_item(
                    TableName=self.table,
                    Key={k: item[k] for k in self.key_names},
                    **condition.kwargs(),
                    ReturnConsumedCapacity="TOTAL",
                )

        try:
            response = self._retrying(call)
        except ConditionFailedError:
            self.counter.add("DeleteItem")
            self._spend(0.0, 1.0)
            return
        self.counter.add("DeleteItem")
        reported = float((response.get("ConsumedCapacity") or {}).get("CapacityUnits", 0) or 0)
        self._spend(reported, 1.0)
        self.issued -= 1
        self.taken_back += 1
