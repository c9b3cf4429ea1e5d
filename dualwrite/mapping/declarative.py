"""A mapping written in the migration file (section 11): key templates, constants, renames.

    mapping:
      key: {PK: "CUSTOMER#{customerId}", SK: "ORDER#{orderId}"}
      set: {Type: Order}
      rename: {total: amount}
      drop: [legacyFlag]

Every other attribute is carried unchanged. The templates' placeholders are source key
attributes; they live on in the key and are not carried. The templates also give the key
space and the inverse, so nothing here needs code.
"""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)

from dualwrite.errors import UnmappableError
from dualwrite.mapping.base import KeySchema, Mapping, require_keys
from dualwrite.mapping.templates import KeySpace, Template, is_number
from dualwrite.wire import AttributeValue, Item, Key, number_spelling, scalar_text, values_equal


def _template(text: str) -> str:
    Template.parse(text)  # a TemplateError is a ValueError: pydantic reports it at the key
    return text


def _storable(value: int | float) -> int | float:
    """A number DynamoDB can hold: finite, at most 38 significant digits, in its range."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{value} is no number DynamoDB can store")
    if not is_number(number_spelling(str(value))):
        raise ValueError(
            f"{value} is out of DynamoDB's number range (38 significant digits, "
            "magnitude 1E-130 to under 1E+126)"
        )
    return value


TemplateText = Annotated[str, AfterValidator(_template)]
#: an attribute name: DynamoDB refuses an empty one (every write would fail)
Name = Annotated[str, Field(min_length=1)]
Constant = StrictBool | StrictInt | StrictFloat | StrictStr


def _wire(value: Constant) -> AttributeValue:
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float):
        # DynamoDB's own spelling (2.0 is stored, and streamed, as "2"), so that what the
        # target holds compares equal as text too
        return {"N": number_spelling(str(value))}
    return {"S": value}


class DeclarativeSpec(BaseModel):
    """The `mapping:` block of a route, as validated from the migration file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: dict[Name, TemplateText] = Field(min_length=1, max_length=2)
    set_: dict[Name, Constant] = Field(default_factory=dict, alias="set")
    rename: dict[Name, Name] = Field(default_factory=dict)
    drop: list[Name] = Field(default_factory=list)

    @field_validator("key", mode="before")
    @classmethod
    def _one_or_two(cls, value: object) -> object:
        """A DynamoDB key has a partition key and at most a sort key: said so, with the
        names (pydantic's own words were "Dictionary should have at most 2 items")."""
        if isinstance(value, dict) and not 1 <= len(value) <= 2:
            names = ", ".join(str(n) for n in value) or "none"
            raise ValueError(
                "a DynamoDB key is a partition key and at most a sort key: give one or two "
                f"attributes, not {len(value)} ({names})"
            )
        return value

    @field_validator("set_", mode="before")
    @classmethod
    def _constants(cls, value: object) -> object:
        """One clear message per constant (a union's errors name its branches, not the key)."""
        if not isinstance(value, dict):
            return value  # pydantic says what it should be
        for name, v in value.items():
            if name == "":
                raise ValueError("set: an attribute name must not be empty")
            if isinstance(v, bool | str):
                continue
            if not isinstance(v, int | float):
                raise ValueError(
                    f"set.{name}: must be a string, a number or a boolean, not "
                    f"{type(v).__name__} (quote it to make it a string)"
                )
            try:
                _storable(v)
            except ValueError as exc:
                raise ValueError(f"set.{name}: {exc}") from None
        return value

    @model_validator(mode="after")
    def _no_collisions(self) -> DeclarativeSpec:
        keys = set(self.key)
        placeholders = {n for t in self.templates.values() for n in t.names}
        for name in self.set_:
            if name in keys:
                raise ValueError(f"set.{name}: collides with key attribute {name}")
        targets: dict[str, str] = {}
        for old, new in self.rename.items():
            if new in keys:
                raise ValueError(f"rename.{old}: new name {new} collides with key attribute {new}")
            if new in self.set_:
                raise ValueError(f"rename.{old}: new name {new} collides with set.{new}")
            if new in targets:
                raise ValueError(f"rename.{old}: {targets[new]} is renamed to {new} as well")
            if old in placeholders:
                raise ValueError(f"rename.{old}: {old} is a key placeholder, it is not carried")
            targets[new] = old
        for name in self.drop:
            if name in placeholders:
                raise ValueError(f"drop: {name} is a key placeholder, it is not carried anyway")
            if name in self.rename:
                raise ValueError(f"drop: {name} is also renamed")
        return self

    @property
    def templates(self) -> dict[str, Template]:
        return {name: Template.parse(text) for name, text in self.key.items()}

    def __str__(self) -> str:
        return "declarative (" + ", ".join(f"{k}={v}" for k, v in self.key.items()) + ")"


class DeclarativeMapping(Mapping):
    """The mapping of a `DeclarativeSpec`, bound to its source's key schema."""

    name = "declarative"
    has_inverse = True

    def __init__(
        self, source_key: KeySchema, spec: DeclarativeSpec, target_key: KeySchema | None = None
    ) -> None:
        super().__init__(source_key)
        self.spec = spec
        self.templates = spec.templates
        # the table's order (partition key first) when it names the same attributes
        self.key_names = tuple(spec.key)
        if target_key is not None and sorted(target_key.names) == sorted(self.key_names):
            self.key_names = target_key.names
        names = (n for t in self.templates.values() for n in t.names)
        self.placeholders = tuple(dict.fromkeys(names))
        self.constants: dict[str, AttributeValue] = {k: _wire(v) for k, v in spec.set_.items()}
        self.rename = dict(spec.rename)
        self.unrename = {new: old for old, new in spec.rename.items()}
        self.drop = tuple(spec.drop)
        # attributes the forward mapping does not carry under their own name
        not_carried = set(self.placeholders) | set(self.drop) | set(self.rename)
        # an unrenamed source attribute with one of these names would overwrite something
        self.clashes = frozenset(
            (set(self.key_names) | set(self.constants) | set(self.unrename)) - not_carried
        )
        # a target attribute with one of these names cannot come from the forward mapping
        self.foreign = frozenset(not_carried - set(self.unrename))
        self._clash_order = tuple(sorted(self.clashes))
        self._template_items = tuple(self.templates.items())
        self._constant_items = tuple(
            (name, typ, value) for name, av in self.constants.items() for typ, value in av.items()
        )
        # only a template with two or more placeholders can render two keys alike
        self.ambiguous = tuple(t for t in self.templates.values() if len(t.names) > 1)

    @property
    def target_key(self) -> KeySchema:
        return KeySchema(tuple((name, "S") for name in self.key_names))

    def fits_key(self, table_key: KeySchema) -> bool:
        """The file's `key:` is a YAML mapping, whose order means nothing: {SK: ..., PK: ...}
        names the same key as {PK: ..., SK: ...} (it was refused as "SK (hash), PK (range)")."""
        return sorted(table_key.attributes) == sorted(self.target_key.attributes)

    def key_space(self) -> KeySpace:
        return self.templates

    def schema_problem(self) -> str | None:
        types = dict(self.source_key.attributes)
        for attr, template in self.templates.items():
            for name in template.names:
                if name not in types:
                    return (
                        f"mapping.key.{attr}: placeholder {{{name}}} is not a key attribute of "
                        f"the source ({self.source_key.describe()})"
                    )
                if types[name] not in ("S", "N"):
                    return (
                        f"mapping.key.{attr}: placeholder {{{name}}} is of type {types[name]}; "
                        "a key template takes S or N attributes"
                    )
        for name in self.source_key.names:
            if name not in self.placeholders:
                return (
                    f"mapping.key: source key attribute {name} is in no template, so two source "
                    "items would share one target item"
                )
        return None

    # --- items ------------------------------------------------------------------------
    def _values(self, item: Item) -> dict[str, str]:
        out: dict[str, str] = {}
        for name in self.placeholders:
            out[name] = scalar_text(item[name])  # a number in DynamoDB's spelling
        return out

    def quarantine_reason(self, item: Item) -> str | None:
        problem = require_keys(item, self.source_key)
        if problem:
            return problem
        clash = [name for name in self._clash_order if name in item]
        if clash:
            return (
                f"source attribute(s) {', '.join(clash)} would overwrite a key, set or "
                "renamed attribute of the target"
            )
        if self.ambiguous:
            values = self._values(item)
            for template in self.ambiguous:
                back = template.match(template.render(values))
                if back != {n: values[n] for n in template.names}:
                    return (
                        f"key template {template.text!r} renders this item's key ambiguously "
                        "(a placeholder value contains the text that follows it)"
                    )
        return None

    def _key(self, values: dict[str, str]) -> Key:
        return {name: {"S": t.render(values)} for name, t in self._template_items}

    def _transform(self, item: Item) -> Item:
        # runs for every replicated record: a C-level copy, then only the names that change
        out: Item = dict(item)
        values = self._values(item)
        for name in self.placeholders:
            del out[name]
        for name in self.drop:
            out.pop(name, None)
        if self.rename:
            moved = {new: out.pop(old) for old, new in self.rename.items() if old in out}
            out.update(moved)
        for name, template in self._template_items:
            out[name] = {"S": template.render(values)}
        for name, typ, value in self._constant_items:
            out[name] = {typ: value}  # a fresh dict per item, as a class would make
        return out

    def target_keys(self, source_key: Key) -> list[Key]:
        return [self._key(self._values(source_key))]

    def owns(self, target_key: Key) -> bool:
        """In the key space (every template matches), as the overlap check sees it: a key
        no source key can hold (ORDER#01 for a number, two values of one placeholder) is
        still this route's, so reconcile counts it as extra and reverse quarantines it
        under this route, instead of it belonging to no route at all."""
        for attr, template in self._template_items:
            text = target_key.get(attr, {}).get("S")
            if not isinstance(text, str) or template.match(text) is None:
                return False
        return True

    def source_key_for(self, target_key: Key) -> Key | None:
        values: dict[str, str] = {}
        for attr, template in self.templates.items():
            text = target_key.get(attr, {}).get("S")
            if not isinstance(text, str):
                return None
            found = template.match(text)
            if found is None:
                return None
            for name, value in found.items():
                if values.setdefault(name, value) != value:
                    return None
        key: Key = {}
        for name, typ in self.source_key.attributes:
            if not values.get(name):  # absent, or empty: DynamoDB takes no empty key
                return None
            if typ == "N" and not is_number(values[name]):
                return None
            key[name] = {typ: values[name]}
        return key

    # --- the inverse (section 8) ----------------------------------------------------------
    def inverse(self, target: Item, current: Item | None) -> Item:
        key = {name: target[name] for name in self.key_names if name in target}
        source_key = self.source_key_for(key)
        if source_key is None:
            raise UnmappableError(
                "unrepresentable: the target key is not in this route's key space"
            )
        out: Item = {}
        if current is not None:
            out.update({name: current[name] for name in self.drop if name in current})
        for name, value in self.constants.items():
            found = target.get(name)
            if found is None or not values_equal(found, value):
                raise UnmappableError(
                    f"unrepresentable: {name} is {target.get(name)!r}, the mapping sets {value!r}"
                )
        for name, value in target.items():
            if name in self.constants or name in self.templates:
                continue
            if name in self.unrename:
                out[self.unrename[name]] = value
            elif name in self.foreign:
                raise UnmappableError(
                    f"unrepresentable: the mapping never writes a target attribute {name}"
                )
            else:
                out[name] = value
        out.update(source_key)
        return out
