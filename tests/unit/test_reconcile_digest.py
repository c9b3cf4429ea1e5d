"""Per-bucket digests: parity folds to zero, any difference leaves its bucket open."""

from __future__ import annotations

import base64
import random
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from dualwrite.wire import item_size
from reconciler.digest import Digests, bucket_of, fingerprint, item_hash
from tests.strategies import attributes


def _item(i: int, extra: str = "") -> dict:  # type: ignore[type-arg]
    return {
        "PK": {"S": f"SERVER#{i}"},
        "SK": {"S": "METADATA"},
        "n": {"N": str(i)},
        "icon": {"B": bytes([i % 256, 1])},
        "config": {"M": {"a": {"S": extra}, "b": {"L": [{"N": "1"}]}}},
    }


def _key(item: dict) -> dict:  # type: ignore[type-arg]
    return {"PK": item["PK"], "SK": item["SK"]}


def test_attribute_order_does_not_matter() -> None:
    a = _item(1)
    b = dict(reversed(list(a.items())))
    assert item_hash(a) == item_hash(b)
    assert item_hash(a) != item_hash(_item(1, extra="x"))
    assert item_hash(a) != item_hash({**a, "icon": {"B": b"\x01\x02"}})


def test_buckets_are_stable_and_in_range() -> None:
    key = {"PK": {"S": "USER#u1"}, "SK": {"S": "METADATA"}}
    assert bucket_of(key, 512) == bucket_of(dict(reversed(list(key.items()))), 512)
    assert all(0 <= bucket_of(_key(_item(i)), 7) < 7 for i in range(50))


def test_parity_closes_every_bucket_in_any_order() -> None:
    items = [_item(i) for i in range(200)]
    d = Digests(64)
    for it in items:
        d.expect(_key(it), it)
    shuffled = items[:]
    random.Random(3).shuffle(shuffled)
    for it in shuffled:
        d.hold(_key(it), dict(it))
    assert d.mismatched() == frozenset()
    assert d.to_json()["open"] == {}


def test_each_kind_of_difference_opens_exactly_its_bucket() -> None:
    items = [_item(i) for i in range(100)]
    d = Digests(64)
    for it in items:
        d.expect(_key(it), it)
    held = items[:]
    missing = held.pop(10)
    changed = {**held[20], "n": {"N": "999"}}
    held[20] = changed
    extra = _item(500)
    held.append(extra)
    for it in held:
        d.hold(_key(it), it)
    assert d.mismatched() == {bucket_of(_key(x), 64) for x in (missing, changed, extra)}


def test_partial_digests_add_up_and_survive_json() -> None:
    items = [_item(i) for i in range(30)]
    expected, held = Digests(16), Digests(16)
    for it in items:
        expected.expect(_key(it), it)
    for it in items[:-1]:
        held.hold(_key(it), it)
    restored = Digests.from_json(expected.to_json())
    restored.add(Digests.from_json(held.to_json()))
    assert restored.mismatched() == {bucket_of(_key(items[-1]), 16)}


@given(st.lists(st.integers(min_value=0, max_value=10_000), unique=True, max_size=40))
def test_any_set_of_items_folds_to_zero(ids: list[int]) -> None:
    d = Digests(8)
    for i in ids:
        d.expect(_key(_item(i)), _item(i))
    for i in reversed(ids):
        d.hold(_key(_item(i)), _item(i))
    assert not d.mismatched()


def test_a_binary_key_has_one_bucket_read_as_bytes_or_as_base64_text() -> None:
    raw = bytes(range(200, 216))
    as_bytes = {"PK": {"B": raw}, "SK": {"S": "x"}}
    as_text = {"PK": {"B": base64.b64encode(raw).decode("ascii")}, "SK": {"S": "x"}}
    buckets = {bucket_of({"PK": {"B": bytes([i, 9])}, "SK": {"S": "x"}}, 512) for i in range(64)}
    assert len(buckets) > 1  # the binary value does choose the bucket
    assert bucket_of(as_bytes, 512) == bucket_of(as_text, 512)


@given(attributes)
def test_the_fingerprint_bounds_the_size_and_hashes_like_item_hash(item: dict[str, Any]) -> None:
    hashed, bound = fingerprint(item)
    assert hashed == item_hash(item)
    assert bound >= item_size(item)
