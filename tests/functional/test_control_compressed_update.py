"""The control table's large records (stored zlib-compressed in `data_z`) under optimistic
updates (`put(if_data=...)`): the condition compared the `data` attribute, which a
compressed item does not have, so it could never hold; and an optimistic put was never
compressed, so a record grown past DynamoDB's 400 KB item limit could not be written."""

from __future__ import annotations

import pytest

from dualwrite.aws.clients import Clients
from dualwrite.control.table import COMPRESS_OVER, ControlTable, control_table_definition
from dualwrite.errors import ConditionFailedError


def table(clients: Clients) -> ControlTable:
    clients.dynamodb.create_table(**control_table_definition("ctl"))
    return ControlTable(clients.dynamodb, "ctl")


def big(n: int, tag: str) -> dict[str, str]:
    return {"tag": tag, "blob": "é∑x" * (n // 3)}  # non-ASCII: \\u escapes, 6 bytes each


def test_an_optimistic_update_of_a_compressed_record(moto_clients: Clients) -> None:
    ctl = table(moto_clients)
    ctl.put("P", "S", big(COMPRESS_OVER, "v1"))
    stored = ctl.get("P", "S")
    assert stored is not None and stored.data["tag"] == "v1"
    raw = moto_clients.dynamodb.get_item(TableName="ctl", Key={"pk": {"S": "P"}, "sk": {"S": "S"}})
    assert "data_z" in raw["Item"] and "data" not in raw["Item"]

    with pytest.raises(ConditionFailedError):  # stale: what was read is not what is stored
        ctl.put("P", "S", {"tag": "v2"}, if_data={**stored.data, "tag": "v0"})
    ctl.put("P", "S", {"tag": "v2"}, if_data=stored.data)
    again = ctl.get("P", "S")
    assert again is not None and again.data == {"tag": "v2"}


def test_an_optimistic_update_to_a_large_record_is_compressed(moto_clients: Clients) -> None:
    ctl = table(moto_clients)
    ctl.put("P", "S", {"tag": "v1"})
    stored = ctl.get("P", "S")
    assert stored is not None
    ctl.put("P", "S", big(150_000, "v2"), if_data=stored.data)  # ~650 KB of JSON
    again = ctl.get("P", "S")
    assert again is not None and again.data["tag"] == "v2"
    ctl.put("P", "S", big(150_000, "v3"), if_data=again.data)
    third = ctl.get("P", "S")
    assert third is not None and third.data["tag"] == "v3"
