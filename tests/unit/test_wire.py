from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from dualwrite.wire import (
    MAX_ITEM_BYTES,
    diff_attributes,
    from_lambda_json,
    item_size,
    items_equal,
    key_id,
    over_item_limit,
    size_bound,
    to_lambda_json,
    values_equal,
)
from tests.strategies import attributes, values


def test_numbers_compare_by_value() -> None:
    assert values_equal({"N": "1.50"}, {"N": "1.5"})
    assert values_equal({"N": "100"}, {"N": "1E+2"})
    assert not values_equal({"N": "1.5"}, {"N": "1.51"})


def test_sets_are_unordered_lists_are_not() -> None:
    assert values_equal({"SS": ["a", "b"]}, {"SS": ["b", "a"]})
    assert values_equal({"NS": ["1", "2.0"]}, {"NS": ["2", "1"]})
    assert values_equal({"BS": [b"x", b"y"]}, {"BS": [b"y", b"x"]})
    assert not values_equal({"L": [{"S": "a"}, {"S": "b"}]}, {"L": [{"S": "b"}, {"S": "a"}]})


def test_types_must_match() -> None:
    assert not values_equal({"S": "1"}, {"N": "1"})
    assert not items_equal({"a": {"S": "x"}}, {"a": {"S": "x"}, "b": {"NULL": True}})


def test_binary_matches_its_base64_text() -> None:
    assert values_equal({"B": b"\x00\xff"}, {"B": "AP8="})


def test_diff_names_only_attributes() -> None:
    assert diff_attributes(
        {"a": {"S": "x"}, "b": {"N": "1"}}, {"a": {"S": "y"}, "c": {"BOOL": True}}
    ) == ["a", "b", "c"]


def test_item_size_counts_names_and_values() -> None:
    assert item_size({"ab": {"S": "héllo"}}) == 2 + 6
    assert item_size({"big": {"B": b"x" * MAX_ITEM_BYTES}}) > MAX_ITEM_BYTES


def test_key_id_is_stable_across_number_spelling_and_order() -> None:
    assert key_id({"a": {"N": "1.0"}, "b": {"S": "x"}}) == key_id(
        {"b": {"S": "x"}, "a": {"N": "1"}}
    )
    assert key_id({"a": {"S": "1"}}) != key_id({"a": {"N": "1"}})


@given(values)
def test_every_value_equals_itself(value: dict[str, Any]) -> None:
    assert values_equal(value, value)


@given(attributes)
def test_lambda_json_round_trip(item: dict[str, Any]) -> None:
    as_json = to_lambda_json(item)
    back = {k: from_lambda_json(v) for k, v in as_json.items()}
    assert items_equal(back, item)
    assert back == item  # bytes restored exactly, not only equal by value


@given(st.dictionaries(st.text(min_size=1, max_size=5), values, max_size=5), values)
def test_adding_an_attribute_grows_the_size(item: dict[str, Any], value: dict[str, Any]) -> None:
    name = "zz-extra"
    assert item_size({**item, name: value}) > item_size(item)


@given(attributes)
def test_size_bound_is_an_upper_bound(item: dict[str, Any]) -> None:
    assert item_size(item) <= size_bound(item)


def test_over_item_limit_counts_exactly_near_the_limit() -> None:
    small = {"k": {"S": "x" * 1000}}
    assert over_item_limit(small) is None
    just_under = {"k": {"B": b"\x00" * (MAX_ITEM_BYTES - 1)}}  # the bound adds tags
    assert size_bound(just_under) > MAX_ITEM_BYTES and over_item_limit(just_under) is None
    over = {"k": {"S": "é" * (MAX_ITEM_BYTES // 2 + 1)}}
    assert over_item_limit(over) == item_size(over) > MAX_ITEM_BYTES


def test_size_bound_counts_a_shared_value_every_time_it_appears() -> None:
    # one string object referenced 2,000 times is 2,000 strings to DynamoDB: a serialisation
    # that shares references would undercount it and let an oversize item through
    text = {"S": "x" * 300}
    item = {"L": {"L": [text] * 2000}}
    assert size_bound(item) >= item_size(item) > MAX_ITEM_BYTES
    assert over_item_limit(item) == item_size(item)


def test_size_bound_of_a_mapping_marshal_cannot_write_is_exact() -> None:
    from types import MappingProxyType

    item = {"s": {"S": "abc"}, "l": {"L": [{"N": "12.5"}]}}
    assert size_bound(MappingProxyType(item)) == item_size(item)
