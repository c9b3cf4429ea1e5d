"""Planted drift of every kind is found exactly, and repaired (in-process moto)."""

from __future__ import annotations

from typing import Any

import pytest

from dualwrite.aws.clients import Clients
from dualwrite.wire import items_equal
from reconciler.job import run_reconcile
from tests.functional.test_reconcile_support import (
    TARGET,
    build_core,
    by_route,
    counts,
    get_target,
    server_key,
    user_key,
    users_with_memberships,
)


def _run(clients: Clients, migration: Any, store: Any, **kw: Any) -> dict[str, Any]:
    return run_reconcile(
        migration, clients, store, settle_s=0, publish_metrics=False, **kw
    ).to_json()


def test_a_target_built_from_the_mapping_is_at_parity(moto_clients: Clients) -> None:
    migration, store, data = build_core(moto_clients)
    result = _run(moto_clients, migration, store)
    routes = by_route(result)
    assert result["parity"] is True
    assert result["requests"] == {"Scan": result["requests"]["Scan"]}  # no per-item reads
    assert all(r["method"] == "digest" and r["exact_buckets"] == 0 for r in routes.values())
    users = users_with_memberships(data)
    assert routes["servers"]["source_items"] == len(data.servers)
    assert routes["servers"]["expected_target_items"] == len(data.servers)
    assert routes["memberships"]["source_items"] == len(data.memberships)
    # one UserServer per membership plus one derived User per user
    assert routes["memberships"]["expected_target_items"] == len(data.memberships) + len(users)
    assert routes["memberships"]["target_items"] == len(data.memberships) + len(users)
    for r in routes.values():
        assert counts(r) == (0, 0, 0)
        assert r["parity_percent"] == 100.0
        saved = store.last_reconcile(r["route"])
        assert saved is not None and saved.parity is True


@pytest.mark.parametrize("exact", [False, True], ids=["digest-then-exact", "exact"])
def test_every_kind_of_drift_is_found_exactly_and_repaired(
    moto_clients: Clients, exact: bool
) -> None:
    migration, store, data = build_core(moto_clients)
    ddb = moto_clients.dynamodb
    users = sorted(users_with_memberships(data).items())
    (u_wrong, _), (u_gone, gone_members), (u_partial, partial_members) = users[:3]
    u_alone, alone_members = users[3]
    s_missing, s_changed = data.servers[1]["id"]["S"], data.servers[2]["id"]["S"]

    # servers: one missing, one extra, one mismatched
    ddb.delete_item(TableName=TARGET, Key=server_key(s_missing))
    ddb.put_item(TableName=TARGET, Item={**server_key("ghost"), "Type": {"S": "Server"}})
    ddb.update_item(
        TableName=TARGET,
        Key=server_key(s_changed),
        UpdateExpression="SET #r = :r",
        ExpressionAttributeNames={"#r": "region"},
        ExpressionAttributeValues={":r": {"S": "mars-north-1"}},
    )
    # memberships: a wrong derived User (email), a missing UserServer, and a user who lost
    # every membership in the source while the target kept their User and UserServer items
    ddb.update_item(
        TableName=TARGET,
        Key=user_key(u_wrong),
        UpdateExpression="SET email = :e",
        ExpressionAttributeValues={":e": {"S": "someone.else@example.com"}},
    )
    missing_link = partial_members[0]["serverId"]["S"]
    ddb.delete_item(TableName=TARGET, Key=user_key(u_partial, f"SERVER#{missing_link}"))
    for m in gone_members + alone_members:
        ddb.delete_item(
            TableName="UserMembershipTable",
            Key={"userId": m["userId"], "serverId": m["serverId"]},
        )
    # ... and one whose UserServer items were removed (as the replicator does) but not the User
    for m in alone_members:
        ddb.delete_item(TableName=TARGET, Key=user_key(u_alone, f"SERVER#{m['serverId']['S']}"))

    found = _run(moto_clients, migration, store, exact=exact)
    routes = by_route(found)
    assert found["parity"] is False
    if not exact:  # only the buckets whose digests differ were read item by item
        assert 0 < routes["servers"]["exact_buckets"] <= 3
    assert counts(routes["servers"]) == (1, 1, 1)
    # extra: two stale Users and the stale UserServer items of one of them
    assert counts(routes["memberships"]) == (1, 2 + len(gone_members), 1)
    kinds = {
        (d["kind"], d["key"]["PK"]["S"], d["key"]["SK"]["S"])
        for d in routes["memberships"]["differences"]
    }
    assert ("mismatched", f"USER#{u_wrong}", "METADATA") in kinds
    assert ("extra", f"USER#{u_gone}", "METADATA") in kinds
    assert ("extra", f"USER#{u_alone}", "METADATA") in kinds
    assert ("missing", f"USER#{u_partial}", f"SERVER#{missing_link}") in kinds
    mismatch = next(d for d in routes["servers"]["differences"] if d["kind"] == "mismatched")
    assert mismatch["attributes"] == ["region"]
    expected_servers = routes["servers"]["expected_target_items"]
    assert routes["servers"]["parity_percent"] == round(
        100 * (expected_servers - 2) / (expected_servers + 1), 4
    )
    saved = store.last_reconcile("servers")
    assert saved is not None and saved.parity is False

    repaired = _run(moto_clients, migration, store, repair=True, exact=exact)
    routes = by_route(repaired)
    assert repaired["parity"] is True
    assert routes["servers"]["repaired"] == 3
    assert routes["memberships"]["repaired"] == 4 + len(gone_members)
    assert counts(routes["servers"]) == (1, 1, 1)  # what was found
    assert routes["servers"]["parity_percent"] == 100.0  # the state left behind
    assert get_target(moto_clients, server_key("ghost")) is None
    assert get_target(moto_clients, user_key(u_gone)) is None
    assert get_target(moto_clients, user_key(u_alone)) is None
    restored = get_target(moto_clients, server_key(s_missing))
    assert restored is not None and restored["name"] == data.servers[1]["name"]
    fixed_user = get_target(moto_clients, user_key(u_wrong))
    assert fixed_user is not None and fixed_user["email"]["S"] != "someone.else@example.com"

    again = _run(moto_clients, migration, store)
    assert again["parity"] is True
    assert all(counts(r) == (0, 0, 0) for r in again["routes"])


def test_numbers_by_value_and_sets_unordered_are_not_drift(moto_clients: Clients) -> None:
    migration, store, data = build_core(moto_clients, servers=4, memberships=6)
    ddb = moto_clients.dynamodb
    item = get_target(moto_clients, server_key(data.servers[0]["id"]["S"]))
    assert item is not None
    item["cpu"] = (
        {"N": item["cpu"]["N"] + ".000"}
        if "." not in item["cpu"]["N"]
        else {"N": item["cpu"]["N"] + "000"}
    )
    item["tags"] = {"SS": list(reversed(item["tags"]["SS"]))}
    ddb.put_item(TableName=TARGET, Item=item)
    result = _run(moto_clients, migration, store, routes=["servers"])
    assert result["parity"] is True
    assert [r["route"] for r in result["routes"]] == ["servers"]


def test_unmappable_items_are_quarantined_not_missing(moto_clients: Clients) -> None:
    migration, store, data = build_core(moto_clients, servers=4, memberships=9)
    ddb = moto_clients.dynamodb
    member = data.memberships[0]
    ddb.put_item(
        TableName="UserMembershipTable",
        Item={k: v for k, v in member.items() if k != "role"} | {"serverId": {"S": "srv-x"}},
    )
    ddb.put_item(
        TableName="ServersTable", Item={"id": {"S": "clash"}, "PK": {"S": "overwrites the key"}}
    )
    result = by_route(_run(moto_clients, migration, store))
    assert result["servers"]["quarantined"] == 1
    assert result["memberships"]["quarantined"] == 1
    assert counts(result["servers"]) == (0, 0, 0)
    assert counts(result["memberships"]) == (0, 0, 0)


def test_small_pages_split_users_across_pages_and_still_judge_exactly(
    moto_clients: Clients,
) -> None:
    migration, store, data = build_core(moto_clients, servers=10, memberships=45)
    ddb = moto_clients.dynamodb
    users = sorted(users_with_memberships(data).items())
    target_user, members = next((u, ms) for u, ms in users if len(ms) >= 2)
    ddb.update_item(
        TableName=TARGET,
        Key=user_key(target_user),
        UpdateExpression="SET #n = :n",
        ExpressionAttributeNames={"#n": "name"},
        ExpressionAttributeValues={":n": {"S": "wrong"}},
    )
    result = by_route(
        _run(moto_clients, migration, store, routes=["memberships"], page_size=4, segments=2)
    )
    r = result["memberships"]
    assert r["expected_target_items"] == len(data.memberships) + len(users)
    assert counts(r) == (0, 0, 1)
    assert r["differences"][0]["key"]["PK"]["S"] == f"USER#{target_user}"
    assert len(members) >= 2


def test_a_user_item_for_members_missing_from_the_target_is_not_extra(
    moto_clients: Clients,
) -> None:
    migration, store, data = build_core(moto_clients, servers=5, memberships=12)
    ddb = moto_clients.dynamodb
    user, members = sorted(users_with_memberships(data).items())[0]
    for m in members:  # the User item stays, every UserServer item is gone
        ddb.delete_item(TableName=TARGET, Key=user_key(user, f"SERVER#{m['serverId']['S']}"))
    r = by_route(_run(moto_clients, migration, store, routes=["memberships"]))["memberships"]
    assert counts(r) == (len(members), 0, 0)


def test_repair_writes_exactly_the_mapped_item(moto_clients: Clients) -> None:
    migration, store, data = build_core(moto_clients, servers=3, memberships=3)
    ddb = moto_clients.dynamodb
    key = server_key(data.servers[0]["id"]["S"])
    before = get_target(moto_clients, key)
    ddb.delete_item(TableName=TARGET, Key=key)
    _run(moto_clients, migration, store, repair=True, routes="servers")
    after = get_target(moto_clients, key)
    assert before is not None and after is not None and items_equal(before, after)


def test_missing_tables_are_configuration_errors(moto_clients: Clients) -> None:
    from dualwrite import seed as seeding
    from dualwrite.control import ControlStore
    from dualwrite.errors import ConfigError
    from tests.functional.test_reconcile_support import core

    seeding.ensure_tables(moto_clients)
    migration = core()
    store = ControlStore(moto_clients.dynamodb, migration.control_table)
    with pytest.raises(ConfigError, match="prepare"):
        _run(moto_clients, migration, store)  # no target yet
    moto_clients.dynamodb.create_table(
        TableName=TARGET,
        KeySchema=[
            {"AttributeName": "PK", "KeyType": "HASH"},
            {"AttributeName": "SK", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "PK", "AttributeType": "S"},
            {"AttributeName": "SK", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    with pytest.raises(ConfigError, match="control table"):
        _run(moto_clients, migration, store)
