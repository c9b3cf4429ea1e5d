"""`reconcile --repair` resolves quarantine entries it made moot; nothing else does."""

from __future__ import annotations

from typing import Any

from dualwrite.aws.clients import Clients
from dualwrite.wire import to_lambda_json
from reconciler.job import run_reconcile
from tests.functional.test_reconcile_support import TARGET, build_core, by_route, server_key


def _stream_record(keys: dict[str, Any]) -> dict[str, Any]:
    return {
        "eventName": "INSERT",
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/ServersTable/stream/x",
        "dynamodb": {"Keys": to_lambda_json(keys), "SequenceNumber": "1"},
    }


def test_repair_at_parity_resolves_entries_whose_source_is_gone_or_now_maps(
    moto_clients: Clients,
) -> None:
    migration, store, data = build_core(moto_clients, servers=5, memberships=9)
    ddb = moto_clients.dynamodb
    member = data.memberships[0]
    fixed = store.quarantine(
        "memberships", "membership has no role", to_lambda_json(member), source="backfill"
    )
    gone = store.quarantine(
        "servers",
        "source attribute(s) PK would overwrite",
        _stream_record({"id": {"S": "gone"}}),
        source="replicator",
    )
    still_bad_item = {"userId": {"S": "user-x"}, "serverId": {"S": "srv-x"}}
    ddb.put_item(TableName="UserMembershipTable", Item=still_bad_item)
    still_bad = store.quarantine(
        "memberships", "membership has no role", to_lambda_json(still_bad_item), source="backfill"
    )
    keyless = store.quarantine("servers", "stream record cannot be decoded", {"junk": 1})
    # the stale-User of user-x: its derived item is expected from its (unmappable) membership
    ddb.put_item(
        TableName=TARGET,
        Item={
            "PK": {"S": "USER#user-x"},
            "SK": {"S": "METADATA"},
            "Type": {"S": "User"},
            "email": {"S": ""},
            "name": {"S": ""},
        },
    )

    checked = by_route(
        run_reconcile(migration, moto_clients, store, settle_s=0, publish_metrics=False).to_json()
    )
    assert checked["memberships"]["quarantined"] == 1
    assert checked["memberships"]["quarantine_resolved"] == 0
    assert len(store.quarantined()) == 4  # a check alone resolves nothing

    ddb.delete_item(TableName=TARGET, Key=server_key(data.servers[0]["id"]["S"]))
    repaired = by_route(
        run_reconcile(
            migration, moto_clients, store, settle_s=0, repair=True, publish_metrics=False
        ).to_json()
    )
    assert repaired["servers"]["parity"] and repaired["memberships"]["parity"]
    assert repaired["servers"]["quarantine_resolved"] == 1
    assert repaired["memberships"]["quarantine_resolved"] == 1
    left = {rec.sk for rec in store.quarantined()}
    assert left == {still_bad, keyless}
    notes = {sk: store.get("QUARANTINE", sk) for sk in (fixed, gone)}
    assert all(rec is not None and rec.data["resolved"] for rec in notes.values())
    assert "gone" in notes[gone].data["resolution"]  # type: ignore[union-attr]
    assert "maps cleanly" in notes[fixed].data["resolution"]  # type: ignore[union-attr]


def test_repair_that_leaves_drift_resolves_nothing(moto_clients: Clients) -> None:
    migration, store, data = build_core(moto_clients, servers=4, memberships=3)
    entry = store.quarantine("servers", "bad", _stream_record({"id": {"S": "gone"}}))

    # a difference the repair cannot condition safely: an item with too many attributes
    wide = {**server_key(data.servers[0]["id"]["S"])} | {
        f"a{i:04d}": {"S": "x"} for i in range(400)
    }
    moto_clients.dynamodb.put_item(TableName=TARGET, Item=wide)
    result = by_route(
        run_reconcile(
            migration,
            moto_clients,
            store,
            settle_s=0,
            repair=True,
            routes=["servers"],
            publish_metrics=False,
        ).to_json()
    )["servers"]
    assert result["parity"] is False
    assert result["remaining"]["mismatched"] == 1
    assert result["notes"] and "too many attributes" in result["notes"][0]
    assert result["quarantine_resolved"] == 0
    assert [rec.sk for rec in store.quarantined()] == [entry]
