"""The inverse interface (DESIGN.md section 8): for every source item s a mapping accepts,
inverse(mapping(s), s) == s, and inverse(mapping(s), None) is s without what it drops."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from dualwrite.errors import UnmappableError
from dualwrite.mapping import SERVERS_SPEC, DeclarativeSpec, build_mapping
from dualwrite.mapping.base import KeySchema, Mapping
from dualwrite.wire import Item
from tests.strategies import attributes, key_numbers, key_text, values

ORDERS = build_mapping(
    DeclarativeSpec.model_validate(
        {
            "key": {"PK": "CUSTOMER#{customerId}", "SK": "ORDER#{orderId}"},
            "set": {"Type": "Order"},
            "rename": {"total": "amount", "a": "b", "b": "a"},  # a swap, too
            "drop": ["legacyFlag", "cache"],
        }
    ),
    KeySchema((("customerId", "S"), ("orderId", "S"))),
)
DROPPED = ("legacyFlag", "cache")
# two placeholders in one template, a numeric one among them, into a hash-only target
COMPOSITE = build_mapping(
    DeclarativeSpec.model_validate({"key": {"PK": "{customerId}|{orderNo}"}}),
    KeySchema((("customerId", "S"), ("orderNo", "N"))),
)


def _accepted(mapping: Mapping, item: Item) -> Item:
    assume(mapping.quarantine_reason(item) is None)  # the property is for accepted items
    return item


@st.composite
def orders(draw: Any) -> Item:
    special = st.sampled_from(["total", "amount", "a", "b", "legacyFlag", "cache", "Type"])
    return {
        **draw(attributes),
        **draw(st.dictionaries(special, values, max_size=4)),
        "customerId": {"S": draw(key_text)},
        "orderId": {"S": draw(key_text)},
    }


@st.composite
def composites(draw: Any) -> Item:
    return {
        **draw(attributes),
        "customerId": {"S": draw(key_text)},
        "orderNo": {"N": draw(key_numbers)},
    }


@given(orders())
def test_declarative_inverse_restores_the_source(item: Item) -> None:
    item = _accepted(ORDERS, item)
    target = ORDERS.transform(item)
    assert ORDERS.has_inverse
    assert ORDERS.inverse(target, item) == item
    assert ORDERS.inverse(target, None) == {k: v for k, v in item.items() if k not in DROPPED}


@given(composites())
def test_declarative_inverse_parses_a_composite_key(item: Item) -> None:
    item = _accepted(COMPOSITE, item)
    target = COMPOSITE.transform(item)
    assert COMPOSITE.inverse(target, None) == item == COMPOSITE.inverse(target, item)


@given(orders())
def test_declarative_round_trip_through_the_inverse_is_stable(item: Item) -> None:
    item = _accepted(ORDERS, item)
    target = ORDERS.transform(item)
    assert ORDERS.transform(ORDERS.inverse(target, item)) == target


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"Type": {"S": "Refund"}}, "Type is"),
        ({"legacyFlag": {"BOOL": True}}, "never writes a target attribute legacyFlag"),
        ({"total": {"N": "1"}}, "never writes a target attribute total"),
        ({"customerId": {"S": "c"}}, "never writes a target attribute customerId"),
        ({"SK": {"S": "METADATA"}}, "not in this route's key space"),
    ],
)
def test_a_target_the_old_schema_cannot_hold_is_unrepresentable(
    change: dict[str, Any], why: str
) -> None:
    target = ORDERS.transform({"customerId": {"S": "c"}, "orderId": {"S": "o"}})
    with pytest.raises(UnmappableError, match=r"^unrepresentable: ") as raised:
        ORDERS.inverse({**target, **change}, None)
    assert why in raised.value.reason


# --- builtins ----------------------------------------------------------------------------------
@given(key_text, attributes)
def test_identity_inverse_is_the_same_item(pk: str, attrs: dict[str, Any]) -> None:
    m = build_mapping("identity", KeySchema((("pk", "S"),)))
    item = {**attrs, "pk": {"S": pk}}
    assert m.has_inverse
    assert m.inverse(m.transform(item), item) == item == m.inverse(m.transform(item), None)


server_ids = st.one_of(
    key_text.map(lambda s: ("S", {"S": s})), key_numbers.map(lambda n: ("N", {"N": n}))
)


@given(server_ids, attributes)
def test_servers_inverse_restores_the_source(sid: tuple[str, Any], attrs: dict[str, Any]) -> None:
    typ, value = sid
    for m in (
        build_mapping("servers", KeySchema((("id", typ),))),
        build_mapping(SERVERS_SPEC, KeySchema((("id", typ),))),
    ):
        item = _accepted(m, {**attrs, "id": value})
        target = m.transform(item)
        assert m.has_inverse
        assert m.inverse(target, item) == item == m.inverse(target, None)


def test_servers_inverse_refuses_what_servers_cannot_hold() -> None:
    m = build_mapping("servers", KeySchema((("id", "N"),)))
    ok = {"PK": {"S": "SERVER#7"}, "SK": {"S": "METADATA"}, "Type": {"S": "Server"}}
    assert m.inverse({**ok, "name": {"S": "x"}}, None) == {"id": {"N": "7"}, "name": {"S": "x"}}
    for bad in (
        {**ok, "Type": {"S": "User"}},
        {**ok, "SK": {"S": "CONFIG"}},
        {**ok, "PK": {"S": "SERVER#seven"}},
        {**ok, "PK": {"S": "SERVER#"}},
        {**ok, "id": {"N": "8"}},
    ):
        with pytest.raises(UnmappableError, match=r"^unrepresentable: "):
            m.inverse(bad, None)


def test_a_custom_mapping_without_its_own_inverse_has_none() -> None:
    m = build_mapping("tests.unit.sample_mapping:TaggedCopy", KeySchema((("pk", "S"),)))
    assert not m.has_inverse
    with pytest.raises(NotImplementedError):
        m.inverse({"pk": {"S": "p"}}, None)


def test_a_custom_mapping_that_defines_an_inverse_has_one() -> None:
    """Defining `inverse` is saying so: without `has_inverse = True` it was ignored, and
    reverse replication refused the route as having no inverse."""
    from tests.unit.sample_mapping import TaggedCopy

    class Untagged(TaggedCopy):
        def inverse(self, target: Item, current: Item | None) -> Item:
            return {k: v for k, v in target.items() if k != "migrated"}

    class Withheld(Untagged):
        has_inverse = False

    m = Untagged(KeySchema((("pk", "S"),)))
    assert m.has_inverse and not m.inverse_ignores_current
    assert m.inverse(m.transform({"pk": {"S": "p"}}), None) == {"pk": {"S": "p"}}
    assert not Withheld.has_inverse
