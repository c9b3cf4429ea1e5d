"""Repair conditions: the target must still hold exactly what was read."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dualwrite.conditions import MAX_EXPRESSION_CHARS, UnsafeRepair, still_holds

KEYS = ("PK", "SK")


def test_an_absent_item_must_still_be_absent() -> None:
    c = still_holds(None, KEYS, {"PK": {"S": "a"}, "SK": {"S": "b"}})
    assert c.expression == "attribute_not_exists(#k)"
    assert c.names == {"#k": "PK"}
    assert "ExpressionAttributeValues" not in c.kwargs()


def test_every_read_attribute_is_compared_and_added_ones_must_be_absent() -> None:
    read = {"PK": {"S": "a"}, "SK": {"S": "b"}, "old": {"N": "1"}, "odd name": {"L": []}}
    adds = {"PK": {"S": "a"}, "SK": {"S": "b"}, "old": {"N": "2"}, "new": {"S": "x"}}
    c = still_holds(read, KEYS, adds)
    compared = {c.names[n] for n in c.names if n.startswith("#a")}
    assert compared == set(read)
    assert {c.names[n] for n in c.names if n.startswith("#n")} == {"new"}
    assert "attribute_not_exists(#n0)" in c.expression
    for clause in c.expression.split(" AND "):
        if " = " in clause:
            name, value = clause.split(" = ")
            assert c.values[value] == read[c.names[name]]
    kwargs = c.kwargs()
    assert set(kwargs) == {
        "ConditionExpression",
        "ExpressionAttributeNames",
        "ExpressionAttributeValues",
    }


def test_too_many_attributes_refuse_rather_than_guess() -> None:
    read = {f"attribute{i}": {"S": "v"} for i in range(400)}
    with pytest.raises(UnsafeRepair):
        still_holds(read, KEYS)


def test_a_condition_needs_key_names() -> None:
    with pytest.raises(ValueError):
        still_holds(None, ())


names = st.text(min_size=1, max_size=12)
values = st.one_of(
    st.builds(lambda s: {"S": s}, st.text(max_size=5)),
    st.builds(lambda n: {"N": str(n)}, st.integers()),
    st.builds(lambda b: {"BOOL": b}, st.booleans()),
)


@given(st.dictionaries(names, values, min_size=1, max_size=30), st.dictionaries(names, values))
def test_placeholders_cover_each_attribute_exactly_once(read: dict, adds: dict) -> None:  # type: ignore[type-arg]
    c = still_holds(read, KEYS, adds)
    assert len(c.expression) <= MAX_EXPRESSION_CHARS
    compared = [c.names[n] for n in c.names if n.startswith("#a")]
    absent = [c.names[n] for n in c.names if n.startswith("#n")]
    assert sorted(compared) == sorted(read)
    assert sorted(absent) == sorted(set(adds) - set(read))
    assert c.expression.count(" AND ") == len(compared) + len(absent) - 1
