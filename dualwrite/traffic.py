"""Live application traffic for the demo and the end-to-end tests: inserts, updates and
deletes on both legacy tables, including users losing their last membership.

`TrafficPlan` is pure (a seeded random.Random decides every operation); `run_traffic`
applies it with single-item writes, as a live application would.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dualwrite.aws.errors import aws_call
from dualwrite.seed import (
    MEMBERSHIPS_TABLE,
    SERVERS_TABLE,
    SeedData,
    membership_item,
    server_id,
    server_item,
    user_id,
)
from dualwrite.wire import Item, Key


@dataclass(frozen=True)
class Op:
    table: str
    kind: str  # "put" | "delete"
    item: Item | None = None
    key: Key | None = None


@dataclass
class TrafficPlan:
    """Decides operations that keep referring to keys that exist (or existed)."""

    data: SeedData
    seed: int = 99
    rng: random.Random = field(init=False)
    servers: list[int] = field(init=False)
    memberships: dict[int, set[int]] = field(init=False)
    next_server: int = field(init=False)
    next_user: int = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.servers = [int(s["id"]["S"].split("-")[1]) for s in self.data.servers]
        self.memberships = {}
        for m in self.data.memberships:
            u = int(m["userId"]["S"].split("-")[1])
            s = int(m["serverId"]["S"].split("-")[1])
            self.memberships.setdefault(u, set()).add(s)
        self.next_server = max(self.servers, default=-1) + 1
        self.next_user = max(self.memberships, default=-1) + 1

    def _email(self, u: int) -> str | None:
        return None if self.rng.random() < 0.15 else f"user{u}.{self.rng.randrange(9)}@example.org"

    def next_ops(self) -> list[Op]:
        r = self.rng.random()
        rng = self.rng
        if r < 0.25 and self.servers:  # update a server
            i = rng.choice(self.servers)
            return [Op(SERVERS_TABLE, "put", server_item(rng, i))]
        if r < 0.32:  # new server
            i = self.next_server
            self.next_server += 1
            self.servers.append(i)
            return [Op(SERVERS_TABLE, "put", server_item(rng, i))]
        if r < 0.37 and len(self.servers) > 1:  # delete a server (memberships stay, as legacy did)
            i = self.servers.pop(rng.randrange(len(self.servers)))
            return [Op(SERVERS_TABLE, "delete", key={"id": {"S": server_id(i)}})]
        if r < 0.62 and self.memberships:  # change a membership's role / email
            u = rng.choice(list(self.memberships))
            if not self.memberships[u]:
                return []
            s = rng.choice(sorted(self.memberships[u]))
            return [Op(MEMBERSHIPS_TABLE, "put", membership_item(rng, u, s, self._email(u)))]
        if r < 0.80 and self.servers:  # join: an existing or a new user
            existing = self.memberships and rng.random() < 0.7  # none left: a new user
            u = rng.choice(list(self.memberships)) if existing else self.next_user
            if u == self.next_user:
                self.next_user += 1
            s = rng.choice(self.servers)
            self.memberships.setdefault(u, set()).add(s)
            return [Op(MEMBERSHIPS_TABLE, "put", membership_item(rng, u, s, self._email(u)))]
        if r < 0.93 and self.memberships:  # leave one server
            u = rng.choice(list(self.memberships))
            if not self.memberships[u]:
                return []
            s = rng.choice(sorted(self.memberships[u]))
            self.memberships[u].discard(s)
            return [Op(MEMBERSHIPS_TABLE, "delete", key=_mkey(u, s))]
        if self.memberships:  # a user loses their last membership
            u = rng.choice(list(self.memberships))
            gone = sorted(self.memberships.pop(u))
            return [Op(MEMBERSHIPS_TABLE, "delete", key=_mkey(u, s)) for s in gone]
        return []


def _mkey(u: int, s: int) -> Key:
    return {"userId": {"S": user_id(u)}, "serverId": {"S": server_id(s)}}


def apply_op(client: Any, op: Op) -> None:
    with aws_call(f"{op.kind} {op.table}"):
        if op.kind == "put":
            client.put_item(TableName=op.table, Item=op.item)
        else:
            client.delete_item(TableName=op.table, Key=op.key)


@dataclass
class TrafficStats:
    ops: int = 0
    puts: int = 0
    deletes: int = 0
    errors: int = 0


def run_traffic(
    client: Any,
    plan: TrafficPlan,
    stop: threading.Event,
    *,
    rate: float = 50.0,
    max_ops: int | None = None,
    stats: TrafficStats | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> TrafficStats:
    """Apply operations at about `rate` per second until `stop` is set (or max_ops)."""
    stats = stats or TrafficStats()
    started = clock()
    while not stop.is_set() and (max_ops is None or stats.ops < max_ops):
        for op in plan.next_ops():
            apply_op(client, op)
            stats.ops += 1
            if op.kind == "put":
                stats.puts += 1
            else:
                stats.deletes += 1
        ahead = stats.ops / rate - (clock() - started)
        if ahead > 0:
            stop.wait(ahead)  # paces the load; also wakes at once when told to stop
    return stats
