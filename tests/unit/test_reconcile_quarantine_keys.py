"""Finding the source key in a quarantined item or stream record (for auto-resolution)."""

from __future__ import annotations

import base64

from dualwrite.status import source_key_from_record

NAMES = ("userId", "serverId")


def test_a_stream_record_gives_its_keys_with_binary_decoded() -> None:
    record = {
        "eventName": "MODIFY",
        "dynamodb": {
            "Keys": {"userId": {"S": "u1"}, "serverId": {"B": base64.b64encode(b"\x01").decode()}},
            "NewImage": {"userId": {"S": "other"}},
        },
    }
    assert source_key_from_record(record, NAMES) == {
        "userId": {"S": "u1"},
        "serverId": {"B": b"\x01"},
    }


def test_a_backfilled_item_is_its_own_key() -> None:
    item = {"userId": {"S": "u1"}, "serverId": {"S": "s1"}, "email": {"S": "x@example.com"}}
    assert source_key_from_record(item, NAMES) == {"userId": {"S": "u1"}, "serverId": {"S": "s1"}}


def test_wrapped_records_and_images() -> None:
    assert source_key_from_record({"item": {"id": {"N": "7"}}}, ("id",)) == {"id": {"N": "7"}}
    old_only = {"dynamodb": {"OldImage": {"id": {"S": "gone"}}}}
    assert source_key_from_record(old_only, ("id",)) == {"id": {"S": "gone"}}


def test_no_key_no_answer() -> None:
    assert source_key_from_record({"junk": 1}, ("id",)) is None
    assert source_key_from_record({"id": "not an attribute value"}, ("id",)) is None
    assert source_key_from_record("text", ("id",)) is None
    assert source_key_from_record({"userId": {"S": "u"}}, NAMES) is None
