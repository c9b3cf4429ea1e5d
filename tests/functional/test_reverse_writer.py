"""The reverse writer against moto: identity and memberships, requests counted (ceil(n/100)
BatchGetItem, ceil(n/25) BatchWriteItem, UpdateItem only where an update keeps what the
forward mapping drops), echoes written as nothing, partial batches retried."""

from __future__ import annotations

import math
from typing import Any

import pytest

from dualwrite.aws.clients import Clients
from dualwrite.backoff import Backoff
from dualwrite.control import ControlStore, control_table_definition
from dualwrite.errors import AwsError, ConfigError
from dualwrite.mapping import build_mapping
from dualwrite.mapping.base import KeySchema, Mapping
from dualwrite.reverse.direction import Direction, Flow, drained, switch
from dualwrite.reverse.foreign import OwnWrites, SourceChange, fingerprint, foreign_writes
from dualwrite.reverse.model import INSERT, MODIFY, REMOVE, TargetChange
from dualwrite.reverse.writer import ReverseWriter
from dualwrite.wire import Item, items_equal, key_of

IDENTITY = build_mapping("identity", KeySchema((("pk", "S"),)))
MEMBERSHIPS = build_mapping("memberships", KeySchema((("userId", "S"), ("serverId", "S"))))


def create(ddb: Any, name: str, keys: tuple[tuple[str, str], ...]) -> None:
    ddb.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": n, "KeyType": "HASH" if i == 0 else "RANGE"}
            for i, (n, _) in enumerate(keys)
        ],
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": t} for n, t in keys],
        BillingMode="PAY_PER_REQUEST",
    )


def scan(ddb: Any, table: str) -> list[Item]:
    items: list[Item] = ddb.scan(TableName=table, ConsistentRead=True)["Items"]
    return items


def change(mapping: Mapping, name: str, item: Item, at: float = 1000.0) -> TargetChange:
    keys = key_of(item, mapping.target_key.names)
    return TargetChange(name, keys, None if name == REMOVE else item, None, at)


class Partial:
    """A real client whose first BatchGetItem and BatchWriteItem come back partly
    unprocessed (what DynamoDB does under load): the writer must retry the rest."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.cut = {"batch_get_item": 1, "batch_write_item": 1}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def batch_get_item(self, RequestItems: dict[str, Any]) -> Any:
        if self.cut["batch_get_item"]:
            self.cut["batch_get_item"] -= 1
            ((table, spec),) = RequestItems.items()
            half = len(spec["Keys"]) // 2
            response = self.client.batch_get_item(
                RequestItems={table: {**spec, "Keys": spec["Keys"][:half]}}
            )
            response["UnprocessedKeys"] = {table: {**spec, "Keys": spec["Keys"][half:]}}
            return response
        return self.client.batch_get_item(RequestItems=RequestItems)

    def batch_write_item(self, RequestItems: dict[str, Any], **kw: Any) -> Any:
        if self.cut["batch_write_item"]:
            self.cut["batch_write_item"] -= 1
            ((table, requests),) = RequestItems.items()
            half = len(requests) // 2
            response = self.client.batch_write_item(RequestItems={table: requests[:half]}, **kw)
            response["UnprocessedItems"] = {table: requests[half:]}
            return response
        return self.client.batch_write_item(RequestItems=RequestItems, **kw)


def writer(client: Any, mapping: Mapping, source: str, target: str, **kw: Any) -> ReverseWriter:
    return ReverseWriter(
        client, "r", source, target, mapping, backoff=Backoff(sleep=lambda _s: None), **kw
    )


def test_identity_reverse_counts_requests_and_an_echo_writes_nothing(moto_clients: Clients) -> None:
    ddb = moto_clients.dynamodb
    create(ddb, "old", (("pk", "S"),))
    create(ddb, "new", (("pk", "S"),))
    for i in range(40):  # present before: 20 unchanged (echoes), 20 updated
        ddb.put_item(TableName="old", Item={"pk": {"S": f"k{i:03}"}, "v": {"N": "0"}})
    n = 230
    changes = [
        change(
            IDENTITY,
            MODIFY if i < 40 else INSERT,
            {"pk": {"S": f"k{i:03}"}, "v": {"N": str(i % 2)}},
        )
        for i in range(n)
    ]
    changes += [
        change(IDENTITY, REMOVE, {"pk": {"S": "k039"}}),
        change(IDENTITY, REMOVE, {"pk": {"S": "gone"}}),
    ]
    journal: list[OwnWrites] = []
    ticks = iter([5000.0])  # before the writes; 5003 once they are under way
    w = writer(
        Partial(ddb),
        IDENTITY,
        "old",
        "new",
        journal=journal.append,
        clock=lambda: next(ticks, 5003.0),
    )
    result = w.apply(changes)
    written = (n - 20) - 1 + 1  # 20 echoes; k039 is written then deleted: one delete
    assert (result.puts, result.deletes, result.updates) == (written - 1, 1, 0)
    assert result.failed == () and result.unrepresentable == ()
    assert result.unchanged == 20 + 1  # the echoes, and the delete of an absent item
    counts = w.counter.counts
    assert counts["BatchGetItem"] == math.ceil(n / 100) + 1  # +1: the unprocessed half, retried
    assert counts["BatchWriteItem"] == math.ceil(written / 25) + 1
    assert "UpdateItem" not in counts and "GetItem" not in counts
    old = {i["pk"]["S"]: i for i in scan(ddb, "old")}
    assert len(old) == n - 1 and "k039" not in old
    assert all(old[f"k{i:03}"]["v"] == {"N": str(i % 2)} for i in range(n) if i != 39)
    # journaled open before the writes, then narrowed to where they ended (the same entry)
    opened, own = journal
    assert (opened.at, opened.until) == (5000.0, 5000.0 + w.write_span_s)
    assert own == result.own and (own.at, own.until) == (5000.0, 5003.0)
    assert own.id == opened.id and own.fingerprints == opened.fingerprints
    # the source stream of our own writes is recognised from the journal
    assert all(
        fingerprint({"pk": i["pk"]}, i) in own.fingerprints
        for i in old.values()
        if i["v"] == {"N": "1"}
    )
    # the same batch again (a redelivery, or the echo of our writes): no write at all
    again = writer(ddb, IDENTITY, "old", "new")
    repeat = again.apply(changes)
    assert repeat.written == 0 and repeat.own is None
    assert again.counter.counts == {"BatchGetItem": math.ceil(n / 100)}


def test_a_stray_write_of_an_image_we_wrote_minutes_before_is_foreign(
    moto_clients: Clients,
) -> None:
    """We set admin, then viewer; a stray writer sets admin again a minute later. Its image
    is one we wrote, but not then: the journal's narrowed span tells them apart."""
    ddb = moto_clients.dynamodb
    store = journaled_tables(ddb)
    now = [1000.0]
    w = writer(ddb, IDENTITY, "old", "new", journal=store.record_own_writes, clock=lambda: now[0])
    assert w.apply([change(IDENTITY, INSERT, ADMIN, at=1000.0)]).written == 1
    now[0] = 1010.0
    assert w.apply([change(IDENTITY, MODIFY, VIEWER, at=1010.0)]).written == 1
    # our own writes, as the source stream shows them: stamped by DynamoDB's clock, here
    # 12 s ahead of the writer's (a runner on a laptop), and rounded down; then the stray one
    stream = [(ADMIN, 1012.0), (VIEWER, 1022.0), (ADMIN, 1070.0)]
    assert listed_foreign(store, w, stream) == [1070.0]


def journaled_tables(ddb: Any) -> ControlStore:
    """Identity tables old and new (key pk) and the control table journaling own writes."""
    create(ddb, "old", (("pk", "S"),))
    create(ddb, "new", (("pk", "S"),))
    ddb.create_table(**control_table_definition("ctl"))
    return ControlStore(ddb, "ctl", clock=lambda: 1000.0)


#: a role set twice on key u1, then set again (listed_foreign)
ADMIN = {"pk": {"S": "u1"}, "role": {"S": "admin"}}
VIEWER = {"pk": {"S": "u1"}, "role": {"S": "viewer"}}


def listed_foreign(
    store: ControlStore, w: ReverseWriter, stream: list[tuple[Item, float]]
) -> list[float]:
    """When the source-stream changes of key u1 (image, time) that the foreign-write check
    lists were made, against the journal `w` left in `store` (reverse, drained)."""
    state = drained(switch(Direction(), Flow.REVERSE, 900.0, 3.0))
    key = {"pk": {"S": "u1"}}
    changes = [SourceChange(key, image, at) for image, at in stream]
    times = [at for _, at in stream]
    journal = store.own_writes("r", min(times), max(times), span_s=w.write_span_s)
    return [f.at for f in foreign_writes("r", state, changes, journal)]


def test_a_narrowing_that_fails_leaves_the_open_span(moto_clients: Clients) -> None:
    """The writes landed; only the second journal write failed: the batch is not failed
    (it would be redelivered for nothing), and its own writes stay covered."""
    ddb = moto_clients.dynamodb
    create(ddb, "old", (("pk", "S"),))
    create(ddb, "new", (("pk", "S"),))
    journal: list[OwnWrites] = []

    def journal_once(own: OwnWrites) -> None:
        if journal:
            raise AwsError("PutItem ctl: slow down", "ProvisionedThroughputExceededException")
        journal.append(own)

    w = writer(ddb, IDENTITY, "old", "new", journal=journal_once, clock=lambda: 1000.0)
    item = {"pk": {"S": "k"}, "v": {"S": "1"}}
    result = w.apply([change(IDENTITY, INSERT, item)])
    assert result.written == 1 and result.failed == ()
    (opened,) = journal
    assert result.own == opened and opened.until == 1000.0 + w.write_span_s
    assert scan(ddb, "old") == [item]


def memberships_world(ddb: Any) -> None:
    create(ddb, "UserMembershipTable", (("userId", "S"), ("serverId", "S")))
    create(ddb, "CoreTable", (("PK", "S"), ("SK", "S")))
    members = [
        {
            "userId": {"S": "u1"},
            "serverId": {"S": "s1"},
            "role": {"S": "admin"},
            "email": {"S": "a@x"},
            "joinedAt": {"N": "7"},
        },
        {
            "userId": {"S": "u1"},
            "serverId": {"S": "s2"},
            "role": {"S": "viewer"},
            "email": {"S": "a@x"},
        },
        {
            "userId": {"S": "u2"},
            "serverId": {"S": "s1"},
            "role": {"S": "viewer"},
            "email": {"S": "b@x"},
        },
    ]
    for m in members:
        ddb.put_item(TableName="UserMembershipTable", Item=m)
        ddb.put_item(TableName="CoreTable", Item=MEMBERSHIPS.transform(m))
    for user in ("u1", "u2"):
        group = [m for m in members if m["userId"]["S"] == user]
        derived = MEMBERSHIPS.derive({"S": user}, group)
        assert derived is not None
        ddb.put_item(TableName="CoreTable", Item=derived)


def test_memberships_reverse_role_email_new_user_and_removal(moto_clients: Clients) -> None:
    ddb = moto_clients.dynamodb
    memberships_world(ddb)
    m = MEMBERSHIPS
    promoted = m.transform(
        {"userId": {"S": "u1"}, "serverId": {"S": "s2"}, "role": {"S": "moderator"}}
    )
    new_user = {
        "PK": {"S": "USER#u3"},
        "SK": {"S": "METADATA"},
        "Type": {"S": "User"},
        "email": {"S": "c@x"},
        "name": {"S": "c"},
    }
    joined = m.transform({"userId": {"S": "u3"}, "serverId": {"S": "s9"}, "role": {"S": "admin"}})
    ddb.put_item(TableName="CoreTable", Item=new_user)  # the application wrote it first
    renamed = {
        "PK": {"S": "USER#u1"},
        "SK": {"S": "METADATA"},
        "Type": {"S": "User"},
        "email": {"S": "new@x"},
        "name": {"S": "new"},
    }
    left = m.transform({"userId": {"S": "u2"}, "serverId": {"S": "s1"}, "role": {"S": "viewer"}})
    bad = {**promoted, "SK": {"S": "SERVER#s3"}, "permissions": {"L": []}}
    batch = [
        change(m, MODIFY, promoted),
        change(m, INSERT, joined),
        change(m, INSERT, new_user),
        change(m, MODIFY, renamed),
        change(m, REMOVE, left),
        change(m, INSERT, bad),
    ]
    for item in (promoted, joined, renamed):  # what the application wrote to the new table
        ddb.put_item(TableName="CoreTable", Item=item)
    ddb.delete_item(TableName="CoreTable", Key={"PK": left["PK"], "SK": left["SK"]})
    w = writer(ddb, m, "UserMembershipTable", "CoreTable")
    result = w.apply(batch)
    assert [i for i, _ in result.unrepresentable] == [5]
    assert result.failed == ()
    source = {(i["userId"]["S"], i["serverId"]["S"]): i for i in scan(ddb, "UserMembershipTable")}
    assert items_equal(
        source["u1", "s1"],
        {
            "userId": {"S": "u1"},
            "serverId": {"S": "s1"},
            "role": {"S": "admin"},
            "email": {"S": "new@x"},
            "joinedAt": {"N": "7"},
        },
    )
    assert source["u1", "s2"]["role"] == {"S": "moderator"} and source["u1", "s2"]["email"] == {
        "S": "new@x"
    }
    assert source["u3", "s9"] == {
        "userId": {"S": "u3"},
        "serverId": {"S": "s9"},
        "role": {"S": "admin"},
        "email": {"S": "c@x"},
    }
    assert ("u2", "s1") not in source
    # one BatchGetItem of the memberships, one of the target's User items, a Query per User
    # item changed; the put and the delete in one BatchWriteItem; two membership updates, the
    # one of s2 netting its role and its email into one UpdateItem
    # (and a Query for the removal: the user's other memberships keep the User item's email)
    assert w.counter.counts == {"BatchGetItem": 2, "Query": 3, "BatchWriteItem": 1, "UpdateItem": 2}
    # forward of the new source gives back what the target holds
    core = {(i["PK"]["S"], i["SK"]["S"]): i for i in scan(ddb, "CoreTable")}
    for item in source.values():
        t = m.transform(item)
        assert items_equal(core[t["PK"]["S"], t["SK"]["S"]], t)
    u1 = m.derive({"S": "u1"}, [i for i in source.values() if i["userId"]["S"] == "u1"])
    assert u1 is not None and items_equal(u1, renamed)
    # the source stream of these writes is all ours
    assert result.own is not None
    ours = [SourceChange(m.source_key_of_item(i), i, None) for i in source.values()]
    assert all(fingerprint(c.key, c.new_image) in result.own.fingerprints for c in ours)
    assert len(result.own.fingerprints) == len(ours) + 1  # and the delete
    assert (
        fingerprint({"userId": {"S": "u2"}, "serverId": {"S": "s1"}}, None)
        in result.own.fingerprints
    )


def test_a_failed_write_fails_the_changes_that_touch_it(moto_clients: Clients) -> None:
    ddb = moto_clients.dynamodb
    memberships_world(ddb)

    class Refuses:
        def __init__(self, client: Any) -> None:
            self.client = client

        def __getattr__(self, name: str) -> Any:
            return getattr(self.client, name)

        def update_item(self, **kw: Any) -> Any:
            from botocore.exceptions import ClientError

            raise ClientError(
                {"Error": {"Code": "InternalServerError", "Message": "x"}}, "UpdateItem"
            )

    m = MEMBERSHIPS
    renamed = {
        "PK": {"S": "USER#u1"},
        "SK": {"S": "METADATA"},
        "Type": {"S": "User"},
        "email": {"S": "z@x"},
        "name": {"S": "z"},
    }
    server = m.transform({"userId": {"S": "u9"}, "serverId": {"S": "s1"}, "role": {"S": "viewer"}})
    ddb.put_item(TableName="CoreTable", Item=renamed)  # the change the record carries
    w = writer(Refuses(ddb), m, "UserMembershipTable", "CoreTable")
    result = w.apply([change(m, INSERT, server), change(m, MODIFY, renamed)])
    assert result.failed == (1,)  # the email update failed; the new membership landed
    keys = {(i["userId"]["S"], i["serverId"]["S"]) for i in scan(ddb, "UserMembershipTable")}
    assert ("u9", "s1") in keys


def test_a_mapping_without_an_inverse_is_refused(moto_clients: Clients) -> None:
    m = build_mapping("tests.unit.sample_mapping:TaggedCopy", KeySchema((("pk", "S"),)))
    with pytest.raises(ConfigError, match=r"cutover\.reverse: false"):
        writer(moto_clients.dynamodb, m, "a", "b")


def test_merged_updates_are_batched_puts_that_keep_what_forward_drops(
    moto_clients: Clients,
) -> None:
    ddb = moto_clients.dynamodb
    memberships_world(ddb)
    m = MEMBERSHIPS
    changes = [
        change(
            m,
            MODIFY,
            m.transform(
                {"userId": {"S": "u1"}, "serverId": {"S": f"s{i}"}, "role": {"S": "moderator"}}
            ),
        )
        for i in (1, 2)
    ]
    w = writer(ddb, m, "UserMembershipTable", "CoreTable", merge_updates=True)
    result = w.apply(changes)
    assert (result.puts, result.updates) == (2, 0)
    assert "UpdateItem" not in w.counter.counts and w.counter.counts["BatchWriteItem"] == 1
    source = {(i["userId"]["S"], i["serverId"]["S"]): i for i in scan(ddb, "UserMembershipTable")}
    assert source["u1", "s1"]["joinedAt"] == {"N": "7"} and source["u1", "s1"]["email"] == {
        "S": "a@x"
    }
    assert source["u1", "s1"]["role"] == source["u1", "s2"]["role"] == {"S": "moderator"}


@pytest.mark.parametrize(
    ("mapping", "typ", "pk", "rest"),
    [
        ("servers", "S", "SERVER#", {"Type": {"S": "Server"}}),
        ("servers", "N", "SERVER#abc", {"Type": {"S": "Server"}}),
        ("servers", "N", "SERVER#1e200", {"Type": {"S": "Server"}}),
        # server 1 is SERVER#1: another spelling of 1 would overwrite it
        ("servers", "N", "SERVER#1.0", {"Type": {"S": "Server"}}),
        ("servers", "N", "SERVER#01", {"Type": {"S": "Server"}}),
        ("memberships", "S", "USER#", {"Type": {"S": "User"}, "email": {"S": "a@x"}}),
        ("memberships", "N", "USER#abc", {"Type": {"S": "User"}, "email": {"S": "a@x"}}),
    ],
)
def test_a_target_key_no_source_key_can_hold_is_quarantined_not_a_failed_batch(
    moto_clients: Clients, mapping: str, typ: str, pk: str, rest: Item
) -> None:
    """Read (BatchGetItem, Query) with a key DynamoDB refuses, the whole batch would fail on
    every redelivery, its good records with it."""
    ddb = moto_clients.dynamodb
    names = ("id",) if mapping == "servers" else ("userId", "serverId")
    create(ddb, "old", tuple((n, typ if i == 0 else "S") for i, n in enumerate(names)))
    create(ddb, "new", (("PK", "S"), ("SK", "S")))
    m = build_mapping(
        mapping, KeySchema(tuple((n, typ if i == 0 else "S") for i, n in enumerate(names)))
    )
    bad = {"PK": {"S": pk}, "SK": {"S": "METADATA"}, **rest}
    good = m.transform(
        {"id": {typ: "1"}}
        if mapping == "servers"
        else {"userId": {typ: "1"}, "serverId": {"S": "s1"}, "role": {"S": "viewer"}}
    )
    result = writer(ddb, m, "old", "new").apply([change(m, INSERT, good), change(m, INSERT, bad)])
    assert [i for i, _ in result.unrepresentable] == [1] and result.failed == ()
    assert len(scan(ddb, "old")) == 1  # the good record landed
    ((_, reason),) = result.unrepresentable
    assert "no source key maps to it" in reason, reason  # not "in no route's key space"


def test_a_write_the_source_table_refuses_is_quarantined_and_holds_back_nothing(
    moto_clients: Clients,
) -> None:
    """An empty string where the old table has a GSI key (CoreTable has none there): the old
    table refuses that write however often it is sent. Its batch of 25 is sent again a write
    at a time: the others land, and the refused change is quarantined, not failed forever."""
    ddb = moto_clients.dynamodb
    ddb.create_table(
        TableName="old",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": "id", "AttributeType": "S"},
            {"AttributeName": "ownerId", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "byOwner",
                "KeySchema": [{"AttributeName": "ownerId", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    create(ddb, "new", (("PK", "S"), ("SK", "S")))
    m = build_mapping("servers", KeySchema((("id", "S"),)))
    items = [
        m.transform({"id": {"S": i}, "ownerId": {"S": owner}})
        for i, owner in (("a", "o1"), ("b", ""), ("c", "o2"))
    ]
    result = writer(ddb, m, "old", "new").apply([change(m, INSERT, t) for t in items])
    assert result.failed == ()
    ((index, reason),) = result.unrepresentable
    assert index == 1 and reason.startswith("unrepresentable: the source table rejects it")
    assert sorted(i["id"]["S"] for i in scan(ddb, "old")) == ["a", "c"]
