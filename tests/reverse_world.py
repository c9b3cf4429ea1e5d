"""A migration in moto for the reverse-replication wiring tests: the tables prepared, the
runner and the replicator built around a client that counts the writes per table, and the
direction switched as the cutover and rollback record it (saved directly with the store)."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from dualwrite import prepare
from dualwrite.aws.clients import Clients
from dualwrite.backoff import Backoff
from dualwrite.config import Migration
from dualwrite.control import ControlStore, Phase
from dualwrite.reverse.direction import Direction, Flow, switch
from dualwrite.wire import Item, key_id
from stream_replicator.apply import Replicator
from stream_replicator.runner import StreamRunner
from stream_replicator.runner_settings import Clock, RunnerSettings


class CountingWrites:
    """A DynamoDB client that counts the items each write request carries, per table."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.writes: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def batch_write_item(self, RequestItems: dict[str, Any], **kw: Any) -> Any:
        for table, requests in RequestItems.items():
            self.writes[table] += len(requests)
            self.calls[f"BatchWriteItem:{table}"] += 1
        return self.real.batch_write_item(RequestItems=RequestItems, **kw)

    def batch_get_item(self, RequestItems: dict[str, Any], **kw: Any) -> Any:
        for table in RequestItems:
            self.calls[f"BatchGetItem:{table}"] += 1
        return self.real.batch_get_item(RequestItems=RequestItems, **kw)

    def update_item(self, **kw: Any) -> Any:
        self.writes[kw["TableName"]] += 1
        self.calls[f"UpdateItem:{kw['TableName']}"] += 1
        return self.real.update_item(**kw)

    def put_item(self, **kw: Any) -> Any:
        self.writes[kw["TableName"]] += 1
        return self.real.put_item(**kw)

    def delete_item(self, **kw: Any) -> Any:
        self.writes[kw["TableName"]] += 1
        return self.real.delete_item(**kw)


@dataclass
class World:
    clients: Clients
    migration: Migration
    store: ControlStore
    counting: CountingWrites = field(init=False)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.counting = CountingWrites(self.clients.dynamodb)

    @property
    def ddb(self) -> Any:
        return self.clients.dynamodb

    def replicator(self, wall_offset: float = 0.0, dynamodb: Any = None) -> Replicator:
        return Replicator(
            self.migration,
            self.clients,
            self.store,
            clock=lambda: time.time() + wall_offset,
            backoff=Backoff(sleep=lambda _s: None),
            dynamodb=dynamodb if dynamodb is not None else self.counting,
        )

    def runner(
        self, wall_offset: float = 0.0, dynamodb: Any = None, streams: Any = None
    ) -> StreamRunner:
        """A runner whose wall clock is `wall_offset` seconds off (behind: a drain it owes
        cannot complete yet); `streams` replaces the DynamoDB Streams client."""
        return StreamRunner(
            self.migration,
            self.clients,
            self.store,
            RunnerSettings(
                poll_interval=0.01,
                phase_interval=0.05,
                publish_metrics=False,
                retry_backoff=Backoff(sleep=lambda _s: None, rand=lambda: 0.0),
            ),
            replicator=self.replicator(wall_offset, dynamodb),
            streams=streams,
            clock=Clock(wall=lambda: time.time() + wall_offset),
            notify=self.notes.append,
        )

    def switch(self, route: str, to: Flow, at: float, overlap_s: float = 0.0) -> Direction:
        state = self.store.direction(route)
        new = switch(state, to, at, overlap_s)
        assert self.store.save_direction(route, new, expected=state)
        return new

    def scan(self, table: str) -> dict[str, Item]:
        """key id -> item, for the table's key attributes."""
        desc = self.ddb.describe_table(TableName=table)["Table"]
        names = [k["AttributeName"] for k in desc["KeySchema"]]
        items: list[Item] = []
        kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
        while True:
            page = self.ddb.scan(**kwargs)
            items += page.get("Items", [])
            if not page.get("LastEvaluatedKey"):
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return {key_id({n: i[n] for n in names}): i for i in items}


def prepared(clients: Clients, migration: Migration) -> World:
    """prepare run (targets created, streams on), every route backfilled."""
    prepare.apply(
        migration, clients, prepare.analyze(migration, clients, backup=False), backup=False
    )
    store = ControlStore(clients.dynamodb, migration.control_table)
    for route in migration.routes:
        store.set_phase(route.name, Phase.BACKFILLED)
    return World(clients, migration, store)
