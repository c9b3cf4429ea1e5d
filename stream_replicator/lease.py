"""One local runner at a time per control table: a lease item. Adapter.

Two `dualwrite replicate` processes on the same streams (a second terminal, a forgotten
background job) would each keep a key's changes in order, but not in order with each other:
one's late write of an older change can land after the other's newer one and stay there if
the first then stops. The runner therefore holds a lease (pk REPLICATE, sk LEASE) naming it,
renewed every TTL_S / 3 and deleted when it stops. A second runner waits, saying who holds
it; a lease not renewed for TTL_S (its holder was killed) lapses and is taken over, on the
condition that the item is unchanged since it was read (two waiting runners cannot both
take it). A holder known to be gone (a process of this machine that no longer runs: kill -9)
is taken over at once. The deployed replicator (Lambda) takes no lease: its event source
mapping already gives each shard to one invocation at a time.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dualwrite.aws.errors import aws_call
from dualwrite.control import ControlStore
from dualwrite.control.table import PK, SK
from dualwrite.errors import ConditionFailedError
from dualwrite.wire import Item

LEASE_PK = "REPLICATE"
LEASE_SK = "LEASE"
#: a lease not renewed for this long lapses (a runner renews it every TTL_S / 3)
TTL_S = 60.0
ATTEMPTS = 3


@dataclass(frozen=True)
class LeaseHolder:
    owner: str
    #: when the holder took the lease, and last renewed it (epoch seconds, its clock)
    since: float
    renewed_at: float

    def lapsed(self, now: float) -> bool:
        return now - self.renewed_at >= TTL_S


def holder(store: ControlStore) -> LeaseHolder | None:
    rec = store.get(LEASE_PK, LEASE_SK)
    if rec is None:
        return None
    return LeaseHolder(
        str(rec.data.get("owner", "")), float(rec.data.get("since", 0.0)), rec.updated_at
    )


def acquire(
    store: ControlStore,
    owner: str,
    now: float,
    gone: Callable[[str], bool] = lambda _owner: False,
) -> LeaseHolder | None:
    """Take or renew the lease for `owner`: None when it holds it now, else the live holder
    (`gone(owner)`: whether a holder is known to have ended)."""
    for _ in range(ATTEMPTS):
        current = holder(store)
        if (
            current is not None
            and current.owner != owner
            and not current.lapsed(now)
            and not gone(current.owner)
        ):
            return current
        since = current.since if current is not None and current.owner == owner else now
        try:
            _put(store, owner, since, now, None if current is None else current.renewed_at)
            return None
        except ConditionFailedError:
            continue  # changed since it was read (another runner took it, or renewed it)
    current = holder(store)
    return current if current is not None and current.owner != owner else None


def process_gone(owner: str, host: str) -> bool:
    """Whether `owner` ("host:pid:...") is a process of `host` (this machine) that has ended."""
    parts = owner.split(":")
    if len(parts) < 2 or parts[0] != host or not parts[1].isdigit():
        return False
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return True
    except OSError:  # it exists, another user's
        return False
    return False


def release(store: ControlStore, owner: str) -> None:
    """Delete the lease if `owner` still holds it."""
    try:
        with aws_call(f"DeleteItem {store.table}"):
            store.client.delete_item(
                TableName=store.table,
                Key={PK: {"S": LEASE_PK}, SK: {"S": LEASE_SK}},
                ConditionExpression="#o = :owner",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":owner": {"S": owner}},
            )
    except ConditionFailedError:
        pass  # taken over after it lapsed, or already gone


def _put(store: ControlStore, owner: str, since: float, now: float, seen: float | None) -> None:
    item: Item = {
        PK: {"S": LEASE_PK},
        SK: {"S": LEASE_SK},
        "data": {"S": json.dumps({"owner": owner, "since": since})},
        "owner": {"S": owner},
        "updated_at": {"N": repr(now)},
    }
    kwargs: dict[str, Any] = {"TableName": store.table, "Item": item}
    if seen is None:
        kwargs["ConditionExpression"] = "attribute_not_exists(pk)"
    else:  # renew or take over only the lease as it was read
        kwargs["ConditionExpression"] = "updated_at = :seen"
        kwargs["ExpressionAttributeValues"] = {":seen": {"N": repr(seen)}}
    with aws_call(f"PutItem {store.table}"):
        store.client.put_item(**kwargs)
