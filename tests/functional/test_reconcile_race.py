"""Repairs race the live replicator: a repair never overwrites a newer change, and changes
in flight are not counted as drift (races injected deterministically, in-process moto)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dualwrite.aws.clients import AwsSettings, Clients
from dualwrite.control import ControlStore
from dualwrite.reverse.direction import Direction, Flow
from dualwrite.wire import Item
from reconciler.job import run_reconcile
from tests.functional.test_reconcile_support import (
    TARGET,
    build_core,
    by_route,
    counts,
    get_target,
    mapping_of,
    server_key,
)

Race = Callable[[Any], None]


class RacingDynamo:
    """The real client, but `race` runs once just before the first conditional repair write
    to `table` (a PutItem/DeleteItem, or the Put/Update/Delete inside a TransactWriteItems);
    `ops` lists the operations of every transaction's write, in order."""

    def __init__(self, real: Any, race: Race, table: str = TARGET) -> None:
        self._real = real
        self._race = race
        self._table = table
        self.fired = 0
        self.ops: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def _maybe_race(self, kwargs: dict[str, Any]) -> None:
        if (
            kwargs.get("TableName") == self._table
            and "ConditionExpression" in kwargs
            and not self.fired
        ):
            self.fired += 1
            self._race(self._real)

    def put_item(self, **kwargs: Any) -> Any:
        self._maybe_race(kwargs)
        return self._real.put_item(**kwargs)

    def delete_item(self, **kwargs: Any) -> Any:
        self._maybe_race(kwargs)
        return self._real.delete_item(**kwargs)

    def transact_write_items(self, **kwargs: Any) -> Any:
        for entry in kwargs["TransactItems"]:
            for op in ("Put", "Update", "Delete"):
                if op in entry:
                    self.ops.append(op)
                    self._maybe_race(entry[op])
        return self._real.transact_write_items(**kwargs)


class RacingClients(Clients):
    def __init__(self, race: Race, table: str = TARGET) -> None:
        super().__init__(AwsSettings(region="us-east-1"))
        self.race = race
        self.table = table
        self.dynamo: RacingDynamo | None = None

    def client(self, service: str) -> Any:
        real = super().client(service)
        if service != "dynamodb":
            return real
        if self.dynamo is None:
            self.dynamo = RacingDynamo(real, self.race, self.table)
        return self.dynamo


def _set(ddb: Any, table: str, key: dict[str, Any], name: str, text: str) -> None:
    ddb.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET #a = :v",
        ExpressionAttributeNames={"#a": name},
        ExpressionAttributeValues={":v": {"S": text}},
    )


def _set_region(ddb: Any, table: str, key: dict[str, Any], region: str) -> None:
    _set(ddb, table, key, "region", region)


def _replicate(clients: Clients, migration: Any, ddb: Any, source_item: Item) -> None:
    """What the replicator does for a changed server: write the mapped item."""
    ddb.put_item(
        TableName=TARGET, Item=mapping_of(clients, migration, "servers").transform(source_item)
    )


def _source_server(ddb: Any, server_id: str) -> Item:
    item = ddb.get_item(
        TableName="ServersTable", Key={"id": {"S": server_id}}, ConsistentRead=True
    )["Item"]
    return dict(item)


def _repair(clients: Clients, migration: Any, store: Any, route: str = "servers") -> dict[str, Any]:
    return by_route(
        run_reconcile(
            migration,
            clients,
            store,
            routes=[route],
            repair=True,
            settle_s=0,
            publish_metrics=False,
        ).to_json()
    )[route]


def test_a_replicated_change_wins_over_a_repair_of_a_mismatch(moto_clients: Clients) -> None:
    migration, store, data = build_core(moto_clients, servers=6, memberships=3)
    sid = data.servers[2]["id"]["S"]

    def replicator_gets_there_first(ddb: Any) -> None:
        _set_region(ddb, "ServersTable", {"id": {"S": sid}}, "eu-central-9")
        _replicate(moto_clients, migration, ddb, _source_server(ddb, sid))

    clients = RacingClients(replicator_gets_there_first)
    _set_region(moto_clients.dynamodb, TARGET, server_key(sid), "mars-north-1")
    result = _repair(clients, migration, store)
    assert clients.dynamo is not None and clients.dynamo.fired == 1
    assert counts(result) == (0, 0, 1)
    assert result["repaired"] == 0 and result["settled"] == 1
    assert result["parity"] is True
    target = get_target(moto_clients, server_key(sid))
    assert target is not None and target["region"] == {"S": "eu-central-9"}


def test_a_repair_never_overwrites_a_newer_target_write(moto_clients: Clients) -> None:
    migration, store, data = build_core(moto_clients, servers=6, memberships=3)
    sid = data.servers[3]["id"]["S"]
    clients = RacingClients(lambda ddb: _set_region(ddb, TARGET, server_key(sid), "venus-1"))
    _set_region(moto_clients.dynamodb, TARGET, server_key(sid), "mars-north-1")
    result = _repair(clients, migration, store)
    assert result["repaired"] == 0 and result["settled"] == 0
    assert result["remaining"] == {"missing": 0, "extra": 0, "mismatched": 1}
    assert result["parity"] is False  # the state after the run: still wrong, left for next time
    target = get_target(moto_clients, server_key(sid))
    assert target is not None and target["region"] == {"S": "venus-1"}


def test_a_repair_of_a_missing_item_does_not_clobber_a_replicated_one(
    moto_clients: Clients,
) -> None:
    migration, store, data = build_core(moto_clients, servers=5, memberships=3)
    sid = data.servers[0]["id"]["S"]

    def replicator_writes_newer(ddb: Any) -> None:
        _set_region(ddb, "ServersTable", {"id": {"S": sid}}, "newer-1")
        _replicate(moto_clients, migration, ddb, _source_server(ddb, sid))

    clients = RacingClients(replicator_writes_newer)
    moto_clients.dynamodb.delete_item(TableName=TARGET, Key=server_key(sid))
    result = _repair(clients, migration, store)
    assert counts(result) == (1, 0, 0)
    assert (result["repaired"], result["settled"], result["parity"]) == (0, 1, True)
    target = get_target(moto_clients, server_key(sid))
    assert target is not None and target["region"] == {"S": "newer-1"}


def test_deleting_an_extra_item_loses_to_a_source_that_appeared(moto_clients: Clients) -> None:
    migration, store, _ = build_core(moto_clients, servers=4, memberships=3)
    ghost = {"id": {"S": "ghost"}, "region": {"S": "born-late"}}

    def source_item_appears(ddb: Any) -> None:
        ddb.put_item(TableName="ServersTable", Item=ghost)
        _replicate(moto_clients, migration, ddb, ghost)

    clients = RacingClients(source_item_appears)
    moto_clients.dynamodb.put_item(
        TableName=TARGET, Item={**server_key("ghost"), "Type": {"S": "Server"}}
    )
    result = _repair(clients, migration, store)
    assert counts(result) == (0, 1, 0)
    assert (result["repaired"], result["settled"], result["parity"]) == (0, 1, True)
    target = get_target(moto_clients, server_key("ghost"))
    assert target is not None and target["region"] == {"S": "born-late"}


def test_a_concurrent_write_that_adds_the_missing_attribute_fails_the_repair(
    moto_clients: Clients,
) -> None:
    """Every read attribute still equal is not enough: the added attribute must be absent."""
    migration, store, data = build_core(moto_clients, servers=4, memberships=3)
    sid = data.servers[1]["id"]["S"]

    def replicator_adds_it(ddb: Any) -> None:
        _set_region(ddb, "ServersTable", {"id": {"S": sid}}, "added-1")
        _replicate(moto_clients, migration, ddb, _source_server(ddb, sid))

    clients = RacingClients(replicator_adds_it)
    moto_clients.dynamodb.update_item(
        TableName=TARGET,
        Key=server_key(sid),
        UpdateExpression="REMOVE #r",
        ExpressionAttributeNames={"#r": "region"},
    )
    result = _repair(clients, migration, store)
    assert (result["repaired"], result["settled"]) == (0, 1)
    target = get_target(moto_clients, server_key(sid))
    assert target is not None and target["region"] == {"S": "added-1"}


def test_a_change_in_flight_is_not_drift(moto_clients: Clients) -> None:
    migration, store, data = build_core(moto_clients, servers=5, memberships=3)
    ddb = moto_clients.dynamodb
    sid = data.servers[4]["id"]["S"]
    # the source changed; the replicator has not applied it yet
    _set_region(ddb, "ServersTable", {"id": {"S": sid}}, "moving-1")
    waits: list[float] = []

    def settle(seconds: float) -> None:  # the replicator catches up while we wait
        waits.append(seconds)
        _replicate(moto_clients, migration, ddb, _source_server(ddb, sid))

    result = run_reconcile(
        migration,
        moto_clients,
        store,
        routes=["servers"],
        settle_s=0.5,
        publish_metrics=False,
        sleep=settle,
    ).to_json()
    assert waits and all(0 < w <= 0.5 for w in waits)
    assert result["parity"] is True
    assert counts(by_route(result)["servers"]) == (0, 0, 0)


def test_a_change_that_never_lands_is_drift(moto_clients: Clients) -> None:
    migration, store, data = build_core(moto_clients, servers=5, memberships=3)
    sid = data.servers[4]["id"]["S"]
    _set_region(moto_clients.dynamodb, "ServersTable", {"id": {"S": sid}}, "stuck-1")
    result = run_reconcile(
        migration,
        moto_clients,
        store,
        routes=["servers"],
        settle_s=0.5,
        publish_metrics=False,
        sleep=lambda _s: None,
    ).to_json()
    assert counts(by_route(result)["servers"]) == (0, 0, 1)


def test_a_rederived_user_wins_over_a_repair_of_a_stale_one(moto_clients: Clients) -> None:
    migration, store, data = build_core(moto_clients, servers=6, memberships=9)
    ddb = moto_clients.dynamodb
    user = data.memberships[0]["userId"]["S"]
    user_key = {"PK": {"S": f"USER#{user}"}, "SK": {"S": "METADATA"}}
    ddb.update_item(
        TableName=TARGET,
        Key=user_key,
        UpdateExpression="SET email = :e",
        ExpressionAttributeValues={":e": {"S": "stale@example.com"}},
    )
    mapping = mapping_of(moto_clients, migration, "memberships")

    def replicator_rederives(real: Any) -> None:
        # a new first membership with an email changes the derived User
        real.put_item(
            TableName="UserMembershipTable",
            Item={
                "userId": {"S": user},
                "serverId": {"S": "srv-"},
                "role": {"S": "admin"},
                "email": {"S": "first@example.com"},
            },
        )
        real.put_item(
            TableName=TARGET,
            Item=mapping.transform(
                {"userId": {"S": user}, "serverId": {"S": "srv-"}, "role": {"S": "admin"}}
            ),
        )
        members = real.query(
            TableName="UserMembershipTable",
            KeyConditionExpression="userId = :u",
            ExpressionAttributeValues={":u": {"S": user}},
            ConsistentRead=True,
        )["Items"]
        derived = mapping.derive({"S": user}, members)
        assert derived is not None
        real.put_item(TableName=TARGET, Item=derived)

    clients = RacingClients(replicator_rederives)
    result = by_route(
        run_reconcile(
            migration,
            clients,
            store,
            routes=["memberships"],
            repair=True,
            settle_s=0,
            publish_metrics=False,
        ).to_json()
    )["memberships"]
    assert counts(result) == (0, 0, 1)
    assert (result["repaired"], result["settled"], result["parity"]) == (0, 1, True)
    target = get_target(moto_clients, user_key)
    assert target is not None and target["email"] == {"S": "first@example.com"}


# --- while a route replicates in reverse the source is repaired, with the same conditions

#: cut over long ago, its drain done: the target is the truth
REVERSED = Direction(Flow.REVERSE, switched_at=1_600_000_000.0, overlap_s=3.0, old_drained=True)
MEMBERSHIPS = "UserMembershipTable"


def _reverse(store: ControlStore, route: str) -> None:
    assert store.save_direction(route, REVERSED, expected=Direction())


def _source_membership(ddb: Any, member: Item) -> Item:
    key = {"userId": member["userId"], "serverId": member["serverId"]}
    return dict(ddb.get_item(TableName=MEMBERSHIPS, Key=key, ConsistentRead=True)["Item"])


def _set_role(ddb: Any, table: str, key: dict[str, Any], role: str) -> None:
    _set(ddb, table, key, "role", role)


def test_a_reverse_repair_never_overwrites_a_write_to_the_old_table_made_meanwhile(
    moto_clients: Clients,
) -> None:
    migration, store, data = build_core(moto_clients, servers=6, memberships=3)
    _reverse(store, "servers")
    sid = data.servers[1]["id"]["S"]
    _set_region(moto_clients.dynamodb, TARGET, server_key(sid), "mars-north-1")  # on the new table
    clients = RacingClients(
        lambda ddb: _set_region(ddb, "ServersTable", {"id": {"S": sid}}, "eu-central-9"),
        table="ServersTable",
    )
    result = _repair(clients, migration, store)
    assert clients.dynamo is not None and clients.dynamo.fired == 1
    assert clients.dynamo.ops == ["Put"]
    assert result["repaired"] == 0 and result["settled"] == 0
    assert result["remaining"] == {"missing": 0, "extra": 0, "mismatched": 1}
    source = _source_server(moto_clients.dynamodb, sid)
    assert source["region"] == {"S": "eu-central-9"}  # the old table's write stands


def test_a_reverse_repair_loses_to_the_live_reverse_replicator(moto_clients: Clients) -> None:
    migration, store, data = build_core(moto_clients, servers=6, memberships=3)
    _reverse(store, "servers")
    sid = data.servers[4]["id"]["S"]

    def application_then_replicator(ddb: Any) -> None:  # a newer change, applied in reverse
        _set_region(ddb, TARGET, server_key(sid), "venus-1")
        _set_region(ddb, "ServersTable", {"id": {"S": sid}}, "venus-1")

    clients = RacingClients(application_then_replicator, table="ServersTable")
    _set_region(moto_clients.dynamodb, TARGET, server_key(sid), "mars-north-1")
    result = _repair(clients, migration, store)
    assert clients.dynamo is not None and clients.dynamo.fired == 1
    assert (result["repaired"], result["settled"], result["parity"]) == (0, 1, True)
    assert _source_server(moto_clients.dynamodb, sid)["region"] == {"S": "venus-1"}


def test_a_reverse_repair_updates_a_membership_only_if_it_is_still_as_read(
    moto_clients: Clients,
) -> None:
    migration, store, data = build_core(moto_clients, servers=4, memberships=4)
    _reverse(store, "memberships")
    mapping = mapping_of(moto_clients, migration, "memberships")
    first, second = [m for m in data.memberships if m["role"] != {"S": "viewer"}][:2]
    for member in (first, second):  # the application makes both viewers, on the new table
        viewer = mapping.transform({**member, "role": {"S": "viewer"}})
        moto_clients.dynamodb.put_item(TableName=TARGET, Item=viewer)
    second_key = {"userId": second["userId"], "serverId": second["serverId"]}
    clients = RacingClients(  # ...and an unmoved writer sets the second one's role on the old
        lambda ddb: _set_role(ddb, MEMBERSHIPS, second_key, "admin"), table=MEMBERSHIPS
    )
    result = _repair(clients, migration, store, "memberships")
    assert clients.dynamo is not None and clients.dynamo.ops == ["Update", "Update"]
    assert result["repaired"] == 1 and result["settled"] == 0
    assert result["remaining"]["mismatched"] == 1
    repaired = _source_membership(moto_clients.dynamodb, first)
    assert repaired == {**first, "role": {"S": "viewer"}}  # an UPDATE: every other attribute kept
    assert _source_membership(moto_clients.dynamodb, second)["role"] == {"S": "admin"}
