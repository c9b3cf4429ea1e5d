"""Reads of both sides of a route: consistent batched gets, group queries. Adapter."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dualwrite.aws.clients import Clients
from dualwrite.aws.dynamo import RequestCounter, batch_get, query_all
from dualwrite.aws.errors import aws_call
from dualwrite.wire import AttributeValue, Item, Key, decode_json_value
from reconciler.spec import RouteSpec


@dataclass
class Sides:
    """Strongly consistent reads of a route's source and target.

    Clients are looked up per call: `Clients` hands each thread its own boto3 client.
    """

    clients: Clients
    route: RouteSpec
    counter: RequestCounter | None = None

    @property
    def ddb(self) -> Any:
        return self.clients.dynamodb

    def source_items(self, keys: Sequence[Key]) -> dict[str, Item]:
        """Source items by key_id (absent keys are absent), 100 keys per BatchGetItem."""
        if not keys:
            return {}
        return batch_get(self.ddb, self.route.source, keys, consistent=True, counter=self.counter)

    def target_items(self, keys: Sequence[Key]) -> dict[str, Item]:
        if not keys:
            return {}
        return batch_get(self.ddb, self.route.target, keys, consistent=True, counter=self.counter)

    def members(self, group: AttributeValue) -> list[Item]:
        """Every source item of a group (a user's memberships), strongly consistent."""
        attr = self.route.mapping.group_attr
        assert attr is not None
        value = decode_json_value(group)  # read as base64 text (codec.binary_as_text): bytes
        return query_all(
            self.ddb, self.route.source, attr, value, consistent=True, counter=self.counter
        )

    def has_members(self, group: AttributeValue) -> bool:
        """Whether a group still has any source item (one-item consistent Query)."""
        attr = self.route.mapping.group_attr
        assert attr is not None
        with aws_call("Query"):
            response = self.ddb.query(
                TableName=self.route.source,
                KeyConditionExpression="#k = :v",
                ExpressionAttributeNames={"#k": attr},
                ExpressionAttributeValues={":v": decode_json_value(group)},
                ConsistentRead=True,
                Limit=1,
            )
        if self.counter is not None:
            self.counter.add("Query")
        return bool(response.get("Items"))
