"""The local runner follows each route's direction (DESIGN.md section 8) against moto's
streams: after a switch to reverse the new table's writes reach the old one exactly (once the
forward direction has drained), echoes write nothing, a foreign write is listed once and
reverse replication's own writes never count; after a switch back, reverse drains, forward
resumes, and the foreign write is re-mapped into the new table."""

from __future__ import annotations

import threading
import time

import pytest
import yaml

from dualwrite import seed
from dualwrite.aws import tables
from dualwrite.aws.clients import Clients
from dualwrite.config import load_migration, parse_migration
from dualwrite.mapping import build_mapping
from dualwrite.mapping.base import KeySchema
from dualwrite.reverse.direction import Flow
from dualwrite.wire import Item, items_equal
from stream_replicator.run_summary import RunSummary
from tests.conftest import MIGRATIONS
from tests.functional.test_replicator_runner import assert_target_is_mapping_of_source
from tests.reverse_world import World, prepared

OLD, NEW = "old-customers", "new-customers"
IDENTITY = f"""\
control_table: rev-control
metrics_namespace: DualWriteTest
routes:
  - {{name: customers, source: {OLD}, target: {NEW}, mapping: identity}}
"""


def customer(i: int, **attrs: str) -> Item:
    item: Item = {"customerId": {"S": f"c{i:02}"}, "plan": {"S": "basic"}, "n": {"N": str(i)}}
    item.update({k: {"S": v} for k, v in attrs.items()})
    return item


def same_tables(w: World, a: str, b: str) -> None:
    left, right = w.scan(a), w.scan(b)
    assert sorted(left) == sorted(right)
    for k, item in left.items():
        assert items_equal(item, right[k]), k


@pytest.fixture
def identity(moto_clients: Clients) -> World:
    tables.create_table(
        moto_clients.dynamodb,
        {
            "TableName": OLD,
            "KeySchema": [{"AttributeName": "customerId", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "customerId", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST",
        },
    )
    w = prepared(moto_clients, parse_migration(yaml.safe_load(IDENTITY)))
    for i in range(10):
        w.ddb.put_item(TableName=OLD, Item=customer(i))
    first = w.runner().run(until_caught_up=True)
    assert first.caught_up and first.applied == 10
    same_tables(w, OLD, NEW)
    return w


def test_identity_cutover_reverse_foreign_write_rollback_and_forward_again(
    identity: World,
) -> None:
    w = identity
    route = "customers"
    t = time.time()
    w.switch(route, Flow.REVERSE, t)
    # the application, re-pointed, writes the new table: puts, an update, a delete
    ddb = w.ddb
    ddb.put_item(TableName=NEW, Item=customer(10, plan="pro"))
    ddb.put_item(TableName=NEW, Item=customer(11))
    ddb.update_item(
        TableName=NEW,
        Key={"customerId": {"S": "c01"}},
        UpdateExpression="SET #p = :p",
        ExpressionAttributeNames={"#p": "plan"},
        ExpressionAttributeValues={":p": {"S": "enterprise"}},
    )
    ddb.delete_item(TableName=NEW, Key={"customerId": {"S": "c02"}})
    ddb.put_item(TableName=NEW, Item=customer(3, plan="pro", note="x"))
    before = w.scan(OLD)

    # forward has not drained yet (this runner's clock is behind T+O): reverse waits
    waiting = w.runner(wall_offset=-300).run(duration=1.0)
    assert waiting.waiting > 0 and waiting.reverse_replicated == 0
    assert waiting.drain_pending_routes == [route] and not waiting.caught_up
    assert w.scan(OLD) == before
    assert not w.store.direction(route).old_drained

    # the drain completes, then reverse applies every change exactly once
    w.counting.writes.clear()
    done = w.runner().run(until_caught_up=True)
    assert done.caught_up and done.drained_routes == [route] and done.drain_pending_routes == []
    assert w.store.direction(route).old_drained
    same_tables(w, OLD, NEW)
    assert done.reverse_replicated >= 5 and done.failed == 0
    # `applied` counts the live direction's writes: reverse ones too (it said 0 here)
    assert done.applied >= done.reverse_replicated
    assert done.records == done.applied + done.skipped + done.quarantined + done.foreign_writes
    # exactly the five changed keys were written to the old table, nothing to the new one:
    # the forward writes just before T and reverse's own writes are echoes
    assert w.counting.writes == {OLD: 5}
    assert done.foreign_writes == 0 and w.store.foreign_writes(route) == []
    assert done.skipped >= 5  # reverse's own writes, seen in the old table's stream
    (summary,) = done.routes
    assert summary.direction == "reverse" and summary.reverse_replicated == done.reverse_replicated

    # a writer nobody re-pointed writes the old table: listed once, by key
    ddb.put_item(TableName=OLD, Item=customer(5, plan="foreign"))
    seen = w.runner().run(until_caught_up=True)
    assert seen.foreign_writes == 1
    (foreign,) = w.store.foreign_writes(route)
    assert foreign.key == {"customerId": {"S": "c05"}} and foreign.remapped_at is None
    again = w.runner().run(until_caught_up=True)  # nothing new: nothing listed twice
    assert again.foreign_writes == 0 and len(w.store.foreign_writes(route)) == 1

    # late writes to the new table, then the rollback (journaled after them)
    ddb.put_item(TableName=NEW, Item=customer(12, plan="late"))
    t2 = time.time() + 0.01
    w.switch(route, Flow.FORWARD, t2)
    ddb.put_item(TableName=OLD, Item=customer(20, plan="after-rollback"))

    # reverse drains (the late write reaches the old table); forward waits
    draining = w.runner(wall_offset=-300).run(duration=1.0)
    assert draining.waiting > 0
    assert "c12" in str(sorted(w.scan(OLD))) and "c20" not in str(sorted(w.scan(NEW)))

    # drained: forward resumes, and the foreign write is re-mapped into the new table
    back = w.runner().run(until_caught_up=True)
    assert back.caught_up and back.drained_routes == [route]
    state = w.store.direction(route)
    assert state.direction is Flow.FORWARD and state.old_drained
    same_tables(w, OLD, NEW)
    new_c05 = w.scan(NEW)[next(k for k in w.scan(NEW) if "c05" in k)]
    assert new_c05["plan"] == {"S": "foreign"}
    (listed,) = w.store.foreign_writes(route)  # still listed (blocks decommission)
    assert listed.remapped_at is not None
    assert back.routes[0].direction == "forward"


def core_item(w: World, pk: str, sk: str) -> Item | None:
    got = w.ddb.get_item(
        TableName="CoreTable", Key={"PK": {"S": pk}, "SK": {"S": sk}}, ConsistentRead=True
    )
    item: Item | None = got.get("Item")
    return item


@pytest.fixture
def core(moto_clients: Clients) -> World:
    migration = load_migration(MIGRATIONS / "coretable.yaml")
    seed.ensure_tables(moto_clients)
    data = seed.generate(6, 18, 7)
    w = prepared(moto_clients, migration)
    desc = tables.describe(w.ddb, "CoreTable")
    assert desc is not None
    if tables.stream_view(desc) is None:  # reverse reads the new table's stream
        tables.enable_stream(w.ddb, "CoreTable")
    seed.write_items(moto_clients, seed.SERVERS_TABLE, data.servers)
    seed.write_items(moto_clients, seed.MEMBERSHIPS_TABLE, data.memberships)
    first = w.runner().run(until_caught_up=True)
    assert first.caught_up and first.failed == 0
    assert_target_is_mapping_of_source(w.clients, w.migration)
    return w


def members_by_user(w: World) -> dict[str, list[Item]]:
    out: dict[str, list[Item]] = {}
    for item in w.scan(seed.MEMBERSHIPS_TABLE).values():
        out.setdefault(item["userId"]["S"], []).append(item)
    return out


def test_coretable_reverse_servers_and_memberships_then_rollback(core: World) -> None:
    w = core
    t = time.time()
    for route in ("servers", "memberships"):
        w.switch(route, Flow.REVERSE, t)
    m = build_mapping("memberships", KeySchema((("userId", "S"), ("serverId", "S"))))
    ddb = w.ddb
    users = members_by_user(w)
    several = sorted(u for u, ms in users.items() if len(ms) >= 2)
    changed_email, loses_one = several[0], several[1]

    # servers: an update, a new one, a delete
    srv1 = core_item(w, "SERVER#srv-000001", "METADATA")
    assert srv1 is not None
    ddb.put_item(TableName="CoreTable", Item={**srv1, "status": {"S": "migrating"}})
    new_server = {"PK": {"S": "SERVER#srv-new"}, "SK": {"S": "METADATA"}, "Type": {"S": "Server"}}
    ddb.put_item(TableName="CoreTable", Item={**new_server, "name": {"S": "fresh"}})
    ddb.delete_item(TableName="CoreTable", Key={"PK": {"S": "SERVER#srv-000002"}, "SK": srv1["SK"]})
    # a new user: its User item, then its membership (created with the User item's email)
    ddb.put_item(
        TableName="CoreTable",
        Item={
            "PK": {"S": "USER#user-new"},
            "SK": {"S": "METADATA"},
            "Type": {"S": "User"},
            "email": {"S": "newbie@example.com"},
            "name": {"S": "newbie"},
        },
    )
    joined = {"userId": {"S": "user-new"}, "serverId": {"S": "srv-000003"}, "role": {"S": "admin"}}
    ddb.put_item(TableName="CoreTable", Item=m.transform(joined))
    # an email change on a user with several memberships
    ddb.put_item(
        TableName="CoreTable",
        Item={
            "PK": {"S": f"USER#{changed_email}"},
            "SK": {"S": "METADATA"},
            "Type": {"S": "User"},
            "email": {"S": "changed@example.org"},
            "name": {"S": "changed"},
        },
    )
    # a role change and a removed membership
    promoted = users[several[2] if len(several) > 2 else changed_email][0]
    ddb.put_item(TableName="CoreTable", Item=m.transform({**promoted, "role": {"S": "moderator"}}))
    removed = users[loses_one][-1]
    ddb.delete_item(TableName="CoreTable", Key=m.target_keys(m.source_key_of_item(removed))[0])
    # what the old schema cannot hold: permissions that are not the role's
    ghost = m.transform(
        {"userId": {"S": "ghost"}, "serverId": {"S": "s9"}, "role": {"S": "viewer"}}
    )
    ddb.put_item(TableName="CoreTable", Item={**ghost, "permissions": {"L": [{"S": "all"}]}})

    done = w.runner().run(until_caught_up=True)
    assert done.caught_up and done.failed == 0
    assert sorted(done.drained_routes) == ["memberships", "servers"]
    # CoreTable's stream is read once for both routes: two source shards and one target shard
    assert done.shards == 3
    assert done.unrepresentable == 1
    (bad,) = [e for e in w.store.quarantined("memberships") if "ghost" in str(e.to_json())]
    assert bad.reason.startswith("unrepresentable")
    # the application removes the item the old schema cannot hold; then both sides agree
    ddb.delete_item(TableName="CoreTable", Key={"PK": ghost["PK"], "SK": ghost["SK"]})
    settled = w.runner().run(until_caught_up=True)
    assert settled.caught_up and settled.foreign_writes == 0
    assert_target_is_mapping_of_source(w.clients, w.migration)
    after = members_by_user(w)
    assert {x["email"]["S"] for x in after[changed_email]} == {"changed@example.org"}
    assert after["user-new"][0]["email"] == {"S": "newbie@example.com"}
    assert len(after[loses_one]) == len(users[loses_one]) - 1
    servers = w.scan(seed.SERVERS_TABLE)
    assert any(i["id"] == {"S": "srv-new"} for i in servers.values())
    assert not any(i["id"] == {"S": "srv-000002"} for i in servers.values())
    assert w.store.foreign_writes("servers") == w.store.foreign_writes("memberships") == []

    # a foreign write to an old table, then the rollback: forward re-maps it
    ddb.update_item(
        TableName=seed.SERVERS_TABLE,
        Key={"id": {"S": "srv-000003"}},
        UpdateExpression="SET #s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": "foreign"}},
    )
    seen = w.runner().run(until_caught_up=True)
    assert seen.foreign_writes == 1
    t2 = time.time() + 0.01
    for route in ("servers", "memberships"):
        w.switch(route, Flow.FORWARD, t2)
    back = w.runner().run(until_caught_up=True)
    assert back.caught_up and sorted(back.drained_routes) == ["memberships", "servers"]
    assert_target_is_mapping_of_source(w.clients, w.migration)
    srv3 = core_item(w, "SERVER#srv-000003", "METADATA")
    assert srv3 is not None and srv3["status"] == {"S": "foreign"}
    (listed,) = w.store.foreign_writes("servers")
    assert listed.remapped_at is not None


def test_a_running_runner_picks_up_a_switch_without_a_restart(identity: World) -> None:
    w = identity
    route = "customers"
    stop = threading.Event()
    switched: list[float] = []

    def on_progress(summary: RunSummary) -> None:
        if not switched and summary.applied:
            # the cutover happens while the runner runs: switch, then the application
            # writes the new table
            switched.append(time.time())
            w.switch(route, Flow.REVERSE, switched[0])
            w.ddb.put_item(TableName=NEW, Item=customer(30, plan="live"))
        elif summary.reverse_replicated:
            stop.set()

    runner = w.runner()
    w.ddb.put_item(TableName=OLD, Item=customer(29))  # forward has something to apply first
    summary = runner.run(stop=stop, on_progress=on_progress, duration=120)
    assert switched and stop.is_set()
    assert summary.drained_routes == [route] and summary.reverse_replicated >= 1
    assert w.store.direction(route).old_drained
    old = w.ddb.get_item(TableName=OLD, Key={"customerId": {"S": "c30"}}, ConsistentRead=True)
    assert old["Item"]["plan"] == {"S": "live"}
    assert any("direction reverse" in n for n in w.notes)


def test_a_switched_route_whose_target_has_no_stream_is_named_and_not_read(
    moto_clients: Clients,
) -> None:
    seed.ensure_tables(moto_clients)
    w = prepared(moto_clients, load_migration(MIGRATIONS / "coretable.yaml"))
    desc = tables.describe(w.ddb, "CoreTable")
    assert desc is not None
    if tables.stream_view(desc) is not None:  # prepare may have turned it on
        w.ddb.update_table(TableName="CoreTable", StreamSpecification={"StreamEnabled": False})
    t = time.time()
    for route in ("servers", "memberships"):
        w.switch(route, Flow.REVERSE, t)
    summary = w.runner().run(until_caught_up=True)
    # forward's drain is exact on the source streams; the new table's stream is not there
    assert summary.caught_up and sorted(summary.drained_routes) == ["memberships", "servers"]
    assert summary.shards == 2
    assert (
        sum(
            "cannot replicate in reverse: target table CoreTable has no stream" in n
            for n in w.notes
        )
        == 2
    )
