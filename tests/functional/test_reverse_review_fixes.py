"""Reverse-write faults an independent review found (each test failed before its fix): a
fan-out redelivered after a partial failure, numeric ids past 28 digits, a name a user pool
cannot give, and a batch whose write raised."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from dualwrite.aws.clients import Clients
from dualwrite.cutover.results import Status
from dualwrite.cutover.switch import cutover
from dualwrite.errors import EndpointError
from dualwrite.mapping import build_mapping
from dualwrite.mapping.base import KeySchema
from dualwrite.reverse.direction import drained
from dualwrite.reverse.model import INSERT, MODIFY, TargetChange
from dualwrite.wire import Item, key_of, to_lambda_json
from tests.functional.test_reverse_writer import (
    ADMIN,
    IDENTITY,
    MEMBERSHIPS,
    VIEWER,
    change,
    create,
    journaled_tables,
    listed_foreign,
    scan,
    writer,
)
from tests.reverse_cutover_world import FORCED, build, migration

USER_KEY = {"PK": {"S": "USER#u1"}, "SK": {"S": "METADATA"}}


def _user(email: str, name: str) -> Item:
    return {**USER_KEY, "Type": {"S": "User"}, "email": {"S": email}, "name": {"S": name}}


class FailsOnce:
    """A real client whose first UpdateItem of one membership fails with a 500."""

    def __init__(self, client: Any, server: str) -> None:
        self.client, self.server, self.failed = client, server, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def update_item(self, **kw: Any) -> Any:
        if not self.failed and kw["Key"]["serverId"] == {"S": self.server}:
            self.failed = True
            error = {"Error": {"Code": "InternalServerError", "Message": "injected"}}
            raise ClientError(error, "UpdateItem")  # type: ignore[arg-type]
        return self.client.update_item(**kw)


def _memberships(ddb: Any, email: str) -> None:
    create(ddb, "old", (("userId", "S"), ("serverId", "S")))
    create(ddb, "new", (("PK", "S"), ("SK", "S")))
    for s in ("s1", "s2", "s3"):
        member = {
            "userId": {"S": "u1"},
            "serverId": {"S": s},
            "role": {"S": "viewer"},
            "email": {"S": email},
        }
        ddb.put_item(TableName="old", Item=member)
        ddb.put_item(TableName="new", Item=MEMBERSHIPS.transform(member))


def test_an_email_change_redelivered_after_a_partial_fan_out_reaches_every_membership(
    moto_clients: Clients,
) -> None:
    ddb = moto_clients.dynamodb
    _memberships(ddb, "a@x")
    renamed = _user("new@x", "new")
    ddb.put_item(TableName="new", Item=renamed)
    # as the target's stream carries it: the image before the change too (NEW_AND_OLD_IMAGES)
    record = TargetChange(
        MODIFY,
        key_of(renamed, ("PK", "SK")),
        renamed,
        created_at=1000.0,
        old_json=to_lambda_json(_user("a@x", "a")),
    )
    w = writer(FailsOnce(ddb, "s2"), MEMBERSHIPS, "old", "new")
    assert w.apply([record]).failed == (0,)  # s2's update failed: the record is redelivered

    again = w.apply([record])

    assert again.failed == ()
    emails = {i["serverId"]["S"]: i["email"]["S"] for i in scan(ddb, "old")}
    assert emails == {"s1": "new@x", "s2": "new@x", "s3": "new@x"}


def test_an_echo_of_an_unchanged_email_leaves_a_membership_with_its_own_email(
    moto_clients: Clients,
) -> None:
    """The redelivery rule takes only memberships still holding the email changed from."""
    ddb = moto_clients.dynamodb
    _memberships(ddb, "a@x")
    ddb.update_item(
        TableName="old",
        Key={"userId": {"S": "u1"}, "serverId": {"S": "s3"}},
        UpdateExpression="SET email = :e",
        ExpressionAttributeValues={":e": {"S": "own@x"}},
    )
    user = _user("a@x", "a")
    ddb.put_item(TableName="new", Item=user)
    record = TargetChange(
        MODIFY, USER_KEY, user, created_at=1000.0, old_json=to_lambda_json(_user("a@x", "x"))
    )
    assert writer(ddb, MEMBERSHIPS, "old", "new").apply([record]).failed == ()
    emails = {i["serverId"]["S"]: i["email"]["S"] for i in scan(ddb, "old")}
    assert emails == {"s1": "a@x", "s2": "a@x", "s3": "own@x"}


def test_numeric_ids_that_differ_past_the_28th_digit_are_two_servers(
    moto_clients: Clients,
) -> None:
    ddb = moto_clients.dynamodb
    servers = build_mapping("servers", KeySchema((("id", "N"),)))
    create(ddb, "old", (("id", "N"),))
    create(ddb, "new", (("PK", "S"), ("SK", "S")))
    ids = ["12345678901234567890123456789012", "12345678901234567890123456789013"]
    items = [servers.transform({"id": {"N": i}, "name": {"S": f"server {i[-2:]}"}}) for i in ids]
    for t in items:
        ddb.put_item(TableName="new", Item=t)

    result = writer(ddb, servers, "old", "new").apply([change(servers, INSERT, t) for t in items])

    assert result.failed == () and result.unrepresentable == ()
    assert sorted(i["id"]["N"] for i in scan(ddb, "old")) == ids


def test_with_a_pool_a_name_it_cannot_give_must_be_the_emails_local_part(
    moto_clients: Clients,
) -> None:
    """Forward derives the local part when the pool has no name for the user; a User item
    named otherwise is not derivable, so it is quarantined, not applied without its name."""
    ddb = moto_clients.dynamodb
    _memberships(ddb, "a@x")
    named = _user("new@x", "Ann Smith")
    ddb.put_item(TableName="new", Item=named)
    w = writer(ddb, MEMBERSHIPS, "old", "new", name_for=lambda _user: None)  # not in the pool
    assert [i for i, _ in w.apply([change(MEMBERSHIPS, MODIFY, named)]).unrepresentable] == [0]
    local = _user("new@x", "new")
    ddb.put_item(TableName="new", Item=local)
    assert w.apply([change(MEMBERSHIPS, MODIFY, local)]).unrepresentable == ()


class DropsOnce:
    """A real client whose first BatchWriteItem loses its connection."""

    def __init__(self, client: Any) -> None:
        self.client, self.dropped = client, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def batch_write_item(self, **kw: Any) -> Any:
        if not self.dropped:
            self.dropped = True
            raise EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com")
        return self.client.batch_write_item(**kw)


def test_a_batch_whose_write_raised_is_narrowed_too(moto_clients: Clients) -> None:
    """Else its entry stays open for the batch's whole span (900 s), and a stray writer
    setting that image minutes later is taken for ours."""
    ddb = moto_clients.dynamodb
    store = journaled_tables(ddb)
    now = [1000.0]
    w = writer(
        DropsOnce(ddb),
        IDENTITY,
        "old",
        "new",
        journal=store.record_own_writes,
        clock=lambda: now[0],
    )
    with pytest.raises(EndpointError):
        w.apply([change(IDENTITY, INSERT, ADMIN)])  # redelivered
    now[0] = 1005.0
    assert w.apply([change(IDENTITY, INSERT, ADMIN)]).written == 1
    now[0] = 1010.0
    assert w.apply([change(IDENTITY, MODIFY, VIEWER, at=1010.0)]).written == 1
    # ours, then a stray writer ten minutes later
    stream = [(ADMIN, 1005.0), (VIEWER, 1010.0), (ADMIN, 1600.0)]
    assert listed_foreign(store, w, stream) == [1600.0]


class GsiRefuses:
    """A real client, with what DynamoDB does (moto does not) for an UpdateItem setting an
    empty string on a secondary index's key attribute (role): ValidationException."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def update_item(self, **kw: Any) -> Any:
        values = kw.get("ExpressionAttributeValues", {})
        for placeholder, name in kw.get("ExpressionAttributeNames", {}).items():
            if name == "role" and values.get(":" + placeholder[1:]) == {"S": ""}:
                error = {
                    "Error": {
                        "Code": "ValidationException",
                        "Message": "The AttributeValue for a key attribute cannot contain an "
                        "empty string value. IndexName: byRole, IndexKey: role",
                    }
                }
                raise ClientError(error, "UpdateItem")  # type: ignore[arg-type]
        return self.client.update_item(**kw)


def test_a_refused_write_quarantines_only_the_record_refused_on_its_own(
    moto_clients: Clients,
) -> None:
    """An email change netted, on s1, with a role the old table's index refuses: the email
    change is no problem of the old schema's and reaches s1 too."""
    ddb = moto_clients.dynamodb
    _memberships(ddb, "a@x")
    renamed = _user("new@x", "new")
    bad_role = MEMBERSHIPS.transform(
        {"userId": {"S": "u1"}, "serverId": {"S": "s1"}, "role": {"S": ""}}
    )
    ddb.put_item(TableName="new", Item=renamed)
    ddb.put_item(TableName="new", Item=bad_role)

    result = writer(GsiRefuses(ddb), MEMBERSHIPS, "old", "new").apply(
        [change(MEMBERSHIPS, MODIFY, renamed), change(MEMBERSHIPS, MODIFY, bad_role)]
    )

    assert [i for i, _ in result.unrepresentable] == [1]
    assert result.failed == ()
    emails = {i["serverId"]["S"]: i["email"]["S"] for i in scan(ddb, "old")}
    assert emails == {"s1": "new@x", "s2": "new@x", "s3": "new@x"}
    roles = {i["serverId"]["S"]: i["role"]["S"] for i in scan(ddb, "old")}
    assert roles["s1"] == "viewer"  # the refused role never landed


class SlowUpdates:
    """A real client whose every UpdateItem takes 500 s of the writer's clock."""

    def __init__(self, client: Any, now: list[float]) -> None:
        self.client, self.now = client, now

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def update_item(self, **kw: Any) -> Any:
        self.now[0] += 500.0
        return self.client.update_item(**kw)


def test_writes_not_begun_within_the_journaled_span_wait_for_a_redelivery(
    moto_clients: Clients,
) -> None:
    """The foreign-write check looks for entries no older than the span before a change: a
    write made later than the span (a slow fan-out) would be taken for a foreign one."""
    ddb = moto_clients.dynamodb
    _memberships(ddb, "a@x")
    renamed = _user("new@x", "new")
    ddb.put_item(TableName="new", Item=renamed)
    now = [1000.0]
    w = writer(SlowUpdates(ddb, now), MEMBERSHIPS, "old", "new", clock=lambda: now[0])
    old = to_lambda_json(_user("a@x", "a"))
    record = TargetChange(MODIFY, USER_KEY, renamed, created_at=1000.0, old_json=old)

    first = w.apply([record])

    assert first.failed == (
        0,
    )  # s1, s2 begun at 1000 and 1500 s; s3 would begin at 2000, past 1900
    emails = {i["serverId"]["S"]: i["email"]["S"] for i in scan(ddb, "old")}
    assert emails == {"s1": "new@x", "s2": "new@x", "s3": "a@x"}
    assert w.apply([record]).failed == ()  # redelivered
    assert {i["email"]["S"] for i in scan(ddb, "old")} == {"new@x"}


@pytest.fixture
def moto(aws_env: None) -> Iterator[None]:
    from moto import mock_aws

    with mock_aws(config={"lambda": {"use_docker": False}}):
        yield


@pytest.mark.parametrize("ttl", [True, False])
def test_a_ttl_expiry_of_an_old_table_after_cutover_is_no_foreign_write(
    moto: None, ttl: bool
) -> None:
    w = build(migration(overlap_seconds=0), replicator=False)
    w.clients.dynamodb.put_item(TableName="old-t", Item={"id": {"S": "expiring"}})
    w.caught_up("old-t")
    assert cutover(w.ctx, FORCED).status is Status.DONE
    state = w.store.direction("r")
    assert w.store.save_direction("r", drained(state), expected=state)
    w.clock.sleep(60)
    w.clients.dynamodb.delete_item(TableName="old-t", Key={"id": {"S": "expiring"}})
    (removed,) = [r for r in w.records("old-t") if r["eventName"] == "REMOVE"]
    if ttl:  # as DynamoDB's TTL deletes it (moto's stream has no TTL records)
        removed["userIdentity"] = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}

    w.replicator().apply([removed])

    listed = [f.key for f in w.store.foreign_writes("r", unresolved_only=True)]
    assert listed == ([] if ttl else [{"id": {"S": "expiring"}}])
