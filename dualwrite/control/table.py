"""The control table's item format and its generic reads and writes (layout: __init__)."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dualwrite.aws.errors import aws_call
from dualwrite.jsondoc import JsonObject
from dualwrite.wire import Item

PK = "pk"
SK = "sk"
#: JSON longer than this is stored zlib-compressed in `data_z` (B): an item holds 400 KB
COMPRESS_OVER = 300_000
#: a compressed item's SHA-256 of its JSON
DIGEST = "data_sha256"


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def control_table_definition(name: str) -> dict[str, Any]:
    return {
        "TableName": name,
        "KeySchema": [
            {"AttributeName": PK, "KeyType": "HASH"},
            {"AttributeName": SK, "KeyType": "RANGE"},
        ],
        "AttributeDefinitions": [
            {"AttributeName": PK, "AttributeType": "S"},
            {"AttributeName": SK, "AttributeType": "S"},
        ],
        "BillingMode": "PAY_PER_REQUEST",
    }


@dataclass(frozen=True)
class Record:
    pk: str
    sk: str
    data: JsonObject
    updated_at: float


@dataclass
class ControlTable:
    """Generic reads and writes of the control table. The clock is injected (tests move it).

    Each family of records (phases, checkpoints, quarantine, reconcile results) adds its
    typed methods in its own module; ControlStore (dualwrite.control) combines them."""

    client: Any
    table: str
    clock: Callable[[], float] = time.time
    _ids: Callable[[], str] = field(default=lambda: uuid.uuid4().hex[:12])

    # --- generic --------------------------------------------------------------------------
    def put(
        self,
        pk: str,
        sk: str,
        data: JsonObject,
        *,
        expires_at: float | None = None,
        only_if_absent: bool = False,
        if_data: JsonObject | None = None,
    ) -> None:
        """Write one item. only_if_absent: fail (ConditionFailedError) when it exists;
        if_data: fail unless the stored data is exactly this (an optimistic update)."""
        text = _text(data)
        item: Item = {PK: {"S": pk}, SK: {"S": sk}, "updated_at": {"N": repr(self.clock())}}
        if len(text) > COMPRESS_OVER:
            # a cutover journal of many functions (60 environments of ~4 KB, before and
            # after) passed DynamoDB's 400 KB item limit, and no cutover could be made. The
            # digest is what an optimistic update compares (compressed bytes may differ
            # between zlib builds, say the Lambda's and a laptop's)
            item["data_z"] = {"B": zlib.compress(text.encode("utf-8"), 6)}
            item[DIGEST] = {"S": _digest(text)}
        else:
            item["data"] = {"S": text}
        if expires_at is not None:
            item["expires_at"] = {"N": str(int(expires_at))}
        kwargs: dict[str, Any] = {"TableName": self.table, "Item": item}
        if only_if_absent:
            kwargs["ConditionExpression"] = "attribute_not_exists(pk)"
        elif if_data is not None:
            # the stored form follows from the text's size, as above
            expected = _text(if_data)
            if len(expected) <= COMPRESS_OVER:
                kwargs["ConditionExpression"] = "#d = :expected"
                kwargs["ExpressionAttributeNames"] = {"#d": "data"}
                kwargs["ExpressionAttributeValues"] = {":expected": {"S": expected}}
            else:  # compressed; by a release before the digest, with this zlib's bytes
                kwargs["ConditionExpression"] = (
                    "#h = :digest OR (attribute_not_exists(#h) AND #z = :compressed)"
                )
                kwargs["ExpressionAttributeNames"] = {"#h": DIGEST, "#z": "data_z"}
                kwargs["ExpressionAttributeValues"] = {
                    ":digest": {"S": _digest(expected)},
                    ":compressed": {"B": zlib.compress(expected.encode("utf-8"), 6)},
                }
        with aws_call(f"PutItem {self.table}"):
            self.client.put_item(**kwargs)

    def get(self, pk: str, sk: str) -> Record | None:
        with aws_call(f"GetItem {self.table}"):
            response = self.client.get_item(
                TableName=self.table, Key={PK: {"S": pk}, SK: {"S": sk}}, ConsistentRead=True
            )
        item = response.get("Item")
        return _record(item) if item else None

    def delete(self, pk: str, sk: str) -> None:
        with aws_call(f"DeleteItem {self.table}"):
            self.client.delete_item(TableName=self.table, Key={PK: {"S": pk}, SK: {"S": sk}})

    def query(
        self, pk: str, prefix: str = "", *, between: tuple[str, str] | None = None
    ) -> Iterator[Record]:
        """The items of one pk, by sort key: all, those beginning with `prefix`, or those
        `between` two sort keys (inclusive)."""
        condition = "pk = :pk"
        values: dict[str, Any] = {":pk": {"S": pk}}
        if between is not None:
            condition += " AND sk BETWEEN :lo AND :hi"
            values |= {":lo": {"S": between[0]}, ":hi": {"S": between[1]}}
        elif prefix:
            condition += " AND begins_with(sk, :prefix)"
            values[":prefix"] = {"S": prefix}
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "ConsistentRead": True,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
        }
        while True:
            with aws_call(f"Query {self.table}"):
                response = self.client.query(**kwargs)
            for item in response.get("Items", []):
                yield _record(item)
            last = response.get("LastEvaluatedKey")
            if not last:
                return
            kwargs["ExclusiveStartKey"] = last

    def now(self) -> float:
        return self.clock()


def _text(data: JsonObject) -> str:
    return json.dumps(data, separators=(",", ":"), default=str)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _record(item: Mapping[str, Any]) -> Record:
    return Record(
        pk=item[PK]["S"],
        sk=item[SK]["S"],
        data=json.loads(item["data"]["S"])
        if "data" in item
        else json.loads(zlib.decompress(bytes(item["data_z"]["B"])).decode("utf-8"))
        if "data_z" in item
        else {},
        updated_at=float(item.get("updated_at", {}).get("N", "0")),
    )
