"""Reverse plans of the one-to-one mappings (identity, servers, declarative): for every source
item s the mapping accepts, reversing mapping(s) restores every attribute the mapping
carries, keeps what it drops, and an echo writes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from dualwrite.errors import UnmappableError
from dualwrite.mapping import SERVERS_SPEC, DeclarativeSpec, build_mapping
from dualwrite.mapping.base import KeySchema, Mapping
from dualwrite.reverse.model import SourceView, SourceWrite, TargetChange, WriteKind, group_id, kid
from dualwrite.reverse.plan import InversePlanner, planner_for
from dualwrite.wire import Item, items_equal
from tests.reverse_sim import put, remove, reverse, source_table
from tests.strategies import attributes, key_numbers, key_text, values

ORDERS = build_mapping(
    DeclarativeSpec.model_validate(
        {
            "key": {"PK": "CUSTOMER#{customerId}", "SK": "ORDER#{orderId}"},
            "set": {"Type": "Order"},
            "rename": {"total": "amount"},
            "drop": ["legacyFlag", "cache"],
        }
    ),
    KeySchema((("customerId", "S"), ("orderId", "S"))),
)
DROPPED = ("legacyFlag", "cache")
IDENTITY = build_mapping("identity", KeySchema((("pk", "S"), ("sk", "N"))))


def servers(typ: str) -> list[Mapping]:
    schema = KeySchema((("id", typ),))
    return [build_mapping("servers", schema), build_mapping(SERVERS_SPEC, schema)]


@st.composite
def one_to_one(draw: Any) -> tuple[Mapping, Item, Item]:
    """A mapping, and two accepted source items of one key (two versions)."""
    kind = draw(st.sampled_from(["identity", "servers-S", "servers-N", "orders"]))
    if kind == "identity":
        mapping = IDENTITY
        key = {"pk": {"S": draw(key_text)}, "sk": {"N": draw(key_numbers)}}
    elif kind == "orders":
        mapping = ORDERS
        key = {"customerId": {"S": draw(key_text)}, "orderId": {"S": draw(key_text)}}
    else:
        typ = kind[-1]
        mapping = draw(st.sampled_from(servers(typ)))
        key = {"id": {"S": draw(key_text)} if typ == "S" else {"N": draw(key_numbers)}}
    special = st.sampled_from(["total", "amount", "legacyFlag", "cache"])
    versions = []
    for _ in range(2):
        item = {**draw(attributes), **draw(st.dictionaries(special, values, max_size=3)), **key}
        assume(mapping.quarantine_reason(item) is None)
        versions.append(item)
    return mapping, versions[0], versions[1]


@given(one_to_one())
def test_reverse_into_an_empty_source_restores_what_the_mapping_carries(
    case: tuple[Mapping, Item, Item],
) -> None:
    mapping, item, _ = case
    target = mapping.transform(item)
    out = reverse(mapping, [put(mapping, target)], {})
    (back,) = out.source.values()
    assert items_equal(mapping.transform(back), target)
    dropped = DROPPED if mapping is ORDERS else ()
    assert items_equal(back, {k: v for k, v in item.items() if k not in dropped})
    assert [w.kind for w in out.netted.writes] == [WriteKind.PUT]


@given(one_to_one())
def test_an_echo_writes_nothing(case: tuple[Mapping, Item, Item]) -> None:
    mapping, item, _ = case
    source = source_table(mapping, [item])
    out = reverse(mapping, [put(mapping, mapping.transform(item), old=item)], source)
    assert out.netted.writes == ()
    assert out.source == source


@given(one_to_one())
def test_a_new_version_keeps_what_the_mapping_drops(case: tuple[Mapping, Item, Item]) -> None:
    mapping, old, new = case
    target = mapping.transform(new)
    out = reverse(
        mapping, [put(mapping, target, old=mapping.transform(old))], source_table(mapping, [old])
    )
    (back,) = out.source.values()
    assert items_equal(mapping.transform(back), target)
    for name in DROPPED if mapping is ORDERS else ():
        assert (name in back) == (name in old) and (name not in old or back[name] == old[name])
    kinds = {w.kind for w in out.netted.writes}
    # a mapping that drops nothing writes a PUT (batchable); one that keeps something, UPDATE
    if mapping is ORDERS and any(n in old for n in DROPPED):
        assert kinds <= {WriteKind.UPDATE}
    else:
        assert kinds <= {WriteKind.PUT}


@given(one_to_one())
def test_a_delete_deletes_and_a_delete_of_nothing_writes_nothing(
    case: tuple[Mapping, Item, Item],
) -> None:
    mapping, item, _ = case
    target = mapping.transform(item)
    out = reverse(mapping, [remove(mapping, target)], source_table(mapping, [item]))
    assert out.source == {}
    assert [w.kind for w in out.netted.writes] == [WriteKind.DELETE]
    assert reverse(mapping, [remove(mapping, target)], {}).netted.writes == ()


@given(one_to_one())
def test_many_changes_of_one_key_net_to_one_write_of_the_last(
    case: tuple[Mapping, Item, Item],
) -> None:
    mapping, a, b = case
    ta, tb = mapping.transform(a), mapping.transform(b)
    changes = [put(mapping, ta), remove(mapping, ta), put(mapping, tb), put(mapping, ta, old=tb)]
    out = reverse(mapping, changes, {})
    assert len(out.netted.writes) == 1
    (back,) = out.source.values()
    assert items_equal(mapping.transform(back), ta)


def test_a_target_outside_the_key_space_is_unrepresentable_and_the_rest_applies() -> None:
    (m, _) = servers("S")
    good = m.transform({"id": {"S": "1"}, "name": {"S": "a"}})
    stray = {"PK": {"S": "USER#1"}, "SK": {"S": "METADATA"}, "Type": {"S": "User"}}
    wrong_type = {**good, "PK": {"S": "SERVER#2"}, "Type": {"S": "Other"}}
    out = reverse(m, [put(m, stray), put(m, good), put(m, wrong_type)], {})
    assert [i for i, _ in out.plan.unrepresentable] == [0, 2]
    assert all(r.startswith("unrepresentable: ") for _, r in out.plan.unrepresentable)
    assert list(out.source.values()) == [{"id": {"S": "1"}, "name": {"S": "a"}}]
    assert out.plan.touched == ((), (kid({"id": {"S": "1"}}),), ())


def test_a_mapping_without_an_inverse_has_no_planner() -> None:
    m = build_mapping("tests.unit.sample_mapping:TaggedCopy", KeySchema((("pk", "S"),)))
    assert planner_for(m) is None
    with pytest.raises(ValueError, match="no inverse"):
        InversePlanner(m)
    assert isinstance(planner_for(IDENTITY), InversePlanner)


def test_a_plan_that_writes_a_key_it_did_not_read_is_refused() -> None:
    class Sloppy(InversePlanner):
        def reverse_changes(self, change: TargetChange, view: SourceView) -> list[SourceWrite]:
            return [SourceWrite.delete({"pk": {"S": "elsewhere"}, "sk": {"N": "1"}})]

    from dualwrite.reverse.plan import ReadResult, plan_batch

    change = put(IDENTITY, {"pk": {"S": "p"}, "sk": {"N": "1"}})
    with pytest.raises(ValueError, match="did not read"):
        plan_batch(Sloppy(IDENTITY), [change], ReadResult({}, frozenset(), {}, {}))


def test_a_derived_item_of_a_custom_mapping_is_an_echo_or_unrepresentable() -> None:
    # the generic planner on memberships' derived User item (memberships plans itself; the
    # InversePlanner is what a custom mapping with derived items gets)
    m = build_mapping("memberships", KeySchema((("userId", "S"), ("serverId", "S"))))
    planner = InversePlanner(m)
    member = {"userId": {"S": "u"}, "serverId": {"S": "s"}, "role": {"S": "admin"}}
    member["email"] = {"S": "a@x"}
    user = m.derive({"S": "u"}, [member])
    assert user is not None
    change = TargetChange("MODIFY", {k: user[k] for k in ("PK", "SK")}, user)
    view = SourceView(
        source={kid({"userId": {"S": "u"}, "serverId": {"S": "s"}}): member},
        groups={group_id({"S": "u"}): [kid({"userId": {"S": "u"}, "serverId": {"S": "s"}})]},
    )
    assert planner.reverse_changes(change, view) == []
    changed = TargetChange("MODIFY", change.keys, {**user, "email": {"S": "b@x"}})
    with pytest.raises(UnmappableError, match=r"^unrepresentable: "):
        planner.reverse_changes(changed, view)
    assert planner.reverse_changes(TargetChange("REMOVE", change.keys, None), view) == []


def test_a_target_change_from_a_lambda_record() -> None:
    from dualwrite.wire import to_lambda_json

    new = {"pk": {"S": "p"}, "sk": {"N": "1"}, "b": {"B": b"\x01"}}
    record = {
        "eventName": "MODIFY",
        "dynamodb": {
            "ApproximateCreationDateTime": 1700000000,
            "Keys": to_lambda_json({"pk": new["pk"], "sk": new["sk"]}),
            "NewImage": to_lambda_json(new),
            "OldImage": to_lambda_json({**new, "b": {"B": b"\x02"}}),
            "SequenceNumber": "42",
        },
    }
    change = TargetChange.from_lambda(record)
    assert change.new_image == new and change.keys == {"pk": new["pk"], "sk": new["sk"]}
    assert change.old_image is None  # no plan reads it: decoded only when asked for
    assert TargetChange.from_lambda(record, old_image=True).old_image == {
        **new,
        "b": {"B": b"\x02"},
    }
    assert (change.created_at, change.sequence_number, change.removed) == (1.7e9, "42", False)
    with pytest.raises(ValueError):
        TargetChange.from_lambda(
            {**record, "dynamodb": {**record["dynamodb"], "NewImage": {"x": 1}}}
        )
