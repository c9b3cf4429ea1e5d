from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dualwrite.errors import ConfigError, UnmappableError
from dualwrite.mapping import build_mapping, is_identity
from dualwrite.mapping.base import KeySchema
from dualwrite.mapping.memberships import permissions_for
from dualwrite.mapping.templates import describe_space
from dualwrite.wire import MAX_ITEM_BYTES, items_equal, key_id
from tests.strategies import attributes, key_text

SERVERS_KEY = KeySchema((("id", "S"),))
MEMBERS_KEY = KeySchema((("userId", "S"), ("serverId", "S")))
servers = build_mapping("servers", SERVERS_KEY)
members = build_mapping("memberships", MEMBERS_KEY)


def membership(
    user: str, server: str, role: str | None = "viewer", email: str | None = None
) -> dict[str, Any]:
    item: dict[str, Any] = {"userId": {"S": user}, "serverId": {"S": server}}
    if role is not None:
        item["role"] = {"S": role}
    if email is not None:
        item["email"] = {"S": email}
    return item


# --- servers -------------------------------------------------------------------------------
@given(key_text, attributes)
def test_servers_keeps_every_other_attribute_unchanged(sid: str, attrs: dict[str, Any]) -> None:
    attrs.pop("id", None)
    item = {"id": {"S": sid}, **attrs}
    out = servers.transform(item)
    assert out["PK"] == {"S": f"SERVER#{sid}"}
    assert out["SK"] == {"S": "METADATA"}
    assert out["Type"] == {"S": "Server"}
    assert items_equal({k: v for k, v in out.items() if k not in ("PK", "SK", "Type")}, attrs)


@given(key_text)
def test_servers_keys_round_trip(sid: str) -> None:
    source_key = {"id": {"S": sid}}
    [target_key] = servers.target_keys(source_key)
    assert servers.owns(target_key)
    assert not members.owns(target_key)
    assert servers.source_key_for(target_key) == source_key
    out = servers.transform({**source_key, "x": {"N": "1"}})
    assert key_id({"PK": out["PK"], "SK": out["SK"]}) == key_id(target_key)


def test_servers_with_numeric_ids() -> None:
    m = build_mapping("servers", KeySchema((("id", "N"),)))
    [tk] = m.target_keys({"id": {"N": "42"}})
    assert tk["PK"] == {"S": "SERVER#42"}
    assert m.source_key_for(tk) == {"id": {"N": "42"}}


@pytest.mark.parametrize("clash", ["PK", "SK", "Type"])
def test_servers_refuses_attributes_that_would_overwrite_keys(clash: str) -> None:
    with pytest.raises(UnmappableError, match=clash):
        servers.transform({"id": {"S": "a"}, clash: {"S": "boom"}})


def test_servers_refuses_items_over_400_kb() -> None:
    big = {"id": {"S": "a"}, "blob": {"B": b"x" * (MAX_ITEM_BYTES - 20)}}
    assert servers.quarantine_reason(big) is None
    with pytest.raises(UnmappableError, match="400 KB"):
        servers.transform(big)


def test_servers_key_schema_must_fit() -> None:
    assert build_mapping("servers", MEMBERS_KEY).schema_problem()
    assert servers.schema_problem() is None


def test_servers_does_not_own_user_items_or_other_sort_keys() -> None:
    assert not servers.owns({"PK": {"S": "SERVER#1"}, "SK": {"S": "OTHER"}})
    assert not servers.owns({"PK": {"S": "USER#1"}, "SK": {"S": "METADATA"}})


# --- memberships ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("role", "perms", "known"),
    [
        ("admin", ["read", "write", "delete", "manage_users"], True),
        ("moderator", ["read", "write", "restart"], True),
        ("viewer", ["read"], True),
        ("owner", ["read"], False),
        ("Admin", ["read"], False),
    ],
)
def test_permissions_by_role(role: str, perms: list[str], known: bool) -> None:
    out = members.transform(membership("u1", "s1", role, "a@b.c"))
    assert out == {
        "PK": {"S": "USER#u1"},
        "SK": {"S": "SERVER#s1"},
        "Type": {"S": "UserServer"},
        "role": {"S": role},
        "permissions": {"L": [{"S": p} for p in perms]},
    }
    assert permissions_for(role) == (tuple(perms), known)


def test_membership_without_role_is_quarantined() -> None:
    with pytest.raises(UnmappableError, match="role"):
        members.transform(membership("u1", "s1", role=None))
    with pytest.raises(UnmappableError, match="role"):
        members.transform({**membership("u1", "s1", role=None), "role": {"NULL": True}})


def test_user_item_takes_email_of_smallest_server_with_an_email() -> None:
    group = {"S": "u1"}
    ms = [
        membership("u1", "s3", email="third@x.io"),
        membership("u1", "s1", email=""),
        membership("u1", "s2", email="second@x.io"),
    ]
    assert members.derive(group, ms) == {
        "PK": {"S": "USER#u1"},
        "SK": {"S": "METADATA"},
        "Type": {"S": "User"},
        "email": {"S": "second@x.io"},
        "name": {"S": "second"},
    }


def test_user_item_without_any_email_and_with_a_cognito_name() -> None:
    ms = [membership("u1", "s1"), membership("u1", "s2", email="")]
    user = members.derive({"S": "u1"}, ms)
    assert user is not None and user["email"] == {"S": ""} and user["name"] == {"S": ""}
    named = members.derive({"S": "u1"}, [membership("u1", "s1", email="a@b.c")], "Ada L.")
    assert named is not None and named["name"] == {"S": "Ada L."}


def test_user_item_is_deleted_when_no_membership_remains() -> None:
    assert members.derive({"S": "u1"}, []) is None


@given(key_text, key_text)
def test_membership_keys_round_trip(user: str, server: str) -> None:
    source_key = {"userId": {"S": user}, "serverId": {"S": server}}
    [tk] = members.target_keys(source_key)
    assert members.owns(tk) and not servers.owns(tk)
    assert members.source_key_for(tk) == source_key
    assert members.group_for_target(tk) is None
    dk = members.derived_key({"S": user})
    assert members.owns(dk)
    assert members.source_key_for(dk) is None
    assert members.group_for_target(dk) == {"S": user}


def test_memberships_owns_only_user_server_and_user_items_of_a_users_partition() -> None:
    # another route may keep a customer's orders under USER#<id> (single-table design)
    order = {"PK": {"S": "USER#u"}, "SK": {"S": "ORDER#o"}}
    assert not members.owns(order)
    assert members.source_key_for(order) is None and members.group_for_target(order) is None
    assert members.owns({"PK": {"S": "USER#u"}, "SK": {"S": "SERVER#s"}})
    assert members.owns({"PK": {"S": "USER#u"}, "SK": {"S": "METADATA"}})
    assert not members.owns({"PK": {"S": "USER#u"}, "SK": {"S": "METADATA#x"}})
    space = members.key_space()
    assert space is not None and describe_space(space) == "PK=USER#*, SK=SERVER#* or METADATA"


@given(
    st.lists(
        st.tuples(key_text, st.one_of(st.none(), st.emails(), st.just(""))),
        min_size=1,
        max_size=8,
        unique_by=lambda t: t[0],
    )
)
def test_user_email_property(rows: list[tuple[str, str | None]]) -> None:
    ms = [membership("u", server, email=email) for server, email in rows]
    user = members.derive({"S": "u"}, ms)
    assert user is not None
    with_email = sorted((s, e) for s, e in rows if e)
    expected = with_email[0][1] if with_email else ""
    assert user["email"] == {"S": expected}
    assert user["name"] == {"S": expected.split("@")[0]}


def test_memberships_key_schema_must_fit() -> None:
    assert members.schema_problem() is None
    assert build_mapping("memberships", SERVERS_KEY).schema_problem()
    assert build_mapping(
        "memberships", KeySchema((("serverId", "S"), ("userId", "S")))
    ).schema_problem()


# --- identity and custom -------------------------------------------------------------------
@given(attributes)
def test_identity_copies_unchanged(attrs: dict[str, Any]) -> None:
    m = build_mapping("identity", KeySchema((("pk", "S"), ("sk", "N"))))
    item = {**attrs, "pk": {"S": "a"}, "sk": {"N": "1"}}
    assert m.transform(item) == item
    assert m.target_keys({"pk": {"S": "a"}, "sk": {"N": "1"}}) == [
        {"pk": {"S": "a"}, "sk": {"N": "1"}}
    ]
    assert m.target_key == m.source_key
    assert m.source_key_for({"pk": {"S": "a"}, "sk": {"N": "1"}}) == {
        "pk": {"S": "a"},
        "sk": {"N": "1"},
    }


def test_custom_mapping_by_module_path() -> None:
    m = build_mapping("tests.unit.sample_mapping:TaggedCopy", KeySchema((("id", "S"),)))
    assert m.transform({"id": {"S": "1"}}) == {"id": {"S": "1"}, "migrated": {"BOOL": True}}
    assert is_identity("tests.unit.sample_mapping:TaggedCopy")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nope", "expected one of"),
        ("no.such.module:X", "cannot import"),
        ("tests.unit.sample_mapping:Missing", "has no attribute"),
        ("tests.unit.sample_mapping:NOT_A_MAPPING", "not a dualwrite.mapping.Mapping"),
    ],
)
def test_bad_custom_mappings_are_config_errors(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_mapping(spec, SERVERS_KEY)
