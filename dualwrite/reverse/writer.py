"""The reverse writer: applies a batch of target-stream changes to a route's source table (the
adapter around plan and echo).

Per batch: every read the plans need, batched (BatchGetItem of the source keys, 100 a call,
strongly consistent, UnprocessedKeys retried; one Query per group a plan reads whole; a
BatchGetItem of the target items a plan needs); the plans; the echo filter (one write per
key, only what differs); the journal entry of our own writes (before writing, so a source-
stream change of ours is never taken for a foreign one); then PUTs and DELETEs 25 per
BatchWriteItem (UnprocessedItems retried with backoff and jitter) and one UpdateItem per
UPDATE (an update keeps what the forward mapping drops). What is still unprocessed fails
the changes whose writes touch it: they are redelivered, and the plans are idempotent.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dualwrite.aws.dynamo import (
    BATCH_WRITE_MAX,
    RequestCounter,
    batch_get_by,
    batch_write,
    query_all,
)
from dualwrite.aws.errors import aws_call
from dualwrite.backoff import Backoff
from dualwrite.errors import AwsError, ConfigError, DualwriteError
from dualwrite.mapping.base import Mapping as RouteMapping
from dualwrite.reverse.echo import net_writes
from dualwrite.reverse.foreign import OwnWrites, narrowed, own_writes
from dualwrite.reverse.model import (
    KeyId,
    Reads,
    SourceWrite,
    TargetChange,
    WriteKind,
    group_id,
    kid,
)
from dualwrite.reverse.plan import (
    ReadResult,
    ReversePlanner,
    batch_reads,
    plan_batch,
    planner_for,
)
from dualwrite.wire import AttributeValue, Item, key_of

#: the error of a request DynamoDB will refuse however often it is sent
VALIDATION = "ValidationException"


@dataclass(frozen=True)
class ReverseResult:
    """What one batch did. Indices are positions in the batch given to apply."""

    puts: int
    updates: int
    deletes: int
    #: planned writes that changed nothing (echoes)
    unchanged: int
    #: (index, reason) of each change the old schema cannot hold: quarantine it
    unrepresentable: tuple[tuple[int, str], ...]
    #: changes whose writes did not all land: report them failed (redelivered)
    failed: tuple[int, ...]
    #: our own writes, as journaled (None when nothing was written)
    own: OwnWrites | None

    @property
    def written(self) -> int:
        return self.puts + self.updates + self.deletes


def update_request(table: str, write: SourceWrite) -> dict[str, Any]:
    """The UpdateItem arguments of an UPDATE (names and values as placeholders)."""
    names: dict[str, str] = {}
    values: dict[str, AttributeValue] = {}
    sets = []
    for i, (name, value) in enumerate(write.set.items()):
        names[f"#s{i}"] = name
        values[f":s{i}"] = value
        sets.append(f"#s{i} = :s{i}")
    removes = []
    for i, name in enumerate(write.remove):
        names[f"#r{i}"] = name
        removes.append(f"#r{i}")
    expression = " ".join(
        part
        for part in (
            "SET " + ", ".join(sets) if sets else "",
            "REMOVE " + ", ".join(removes) if removes else "",
        )
        if part
    )
    request: dict[str, Any] = {
        "TableName": table,
        "Key": write.key,
        "UpdateExpression": expression,
        "ExpressionAttributeNames": names,
    }
    if values:
        request["ExpressionAttributeValues"] = values
    return request


def _shared(rejected: Mapping[KeyId, str], touched: Sequence[tuple[KeyId, ...]]) -> bool:
    """Whether a refused key was written for more than one record."""
    return any(sum(1 for ids in touched if k in ids) > 1 for k in rejected)


def _merged(write: SourceWrite, current: Mapping[KeyId, Item]) -> SourceWrite:
    if write.kind is not WriteKind.UPDATE:
        return write
    after = write.apply_to(current.get(write.kid))
    assert after is not None
    return SourceWrite.put(write.key, after)


@dataclass
class ReverseWriter:
    client: Any
    route: str
    source_table: str
    target_table: str
    mapping: RouteMapping
    backoff: Backoff = field(default_factory=Backoff)
    counter: RequestCounter = field(default_factory=RequestCounter)
    clock: Callable[[], float] = time.time
    has_time: Callable[[], bool] = lambda: True
    #: saves our own writes before they are made (the control table, in the wiring); called
    #: again with the entry's span narrowed once they are (the same id: it replaces it)
    journal: Callable[[OwnWrites], None] | None = None
    #: the user pool's name of a user, when the route has a pool (memberships)
    name_for: Callable[[AttributeValue], str | None] | None = None
    #: how long after the journal entry our writes may still be made (the invocation's time)
    write_span_s: float = 900.0
    #: send an UPDATE as a PUT of the item read with the update applied (25 a request instead
    #: of one each). Off by default: a foreign write racing between our read and our write
    #: would lose its attributes (it is still reported, as its image differs)
    merge_updates: bool = False
    new_id: Callable[[], str] = field(default=lambda: uuid.uuid4().hex[:12])
    _planner: ReversePlanner = field(init=False)

    def __post_init__(self) -> None:
        planner = planner_for(self.mapping)
        if planner is None:
            raise ConfigError(
                f"route {self.route}: mapping {self.mapping.name} has no inverse, so it cannot "
                "replicate in reverse (cut it over with cutover.reverse: false)"
            )
        self._planner = planner

    def apply(self, changes: Sequence[TargetChange]) -> ReverseResult:
        reads = batch_reads(self._planner, changes)
        found = self.read(reads)
        plan = plan_batch(self._planner, changes, found, self.mapping.group_attr)
        netted = net_writes(plan.writes, found.source)
        writes = netted.writes
        if self.merge_updates:
            writes = tuple(_merged(w, found.source) for w in writes)
        own = None
        if writes:
            at = self.clock()
            span = at + self.write_span_s
            own = own_writes(self.route, writes, found.source, at, span, self.new_id())
            if self.journal is not None:
                self.journal(own)
        try:
            failed_keys, rejected = self.write(writes, own.until if own is not None else None)
        finally:  # raised too (a dropped connection): the writes are over either way
            if own is not None:
                own = self._narrowed(own)
        failed = (
            tuple(i for i, ids in enumerate(plan.touched) if any(k in failed_keys for k in ids))
            if failed_keys
            else ()
        )
        if rejected and len(changes) > 1 and _shared(rejected, plan.touched):
            # a write refused for good that several records were netted into: one of them may
            # be fine alone (an email change netted with a role an index refuses). Each record
            # alone, then, so that only the ones refused on their own are quarantined
            return self._one_by_one(changes, plan.touched)
        unrepresentable = plan.unrepresentable
        for i, ids in enumerate(plan.touched if rejected else ()):
            # refused for good: quarantined (counted, listed), not retried forever
            refused = next((k for k in ids if k in rejected), None)
            if refused is not None and i not in failed:
                why = f"unrepresentable: the source table rejects it: {rejected[refused]}"
                unrepresentable += ((i, why),)
        kinds = [w.kind for w in writes]
        return ReverseResult(
            puts=kinds.count(WriteKind.PUT),
            updates=kinds.count(WriteKind.UPDATE),
            deletes=kinds.count(WriteKind.DELETE),
            unchanged=netted.unchanged,
            unrepresentable=unrepresentable,
            failed=failed,
            own=own,
        )

    def _one_by_one(
        self, changes: Sequence[TargetChange], touched: Sequence[tuple[KeyId, ...]]
    ) -> ReverseResult:
        """apply() of each change alone, in order; a change behind a failed one of the same
        key waits for it (failed too, redelivered). What the batch already wrote is an echo
        now: written again only where it differs."""
        failed: list[int] = []
        unrepresentable: list[tuple[int, str]] = []
        blocked: set[KeyId] = set()
        puts = updates = deletes = unchanged = 0
        for i, change in enumerate(changes):
            if blocked.intersection(touched[i]):
                failed.append(i)
                continue
            alone = self.apply([change])
            if alone.failed:
                failed.append(i)
                blocked.update(touched[i])
            unrepresentable.extend((i, why) for _, why in alone.unrepresentable)
            puts, updates = puts + alone.puts, updates + alone.updates
            deletes, unchanged = deletes + alone.deletes, unchanged + alone.unchanged
        return ReverseResult(
            puts, updates, deletes, unchanged, tuple(unrepresentable), tuple(failed), None
        )

    def _narrowed(self, own: OwnWrites) -> OwnWrites:
        """The entry journaled again with its span ended where the writes did (SPAN_SLACK_S
        covers DynamoDB's clock). A write failed here is sent again by a later batch, under
        its own entry."""
        done = narrowed(own, self.clock())
        if self.journal is None or done == own:
            return own
        try:
            self.journal(done)
        except DualwriteError:
            return own  # the open span stays journaled: only the check window is wider
        return done

    # --- reads ------------------------------------------------------------------------
    def read(self, reads: Reads) -> ReadResult:
        key_names = self.mapping.source_key.names
        source: dict[KeyId, Item] = {}
        read: set[KeyId] = set(reads.source_ids or [kid(k) for k in reads.source_keys])
        if reads.source_keys:
            source.update(
                batch_get_by(
                    self.client,
                    self.source_table,
                    reads.source_keys,
                    kid,
                    backoff=self.backoff,
                    counter=self.counter,
                    ids=reads.source_ids,
                )
            )
        groups: dict[str, tuple[KeyId, ...]] = {}
        names: dict[str, str] = {}
        attr = self.mapping.group_attr
        for group in reads.groups:
            assert attr is not None, "a mapping that reads groups has a group attribute"
            members = query_all(self.client, self.source_table, attr, group, counter=self.counter)
            ids = []
            for item in members:
                member = kid(key_of(item, key_names))
                source[member] = item
                read.add(member)
                ids.append(member)
            groups[group_id(group)] = tuple(ids)
            if self.name_for is not None:
                name = self.name_for(group)
                if name is not None:
                    names[group_id(group)] = name
        target: dict[KeyId, Item] = {}
        if reads.target_keys:
            target.update(
                batch_get_by(
                    self.client,
                    self.target_table,
                    reads.target_keys,
                    kid,
                    backoff=self.backoff,
                    counter=self.counter,
                    ids=reads.target_ids,
                )
            )
        return ReadResult(
            source=source,
            read=frozenset(read),
            groups=groups,
            target=target,
            names=names,
            pool=self.name_for is not None,
        )

    # --- writes -----------------------------------------------------------------------
    def write(
        self, writes: Sequence[SourceWrite], until: float | None = None
    ) -> tuple[set[KeyId], dict[KeyId, str]]:
        """Sends the netted writes; returns the kids of those that did not land (retried),
        and of those the source table refuses for good (ValidationException: a type or size
        its schema does not take), with why. A refused chunk is sent again a write at a
        time, so that one bad write does not hold back the other 24 on every retry.
        `until`: the end of the journaled span; a write not begun by then is not made
        (failed: redelivered under an entry of its own), since the foreign-write check looks
        for entries no older than the span before a change."""
        failed: set[KeyId] = set()
        rejected: dict[KeyId, str] = {}

        def late() -> bool:
            return until is not None and self.clock() >= until

        batched = [w for w in writes if w.kind is not WriteKind.UPDATE]
        for start in range(0, len(batched), BATCH_WRITE_MAX):
            chunk = batched[start : start + BATCH_WRITE_MAX]
            if late():
                failed.update(w.kid for w in chunk)
                continue
            requests = [
                {"PutRequest": {"Item": w.item}}
                if w.kind is WriteKind.PUT
                else {"DeleteRequest": {"Key": w.key}}
                for w in chunk
            ]
            try:
                left = batch_write(
                    self.client,
                    self.source_table,
                    requests,
                    backoff=self.backoff,
                    has_time=self.has_time,
                    counter=self.counter,
                )
            except AwsError as exc:
                if exc.code != VALIDATION:
                    failed.update(w.kid for w in chunk)
                    continue
                for w in chunk:
                    self._one(w, failed, rejected)
                continue
            for request in left:
                key = (
                    request["DeleteRequest"]["Key"]
                    if "DeleteRequest" in request
                    else self.mapping.source_key_of_item(request["PutRequest"]["Item"])
                )
                failed.add(kid(key))
        for w in writes:
            if w.kind is WriteKind.UPDATE:
                if late():
                    failed.add(w.kid)
                    continue
                self._one(w, failed, rejected)
        return failed, rejected

    def _one(self, w: SourceWrite, failed: set[KeyId], rejected: dict[KeyId, str]) -> None:
        """One write on its own (UpdateItem, or PutItem/DeleteItem after a refused batch)."""
        table = self.source_table
        call: Callable[[], Any]
        if w.kind is WriteKind.UPDATE:
            op, call = "UpdateItem", lambda: self.client.update_item(**update_request(table, w))
        elif w.kind is WriteKind.PUT:
            op, call = "PutItem", lambda: self.client.put_item(TableName=table, Item=w.item)
        else:
            op, call = "DeleteItem", lambda: self.client.delete_item(TableName=table, Key=w.key)
        try:
            with aws_call(f"{op} {table}"):
                call()
        except AwsError as exc:
            if exc.code == VALIDATION:
                rejected[w.kid] = str(exc)
            else:
                failed.add(w.kid)
        finally:
            self.counter.add(op)
