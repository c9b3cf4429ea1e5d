"""The digest phase's view of a source item: its target key, hash and the 400 KB check."""

from __future__ import annotations

import base64

import pytest

from dualwrite.errors import UnmappableError
from dualwrite.mapping import build_mapping
from dualwrite.mapping.base import KeySchema
from dualwrite.wire import MAX_ITEM_BYTES, decode_json_item
from reconciler.digest import item_hash
from reconciler.expect import direct, direct_hashed

IDENTITY = build_mapping("identity", KeySchema((("id", "S"),)))


def _as_text(item: dict) -> dict:  # type: ignore[type-arg]
    return {
        k: ({"B": base64.b64encode(v["B"]).decode("ascii")} if "B" in v else v)
        for k, v in item.items()
    }


def test_direct_hashed_is_direct_then_item_hash() -> None:
    item = {"id": {"S": "a"}, "n": {"N": "1"}, "b": {"B": b"\x00\x01"}}
    key, made = direct(IDENTITY, ("id",), item)
    assert direct_hashed(IDENTITY, ("id",), item) == (key, item_hash(made))


def test_binary_read_as_text_is_sized_as_binary_near_the_limit() -> None:
    # 310 KB of binary is over 400 KB of base64 text: under the limit as DynamoDB counts it
    fits = {"id": {"S": "a"}, "blob": {"B": b"\x07" * (310 * 1024)}}
    as_text = _as_text(fits)
    assert len(as_text["blob"]["B"]) > MAX_ITEM_BYTES
    assert decode_json_item(as_text) == fits
    key, _ = direct_hashed(IDENTITY, ("id",), as_text)
    assert key == {"id": {"S": "a"}}
    too_big = _as_text({"id": {"S": "a"}, "blob": {"B": b"\x07" * (MAX_ITEM_BYTES + 1)}})
    with pytest.raises(UnmappableError, match="400 KB"):
        direct_hashed(IDENTITY, ("id",), too_big)
