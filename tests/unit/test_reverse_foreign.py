"""Foreign writes: a source change after cutover that reverse replication did not make is
foreign; reverse replication's own writes never count, even when the target moved on."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dualwrite.mapping import build_mapping
from dualwrite.mapping.base import KeySchema
from dualwrite.reverse.direction import Direction, Flow, drained, switch
from dualwrite.reverse.foreign import (
    ForeignWrite,
    OwnWrites,
    SourceChange,
    fingerprint,
    foreign_writes,
    own_writes,
)
from dualwrite.reverse.model import kid
from dualwrite.wire import Item
from tests.reverse_sim import put, reverse, source_table
from tests.strategies import attributes, key_text

T, OV = 10_000.0, 30.0
STATE = drained(switch(Direction(), Flow.REVERSE, T, OV))
AFTER = T + OV + 100
M = build_mapping("memberships", KeySchema((("userId", "S"), ("serverId", "S"))))
KEY = {"id": {"S": "1"}}


def test_fingerprints_ignore_spelling_not_content() -> None:
    a = {
        "id": {"S": "1"},
        "n": {"N": "1.50"},
        "s": {"SS": ["b", "a"]},
        "m": {"M": {"x": {"N": "2"}}},
    }
    b = {
        "m": {"M": {"x": {"N": "2.0"}}},
        "s": {"SS": ["a", "b"]},
        "n": {"N": "1.5"},
        "id": {"S": "1"},
    }
    assert fingerprint(KEY, a) == fingerprint(KEY, b)
    assert fingerprint(KEY, a) != fingerprint(KEY, {**a, "n": {"N": "1.51"}})
    assert fingerprint(KEY, None) != fingerprint({"id": {"S": "2"}}, None)
    assert fingerprint(KEY, {"n": {"N": "-0"}}) == fingerprint(KEY, {"n": {"N": "0E-3"}})
    big, bigger = "1" * 37 + "1", "1" * 37 + "2"  # 38 digits: more than Decimal's default 28
    assert fingerprint(KEY, {"n": {"N": big}}) != fingerprint(KEY, {"n": {"N": bigger}})
    assert fingerprint(KEY, {"b": {"B": b"\x00"}}) != fingerprint(KEY, {"b": {"B": b"\x01"}})


def test_the_fingerprint_format_is_the_journals() -> None:
    """Journal entries outlive a deploy (kept two days): a change to the fingerprint's form
    would turn the own writes journaled before it into foreign writes. Values pinned from
    the format as first released."""
    item = {
        "id": {"S": "1"},
        "n": {"N": "1.50"},
        "i": {"N": "42"},
        "ok": {"BOOL": True},
        "z": {"NULL": True},
        "s": {"SS": ["b", "a"]},
        "ns": {"NS": ["10", "9.0"]},
        "b": {"B": b"\x00\x01"},
        "bs": {"BS": [b"\x02", b"\x01"]},
        "m": {"M": {"y": {"S": "x"}, "x": {"M": {"deep": {"N": "007"}}}}},
        "l": {"L": [{"S": "a"}, {"N": "1e2"}]},
    }
    assert fingerprint(KEY, item) == "34fbcb2abca21614a57d4bfc085b2534"
    assert fingerprint(KEY, None) == "ca46f175cf2c2b45636907e0ce9f1d8c"
    composite = {"pk": {"N": "5"}, "sk": {"B": b"k"}}
    assert fingerprint(composite, {"pk": {"N": "5"}}) == "284d7fbba14e60638c77e8817b9fa843"


def test_reverse_replications_own_writes_never_count_even_after_the_target_moved_on() -> None:
    members = [
        {"userId": {"S": "u"}, "serverId": {"S": f"s{i}"}, "role": {"S": "admin"}} for i in range(3)
    ]
    for m in members:
        m["email"] = {"S": "old@x"}
    user = M.derive({"S": "u"}, members)
    assert user is not None
    source = source_table(M, members)
    changed = {**user, "email": {"S": "new@x"}, "name": {"S": "new"}}
    out = reverse(M, [put(M, changed, old=user)], source)
    journal = [own_writes("memberships", out.netted.writes, source, AFTER, AFTER + 5)]
    # the source stream then shows our three email updates (the target has meanwhile moved on
    # to yet another email: comparing with the target now would cry wolf)
    ours = [SourceChange(M.source_key_of_item(i), i, AFTER + 1) for i in out.source.values()]
    assert foreign_writes("memberships", STATE, ours, journal) == []
    # a writer nobody re-pointed changes a role: foreign, listed by key
    stray = {**members[1], "email": {"S": "new@x"}, "role": {"S": "viewer"}}
    key = M.source_key_of_item(stray)
    found = foreign_writes(
        "memberships", STATE, [*ours, SourceChange(key, stray, AFTER + 2)], journal
    )
    assert found == [ForeignWrite("memberships", key, AFTER + 2)]
    assert found[0].to_json() == {
        "route": "memberships",
        "key": key,
        "at": AFTER + 2,
        "remapped_at": None,
        "resolved_at": None,
        "resolution": None,
    }
    # entries listed before resolutions existed read back as unresolved
    legacy = {"route": "memberships", "key": key, "at": AFTER + 2, "remapped_at": None}
    assert ForeignWrite.from_json(legacy) == found[0] and not found[0].resolved


def test_a_write_outside_the_journaled_span_is_foreign() -> None:
    item = {"id": {"S": "1"}, "v": {"N": "1"}}
    journal = [OwnWrites("servers", AFTER, AFTER + 10, frozenset([fingerprint(KEY, item)]))]
    assert foreign_writes("servers", STATE, [SourceChange(KEY, item, AFTER + 11)], journal) == []
    late = [SourceChange(KEY, item, AFTER + 60)]
    assert [f.key for f in foreign_writes("servers", STATE, late, journal)] == [KEY]


def test_deletes_are_fingerprinted_too() -> None:
    item = {"id": {"S": "1"}}
    from dualwrite.reverse.model import SourceWrite

    own = own_writes("servers", [SourceWrite.delete(KEY)], {kid(KEY): item}, AFTER, AFTER + 1)
    assert foreign_writes("servers", STATE, [SourceChange(KEY, None, AFTER)], [own]) == []
    assert foreign_writes("servers", STATE, [SourceChange({"id": {"S": "2"}}, None, AFTER)], [own])


def test_only_changes_after_the_overlap_while_reverse_is_live_are_checked() -> None:
    item = {"id": {"S": "1"}, "v": {"N": "1"}}
    during = [SourceChange(KEY, item, T + OV - 1)]  # an invocation still on the old env
    assert foreign_writes("servers", STATE, during, []) == []
    assert foreign_writes("servers", Direction(), [SourceChange(KEY, item, AFTER)], []) == []
    undrained = switch(Direction(), Flow.REVERSE, T, OV)
    assert len(foreign_writes("servers", undrained, [SourceChange(KEY, item, AFTER)], [])) == 1


def test_a_write_that_agrees_with_the_target_is_harmless() -> None:
    item = {"id": {"S": "1"}, "v": {"N": "1"}}
    explained = {kid(KEY): {"id": {"S": "1"}, "v": {"N": "1.0"}}}
    assert foreign_writes("servers", STATE, [SourceChange(KEY, item, AFTER)], [], explained) == []
    gone = {kid(KEY): None}
    assert foreign_writes("servers", STATE, [SourceChange(KEY, None, AFTER)], [], gone) == []
    assert foreign_writes("servers", STATE, [SourceChange(KEY, item, AFTER)], [], gone)


def test_the_journal_round_trips_through_json() -> None:
    own = OwnWrites("r", 1.0, 2.0, frozenset({"a", "b"}))
    assert OwnWrites.from_json(own.to_json()) == own


@given(key_text, attributes, attributes)
def test_an_own_write_is_recognised_and_any_other_image_is_not(
    pk: str, a: dict[str, Item], b: dict[str, Item]
) -> None:
    from dualwrite.reverse.model import SourceWrite
    from dualwrite.wire import items_equal

    key = {"id": {"S": pk}}
    mine = {**a, **key}
    own = own_writes("servers", [SourceWrite.put(key, mine)], {}, AFTER, AFTER)
    assert foreign_writes("servers", STATE, [SourceChange(key, mine, AFTER)], [own]) == []
    other = {**b, **key}
    found = foreign_writes("servers", STATE, [SourceChange(key, other, AFTER)], [own])
    assert (found == []) == items_equal(mine, other)


def test_a_netted_update_is_fingerprinted_as_the_image_it_leaves() -> None:
    current = {"id": {"S": "1"}, "keep": {"S": "k"}, "v": {"N": "1"}}
    from dualwrite.reverse.model import SourceWrite

    write = SourceWrite.update(KEY, {"v": {"N": "2"}})
    own = own_writes("r", [write], {kid(KEY): current}, AFTER, AFTER)
    assert (
        foreign_writes("r", STATE, [SourceChange(KEY, {**current, "v": {"N": "2"}}, AFTER)], [own])
        == []
    )
    # the update raced a foreign write of `keep`: the image differs, so it is reported
    raced = {**current, "keep": {"S": "foreign"}, "v": {"N": "2"}}
    assert len(foreign_writes("r", STATE, [SourceChange(KEY, raced, AFTER)], [own])) == 1


@given(st.floats(min_value=-60, max_value=60))
def test_the_span_has_slack_for_rounding_and_clocks(delta: float) -> None:
    own = OwnWrites("r", AFTER, AFTER, frozenset())
    # DynamoDB's clock may differ from a runner's by more than the margin, and rounds down
    assert own.covers(AFTER + delta) == (abs(delta) <= 30.0)
    assert own.covers(None)


def test_a_foreign_write_round_trips_through_json() -> None:
    fw = ForeignWrite("r", {"id": {"S": "1"}, "b": {"B": b"\x00\xff"}}, AFTER)
    assert ForeignWrite.from_json(fw.to_json()) == fw
    assert ForeignWrite.from_json({"route": "r", "key": {"id": {"N": "2"}}}).at is None


def test_the_cli_counts_unresolved_writes_of_every_listed_route() -> None:
    """`foreign --carry KEY` acts on one route; what is left is counted over all of them."""
    from dualwrite.cli.cmd_foreign import _unresolved

    servers = [
        ForeignWrite("servers", {"id": {"S": "srv-8"}}, 1.0),
        ForeignWrite("servers", {"id": {"S": "srv-9"}}, 2.0, resolved_at=3.0, resolution="x"),
    ]
    memberships = [ForeignWrite("memberships", {"userId": {"S": "u"}, "serverId": {"S": "s"}}, 1.0)]
    assert _unresolved({"servers": servers, "memberships": memberships}) == 2
    assert _unresolved({"servers": servers, "memberships": []}) == 1
