"""`servers`: {id, ...} -> {PK: SERVER#<id>, SK: METADATA, Type: Server, ...rest unchanged}."""

from __future__ import annotations

from dualwrite.mapping.base import PK_SK, KeySchema, Mapping, require_keys
from dualwrite.wire import Item, Key, scalar_text

PREFIX = "SERVER#"
SK_VALUE = "METADATA"
RESERVED = ("PK", "SK", "Type")


class ServersMapping(Mapping):
    name = "servers"

    @property
    def target_key(self) -> KeySchema:
        return PK_SK

    def schema_problem(self) -> str | None:
        attrs = self.source_key.attributes
        if len(attrs) != 1 or attrs[0][0] != "id" or attrs[0][1] not in ("S", "N"):
            return (
                "mapping 'servers' needs a source keyed by hash key 'id' (S or N) alone, "
                f"found {self.source_key.describe()}"
            )
        return None

    def quarantine_reason(self, item: Item) -> str | None:
        problem = require_keys(item, self.source_key)
        if problem:
            return problem
        clash = [name for name in RESERVED if name in item]
        if clash:
            return f"source attribute(s) {', '.join(clash)} would overwrite the target's keys"
        return None

    def _transform(self, item: Item) -> Item:
        # id lives on in PK; every other attribute is carried over unchanged (a C-level copy:
        # this runs for every replicated record)
        out: Item = dict(item)
        del out["id"]
        out["PK"] = {"S": PREFIX + scalar_text(item["id"])}
        out["SK"] = {"S": SK_VALUE}
        out["Type"] = {"S": "Server"}
        return out

    def target_keys(self, source_key: Key) -> list[Key]:
        return [{"PK": {"S": PREFIX + scalar_text(source_key["id"])}, "SK": {"S": SK_VALUE}}]

    def owns(self, target_key: Key) -> bool:
        pk = target_key.get("PK", {}).get("S", "")
        sk = target_key.get("SK", {}).get("S")
        return isinstance(pk, str) and pk.startswith(PREFIX) and sk == SK_VALUE

    def source_key_for(self, target_key: Key) -> Key | None:
        if not self.owns(target_key):
            return None
        raw = target_key["PK"]["S"][len(PREFIX) :]
        return {"id": {self.source_key.type_of("id"): raw}}
