"""A compressed control record written before the digest attribute existed (`data_z` only)
is still updated optimistically: the condition takes its compressed bytes when it has no
digest (it compared `data_sha256` alone, so `put(if_data=what was read)` failed every
time)."""

from __future__ import annotations

import zlib

from dualwrite.aws.clients import Clients
from dualwrite.control.table import COMPRESS_OVER, ControlTable, _text, control_table_definition


def test_an_optimistic_update_of_a_compressed_record_without_a_digest(
    moto_clients: Clients,
) -> None:
    moto_clients.dynamodb.create_table(**control_table_definition("ctl"))
    ctl = ControlTable(moto_clients.dynamodb, "ctl")
    data = {"tag": "v1", "blob": "x" * (COMPRESS_OVER + 10)}
    # as the previous release stored it: compressed, no digest
    moto_clients.dynamodb.put_item(
        TableName="ctl",
        Item={
            "pk": {"S": "P"},
            "sk": {"S": "S"},
            "updated_at": {"N": "1"},
            "data_z": {"B": zlib.compress(_text(data).encode("utf-8"), 6)},
        },
    )
    stored = ctl.get("P", "S")
    assert stored is not None and stored.data == data
    ctl.put("P", "S", {"tag": "v2"}, if_data=stored.data)  # what was read is what is stored
    again = ctl.get("P", "S")
    assert again is not None and again.data == {"tag": "v2"}
