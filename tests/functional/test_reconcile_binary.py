"""Binary keys and values through both phases of a check (in-process moto, codec on).

The digest phase reads binary as base64 text (codec.binary_as_text) while the exact phase
reads it decoded: a bucket must be the same bucket in both, or the exact phase would look in
the wrong place and report parity over real drift.
"""

from __future__ import annotations

import base64
from typing import Any

from dualwrite.aws import tables
from dualwrite.aws.clients import Clients
from dualwrite.config import parse_migration
from dualwrite.control import ControlStore, control_table_definition
from reconciler.job import run_reconcile

MIGRATION = parse_migration(
    {
        "control_table": "ctl",
        "routes": [{"name": "blobs", "source": "old-b", "target": "new-b", "mapping": "identity"}],
    }
)


def _table(clients: Clients, name: str, *key: tuple[str, str]) -> None:
    """A table keyed by `key` ((name, type) pairs, hash first); by default binary `id`."""
    key = key or (("id", "B"),)
    tables.create_table(
        clients.dynamodb,
        {
            "TableName": name,
            "KeySchema": [
                {"AttributeName": n, "KeyType": "RANGE" if i else "HASH"}
                for i, (n, _) in enumerate(key)
            ],
            "AttributeDefinitions": [{"AttributeName": n, "AttributeType": t} for n, t in key],
            "BillingMode": "PAY_PER_REQUEST",
        },
    )


def _items(n: int) -> list[dict[str, Any]]:
    return [
        {
            "id": {"B": bytes([i, 255 - i, 7])},
            "blob": {"B": bytes(range(i % 50, i % 50 + 40))},
            "parts": {"BS": [bytes([i]), b"\x00\xff"]},
            "nested": {"M": {"raw": {"B": b"\x01\x02" * (i + 1)}}},
        }
        for i in range(n)
    ]


def test_binary_drift_is_found_in_the_bucket_the_digests_opened(moto_clients: Clients) -> None:
    ddb = moto_clients.dynamodb
    for name in ("old-b", "new-b"):
        _table(moto_clients, name)
    tables.create_table(ddb, control_table_definition("ctl"))
    items = _items(30)
    for item in items:
        ddb.put_item(TableName="old-b", Item=item)
        ddb.put_item(TableName="new-b", Item=item)
    store = ControlStore(ddb, "ctl")

    at_parity = run_reconcile(
        MIGRATION, moto_clients, store, segments=1, settle_s=0, publish_metrics=False
    ).to_json()
    assert at_parity["parity"] is True
    assert at_parity["routes"][0]["exact_buckets"] == 0  # text and bytes fold alike

    changed = {**items[4], "blob": {"B": b"changed"}}
    ddb.put_item(TableName="new-b", Item=changed)
    ddb.delete_item(TableName="new-b", Key={"id": items[9]["id"]})
    result = run_reconcile(
        MIGRATION, moto_clients, store, segments=1, settle_s=0, publish_metrics=False
    ).to_json()
    route = result["routes"][0]
    assert result["parity"] is False
    assert (route["missing"], route["extra"], route["mismatched"]) == (1, 0, 1)
    assert route["exact_buckets"] == 2


def test_a_group_read_as_text_is_queried_as_bytes(moto_clients: Clients) -> None:
    # no shipped mapping groups by a binary attribute; a grouping mapping over a binary hash
    # key stands in, to show what the digest phase's group queries send
    from dualwrite.mapping.base import KeySchema
    from dualwrite.mapping.memberships import MembershipsMapping
    from reconciler.reads import Sides
    from reconciler.spec import RouteSpec

    ddb = moto_clients.dynamodb
    _table(moto_clients, "groups", ("userId", "B"), ("serverId", "S"))
    user = b"\x00\xfeuser"
    for server in ("a", "b"):
        ddb.put_item(TableName="groups", Item={"userId": {"B": user}, "serverId": {"S": server}})
    mapping = MembershipsMapping(KeySchema((("userId", "B"), ("serverId", "S"))))
    sides = Sides(moto_clients, RouteSpec("g", "groups", "CoreTable", mapping, ("PK", "SK")))
    as_text = {"B": base64.b64encode(user).decode("ascii")}
    assert [m["serverId"]["S"] for m in sides.members(as_text)] == ["a", "b"]
    assert sides.has_members(as_text)
    assert [m["serverId"]["S"] for m in sides.members({"B": user})] == ["a", "b"]
