"""The memberships inverse (DESIGN.md section 8), one-to-many: for every set of memberships the
mapping accepts, reversing its UserServer and User items restores every attribute the mapping
carries (mapping(reverse(mapping(S))) == mapping(S)), an echo writes nothing, and what the
old schema cannot hold is unrepresentable."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from dualwrite.errors import UnmappableError
from dualwrite.mapping import build_mapping
from dualwrite.mapping.base import KeySchema
from dualwrite.mapping.memberships import MembershipsMapping
from dualwrite.reverse.model import TargetChange, WriteKind
from dualwrite.reverse.plan import planner_for
from dualwrite.wire import Item, items_equal, strings
from tests.reverse_sim import put, remove, reverse, source_table, target_table
from tests.strategies import attributes, key_text

M = build_mapping("memberships", KeySchema((("userId", "S"), ("serverId", "S"))))
assert isinstance(M, MembershipsMapping)
MN = build_mapping("memberships", KeySchema((("userId", "N"), ("serverId", "N"))))
roles = st.sampled_from(["admin", "moderator", "viewer", "owner"])
emails = st.one_of(st.none(), st.just(""), st.emails())


@st.composite
def users(draw: Any) -> list[Item]:
    """One user's memberships: unique servers, any role, email or not, other attributes."""
    user = draw(key_text)
    servers = draw(st.lists(key_text, min_size=1, max_size=5, unique=True))
    out = []
    for server in servers:
        extra = draw(
            attributes.filter(lambda a: not {"userId", "serverId", "role", "email"} & set(a))
        )
        item: Item = {**extra, "userId": {"S": user}, "serverId": {"S": server}}
        item["role"] = {"S": draw(roles)}
        email = draw(emails)
        if email is not None:
            item["email"] = {"S": email}
        out.append(item)
    return out


def targets(members: list[Item]) -> tuple[list[Item], Item]:
    user = M.derive(members[0]["userId"], members)
    assert user is not None
    return [M.transform(m) for m in members], user


def forward(items: list[Item]) -> tuple[dict[str, Item], Item | None]:
    mapped = target_table(M, [M.transform(i) for i in items])
    return mapped, M.derive(items[0]["userId"], items) if items else None


@given(users(), st.randoms())
def test_reverse_into_an_empty_source_restores_what_the_mapping_carries(
    members: list[Item], rnd: Any
) -> None:
    user_servers, user = targets(members)
    changes = [put(M, t) for t in user_servers] + [put(M, user)]
    rnd.shuffle(changes)  # the User item may come before or after its memberships
    out = reverse(M, changes, {}, target_table(M, [user, *user_servers]))
    assert out.plan.unrepresentable == ()
    back = list(out.source.values())
    mapped, derived = forward(back)
    assert mapped == target_table(M, user_servers)
    assert derived is not None and items_equal(derived, user)
    for item in back:
        assert set(item) <= {"userId", "serverId", "role", "email"}


@given(users())
def test_an_echo_writes_nothing(members: list[Item]) -> None:
    user_servers, user = targets(members)
    source = source_table(M, members)
    changes = [put(M, t, old=t) for t in user_servers] + [put(M, user, old=user)]
    out = reverse(M, changes, source, target_table(M, [user, *user_servers]))
    assert out.netted.writes == ()
    assert out.source == source


@given(users(), roles, st.data())
def test_a_role_change_updates_the_role_and_keeps_the_rest(
    members: list[Item], role: str, data: Any
) -> None:
    user_servers, _user = targets(members)
    i = data.draw(st.integers(0, len(members) - 1))
    changed = {
        **user_servers[i],
        "role": {"S": role},
        "permissions": M.transform({**members[i], "role": {"S": role}})["permissions"],
    }
    out = reverse(M, [put(M, changed, old=user_servers[i])], source_table(M, members))
    after = list(out.source.values())
    assert items_equal(after[i], {**members[i], "role": {"S": role}})
    if role == members[i]["role"]["S"]:
        assert out.netted.writes == ()
    else:
        (write,) = out.netted.writes
        assert write.kind is WriteKind.UPDATE and write.set == {"role": {"S": role}}
        assert write.remove == ()


@given(users(), st.emails())
def test_a_user_email_change_reaches_every_membership(members: list[Item], email: str) -> None:
    _, user = targets(members)
    name = email.split("@", 1)[0]
    changed = {**user, "email": {"S": email}, "name": {"S": name}}
    out = reverse(M, [put(M, changed, old=user)], source_table(M, members))
    back = list(out.source.values())
    _, derived = forward(back)
    assert derived is not None and items_equal(derived, changed)
    if user["email"]["S"] != email:
        assert all(b["email"] == {"S": email} for b in back)
        assert {w.kind for w in out.netted.writes} == {WriteKind.UPDATE}
    for b, m in zip(back, members, strict=True):  # nothing else changes
        assert {k: v for k, v in b.items() if k != "email"} == {
            k: v for k, v in m.items() if k != "email"
        }


@given(users())
def test_a_removed_user_server_deletes_the_membership(members: list[Item]) -> None:
    user_servers, user = targets(members)
    out = reverse(M, [remove(M, user_servers[0])], source_table(M, members))
    assert len(out.source) == len(members) - 1
    assert [w.kind for w in out.netted.writes] == [WriteKind.DELETE]
    # the User item's delete is left to its memberships' own deletes
    assert reverse(M, [remove(M, user)], source_table(M, members)).netted.writes == ()


@given(users())
def test_after_a_removed_membership_the_rest_still_derive_the_user_items_email(
    members: list[Item],
) -> None:
    """The removed membership may be the one the User item's email came from: the others
    take that email, so forward derives the same User item from the old tables."""
    assume(len(members) >= 2)
    user_servers, user = targets(members)
    # the membership the User item's email was derived from (smallest serverId with one)
    first = min(members, key=lambda m: m["serverId"]["S"])
    gone = next(u for u in user_servers if u["SK"]["S"] == "SERVER#" + first["serverId"]["S"])
    out = reverse(M, [remove(M, gone)], source_table(M, members), target_table(M, [user]))
    rest = list(out.source.values())
    assert len(rest) == len(members) - 1
    derived = M.derive(members[0]["userId"], rest)
    assert derived is not None and derived.get("email") == user.get("email")
    assert all(w.kind in (WriteKind.DELETE, WriteKind.UPDATE) for w in out.netted.writes)


def test_a_new_membership_takes_the_user_items_email_and_none_without_one() -> None:
    us = {"PK": {"S": "USER#u"}, "SK": {"S": "SERVER#s"}, "Type": {"S": "UserServer"}}
    us |= {"role": {"S": "viewer"}, "permissions": strings(["read"])}
    user = {"PK": {"S": "USER#u"}, "SK": {"S": "METADATA"}, "Type": {"S": "User"}}
    user |= {"email": {"S": "u@x.org"}, "name": {"S": "u"}}
    out = reverse(M, [put(M, us)], {}, target_table(M, [user]))
    assert list(out.source.values()) == [
        {
            "userId": {"S": "u"},
            "serverId": {"S": "s"},
            "role": {"S": "viewer"},
            "email": {"S": "u@x.org"},
        }
    ]
    assert out.reads.target_keys == ({"PK": {"S": "USER#u"}, "SK": {"S": "METADATA"}},)
    alone = reverse(M, [put(M, us)], {}, {})
    assert list(alone.source.values()) == [
        {"userId": {"S": "u"}, "serverId": {"S": "s"}, "role": {"S": "viewer"}}
    ]


GOOD_US = {
    "PK": {"S": "USER#u"},
    "SK": {"S": "SERVER#s"},
    "Type": {"S": "UserServer"},
    "role": {"S": "moderator"},
    "permissions": strings(["read", "write", "restart"]),
}
GOOD_USER = {
    "PK": {"S": "USER#u"},
    "SK": {"S": "METADATA"},
    "Type": {"S": "User"},
    "email": {"S": "ann@x.org"},
    "name": {"S": "ann"},
}


@pytest.mark.parametrize(
    ("target", "why"),
    [
        ({**GOOD_US, "permissions": strings(["read"])}, "permissions are not those of role"),
        ({**GOOD_US, "permissions": strings(["write", "read", "restart"])}, "permissions"),
        ({**GOOD_US, "nickname": {"S": "x"}}, "never writes target attribute(s) nickname"),
        ({**GOOD_US, "Type": {"S": "User"}}, "Type is"),
        ({k: v for k, v in GOOD_US.items() if k != "role"}, "role is not a string"),
        ({**GOOD_USER, "name": {"S": "Ann Smith"}}, "name is not derivable"),
        ({**GOOD_USER, "avatar": {"S": "x"}}, "never writes target attribute(s) avatar"),
        # not memberships' key space: a user's partition may hold another route's items
        ({**GOOD_USER, "SK": {"S": "PROFILE"}}, "in no route's key space"),
        ({**GOOD_USER, "email": {"N": "1"}}, "email is not a string"),
    ],
)
def test_what_the_old_schema_cannot_hold_is_unrepresentable(target: Item, why: str) -> None:
    member = {"userId": {"S": "u"}, "serverId": {"S": "s"}, "role": {"S": "admin"}}
    out = reverse(M, [put(M, target)], source_table(M, [member]))
    ((index, reason),) = out.plan.unrepresentable
    assert index == 0 and reason.startswith("unrepresentable: ") and why in reason
    assert out.netted.writes == ()


def test_numeric_keys_must_be_numbers() -> None:
    bad = {**GOOD_US, "PK": {"S": "USER#12"}, "SK": {"S": "SERVER#x"}}
    out = reverse(MN, [put(MN, bad)], {})
    assert "serverId 'x' is not a valid N key" in out.plan.unrepresentable[0][1]
    # SERVER#07 is no server's: forward writes server 7 as SERVER#7
    padded = {**GOOD_US, "PK": {"S": "USER#12"}, "SK": {"S": "SERVER#07"}}
    out = reverse(MN, [put(MN, padded)], {})
    assert "serverId '07' is not a valid N key" in out.plan.unrepresentable[0][1]
    good = {**GOOD_US, "PK": {"S": "USER#12"}, "SK": {"S": "SERVER#7"}}
    ok = reverse(MN, [put(MN, good)], {})
    assert next(iter(ok.source.values()))["serverId"] == {"N": "7"}


def test_a_pool_name_is_checked_against_the_pool() -> None:
    member = {"userId": {"S": "u"}, "serverId": {"S": "s"}, "role": {"S": "admin"}}
    named = {**GOOD_USER, "name": {"S": "Ann Smith"}}
    from dualwrite.reverse.model import group_id

    pool = {group_id({"S": "u"}): "Ann Smith"}
    out = reverse(M, [put(M, named)], source_table(M, [member]), names=pool)
    assert out.plan.unrepresentable == ()
    assert next(iter(out.source.values()))["email"] == {"S": "ann@x.org"}
    wrong = reverse(M, [put(M, GOOD_USER)], source_table(M, [member]), names=pool)
    assert "the user pool says otherwise" in wrong.plan.unrepresentable[0][1]


def test_the_one_to_one_inverse_of_a_user_server_and_why_a_user_has_none() -> None:
    member = {"userId": {"S": "u"}, "serverId": {"S": "s"}, "role": {"S": "admin"}}
    member |= {"email": {"S": "a@x"}, "joinedAt": {"N": "1"}}
    target = M.transform(member)
    assert M.has_inverse and M.inverse(target, member) == member
    assert M.inverse(target, None) == {k: member[k] for k in ("userId", "serverId", "role")}
    with pytest.raises(UnmappableError, match="stands for all of the user's memberships"):
        M.inverse(GOOD_USER, None)
    assert planner_for(M) is M


@given(users())
def test_preview_round_trip_of_a_membership(members: list[Item]) -> None:
    from dualwrite.preview import preview_item

    for m in members:
        assume(M.quarantine_reason(m) is None)
        assert preview_item(M, m).round_trip is True


def test_a_change_with_no_new_image_is_unrepresentable() -> None:
    change = TargetChange("MODIFY", {"PK": GOOD_US["PK"], "SK": GOOD_US["SK"]}, None)
    out = reverse(M, [change], {})
    assert "no new image" in out.plan.unrepresentable[0][1]


def _member(server: str, email: str) -> Item:
    return {
        "userId": {"S": "u"},
        "serverId": {"S": server},
        "role": {"S": "admin"},
        "email": {"S": email},
    }


@pytest.mark.parametrize("batches", [1, 2])
def test_a_superseded_user_image_replayed_from_the_margin_changes_no_email(batches: int) -> None:
    """The new direction re-applies target records from T minus the margin: forward's own
    User-item writes, here two of them (s1's email changed twice just before the switch).
    The older image must not be taken for an email change of the whole user: set on every
    membership, then overwritten by the newer one, it would leave s2 with s1's email."""
    before = [_member("s1", "a@x"), _member("s2", "c@z")]
    now = [_member("s1", "b@y"), _member("s2", "c@z")]
    older, newer = M.derive({"S": "u"}, before), M.derive({"S": "u"}, now)
    assert older is not None and newer is not None and older["email"] != newer["email"]
    target = target_table(M, [newer, *(M.transform(m) for m in now)])
    changes = [put(M, older), put(M, newer, older)]
    source = source_table(M, now)
    if batches == 1:
        out = reverse(M, changes, source, target)
    else:
        out = reverse(M, changes[1:], reverse(M, changes[:1], source, target).source, target)
    assert sorted(out.source.values(), key=str) == sorted(now, key=str)
    assert out.netted.writes == ()
