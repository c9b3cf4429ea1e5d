"""Custom mappings that declare their key space, loaded by `package.module:attribute`."""

from __future__ import annotations

from dualwrite.mapping.base import PK_SK, KeySchema
from dualwrite.mapping.identity import IdentityMapping
from dualwrite.mapping.templates import KeySpace, Template


class ServerShadow(IdentityMapping):
    """Claims SERVER#* keys, which the builtin servers route owns."""

    @property
    def target_key(self) -> KeySchema:
        return PK_SK

    def key_space(self) -> KeySpace:
        return {"PK": Template.parse("SERVER#{PK}")}


class Carts(ServerShadow):
    def key_space(self) -> KeySpace:
        return {"PK": Template.parse("CART#{PK}")}
