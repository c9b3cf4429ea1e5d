"""`servers`: {id, ...} -> {PK: SERVER#<id>, SK: METADATA, Type: Server, ...rest unchanged}."""

from __future__ import annotations

from dualwrite.errors import UnmappableError
from dualwrite.mapping.base import PK_SK, KeySchema, Mapping, require_keys
from dualwrite.mapping.templates import KeySpace, Template, is_number
from dualwrite.wire import Item, Key, scalar_text

PREFIX = "SERVER#"
SK_VALUE = "METADATA"
TYPE = "Server"
RESERVED = ("PK", "SK", "Type")


class ServersMapping(Mapping):
    name = "servers"
    has_inverse = True
    inverse_ignores_current = True

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
        out["Type"] = {"S": TYPE}
        return out

    def target_keys(self, source_key: Key) -> list[Key]:
        return [{"PK": {"S": PREFIX + scalar_text(source_key["id"])}, "SK": {"S": SK_VALUE}}]

    def owns(self, target_key: Key) -> bool:
        pk = target_key.get("PK", {}).get("S", "")
        sk = target_key.get("SK", {}).get("S")
        return isinstance(pk, str) and pk.startswith(PREFIX) and sk == SK_VALUE

    def source_key_for(self, target_key: Key) -> Key | None:
        # owns(), inlined: asked up to three times for every target-stream record
        pk = target_key.get("PK")
        sk = target_key.get("SK")
        if pk is None or sk is None or sk.get("S") != SK_VALUE:
            return None
        text = pk.get("S")
        if not isinstance(text, str) or not text.startswith(PREFIX):
            return None
        raw, typ = text[len(PREFIX) :], self.source_key.type_of("id")
        if not raw or (typ == "N" and not is_number(raw)):
            return None  # no source key (read, it would fail the batch): unrepresentable
        return {"id": {typ: raw}}

    def key_space(self) -> KeySpace:
        return {"PK": Template.parse(PREFIX + "{id}"), "SK": Template.parse(SK_VALUE)}

    def inverse(self, target: Item, current: Item | None) -> Item:
        # {PK: SERVER#<id>, SK: METADATA, Type, ...rest} -> {id, ...rest}; servers drops no
        # source attribute, so `current` adds nothing
        source_key = self.source_key_for(target)
        if source_key is None:
            pk = target.get("PK", {}).get("S")
            if isinstance(pk, str) and self.owns(target):  # a server's, with an id no key holds
                given = pk[len(PREFIX) :]
                raise UnmappableError(
                    f"unrepresentable: server id {given!r} is not a number DynamoDB takes, "
                    "in its spelling (no exponent, no leading or trailing zeros)"
                    if given
                    else "unrepresentable: the server id is empty"
                )
            raise UnmappableError("unrepresentable: the target key is not a server's")
        if target.get("Type") != {"S": TYPE}:
            raise UnmappableError(f"unrepresentable: Type is {target.get('Type')!r}, not {TYPE}")
        if "id" in target:
            raise UnmappableError("unrepresentable: servers never writes a target attribute id")
        raw = source_key["id"]
        out: Item = {name: value for name, value in target.items() if name not in RESERVED}
        out["id"] = raw
        return out
